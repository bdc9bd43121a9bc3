"""Learned forecasts kept between rolls (``drready.planning.forecast_cache``; issue 13 item 2):
the two-byte coding against hand-computed steps, a keeping forecaster against the sort-based
reference (tests/_learned_forecast_reference.py) within one step and never inside the exact
bounds, reuse only while the units' own history and the grid are unchanged, and the live
fleet's answers after a roll: made without deriving the forecast again, and the same as
answers derived afresh from the history.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest

import drready.planning.forecast as forecast_mod
from drready.cloud.live import LiveFleet
from drready.domain import SlotGrid
from drready.domain.clock import SimClock
from drready.planning.forecast import LearningForecaster, UsageHistory
from drready.planning.forecast_cache import CODE_STEPS, CodedArray
from drready.planning.problem import DrawForecast, Fleet, draw_forecast
from drready.planning.rolling import rolling_grid
from tests._learned_forecast_reference import reference_learned_forecast

FIRST = date(2026, 10, 1)
ZONE = SlotGrid.day_ahead(FIRST).zoneinfo
SCORE_TOL_L = 1e-4
"""The vectorised forecast's own tolerance against the reference (its float32 squares)."""
FLOAT32_REL = 2e-7
"""float32's relative rounding of a unit's low and step (2⁻²³ ≈ 1.2e-7, with margin)."""


def test_codes_hand_computed() -> None:
    """Unit 0 spans 0–65.534 L: one step is exactly 1 mL (65.534 / 65 534), so 12.3456 L is
    code 12 345.6 → 12 346 to the nearest (12.346 L) and also up; unit 1 is constant."""
    x = np.array([[0.0, 7.25], [65.534, 7.25], [12.3456, 7.25]])
    c = CodedArray.encode(x)
    assert c.codes is not None and c.step is not None
    assert c.codes[:, 0].tolist() == [0, CODE_STEPS, 12346]
    assert c.codes[:, 1].tolist() == [0, 0, 0]
    assert float(c.step[0]) == pytest.approx(0.001, rel=FLOAT32_REL)
    d = c.decode()
    assert d[0, 0] == 0.0  # zero stays exactly zero
    assert d[2, 0] == pytest.approx(12.346, rel=FLOAT32_REL)
    assert (d[:, 1] == 7.25).all()  # 7.25 is a float32
    assert c.nbytes == 3 * 2 * 2 + 2 * 4 + 2 * 4
    up = CodedArray.encode(np.array([[0.0], [65.534], [12.3451]]), outward=True)
    assert up.codes is not None and int(up.codes[2, 0]) == 12346  # 12 345.1 rounded up


def test_coding_error_is_within_one_step_and_outward_never_below() -> None:
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.gamma(0.5, 20.0, size=(97, 300)), axis=0)  # cumulative bounds [L]
    x[0] = 0.0
    step = (x.max(axis=0) - x.min(axis=0)) / CODE_STEPS
    near = CodedArray.encode(x).decode()
    assert (np.abs(near - x) <= step * (0.5 + 1e-3) + 1e-9).all()
    up = CodedArray.encode(x, outward=True).decode()
    assert (up >= x - 1e-9 * x.max()).all()
    assert (up - x <= step * (1 + 1e-3) + 1e-9).all()
    assert (near[0] == 0.0).all() and (up[0] == 0.0).all()


def test_a_non_finite_array_is_kept_exactly() -> None:
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    c = CodedArray.encode(x)
    assert c.codes is None
    np.testing.assert_array_equal(c.decode(), x)


def _history(n: int, rng: np.random.Generator) -> UsageHistory:
    """28 days of random use, today observed to 13:00, three cold units."""
    use = rng.gamma(0.6, 12.0, size=(n, 28, 48)) * (rng.random((n, 28, 48)) < 0.4)
    use[2:5, :18, :] = np.nan  # cold: 10 days observed
    use[:, 27, 26:] = np.nan
    h = UsageHistory(n)
    h.load(FIRST, use)
    return h


def _learner(n: int, rng: np.random.Generator) -> LearningForecaster:
    learner = LearningForecaster(n, confidence=0.95, keep_forecasts=True)
    learner.history = _history(n, rng)
    return learner


def _within_a_step(kept: DrawForecast, ref: DrawForecast) -> None:
    """``kept`` is ``ref`` to within one coding step per unit (plus the vectorised
    forecast's own tolerance), its bounds never below ``ref``'s."""
    for name, outward in (("mean_l", False), ("cum_sigma_l", False), ("over_l", True)):
        k, r = getattr(kept, name), getattr(ref, name)
        step = (r.max(axis=0) - r.min(axis=0)) / CODE_STEPS
        assert (np.abs(k - r) <= step * (1 + 1e-3) + SCORE_TOL_L).all(), name
        if outward:
            assert (k >= r - SCORE_TOL_L).all(), name
    assert kept.under_l is not None and ref.under_l is not None
    assert (kept.under_l >= ref.under_l - SCORE_TOL_L).all()
    np.testing.assert_array_equal(kept.after_end_l, ref.after_end_l)


def test_a_keeping_forecaster_gives_the_reference_to_a_step() -> None:
    rng = np.random.default_rng(11)
    n = 40
    fleet = Fleet.random(rng, n)
    learner = _learner(n, rng)
    grid = rolling_grid(datetime(2026, 10, 28, 13, 0, tzinfo=ZONE))
    kept = learner.forecast(fleet, grid, slice(None))
    ref = reference_learned_forecast(
        learner.history, slice(None), grid, 0.95, draw_forecast(fleet, grid)
    )
    _within_a_step(kept, ref)
    # the same units by index array: the same values (the coding is per unit)
    again = learner.forecast(fleet.subset(np.arange(5, 9)), grid, np.arange(5, 9))
    np.testing.assert_array_equal(again.over_l, kept.over_l[:, 5:9])
    np.testing.assert_array_equal(again.mean_l, kept.mean_l[:, 5:9])
    # asked by index array, not kept (answers for a few units do not grow the store); a slice
    # that overlaps a kept range replaces it: one forecast per unit at most
    assert len(learner.kept) == 1 and learner.kept.nbytes == 40 * 814
    learner.forecast(fleet.subset(slice(0, 10)), grid, slice(0, 10))
    learner.forecast(fleet.subset(slice(10, 20)), grid, slice(10, 20))
    assert len(learner.kept) == 2 and learner.kept.nbytes == 20 * 814


def test_kept_only_while_the_units_history_and_the_grid_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(2)
    n = 20
    fleet = Fleet.random(rng, n)
    learner = _learner(n, rng)
    derived: list[tuple[int, int]] = []
    real = forecast_mod.learned_forecast

    def counting(history, units, grid, confidence, prior):  # type: ignore[no-untyped-def]
        derived.append((units.start, units.stop))
        return real(history, units, grid, confidence, prior)

    monkeypatch.setattr(forecast_mod, "learned_forecast", counting)
    a, b = slice(0, 10), slice(10, 20)
    at = datetime(2026, 10, 28, 13, 0, tzinfo=ZONE)
    grid = rolling_grid(at)
    first = learner.forecast(fleet.subset(a), grid, a)
    learner.forecast(fleet.subset(b), grid, b)
    again = learner.forecast(fleet.subset(a), grid, a)
    assert derived == [(0, 10), (10, 20)]  # the second ask of a: kept
    np.testing.assert_array_equal(again.over_l, first.over_l)
    # another grid: derived again
    learner.forecast(fleet.subset(a), rolling_grid(datetime(2026, 10, 28, 13, 30, tzinfo=ZONE)), a)
    assert derived[-1] == (0, 10) and len(derived) == 3
    # b's units measured a slot: b is derived again, a is not
    learner.forecast(fleet.subset(a), grid, a)
    learner.observe(at, b, np.full(10, 80.0))
    learner.forecast(fleet.subset(a), grid, a)
    assert len(derived) == 4  # a at the first grid again (the store keeps one grid a chunk)
    learner.forecast(fleet.subset(b), grid, b)
    learner.forecast(fleet.subset(a), grid, a)
    assert derived[4:] == [(10, 20)]
    # a new day recycles a row of the ring for every unit: all derived again
    learner.observe(datetime(2026, 10, 29, 0, 0, tzinfo=ZONE), b, np.zeros(10))
    learner.forecast(fleet.subset(a), grid, a)
    assert derived[-1] == (0, 10) and len(derived) == 6
    # and what a derives now is what the reference derives from the changed history
    ref = reference_learned_forecast(
        learner.history, a, grid, 0.95, draw_forecast(fleet.subset(a), grid)
    )
    _within_a_step(learner.forecast(fleet.subset(a), grid, a), ref)


def test_compact_forecast_is_about_800_bytes_a_unit() -> None:
    rng = np.random.default_rng(1)
    n = 50
    fleet = Fleet.random(rng, n)
    learner = _learner(n, rng)
    grid = rolling_grid(datetime(2026, 10, 28, 13, 0, tzinfo=ZONE))
    learner.forecast(fleet, grid, slice(None))
    per_unit = learner.kept.nbytes / n
    # 96 + 3 × 97 two-byte codes, 4 × 2 float32 scales, one float64
    assert per_unit == 2 * (96 + 3 * 97) + 4 * 2 * 4 + 8


def _fleet_at(hour: int, minute: int, n: int) -> tuple[LiveFleet, SimClock]:
    clock = SimClock(datetime(2026, 10, 20, hour, minute, tzinfo=ZONE), speed=0.0)
    return LiveFleet.random(n, clock, seed=3, learning=True, chunk_units=25), clock


def test_the_live_fleet_answers_after_a_roll_on_the_forecast_the_roll_derived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a roll (and after the start-up) a whole-fleet F1 derives no learned forecast; its
    answer is the one a fleet with nothing kept derives from the same history."""
    fleet, clock = _fleet_at(4, 40, 60)  # 3 chunks of 25, 25, 10 units
    learner = fleet.forecaster
    assert isinstance(learner, LearningForecaster) and len(learner.kept) == 3
    calls: list[object] = []
    real = forecast_mod.learned_forecast

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(forecast_mod, "learned_forecast", counting)
    start = datetime(2026, 10, 21, 10, 0, tzinfo=ZONE)
    end = datetime(2026, 10, 21, 14, 0, tzinfo=ZONE)
    kept = fleet.group_envelope(start, end)
    assert calls == []  # the start-up's last plan derived it, with every slot observed
    clock.advance(datetime(2026, 10, 20, 5, 0, tzinfo=ZONE) - clock.now())
    fleet.advance()
    assert len(calls) == 3
    kept = fleet.group_envelope(start, end)
    per_unit = fleet.envelopes(start, end)
    assert len(calls) == 3
    learner.kept.clear()
    fresh = fleet.group_envelope(start, end)
    assert len(calls) == 6
    assert fresh.model_dump() == kept.model_dump()
    learner.kept.clear()
    assert [e.model_dump() for e in fleet.envelopes(start, end)] == [
        e.model_dump() for e in per_unit
    ]
