"""Tests of drready.physics.draws: standard schedule, fleet samples and their moments."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest

from drready.physics.draws import (
    CATEGORIES,
    DayType,
    DrawVariability,
    bathers_by_hour,
    day_type_for,
    day_type_on,
    expected_step_use_l,
    hourly_use_by_category_l,
    hourly_use_l,
    sample_step_use_l,
    slot_use_moments_l,
    slot_use_var_l2,
)

# Daily totals [L] of table M.1 with a bathtub (sum of kitchen, shower, washbasin, bath fill).
DAILY_TOTAL_L = {
    4: {
        DayType.WEEKDAY_LARGE: 550.0,
        DayType.WEEKDAY_MEDIUM: 450.0,
        DayType.WEEKDAY_SMALL: 350.0,
        DayType.HOLIDAY_HOME_LARGE: 650.0,
        DayType.HOLIDAY_HOME_SMALL: 550.0,
        DayType.HOLIDAY_OUT: 250.0,
    },
    1: {DayType.WEEKDAY_MEDIUM: 180.0, DayType.HOLIDAY_OUT: 40.0},
}
ALL_DAY_TYPES = list(DayType)
WEEKDAY = [DayType.WEEKDAY_MEDIUM]


# ------------------------------------------------------------------------------ schedule facts


def test_four_persons_weekday_medium_is_450_l() -> None:
    assert float(hourly_use_l(4, DayType.WEEKDAY_MEDIUM).sum()) == 450.0
    for persons, totals in DAILY_TOTAL_L.items():
        for day_type, total in totals.items():
            assert float(hourly_use_l(persons, day_type).sum()) == total


def test_bath_fill_at_19h_for_four_persons_on_weekdays() -> None:
    for day_type in (DayType.WEEKDAY_LARGE, DayType.WEEKDAY_MEDIUM, DayType.WEEKDAY_SMALL):
        bath = hourly_use_by_category_l(4, day_type)["bath_fill"]
        assert bath[19] == 180.0
        assert float(bath.sum()) == 180.0


def test_categories_and_bathtub_columns() -> None:
    with_tub = hourly_use_by_category_l(4, DayType.WEEKDAY_MEDIUM, bathtub=True)
    without = hourly_use_by_category_l(4, DayType.WEEKDAY_MEDIUM, bathtub=False)
    assert tuple(with_tub) == CATEGORIES
    assert all(v.shape == (24,) for v in with_tub.values())
    np.testing.assert_array_equal(with_tub["kitchen"], without["kitchen"])
    # Table M.1 (as transcribed in pyhees section7_1_m) has all-zero no-bathtub columns.
    assert float(without["bath_fill"].sum()) == 0.0
    assert float(without["shower"].sum()) == 0.0
    assert float(with_tub["shower"].sum()) == 150.0
    # returned arrays are copies: mutating them does not touch the cache
    with_tub["kitchen"][:] = -1.0
    assert float(hourly_use_l(4, DayType.WEEKDAY_MEDIUM).sum()) == 450.0


def test_calendar() -> None:
    days = [date(2026, 1, 1) + np.timedelta64(i, "D").item() for i in range(365)]
    types = [day_type_for(d) for d in days]
    assert len(types) == 365
    assert day_type_for(date(2026, 1, 1)) is DayType.HOLIDAY_HOME_LARGE
    assert day_type_for(date(2026, 1, 2)) is DayType.WEEKDAY_MEDIUM
    assert day_type_for(date(2028, 2, 29)) is day_type_for(date(2028, 2, 28))
    assert {t for t in types} == set(DayType)


# Dates of 2017 (Jan 1 a Sunday, as in the national calendar) whose holidays differ from the
# calendar's base year: Happy-Monday holidays, the equinox, Mountain Day, a substitute holiday.
MOVED_2017 = {
    date(2017, 1, 2), date(2017, 1, 9), date(2017, 3, 20), date(2017, 3, 21),
    date(2017, 7, 17), date(2017, 7, 20), date(2017, 8, 11), date(2017, 9, 15),
    date(2017, 9, 18), date(2017, 10, 9), date(2017, 10, 10),
}  # fmt: skip


def test_real_calendar_reproduces_the_national_calendar_on_its_weekdays() -> None:
    days = [date(2017, 1, 1) + timedelta(days=i) for i in range(365)]
    differ = {d for d in days if day_type_on(d) is not day_type_for(d)}
    assert differ == MOVED_2017


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 1), DayType.HOLIDAY_HOME_LARGE),  # New Year's Day (a Thursday)
        (date(2026, 1, 2), DayType.WEEKDAY_MEDIUM),  # Friday, as the calendar's Jan 2–3
        (date(2026, 1, 3), DayType.HOLIDAY_HOME_SMALL),  # Saturday
        # weeks from Sunday Dec 28, 2025 (week A): Jan 4–10 week B, Jan 11–17 week A
        (date(2026, 1, 4), DayType.HOLIDAY_OUT),  # Sunday of week B
        (date(2026, 1, 7), DayType.WEEKDAY_LARGE),  # Wednesday of week B
        (date(2026, 1, 8), DayType.WEEKDAY_SMALL),  # Thursday of week B
        (date(2026, 1, 11), DayType.HOLIDAY_HOME_LARGE),  # Sunday of week A
        (date(2026, 1, 12), DayType.HOLIDAY_HOME_SMALL),  # Coming of Age Day (Monday)
        (date(2026, 1, 13), DayType.WEEKDAY_SMALL),  # Tuesday
        (date(2026, 1, 14), DayType.WEEKDAY_MEDIUM),  # Wednesday of week A
        (date(2026, 1, 15), DayType.WEEKDAY_MEDIUM),  # Thursday of week A
        (date(2026, 5, 3), DayType.HOLIDAY_OUT),  # Constitution Day (a Sunday)
        (date(2026, 5, 6), DayType.HOLIDAY_HOME_SMALL),  # substitute holiday (Wednesday)
        (date(2026, 9, 22), DayType.HOLIDAY_HOME_SMALL),  # citizens' holiday (Tuesday)
        (date(2026, 12, 30), DayType.HOLIDAY_OUT),  # the calendar's year end
        (date(2024, 2, 29), DayType.WEEKDAY_MEDIUM),  # a leap day is a Thursday like others
    ],
)
def test_day_type_on_real_dates(day: date, expected: DayType) -> None:
    assert day_type_on(day) is expected


def test_no_real_weekday_of_2026_gets_a_holiday_type() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    weekdays = [d for d in days if d.weekday() < 5]
    assert len(weekdays) == 261
    model_year = sum(day_type_for(d).value.startswith("holiday") for d in weekdays)
    assert model_year == 111  # the count for the year-less calendar
    holiday_type = [d for d in weekdays if day_type_on(d).value.startswith("holiday")]
    # the 17 public holidays of 2026 on Monday–Friday (Jan 1, 12; Feb 11, 23; Mar 20; Apr 29;
    # May 4–6; Jul 20; Aug 11; Sep 21–23; Oct 12; Nov 3, 23) and the calendar's Dec 30–31
    assert len(holiday_type) == 19
    assert {d for d in holiday_type if d.month == 5} == {date(2026, 5, d) for d in (4, 5, 6)}


def test_bathers_by_hour_of_the_schedule() -> None:
    assert bathers_by_hour(4, DayType.WEEKDAY_MEDIUM).tolist()[19:] == [0, 1, 1, 2, 0]
    assert bathers_by_hour(1, DayType.HOLIDAY_HOME_LARGE).tolist()[21] == 1
    assert not bathers_by_hour(4, DayType.HOLIDAY_OUT).any()


@pytest.mark.parametrize("persons", [0, 5, 2.5])
def test_bad_persons_raise(persons: float) -> None:
    with pytest.raises(ValueError, match="persons"):
        hourly_use_l(persons, DayType.WEEKDAY_MEDIUM)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="persons"):
        expected_step_use_l(np.array([4, persons]), WEEKDAY, 30)
    with pytest.raises(ValueError, match="persons"):
        sample_step_use_l(np.random.default_rng(0), np.array([persons]), WEEKDAY, 30)


@pytest.mark.parametrize("step", [7, 0, -5, 90, 45])
def test_bad_step_raises(step: int) -> None:
    with pytest.raises(ValueError, match="step_minutes"):
        expected_step_use_l(np.array([4]), WEEKDAY, step)
    with pytest.raises(ValueError, match="step_minutes"):
        sample_step_use_l(np.random.default_rng(0), np.array([4]), WEEKDAY, step)
    with pytest.raises(ValueError, match="slot_minutes"):
        slot_use_moments_l(np.array([4]), WEEKDAY, step)


def test_bad_day_types_and_bathtub_raise() -> None:
    with pytest.raises(ValueError, match="day_types"):
        expected_step_use_l(np.array([4]), [], 30)
    with pytest.raises(ValueError, match=r"day_types\[1\]"):
        expected_step_use_l(np.array([4]), ["weekday_medium", "monday"], 30)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="bathtub"):
        expected_step_use_l(np.array([4, 3]), WEEKDAY, 30, bathtub=np.array([True]))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("day_factor_sigma", -0.1),
        ("event_sigma", float("inf")),
        ("jitter_prob", 1.5),
        ("manual_reheat_prob_per_day", -0.01),
        ("manual_reheat_minutes", 0),
    ],
)
def test_variability_validation(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        DrawVariability(**{field: value})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ expected use


@pytest.mark.parametrize("step", [1, 5, 10, 15, 30, 60])
@pytest.mark.parametrize("bathtub", [True, False])
def test_expected_step_use_sums_to_daily_totals(step: int, bathtub: bool) -> None:
    persons = np.array([1, 2, 3, 4, 4, 1])
    out = expected_step_use_l(persons, ALL_DAY_TYPES, step, bathtub=bathtub)
    steps_per_day = 1440 // step
    assert out.shape == (6, 6 * steps_per_day)
    daily = out.reshape(6, 6, steps_per_day).sum(axis=2)
    for i, p in enumerate(persons):
        for d, t in enumerate(ALL_DAY_TYPES):
            assert daily[i, d] == pytest.approx(float(hourly_use_l(int(p), t, bathtub).sum()))


def test_expected_step_use_bath_fill_in_first_quarter_hour() -> None:
    out = expected_step_use_l(np.array([4]), WEEKDAY, 5)[0]
    kitchen_per_step = 10.0 / 12.0  # 10 L of kitchen use at 19 h, spread uniformly
    hour_19 = out[19 * 12 : 20 * 12]
    np.testing.assert_allclose(hour_19[:3], 60.0 + kitchen_per_step)
    np.testing.assert_allclose(hour_19[3:], kitchen_per_step)
    # 10-minute steps: 10 of the 15 minutes in the first step, 5 in the second
    ten = expected_step_use_l(np.array([4]), WEEKDAY, 10)[0][19 * 6 : 19 * 6 + 3]
    np.testing.assert_allclose(ten, [120.0 + 10 / 6, 60.0 + 10 / 6, 10 / 6])
    # 30- and 60-minute steps: the fill simply falls in the hour's first step
    thirty = expected_step_use_l(np.array([4]), WEEKDAY, 30)[0]
    np.testing.assert_allclose(thirty[38:40], [185.0, 5.0])


def test_expected_step_use_mixed_bathtub() -> None:
    out = expected_step_use_l(np.array([4, 4]), WEEKDAY, 60, bathtub=np.array([True, False]))
    np.testing.assert_allclose(out[0], hourly_use_l(4, DayType.WEEKDAY_MEDIUM, True))
    np.testing.assert_allclose(out[1], hourly_use_l(4, DayType.WEEKDAY_MEDIUM, False))


# ------------------------------------------------------------------------------ moments


def test_moments_without_noise_are_the_schedule() -> None:
    quiet = DrawVariability(day_factor_sigma=0.0, event_sigma=0.0, jitter_prob=0.0)
    persons = np.array([1, 2, 3, 4])
    mean, var = slot_use_moments_l(persons, ALL_DAY_TYPES, 15, quiet)
    np.testing.assert_allclose(mean, expected_step_use_l(persons, ALL_DAY_TYPES, 15))
    np.testing.assert_allclose(var, 0.0, atol=1e-9)
    np.testing.assert_allclose(slot_use_var_l2(persons, ALL_DAY_TYPES, 15, quiet), 0.0, atol=1e-9)


def test_moments_mean_preserves_span_total() -> None:
    persons = np.array([1, 2, 3, 4])
    mean, _ = slot_use_moments_l(persons, ALL_DAY_TYPES, 30)
    expected = expected_step_use_l(persons, ALL_DAY_TYPES, 30)
    np.testing.assert_allclose(mean.sum(axis=1), expected.sum(axis=1))


def test_moments_final_cumulative_variance_is_volume_noise_only() -> None:
    # Over a whole single-day span, jitter adds nothing: every block is counted exactly once.
    var = DrawVariability()
    _, indep = slot_use_moments_l(np.array([4]), WEEKDAY, 30, var)
    blocks = np.stack(list(hourly_use_by_category_l(4, DayType.WEEKDAY_MEDIUM).values()))
    ef2 = np.exp(var.day_factor_sigma**2)
    expected = ef2 * np.expm1(var.event_sigma**2) * float((blocks**2).sum())
    assert float(indep.sum()) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------ Monte Carlo


@pytest.fixture(scope="module")
def weekday_sample() -> np.ndarray:
    # 200 000 unit-days of 4-person weekday_medium homes at 30-minute slots (float64 for sums).
    sample = sample_step_use_l(np.random.default_rng(20260101), np.full(200_000, 4), WEEKDAY, 30)
    return sample.use_l.astype(np.float64)


def test_monte_carlo_daily_mean(weekday_sample: np.ndarray) -> None:
    daily = weekday_sample.sum(axis=1)
    # standard error ≈ 450 L · 0.19 / sqrt(2e5) ≈ 0.2 L, far inside 1 %
    assert float(daily.mean()) == pytest.approx(450.0, rel=0.01)
    cv = float(daily.std() / daily.mean())
    assert 0.15 <= cv <= 0.20  # the spread the DrawVariability defaults aim at


def test_monte_carlo_mixed_fleet_daily_mean() -> None:
    persons = np.tile(np.array([1, 2, 3, 4]), 50_000)
    days = [DayType.HOLIDAY_HOME_LARGE]
    sample = sample_step_use_l(np.random.default_rng(3), persons, days, 15)
    daily = sample.use_l.astype(np.float64).sum(axis=1)
    for p in (1, 2, 3, 4):
        schedule = float(hourly_use_l(p, days[0]).sum())
        assert float(daily[persons == p].mean()) == pytest.approx(schedule, rel=0.01)


def test_monte_carlo_slot_mean_and_variance(weekday_sample: np.ndarray) -> None:
    persons = np.array([4])
    mean, _ = slot_use_moments_l(persons, WEEKDAY, 30)
    slot_var = slot_use_var_l2(persons, WEEKDAY, 30)[0]
    # Mean per slot: within 3 standard errors (plus a small floor for empty slots).
    se = np.sqrt(slot_var / weekday_sample.shape[0])
    assert np.all(np.abs(weekday_sample.mean(axis=0) - mean[0]) <= 3 * se + 1e-6)
    # Variance of single slots: 12:00, 18:00, 19:00 (bath), 19:30, 20:00, 22:30.
    # Sample variance of 2e5 heavy-tailed values has a relative standard error of ≲ 1.5 %.
    for slot in (24, 36, 38, 39, 40, 45):
        assert float(weekday_sample[:, slot].var()) == pytest.approx(slot_var[slot], rel=0.05)


def test_monte_carlo_cumulative_variance(weekday_sample: np.ndarray) -> None:
    var = DrawVariability()
    mean, indep = slot_use_moments_l(np.array([4]), WEEKDAY, 30, var)
    cum_mean = np.cumsum(mean[0])
    predicted = (var.day_factor_cv * cum_mean) ** 2 + np.cumsum(indep[0])
    cumulative = np.cumsum(weekday_sample, axis=1)
    # ends of 07:00, 18:00, 19:00, 19:30 (bath timing uncertain), 21:00, 24:00
    for slot in (13, 35, 37, 38, 41, 47):
        assert float(cumulative[:, slot].var()) == pytest.approx(predicted[slot], rel=0.05)


def test_sample_same_seed_same_sample() -> None:
    persons = np.array([1, 2, 3, 4] * 25)
    days = [DayType.WEEKDAY_SMALL, DayType.HOLIDAY_OUT]
    a = sample_step_use_l(np.random.default_rng(7), persons, days, 10)
    b = sample_step_use_l(np.random.default_rng(7), persons, days, 10)
    c = sample_step_use_l(np.random.default_rng(8), persons, days, 10)
    np.testing.assert_array_equal(a.use_l, b.use_l)
    np.testing.assert_array_equal(a.manual_reheat, b.manual_reheat)
    assert not np.array_equal(a.use_l, c.use_l)
    assert a.use_l.shape == (100, 2 * 144)
    assert a.use_l.dtype == np.float32


def test_sample_span_edges_and_non_negative() -> None:
    # Nothing leaves the span: with no volume noise the span total is exactly the schedule's.
    quiet = DrawVariability(day_factor_sigma=0.0, event_sigma=0.0, jitter_prob=1.0)
    days = [DayType.WEEKDAY_MEDIUM, DayType.HOLIDAY_HOME_LARGE]
    sample = sample_step_use_l(np.random.default_rng(1), np.full(1000, 4), days, 60, quiet)
    use = sample.use_l.astype(np.float64)
    assert np.all(use >= 0.0)
    np.testing.assert_allclose(use.sum(axis=1), 450.0 + 650.0, rtol=1e-6)
    # with jitter_prob = 1 no block stays in its hour: the 180 L bath fill is at 18 h or 20 h
    assert np.all(use[:, 19] < 180.0)
    assert np.all((use[:, 18] >= 180.0) | (use[:, 20] >= 180.0))


def test_manual_reheat_frequency_and_window() -> None:
    var = DrawVariability(manual_reheat_prob_per_day=0.05, manual_reheat_minutes=45)
    n = 100_000
    sample = sample_step_use_l(np.random.default_rng(11), np.full(n, 2), WEEKDAY, 15, var)
    reheat = sample.manual_reheat
    pressed = reheat.any(axis=1)
    # binomial standard error sqrt(0.05 · 0.95 / 1e5) ≈ 0.0007
    assert float(pressed.mean()) == pytest.approx(0.05, abs=0.003)
    assert np.all(reheat[pressed].sum(axis=1) == 3)  # 45 min = 3 steps of 15 min
    first = np.argmax(reheat[pressed], axis=1)
    assert first.min() >= 6 * 4
    assert first.max() < 22 * 4
    # default probability
    default = sample_step_use_l(np.random.default_rng(12), np.full(n, 2), WEEKDAY, 30)
    assert float(default.manual_reheat.any(axis=1).mean()) == pytest.approx(0.03, abs=0.003)


@pytest.mark.slow
def test_one_million_units_one_day_at_30_minutes() -> None:
    n = 1_000_000
    persons = np.random.default_rng(0).integers(1, 5, size=n)
    start = time.perf_counter()
    sample = sample_step_use_l(np.random.default_rng(1), persons, WEEKDAY, 30)
    elapsed = time.perf_counter() - start
    print(f"1e6 units x 1 day at 30 min: {elapsed:.2f} s")
    assert sample.use_l.shape == (n, 48)
    assert sample.use_l.nbytes == n * 48 * 4  # float32
    assert elapsed < 20.0
    expected = np.array([float(hourly_use_l(p, WEEKDAY[0]).sum()) for p in range(1, 5)])
    mean_daily = float(sample.use_l.sum(axis=1, dtype=np.float64).mean())
    assert mean_daily == pytest.approx(float(expected[persons - 1].mean()), rel=0.01)
