"""Heat pump test points, boil-up and defrost corrections, tank loss and conversions (F1, F3)."""

from __future__ import annotations

import numpy as np
import pytest

from drready.physics.heatpump import (
    RATED_33_CLASS,
    HeatPumpSpec,
    cop,
    defrost_factor,
    electric_input_kw,
    heat_pump_cop,
    jis_inlet_temp_c,
    national_boil_temp_c,
    rated_cop,
    real_operation_ratio,
    standby_power_kw,
)
from drready.physics.tank import TANK_370, TANK_460, loss_rate_per_h, max_stored_heat_kwh
from drready.physics.water import HEAT_KWH_PER_L_K, volume_at_use_temp_l

# national method, 付録 E, table 4(b) row e_rtd = 3.3: 4.5 kW for 1.077 / 1.002 / 0.879 kW
E_WIN, E_IMD, E_SUM = 4.5 / 1.077, 4.5 / 1.002, 4.5 / 0.879
E_UPPER = E_WIN + (5.0 - 7.0) / (16.0 - 7.0) * (E_IMD - E_WIN)  # (10d)
R_E = 1.0 / (0.6 / 0.94 + 0.4 / 0.895)  # (9-1), (9-2) weighted by r_usg 0.6 / 0.4
C_TEST = 2.78 / 3.00  # (16)


@pytest.mark.parametrize(
    ("air_c", "boil_c", "expected"),
    [
        (7.0, 65.0, E_WIN),  # (11c) winter test point
        (16.0, 65.0, E_IMD),  # (11b)
        (25.0, 65.0, E_SUM),  # (11a)
        (5.0, 65.0, E_UPPER),  # (10d) upper end of the frosting region
        (2.0, 90.0, 3.00),  # (10e) frosting point at its 90 °C test boil-up
        (-7.0, 90.0, 0.82 * 3.00),  # (10f) cold winter
        (2.0, 75.0, 3.00 * (1 + 0.01 * 15)),  # (8e): +1 %/K below 90 °C
        (7.0, 69.0, E_WIN * (1 - 0.01 * 4)),  # (8c): −1 %/K above 65 °C
        (3.5, 65.0, 0.5 * (3.00 * 1.25 + E_UPPER)),  # (7): linear between 2 and 5 °C
        (11.5, 65.0, 0.5 * (E_WIN + E_IMD)),  # (7): linear between 7 and 16 °C
        (30.0, 65.0, E_SUM + 5.0 / 9.0 * (E_SUM - E_IMD)),  # (7): end slope beyond 25 °C
        (-10.0, 90.0, 2.46 - 3.0 / 9.0 * (3.00 - 2.46)),  # (7): end slope below −7 °C
        (40.0, 65.0, E_SUM + 10.0 / 9.0 * (E_SUM - E_IMD)),  # air clipped at 35 °C
    ],
)
def test_rated_cop_through_the_methods_points(air_c: float, boil_c: float, expected: float):
    assert float(rated_cop(RATED_33_CLASS, air_c, boil_c)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("air_c", "boil_c", "expected"),
    [
        (5.1, 65.0, 1.0),  # no defrost above the frosting region
        (2.0, 90.0, C_TEST),  # (16): the test's ratio 2.78 / 3.00
        (2.0, 65.0, C_TEST - 0.0024 * 25),  # (15a): 0.0024 per K of boil-up below 90 °C
        (0.0, 75.0, C_TEST - 0.0024 * 15),  # constant from 2 down to −2 °C
        (3.5, 90.0, 0.5 * (1 + C_TEST)),  # linear from 2 to 5 °C
        (-7.0, 90.0, C_TEST + 0.05),  # (15b): 0.01 per K below −2 °C
        (-15.0, 90.0, 1.0),  # capped at 1
    ],
)
def test_defrost_factor_of_the_method(air_c: float, boil_c: float, expected: float):
    got = float(defrost_factor(RATED_33_CLASS, air_c, boil_c))
    assert got == pytest.approx(expected, rel=1e-12)


def test_real_operation_ratio_is_the_usage_weighted_mean_of_the_modes():
    assert real_operation_ratio() == pytest.approx(R_E, rel=1e-12)
    assert RATED_33_CLASS.real_ratio == pytest.approx(R_E, rel=1e-12)
    # a second mode whose winter boil-up stays at 75 °C keeps 0.90 (9-2)
    assert real_operation_ratio((65.0, 70.0)) == pytest.approx(1 / (0.6 / 0.94 + 0.4 / 0.90))


def test_unit_cop_adds_the_auxiliaries_that_run_with_the_heat_pump():
    hp = float(heat_pump_cop(RATED_33_CLASS, 16.0, 65.0, 17.0))
    assert hp == pytest.approx(R_E * E_IMD, rel=1e-12)  # JIS inlet: no inlet correction
    unit = float(cop(RATED_33_CLASS, 16.0, 65.0, 17.0))
    assert unit == pytest.approx(1 / (1 / hp + 0.015 / 4.5), rel=1e-12)  # 21 W − 6 W at 4.5 kW
    assert float(electric_input_kw(RATED_33_CLASS, 16.0, 65.0, 17.0)) == pytest.approx(4.5 / unit)
    assert standby_power_kw(RATED_33_CLASS) == pytest.approx(0.006)
    # at 0 °C and 65 °C: 3.75 at the frosting point's slope, real operation, 13 % defrost loss
    at_0 = float(heat_pump_cop(RATED_33_CLASS, 0.0, 65.0, float(jis_inlet_temp_c(0.0))))
    e_0 = 3.00 * 1.25 + (0.0 - 2.0) / 9.0 * (3.00 * 1.25 - 0.82 * 3.00 * 1.25)
    assert at_0 == pytest.approx(R_E * e_0 * (C_TEST - 0.06), rel=1e-12)


def test_spec_rows_of_table_4b():
    assert HeatPumpSpec.for_rated_efficiency(3.3) == RATED_33_CLASS
    low = HeatPumpSpec.for_rated_efficiency(2.5)  # ≤ 2.7 takes the 2.7 row
    assert low.rated_input_kw == (1.263, 1.175, 1.031)
    assert low.frost_cop == 2.56
    assert HeatPumpSpec.for_rated_efficiency(4.0).rated_input_kw == (0.984, 0.915, 0.803)
    with pytest.raises(ValueError, match=r"step of 0\.1"):
        HeatPumpSpec.for_rated_efficiency(3.25)


@pytest.mark.parametrize(
    ("night_c", "expected"),
    [
        (25.0, 0.6 * 65 + 0.4 * 72),  # (28a-1), (28a-2)
        (6.0, 0.6 * 69 + 0.4 * 76),  # (28c-1), (28c-2): winter band 5–7 °C
        (2.0, 0.6 * 75 + 0.4 * 82),  # (28d-1), (28d-2)
        (-10.0, 0.6 * 77 + 0.4 * 84),  # (28e-1), (28e-2), constant below −7 °C
        (11.5, 0.6 * 67 + 0.4 * 74),  # (27): linear between 7 and 16 °C
    ],
)
def test_national_boil_temperature(night_c: float, expected: float):
    assert float(national_boil_temp_c(RATED_33_CLASS, night_c)) == pytest.approx(expected)


def test_vectorised_over_arrays_and_scalars_agree():
    air = np.array([[0.0, 7.0], [16.0, 30.0]])
    boil = np.array([[65.0], [80.0]])
    arr = cop(RATED_33_CLASS, air, boil)
    for idx in np.ndindex(air.shape):
        one = float(cop(RATED_33_CLASS, float(air[idx]), float(boil[idx[0], 0])))
        assert arr[idx] == pytest.approx(one, rel=1e-12)


def test_cop_falls_one_percent_per_kelvin_of_boil_up():
    base = float(heat_pump_cop(RATED_33_CLASS, 16.0, 65.0))
    hot = float(heat_pump_cop(RATED_33_CLASS, 16.0, 85.0))
    assert hot / base == pytest.approx(1 - 0.01 * 20, rel=1e-9)


def test_warmer_inlet_water_lowers_cop():
    ref = float(cop(RATED_33_CLASS, 16.0, 65.0, float(jis_inlet_temp_c(16.0))))
    warm = float(cop(RATED_33_CLASS, 16.0, 65.0, 30.0))
    assert warm < 0.85 * ref


def test_boil_up_outside_range_is_refused():
    with pytest.raises(ValueError, match="boil_temp_c"):
        cop(RATED_33_CLASS, 16.0, 95.0)


def test_tank_standby_loss_matches_jis_figure():
    # full 370 L tank, hot layer 40 K above the surroundings: 40 K / 0.3 K/W = 133 W ≈ 11.5 MJ/d
    lam = float(loss_rate_per_h(370.0, TANK_370.resistance_k_per_w, 65.0, 15.0, 25.0))
    full_layer_kwh = 370.0 * HEAT_KWH_PER_L_K * (65.0 - 15.0)
    loss_mj_per_day = lam * full_layer_kwh * 24 * 3.6
    assert loss_mj_per_day == pytest.approx(11.5, rel=0.05)
    # a larger tank loses more in total (more surface) but less per stored kWh
    lam460 = float(loss_rate_per_h(460.0, TANK_460.resistance_k_per_w, 65.0, 15.0, 25.0))
    assert lam460 < lam
    assert lam460 * 460 > lam * 370


def test_usable_volume_by_hand():
    # 10 kWh above 15 °C mains delivers 10 / (0.0011518 · 25) ≈ 347 L at 40 °C
    assert float(volume_at_use_temp_l(10.0, 15.0)) == pytest.approx(347.3, abs=0.5)
    q = float(max_stored_heat_kwh(370.0, 0.9, 65.0, 15.0))
    assert q == pytest.approx(0.9 * 370 * HEAT_KWH_PER_L_K * 50)
