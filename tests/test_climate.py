"""Tests of drready.physics.climate: typical-year air and mains water temperature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from drready.physics.climate import (
    DAYS_IN_MONTH,
    HOURS_PER_YEAR,
    MAINS_REGRESSION_BY_REGION,
    TOKYO,
    TOKYO_MONTHLY_MEAN_AIR_C,
    Climate,
    air_temp_c,
    daily_mean_air_c,
    hour_of_year,
    mains_temp_c,
)

JST = timezone(timedelta(hours=9))


def _month_bounds_h() -> list[tuple[float, float]]:
    start = np.cumsum((0, *DAYS_IN_MONTH)) * 24.0
    return [(float(start[m]), float(start[m + 1])) for m in range(12)]


def test_monthly_means_match_normals() -> None:
    # Average over each month at 1-minute resolution: the diurnal cosine cancels over whole
    # days, so the monthly average is the seasonal curve's. Spec: within 0.3 K; the
    # mean-preserving spline actually matches to round-off (1e-3 K covers the sampling).
    for m, (start, end) in enumerate(_month_bounds_h()):
        h = np.arange(start, end, 1.0 / 60.0) + 1.0 / 120.0
        mean = float(air_temp_c(TOKYO, h).mean())
        assert abs(mean - TOKYO_MONTHLY_MEAN_AIR_C[m]) < 0.3
        assert mean == pytest.approx(TOKYO_MONTHLY_MEAN_AIR_C[m], abs=1e-3)


def test_seasonal_curve_is_smooth_and_periodic() -> None:
    h = np.arange(0.0, HOURS_PER_YEAR, 24.0) + 12.0
    t = daily_mean_air_c(TOKYO, np.arange(365))
    # wraps: Dec 31 → Jan 1 is as smooth as any other day-to-day step
    steps = np.abs(np.diff(np.append(t, t[0])))
    assert steps.max() < 0.3
    np.testing.assert_allclose(air_temp_c(TOKYO, h + HOURS_PER_YEAR), air_temp_c(TOKYO, h))
    np.testing.assert_allclose(air_temp_c(TOKYO, h - HOURS_PER_YEAR), air_temp_c(TOKYO, h))
    # coldest around late January, warmest around early-mid August
    assert 10 <= int(np.argmin(t)) <= 40
    assert 205 <= int(np.argmax(t)) <= 235


def test_diurnal_minimum_at_coldest_hour() -> None:
    for day in (15, 100, 200, 300):
        h = 24.0 * day + np.arange(0.0, 24.0, 1.0 / 60.0)
        t = air_temp_c(TOKYO, h)
        hour_min = float(h[np.argmin(t)] - 24.0 * day)
        # the seasonal trend (≤ 0.2 K/day) shifts the minimum by a few minutes at most
        assert hour_min == pytest.approx(TOKYO.coldest_hour, abs=0.25)
        assert float(t.max() - t.min()) == pytest.approx(2 * TOKYO.diurnal_amplitude_k, abs=0.3)


def test_daily_mean_is_mean_of_the_day() -> None:
    for day in (0, 58, 181, 364):
        h = 24.0 * day + np.arange(0.0, 24.0, 1.0 / 60.0) + 1.0 / 120.0
        assert float(daily_mean_air_c(TOKYO, np.array(day))) == pytest.approx(
            float(air_temp_c(TOKYO, h).mean()), abs=1e-4
        )


def test_air_temp_accepts_any_shape() -> None:
    scalar = air_temp_c(TOKYO, 1000.5)
    assert scalar.shape == ()
    grid = np.arange(12.0).reshape(3, 4) * 700.0
    out = air_temp_c(TOKYO, grid)
    assert out.shape == (3, 4)
    assert float(out[1, 2]) == pytest.approx(float(air_temp_c(TOKYO, grid[1, 2])))


def test_mains_colder_in_february_than_august() -> None:
    feb = mains_temp_c(TOKYO, np.arange(31, 59))
    aug = mains_temp_c(TOKYO, np.arange(212, 243))
    assert feb.max() < aug.min()
    # plausible Tokyo tap water: ≈ 7 °C in winter, ≈ 25 °C in late summer
    assert 5.0 < feb.mean() < 10.0
    assert 22.0 < aug.mean() < 28.0


@pytest.mark.parametrize("day", [2, 40, 220])
def test_mains_equals_hand_computation(day: int) -> None:
    # Eq. (12)-(13) of the national method (pyhees section7_1.get_Theta_wtr_d,
    # get_Theta_ex_prd_Ave_d): mean of the 10 preceding daily means, times a_wtr plus b_wtr.
    preceding = [(day - i) % 365 for i in range(1, 11)]
    period_mean = float(np.mean([float(daily_mean_air_c(TOKYO, np.array(d))) for d in preceding]))
    expected = 0.8516 * period_mean + 2.473
    assert float(mains_temp_c(TOKYO, np.array(day))) == pytest.approx(expected, abs=1e-12)


def test_tokyo_uses_region_6_coefficients() -> None:
    assert (TOKYO.mains_a_wtr, TOKYO.mains_b_wtr) == (0.8516, 2.473)
    assert MAINS_REGRESSION_BY_REGION[6] == (0.8516, 2.473)
    assert len(MAINS_REGRESSION_BY_REGION) == 8


def test_mains_lower_bound() -> None:
    arctic = Climate("arctic", (-30.0,) * 12, 4.0, *MAINS_REGRESSION_BY_REGION[1])
    np.testing.assert_array_equal(mains_temp_c(arctic, np.arange(365)), 0.5)


def test_mains_shape_and_wrap() -> None:
    days = np.array([[0, 365], [364, -1]])
    out = mains_temp_c(TOKYO, days)
    assert out.shape == (2, 2)
    assert out[0, 0] == out[0, 1]
    assert out[1, 0] == out[1, 1]


def test_hour_of_year_local_wall_time() -> None:
    times = [
        datetime(2026, 1, 1, 0, 0, tzinfo=JST),
        datetime(2026, 1, 2, 6, 30, tzinfo=JST),
        datetime(2026, 12, 31, 23, 0, tzinfo=JST),
        datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
    ]
    out = hour_of_year(times)
    assert out.tolist() == [0.0, 30.5, 8759.0, 24.0 * 181 + 12.0]
    # wall time of each datetime's own zone, not UTC
    utc_midnight = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert hour_of_year([utc_midnight.astimezone(JST)]).tolist() == [9.0]


def test_hour_of_year_feb_29_maps_like_feb_28() -> None:
    leap = hour_of_year([datetime(2028, 2, 29, 7, 15, tzinfo=JST)])
    common = hour_of_year([datetime(2027, 2, 28, 7, 15, tzinfo=JST)])
    assert leap.tolist() == common.tolist()
    march_leap = hour_of_year([datetime(2028, 3, 1, tzinfo=JST)])
    assert march_leap.tolist() == [24.0 * 59]


def test_hour_of_year_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hour_of_year([datetime(2026, 1, 1)])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"monthly_mean_air_c": (1.0,) * 11}, "monthly_mean_air_c"),
        ({"monthly_mean_air_c": (float("nan"),) * 12}, "monthly_mean_air_c"),
        ({"diurnal_amplitude_k": -1.0}, "diurnal_amplitude_k"),
        ({"mains_a_wtr": 0.0}, "mains_a_wtr"),
        ({"coldest_hour": 24.0}, "coldest_hour"),
    ],
)
def test_climate_validation(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "name": "x",
        "monthly_mean_air_c": TOKYO_MONTHLY_MEAN_AIR_C,
        "diurnal_amplitude_k": 3.8,
        "mains_a_wtr": 0.8516,
        "mains_b_wtr": 2.473,
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=field):
        Climate(**base)  # type: ignore[arg-type]
