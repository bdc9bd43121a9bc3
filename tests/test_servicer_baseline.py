"""Tests of the "High 4 of 5" baseline (drready.servicer.core.baseline): hand-computed cases, the
rules one by one (DR days, day kinds, missing data, low usage, ties, the same-day adjustment),
errors, and the vectorised code against a plain per-resource reference on random data."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from drready.servicer.core.baseline import (
    SLOTS_PER_DAY,
    BaselineConfig,
    BaselineDataError,
    DayKind,
    EventWindow,
    SelectionRule,
    compute_baseline,
    day_kind,
)

TOKYO = ZoneInfo("Asia/Tokyo")

# June 2026 has no Japanese public holiday; 2026-06-01 is a Monday.
JUNE = [date(2026, 6, 1) + timedelta(days=i) for i in range(10)]  # Mon 1 .. Wed 10
EVENT = EventWindow(day=date(2026, 6, 10), start_slot=28, end_slot=32)  # 14:00–16:00


def d(day: int, month: int = 6) -> date:
    return date(2026, month, day)


def hand_case() -> np.ndarray:
    """One resource, 1–10 June 2026, event Wed 10 June 14:00–16:00.

    Window slots 14:00, 14:30 carry ``v`` per slot, 15:00, 15:30 carry ``v + 0.1`` (so the window
    energy is ``4v + 0.2``); the adjustment window 10:00–13:00 (4 h to 1 h before) carries ``a``
    per slot; every other slot 0.1 kWh.

    ======  ===  ====  =====  ===================================================
    day     kind v     a      role
    ======  ===  ====  =====  ===================================================
    Mon 1   wd   1.0   0.1    6th most recent weekday: not a candidate
    Tue 2   wd   0.6   0.2    candidate, window 2.6 kWh, selected
    Wed 3   wd   0.4   0.1    candidate, window 1.8, selected
    Thu 4   wd   5.0   0.1    DR day: excluded (would rank first)
    Fri 5   wd   0.2   0.1    candidate, window 1.0: lowest, dropped
    Sat 6   we   3.0   0.1    weekend: not a weekday candidate
    Sun 7   we   3.0   0.1    weekend
    Mon 8   wd   0.3   0.2    candidate, window 1.4, selected
    Tue 9   wd   0.5   0.3    candidate, window 2.2, selected
    Wed 10  wd   —     0.35   event day: actual in the adjustment window 0.35
    ======  ===  ====  =====  ===================================================

    Baseline per window slot = mean of days 2, 3, 8, 9 = (0.6 + 0.4 + 0.3 + 0.5) / 4 = 0.45 (first
    two slots) and 0.55 (last two). Adjustment-window baseline = (0.2 + 0.1 + 0.2 + 0.3) / 4 = 0.2,
    so Δ = 0.35 − 0.2 = +0.15 and the adjusted baseline is 0.60, 0.60, 0.70, 0.70 kWh.
    """
    v = {1: 1.0, 2: 0.6, 3: 0.4, 4: 5.0, 5: 0.2, 6: 3.0, 7: 3.0, 8: 0.3, 9: 0.5, 10: 0.05}
    a = {2: 0.2, 8: 0.2, 9: 0.3, 10: 0.35}
    x = np.full((1, 10, SLOTS_PER_DAY), 0.1)
    for i, day in enumerate(JUNE):
        x[0, i, 28:30] = v[day.day]
        x[0, i, 30:32] = v[day.day] + 0.1
        x[0, i, 20:26] = a.get(day.day, 0.1)
    return x


# -- the hand-computed case ------------------------------------------------------------------


def test_hand_computed_high_4_of_5_with_same_day_adjustment() -> None:
    res = compute_baseline(hand_case(), JUNE, EVENT, dr_days={d(4)}, resource_ids=["hp-1"])
    assert res.day_kind is DayKind.WEEKDAY
    assert str(res.rule) == "High 4 of 5"
    assert res.candidate_days(0) == [d(9), d(8), d(5), d(3), d(2)]
    assert res.selected_days(0) == [d(9), d(8), d(3), d(2)]
    audit = res.audit(0)
    assert audit.dropped_days == (d(5),)
    assert audit.candidate_window_kwh == pytest.approx((2.2, 1.4, 1.0, 1.8, 2.6))
    assert audit.dr_days_skipped == 1
    assert res.adjustment_kwh[0] == pytest.approx(0.15)
    np.testing.assert_allclose(res.adjustment_actual_kwh[0], [0.35] * 6)
    np.testing.assert_allclose(res.adjustment_baseline_kwh[0], [0.2] * 6)
    np.testing.assert_allclose(res.unadjusted_kwh[0, 28:32], [0.45, 0.45, 0.55, 0.55])
    np.testing.assert_allclose(res.window_baseline_kwh[0], [0.60, 0.60, 0.70, 0.70])
    # Outside the window the baseline is the same average plus Δ: 0.1 + 0.15 in a plain slot.
    assert res.baseline_kwh[0, 0] == pytest.approx(0.25)
    assert res.ok.all()


def test_the_dr_day_would_otherwise_be_selected() -> None:
    res = compute_baseline(hand_case(), JUNE, EVENT, dr_days=set())
    # Thu 4 (window 20.2 kWh) is now among the 5 most recent weekdays 9, 8, 5, 4, 3; their mean
    # window energy is 26.6 / 5 = 5.32, so Fri 5 (1.0 < 25 % · 5.32 = 1.33) becomes a low-usage
    # day and Tue 2 replaces it. The 4 highest of 9, 8, 4, 3, 2 drop Mon 8 (1.4).
    assert res.candidate_days(0) == [d(9), d(8), d(4), d(3), d(2)]
    assert res.audit(0).low_usage_days_skipped == 1
    assert res.selected_days(0) == [d(9), d(4), d(3), d(2)]


def test_dr_days_per_resource_and_as_mask() -> None:
    x = np.concatenate([hand_case(), hand_case()])
    per_resource = compute_baseline(x, JUNE, EVENT, dr_days=[{d(4)}, set()])
    assert per_resource.selected_days(0) == [d(9), d(8), d(3), d(2)]
    assert per_resource.selected_days(1) == [d(9), d(4), d(3), d(2)]
    mask = np.zeros((2, 10), dtype=bool)
    mask[0, 3] = True
    as_mask = compute_baseline(x, JUNE, EVENT, dr_days=mask)
    np.testing.assert_array_equal(as_mask.baseline_kwh, per_resource.baseline_kwh)


# -- day kinds -------------------------------------------------------------------------------


def test_day_kind() -> None:
    assert day_kind(d(1)) is DayKind.WEEKDAY  # Monday
    assert day_kind(d(6)) is DayKind.WEEKEND_HOLIDAY  # Saturday
    assert day_kind(d(7)) is DayKind.WEEKEND_HOLIDAY  # Sunday
    # 2026-05-06 (Wed) is a substitute holiday (振替休日) for Constitution Day on a Sunday.
    assert day_kind(d(6, 5)) is DayKind.WEEKDAY
    assert day_kind(d(6, 5), holidays={d(6, 5)}) is DayKind.WEEKEND_HOLIDAY


def weekend_case() -> tuple[np.ndarray, list[date]]:
    """18 May – 14 June 2026, event Sunday 14 June 10:00–11:00, window energy per day set below."""
    days = [d(18, 5) + timedelta(days=i) for i in range(28)]
    x = np.full((1, len(days), SLOTS_PER_DAY), 0.2)
    window_kwh = {d(13): 1.0, d(7): 3.0, d(6): 2.0, d(31, 5): 9.0, d(10): 4.0, d(11): 0.5}
    for i, day in enumerate(days):
        x[0, i, 20:22] = window_kwh.get(day, 0.6) / 2
    return x, days


def test_weekend_event_uses_high_2_of_3_of_weekend_days() -> None:
    x, days = weekend_case()
    w = EventWindow(day=d(14), start_slot=20, end_slot=22)
    cfg = BaselineConfig(same_day_adjustment=False)
    res = compute_baseline(x, days, w, config=cfg)
    assert res.day_kind is DayKind.WEEKEND_HOLIDAY
    assert str(res.rule) == "High 2 of 3"
    # Sat 13, Sun 7, Sat 6 are the 3 most recent weekend days; Sun 31 May (9 kWh) is the 4th.
    assert res.candidate_days(0) == [d(13), d(7), d(6)]
    assert res.selected_days(0) == [d(7), d(6)]
    np.testing.assert_allclose(res.window_baseline_kwh[0], [1.25, 1.25])  # (1.5 + 1.0) / 2


def test_holidays_change_the_candidates() -> None:
    x, days = weekend_case()
    cfg = BaselineConfig(same_day_adjustment=False, holidays=frozenset({d(10)}))
    weekend = compute_baseline(
        x, days, EventWindow(day=d(14), start_slot=20, end_slot=22), config=cfg
    )
    # Wed 10 June counts as a holiday: candidates Sat 13, Wed 10, Sun 7; the top 2 are 10 and 7.
    assert weekend.candidate_days(0) == [d(13), d(10), d(7)]
    assert weekend.selected_days(0) == [d(10), d(7)]
    # ... and is no weekday candidate for an event on Thu 11 June.
    days_to_11 = days[: days.index(d(11)) + 1]
    weekday = compute_baseline(
        x[:, : len(days_to_11)],
        days_to_11,
        EventWindow(day=d(11), start_slot=20, end_slot=22),
        config=cfg,
    )
    assert d(10) not in weekday.candidate_days(0)
    assert weekday.candidate_days(0) == [d(9), d(8), d(5), d(4), d(3)]


def test_day_kind_of_parameter_overrides_the_calendar() -> None:
    x, days = weekend_case()
    w = EventWindow(day=d(14), start_slot=20, end_slot=22)
    cfg = BaselineConfig(same_day_adjustment=False)
    res = compute_baseline(x, days, w, config=cfg, day_kind_of=lambda _: DayKind.WEEKDAY)
    # Every day is a weekday: High 4 of 5 over the 5 most recent days, 9–13 June.
    assert res.candidate_days(0) == [d(13), d(12), d(11), d(10), d(9)]
    assert res.selected_days(0) == [d(13), d(12), d(10), d(9)]


# -- not enough days, missing data -----------------------------------------------------------


def test_not_enough_days_names_the_resource_and_the_count() -> None:
    x = np.concatenate([hand_case(), hand_case()])
    dr = [set(), {d(2), d(3), d(4)}]  # the second resource keeps only 9, 8, 5, 1
    with pytest.raises(BaselineDataError) as info:
        compute_baseline(x, JUNE, EVENT, dr_days=dr, resource_ids=["hp-ok", "hp-short"])
    msg = str(info.value)
    assert "'hp-short'" in msg and "'hp-ok'" not in msg
    assert "4 eligible weekdays" in msg and "need 5" in msg and "3 DR days" in msg
    assert info.value.resource_ids == ("hp-short",)
    assert info.value.found == (4,)
    loose = compute_baseline(
        x, JUNE, EVENT, dr_days=dr, resource_ids=["hp-ok", "hp-short"], strict=False
    )
    assert loose.ok.tolist() == [True, False]
    assert np.isnan(loose.baseline_kwh[1]).all() and np.isfinite(loose.window_baseline_kwh[0]).all()
    assert loose.audit(1).reason is not None and loose.audit(1).selected_days == ()


def test_lookback_limits_how_far_back() -> None:
    cfg = BaselineConfig(lookback_days=8)  # 2..9 June: only 2, 3, 5, 8, 9 and the DR day 4
    res = compute_baseline(hand_case(), JUNE, EVENT, dr_days={d(4), d(3)}, config=cfg, strict=False)
    assert not res.ok[0] and res.n_found[0] == 4
    longer = compute_baseline(hand_case(), JUNE, EVENT, dr_days={d(4), d(3)})
    assert longer.candidate_days(0) == [d(9), d(8), d(5), d(2), d(1)]


def test_nan_makes_a_candidate_day_ineligible() -> None:
    x = hand_case()
    x[0, 8, 29] = np.nan  # Tue 9 June, in the event window
    x[0, 7, 3] = np.nan  # Mon 8 June, 01:30: a slot the method does not read
    res = compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    assert res.candidate_days(0) == [d(8), d(5), d(3), d(2), d(1)]
    assert res.audit(0).missing_data_days_skipped == 1
    assert res.selected_days(0) == [d(8), d(3), d(2), d(1)]
    x[0, 0, 22] = np.nan  # Mon 1 June, in the adjustment window: no 5th candidate left
    with pytest.raises(BaselineDataError, match=r"4 eligible weekdays.*2 with missing data"):
        compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    # Without the adjustment its window is not read, so Mon 1 June is usable again.
    cfg = BaselineConfig(same_day_adjustment=False)
    assert d(1) in compute_baseline(x, JUNE, EVENT, dr_days={d(4)}, config=cfg).candidate_days(0)


def test_missing_event_day_data_in_the_adjustment_window() -> None:
    x = np.concatenate([hand_case(), hand_case()])
    x[1, 9, 21] = np.nan
    with pytest.raises(BaselineDataError, match=r"'resource-1'.*adjustment window \(06-10 10:00"):
        compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    res = compute_baseline(x, JUNE, EVENT, dr_days={d(4)}, strict=False)
    assert res.ok.tolist() == [True, False] and bool(res.event_data_missing[1])
    # A NaN on the event day inside the window itself does not affect the baseline.
    y = hand_case()
    y[0, 9, 29] = np.nan
    np.testing.assert_allclose(
        compute_baseline(y, JUNE, EVENT, dr_days={d(4)}).window_baseline_kwh[0],
        [0.60, 0.60, 0.70, 0.70],
    )


# -- low usage, ties ---------------------------------------------------------------------------


def test_low_usage_day_is_replaced_by_an_earlier_day() -> None:
    x = hand_case()
    x[0, 4, 28:32] = 0.05  # Fri 5 June: window 0.2 kWh
    # First 5 eligible days 9, 8, 5, 3, 2: mean window (2.2 + 1.4 + 0.2 + 1.8 + 2.6) / 5 = 1.64;
    # 25 % of it is 0.41 > 0.2, so Fri 5 is dropped and Mon 1 (window 4.2) takes its place.
    res = compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    assert res.candidate_days(0) == [d(9), d(8), d(3), d(2), d(1)]
    assert res.audit(0).low_usage_days_skipped == 1
    assert res.selected_days(0) == [d(9), d(3), d(2), d(1)]
    off = compute_baseline(
        x, JUNE, EVENT, dr_days={d(4)}, config=BaselineConfig(low_usage_fraction=0)
    )
    assert off.candidate_days(0) == [d(9), d(8), d(5), d(3), d(2)]
    assert off.selected_days(0) == [d(9), d(8), d(3), d(2)]


def test_low_usage_threshold_is_strictly_below_25_percent() -> None:
    # One-slot window; the 5 most recent weekdays before Wed 10 June use 2.5, 2.5, 0.5, 2.5, 2.0:
    # mean 10 / 5 = 2.0, and 0.5 is exactly 25 % of it, so it stays ("25%未満" excludes less).
    x = np.full((1, 10, SLOTS_PER_DAY), 1.0)
    for day, kwh in {9: 2.5, 8: 2.5, 5: 0.5, 4: 2.5, 3: 2.0, 2: 3.0}.items():
        x[0, day - 1, 28] = kwh
    w = EventWindow(day=d(10), start_slot=28, end_slot=29)
    res = compute_baseline(x, JUNE, w, config=BaselineConfig(same_day_adjustment=False))
    assert res.candidate_days(0) == [d(9), d(8), d(5), d(4), d(3)]
    x[0, 4, 28] = 0.4999  # just below: replaced by Tue 2 June
    res = compute_baseline(x, JUNE, w, config=BaselineConfig(same_day_adjustment=False))
    assert res.candidate_days(0) == [d(9), d(8), d(4), d(3), d(2)]


def test_tie_keeps_the_more_recent_day() -> None:
    x = hand_case()
    x[0, 4, 28:32] = x[0, 7, 28:32]  # Fri 5 June now equals Mon 8 June (window 1.4, lowest)
    res = compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    assert res.selected_days(0) == [d(9), d(8), d(3), d(2)]
    assert res.audit(0).dropped_days == (d(5),)


# -- the same-day adjustment -------------------------------------------------------------------


def test_negative_adjustment_floor_and_limit() -> None:
    x = hand_case()
    x[0, 9, 20:26] = 0.0  # event day used nothing before the event: Δ = 0 − 0.2 = −0.2
    res = compute_baseline(x, JUNE, EVENT, dr_days={d(4)})
    assert res.adjustment_kwh[0] == pytest.approx(-0.2)
    np.testing.assert_allclose(res.window_baseline_kwh[0], [0.25, 0.25, 0.35, 0.35])
    # A plain slot (0.1 kWh) would go to −0.1: floored at 0 ...
    assert res.baseline_kwh[0, 0] == 0.0
    unfloored = compute_baseline(
        x, JUNE, EVENT, dr_days={d(4)}, config=BaselineConfig(floor_at_zero=False)
    )
    assert unfloored.baseline_kwh[0, 0] == pytest.approx(-0.1)
    # ... and a cap of 20 % of the mean unadjusted window baseline (0.5) limits |Δ| to 0.1.
    capped = compute_baseline(
        x, JUNE, EVENT, dr_days={d(4)}, config=BaselineConfig(adjustment_limit_fraction=0.2)
    )
    assert capped.adjustment_kwh[0] == pytest.approx(-0.1)
    np.testing.assert_allclose(capped.window_baseline_kwh[0], [0.35, 0.35, 0.45, 0.45])


def test_adjustment_window_is_a_parameter() -> None:
    cfg = BaselineConfig(adjustment_from_h_before=5, adjustment_to_h_before=2)  # 09:00–12:00
    res = compute_baseline(hand_case(), JUNE, EVENT, dr_days={d(4)}, config=cfg)
    # 09:00–10:00 (slots 18, 19) are plain 0.1 everywhere; 10:00–12:00 as before:
    # actual mean (2·0.1 + 4·0.35) / 6, baseline mean (2·0.1 + 4·0.2) / 6 → Δ = 0.6 / 6 = 0.1.
    assert res.adjustment_actual_kwh.shape == (1, 6)
    assert res.adjustment_kwh[0] == pytest.approx(0.1)
    none = compute_baseline(
        hand_case(), JUNE, EVENT, dr_days={d(4)}, config=BaselineConfig(same_day_adjustment=False)
    )
    assert none.adjustment_kwh[0] == 0.0
    np.testing.assert_allclose(none.window_baseline_kwh[0], [0.45, 0.45, 0.55, 0.55])


def test_adjustment_window_reaching_into_the_previous_day() -> None:
    # Event 01:00–02:00 (slots 2, 3): adjustment 21:00–24:00 of the previous evening.
    x = np.full((1, 10, SLOTS_PER_DAY), 0.3)
    x[0, :, 42:48] = np.arange(10)[:, None] * 0.01  # evening of June k: 0.01·(k − 1) per slot
    w = EventWindow(day=d(10), start_slot=2, end_slot=4)
    res = compute_baseline(x, JUNE, w)
    # Candidates 9, 8, 5, 4, 3 June (equal windows: the 4 most recent are kept: 9, 8, 5, 4);
    # their previous evenings, 8, 7, 4, 3 June, give (0.07 + 0.06 + 0.03 + 0.02) / 4 = 0.045;
    # the event day's previous evening, 9 June, is 0.08 → Δ = 0.035.
    assert res.selected_days(0) == [d(9), d(8), d(5), d(4)]
    assert res.adjustment_kwh[0] == pytest.approx(0.035)
    np.testing.assert_allclose(res.window_baseline_kwh[0], [0.335, 0.335])
    with pytest.raises(ValueError, match="day before the event day"):
        compute_baseline(
            x[:, 9:],
            JUNE[9:],
            w,
            config=BaselineConfig(weekday=SelectionRule(n_candidates=1, n_selected=1)),
        )


# -- inputs and parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"weekday": {"n_candidates": 5, "n_selected": 6}},
            r"n_selected must be in \[1, n_candidates\] = \[1, 5\], got 6",
        ),
        ({"weekday": {"n_candidates": 0, "n_selected": 0}}, r"n_candidates must be in \[1, 30\]"),
        ({"lookback_days": 4}, r"lookback_days must be in \[5, 90\]"),
        ({"lookback_days": 91}, r"lookback_days must be in \[5, 90\]"),
        ({"low_usage_fraction": 1.0}, r"low_usage_fraction must be < 1"),
        ({"adjustment_from_h_before": 1, "adjustment_to_h_before": 1}, "greater than"),
        ({"adjustment_from_h_before": 3.25}, "multiple of 0.5 h"),
        ({"adjustment_to_h_before": -1}, r"adjustment_to_h_before must be finite and >= 0"),
        ({"adjustment_limit_fraction": -0.1}, "adjustment_limit_fraction"),
    ],
)
def test_config_is_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        BaselineConfig.model_validate(kwargs)


def test_event_window_from_times() -> None:
    start = datetime(2026, 6, 10, 14, 0, tzinfo=TOKYO)
    w = EventWindow.from_times(start, start + timedelta(hours=2))
    assert (w.day, w.start_slot, w.end_slot, w.n_slots) == (d(10), 28, 32, 4)
    assert w.label() == "2026-06-10 14:00–16:00"
    # The same instants in UTC give the same window.
    utc = EventWindow.from_times(
        start.astimezone(UTC), (start + timedelta(hours=2)).astimezone(UTC)
    )
    assert utc == w
    assert w.slot_grid().start == start and w.slot_grid().n_slots == 4
    late = EventWindow.from_times(
        datetime(2026, 6, 10, 22, 0, tzinfo=TOKYO), datetime(2026, 6, 11, 0, 0, tzinfo=TOKYO)
    )
    assert (late.start_slot, late.end_slot) == (44, 48) and late.label().endswith("22:00–24:00")
    with pytest.raises(ValueError, match="crosses midnight"):
        EventWindow.from_times(
            datetime(2026, 6, 10, 23, 0, tzinfo=TOKYO), datetime(2026, 6, 11, 1, 0, tzinfo=TOKYO)
        )
    with pytest.raises(ValueError, match="aligned"):
        EventWindow.from_times(start + timedelta(minutes=15), start + timedelta(hours=1))
    with pytest.raises(ValueError, match="end must be after start"):
        EventWindow.from_times(start, start)
    with pytest.raises(ValidationError, match=r"end_slot must be in .* = \[29, 48\], got 28"):
        EventWindow(day=d(10), start_slot=28, end_slot=28)
    with pytest.raises(ValidationError, match="23 h long"):  # DST starts on 2026-03-08
        EventWindow(day=date(2026, 3, 8), start_slot=20, end_slot=22, tz="America/New_York")


def test_inputs_are_validated() -> None:
    x = hand_case()
    with pytest.raises(ValueError, match=r"shape \(resources, days, 48\)"):
        compute_baseline(x[:, :, :47], JUNE, EVENT)
    with pytest.raises(ValueError, match="one date per day"):
        compute_baseline(x, JUNE[:-1], EVENT)
    with pytest.raises(ValueError, match="consecutive"):
        compute_baseline(x, [*JUNE[:5], d(7), *JUNE[6:9], d(11)], EVENT)
    with pytest.raises(ValueError, match="must be in days"):
        compute_baseline(x[:, :9], JUNE[:9], EVENT)
    with pytest.raises(ValueError, match="±inf"):
        compute_baseline(np.where(x > 4, np.inf, x), JUNE, EVENT)
    with pytest.raises(ValueError, match="one collection per resource"):
        compute_baseline(x, JUNE, EVENT, dr_days=[{d(4)}, {d(3)}])
    with pytest.raises(ValueError, match="unique"):
        compute_baseline(np.concatenate([x, x]), JUNE, EVENT, resource_ids=["a", "a"])
    with pytest.raises(ValueError, match="boolean"):
        compute_baseline(x, JUNE, EVENT, dr_days=np.zeros(10))


# -- vectorised vs a plain per-resource reference ----------------------------------------------


def reference_baseline(
    x: list[list[float]],
    days: list[date],
    window: EventWindow,
    dr: Collection[date],
    cfg: BaselineConfig,
    kind_of: Callable[[date], DayKind],
) -> tuple[list[date], list[float], float] | str:
    """One resource, written out plainly: (selected days, 48-slot baseline, Δ) or a reason."""
    e = days.index(window.day)
    kind = kind_of(days[e])
    rule = cfg.weekday if kind is DayKind.WEEKDAY else cfg.weekend_holiday
    ws, we = window.start_slot, window.end_slot
    a0 = a1 = ws
    if cfg.same_day_adjustment:
        a0 = ws - round(2 * cfg.adjustment_from_h_before)
        a1 = ws - round(2 * cfg.adjustment_to_h_before)
    lo = min(a0, ws)

    def slots(i: int, start: int, stop: int) -> list[float] | None:
        out = []
        for o in range(start, stop):
            day, s = i + o // 48, o % 48
            if day < 0:
                return None
            out.append(x[day][s])
        return out

    def readable(i: int) -> bool:
        vals = slots(i, lo, we)
        return vals is not None and not any(math.isnan(v) for v in vals)

    lookback = range(e - 1, max(e - cfg.lookback_days, 0) - 1, -1)
    passing = [
        i for i in lookback if kind_of(days[i]) is kind and days[i] not in dr and readable(i)
    ]
    energy = {i: sum(x[i][ws:we]) for i in passing}
    first = passing[: rule.n_candidates]
    mean = sum(energy[i] for i in first) / len(first) if first else 0.0
    eligible = [i for i in passing if not energy[i] < cfg.low_usage_fraction * mean]
    cand = eligible[: rule.n_candidates]
    if len(cand) < rule.n_candidates:
        return "not enough days"
    order = sorted(range(len(cand)), key=lambda k: (-energy[cand[k]], k))
    sel = [cand[k] for k in order[: rule.n_selected]]
    unadj = [sum(x[i][s] for i in sel) / len(sel) for s in range(48)]
    delta = 0.0
    if a1 > a0:
        actual = slots(e, a0, a1)
        assert actual is not None
        if any(math.isnan(v) for v in actual):
            return "missing event data"
        base_rows = [slots(i, a0, a1) for i in sel]
        base = [sum(row[j] for row in base_rows if row) / len(sel) for j in range(a1 - a0)]
        delta = sum(a - b for a, b in zip(actual, base, strict=True)) / (a1 - a0)
        if cfg.adjustment_limit_fraction is not None:
            limit = cfg.adjustment_limit_fraction * sum(unadj[ws:we]) / (we - ws)
            delta = max(-limit, min(limit, delta))
    adjusted = [u + delta for u in unadj]
    if cfg.floor_at_zero:
        adjusted = [v if math.isnan(v) else max(v, 0.0) for v in adjusted]
    return [days[i] for i in sorted(sel, reverse=True)], adjusted, delta


CONFIGS = [
    BaselineConfig(),
    BaselineConfig(
        weekday=SelectionRule(n_candidates=4, n_selected=3),
        weekend_holiday=SelectionRule(n_candidates=2, n_selected=1),
        lookback_days=12,
        low_usage_fraction=0.5,
    ),
    BaselineConfig(same_day_adjustment=False, floor_at_zero=False),
    BaselineConfig(
        adjustment_from_h_before=5, adjustment_to_h_before=2, adjustment_limit_fraction=0.1
    ),
    BaselineConfig(adjustment_from_h_before=10, adjustment_to_h_before=0),
]


@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_vectorised_matches_the_plain_reference(seed: int) -> None:
    cfg = CONFIGS[seed]
    rng = np.random.default_rng(seed)
    n_res, n_days = 40, 45 + seed  # event day Fri 15, Sat 16, Sun 17, Mon 18, Tue 19 May
    days = [d(1, 4) + timedelta(days=i) for i in range(n_days)]
    holidays = frozenset(days[i] for i in rng.choice(n_days - 1, 4, replace=False))
    cfg = cfg.model_copy(update={"holidays": holidays})
    x = rng.gamma(2.0, 0.2, size=(n_res, n_days, SLOTS_PER_DAY))
    x[rng.random((n_res, n_days)) < 0.1] *= 0.05  # low-usage days
    x[rng.random(x.shape) < 0.002] = np.nan  # missing slots
    dr = [set(days[i] for i in np.flatnonzero(rng.random(n_days) < 0.12)) for _ in range(n_res)]
    start = int(rng.integers(0, 44)) if seed != 4 else 3  # seed 4: adjustment from the day before
    window = EventWindow(day=days[-1], start_slot=start, end_slot=start + int(rng.integers(1, 5)))
    res = compute_baseline(x, days, window, dr_days=dr, config=cfg, strict=False)
    kinds = {day: day_kind(day, holidays) for day in days}
    for r in range(n_res):
        ref = reference_baseline(x[r].tolist(), days, window, dr[r], cfg, kinds.__getitem__)
        if isinstance(ref, str):
            assert not res.ok[r], (r, ref)
            assert np.isnan(res.baseline_kwh[r]).all()
            continue
        sel, baseline, delta = ref
        assert res.ok[r], (r, res.reason(r))
        assert res.selected_days(r) == sel
        assert res.adjustment_kwh[r] == pytest.approx(delta, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(res.baseline_kwh[r], baseline, rtol=1e-12, atol=1e-12)
    assert res.ok.sum() >= n_res // 2  # the data leave most resources a baseline


def test_many_resources_run_fast() -> None:
    rng = np.random.default_rng(7)
    days = [d(1, 5) + timedelta(days=i) for i in range(31)]
    x = rng.gamma(2.0, 0.2, size=(5000, 31, SLOTS_PER_DAY))
    w = EventWindow(day=days[-1], start_slot=34, end_slot=40)
    t0 = time.perf_counter()
    res = compute_baseline(x, days, w, dr_days={days[10], days[20]})
    elapsed = time.perf_counter() - t0
    assert res.ok.all() and res.baseline_kwh.shape == (5000, 48)
    assert elapsed < 5.0, f"{elapsed:.2f} s for 5000 resources"
