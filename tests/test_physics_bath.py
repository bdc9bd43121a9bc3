"""Bath keep-warm and reheat (drready.physics.bath) against table 6 and eq. (11) by hand (E1)."""

from __future__ import annotations

import numpy as np
import pytest

from drready.physics.bath import BathFunction, bath_heat_kwh, daily_bath_heat_kwh
from drready.physics.draws import DayType


@pytest.mark.parametrize(
    ("persons", "air_c", "insulated", "mj"),
    [
        (4, 5.0, False, -0.12 * 5 + 6.00),  # < 7 °C, normal bath
        (4, 5.0, True, -0.07 * 5 + 3.98),  # < 7 °C, insulated
        (4, 7.0, False, -0.13 * 7 + 6.04),  # 7 °C opens the 7–16 °C band
        (3, 20.0, False, -0.11 * 20 + 5.07),  # 16–25 °C, 3 persons
        (2, 30.0, False, -0.06 * 30 + 2.92),  # ≥ 25 °C, 2 persons
        (2, 30.0, True, -0.04 * 30 + 1.92),
        (1, 5.0, False, 0.0),  # one person: no reheat load in the method
    ],
)
def test_daily_bath_heat_of_table_6(persons: int, air_c: float, insulated: bool, mj: float):
    got = float(daily_bath_heat_kwh(persons, air_c, insulated))
    assert got == pytest.approx(mj / 3.6, rel=1e-12)


def test_daily_bath_heat_rejects_other_household_sizes():
    with pytest.raises(ValueError, match="persons"):
        daily_bath_heat_kwh(5, 10.0)


def test_spread_over_the_bathers_hours_and_the_tank_factor():
    # four persons bathe one at 20 h, one at 21 h and two at 22 h: 1 : 1 : 2 of 1.5 kWh
    day = (-0.12 * 5.0 + 6.00) / 3.6
    full = bath_heat_kwh([4], [DayType.WEEKDAY_MEDIUM], [5.0], 30)
    per_slot = full.delivered_kwh[0].reshape(24, 2).sum(axis=1)
    np.testing.assert_allclose(per_slot[20:23], [day / 4, day / 4, day / 2], rtol=1e-12)
    assert per_slot[:20].sum() == 0.0
    assert per_slot[23] == 0.0
    np.testing.assert_allclose(full.delivered_kwh[0, 40:42], day / 8)  # even within the hour
    np.testing.assert_allclose(full.tank_kwh, 1.25 * full.delivered_kwh)  # eq. (5-3g)
    top_up = bath_heat_kwh([4], [DayType.WEEKDAY_MEDIUM], [5.0], 30, BathFunction.AUTO)
    np.testing.assert_allclose(top_up.tank_kwh, full.delivered_kwh)  # eq. (9), (5-2f)
    np.testing.assert_allclose(top_up.delivered_kwh, full.delivered_kwh)


def test_no_bath_no_load():
    b = bath_heat_kwh(
        np.array([4, 4, 3]),
        [DayType.HOLIDAY_OUT, DayType.WEEKDAY_SMALL],
        [12.0, 12.0],
        60,
        bathtub=np.array([True, False, True]),
    )
    assert b.tank_kwh.shape == (3, 48)
    assert b.tank_kwh[:, :24].sum() == 0.0  # nobody bathes on a day out
    assert b.tank_kwh[1].sum() == 0.0  # a home without a bathtub
    assert b.delivered_kwh[0, 24:].sum() == pytest.approx((-0.13 * 12 + 6.04) / 3.6)
    assert b.delivered_kwh[2, 24:].sum() == pytest.approx((-0.10 * 12 + 4.93) / 3.6)


def test_one_temperature_per_day():
    with pytest.raises(ValueError, match="one value per day"):
        bath_heat_kwh([4], [DayType.WEEKDAY_MEDIUM], [5.0, 6.0], 30)
