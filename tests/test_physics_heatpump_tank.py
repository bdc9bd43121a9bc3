"""Heat pump test points, boil-up and defrost corrections, tank loss and conversions (F1, F3)."""

from __future__ import annotations

import numpy as np
import pytest

from drready.physics.heatpump import RATED_33_CLASS, cop, electric_input_kw, jis_inlet_temp_c
from drready.physics.tank import TANK_370, TANK_460, loss_rate_per_h, max_stored_heat_kwh
from drready.physics.water import HEAT_KWH_PER_L_K, volume_at_use_temp_l


@pytest.mark.parametrize(
    ("air_c", "inlet_c", "input_kw"),
    [(16.0, 17.0, 1.002), (25.0, 24.0, 0.879), (7.0, 9.0, 1.077)],
)
def test_published_test_points_within_5_percent(air_c: float, inlet_c: float, input_kw: float):
    # national calculation method, rated efficiency 3.3 class: 4.5 kW heat at 65 °C boil-up
    got = float(electric_input_kw(RATED_33_CLASS, air_c, 65.0, inlet_c))
    assert got == pytest.approx(input_kw, rel=0.05)
    assert RATED_33_CLASS.heat_output_kw == 4.5


def test_vectorised_over_arrays_and_scalars_agree():
    air = np.array([[0.0, 7.0], [16.0, 30.0]])
    arr = cop(RATED_33_CLASS, air, 70.0)
    for idx in np.ndindex(air.shape):
        assert arr[idx] == pytest.approx(float(cop(RATED_33_CLASS, float(air[idx]), 70.0)))


def test_cop_falls_one_percent_per_kelvin_of_boil_up():
    base = float(cop(RATED_33_CLASS, 16.0, 65.0))
    hot = float(cop(RATED_33_CLASS, 16.0, 85.0))
    assert hot / base == pytest.approx(1 - 0.01 * 20, rel=1e-9)


def test_warmer_inlet_water_lowers_cop():
    ref = float(cop(RATED_33_CLASS, 16.0, 65.0, float(jis_inlet_temp_c(16.0))))
    warm = float(cop(RATED_33_CLASS, 16.0, 65.0, 30.0))
    assert warm < 0.85 * ref


def test_defrost_penalty_only_below_5_c():
    # the winter-point slope continued down to 5 °C has no penalty; below it, a penalty
    slope = (4.5 / 1.002 - 4.5 / 1.077) / 9.0
    no_defrost_at_0 = 4.5 / 1.077 - 7.0 * slope
    at_0 = float(cop(RATED_33_CLASS, 0.0, 65.0, float(jis_inlet_temp_c(0.0))))
    assert at_0 == pytest.approx(no_defrost_at_0 * (1 - 0.05), rel=1e-9)
    at_6 = float(cop(RATED_33_CLASS, 6.0, 65.0, float(jis_inlet_temp_c(6.0))))
    assert at_6 == pytest.approx(4.5 / 1.077 - slope, rel=1e-9)


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
