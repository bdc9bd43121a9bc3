"""The fleet-vectorised learned forecast (issue 13 item 2) against the sort-based one it
replaced (tests/_learned_forecast_reference.py, kept verbatim): same order statistics, same
means, bounds within :data:`SCORE_TOL_L` (the sum of squares is now accumulated from float32
squares), on histories with gaps, a day in progress, cold units, and at several planning
times and confidence levels.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest

from drready.domain import SlotGrid
from drready.planning.conformal import StreamedBounds, conformal_bounds, order_depth
from drready.planning.forecast import UsageHistory, learned_forecast
from drready.planning.problem import Fleet, draw_forecast
from drready.planning.rolling import rolling_grid
from tests._learned_forecast_reference import reference_learned_forecast

SCORE_TOL_L = 1e-4
"""Litres: float32 squares summed in float64 vs float64 squares (≈ 1e-6 L seen on 100 L)."""
FIRST = date(2026, 10, 1)


@pytest.mark.parametrize("level", [0.95, 0.9, 0.6])
def test_streamed_bounds_are_the_sorted_order_statistics(level: float) -> None:
    """Random scores with NaN holes: the streamed top/bottom ranks give exactly what one sort
    gives (conformal_bounds), for every count 0–30."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(31, 7, 30)).astype(np.float32)
    for i in range(31):  # row i has i scores, the rest missing, in random places
        for c in range(7):
            scores[i, c, rng.permutation(30)[i:]] = np.nan
    up, down, _, n = conformal_bounds(scores, level)
    sb = StreamedBounds((31, 7), level, 30)
    assert sb.depth == order_depth(level, 30)
    for d in range(30):
        sb.add(np.ascontiguousarray(scores[:, :, d]))
    s_up, s_down = sb.bounds(n)
    np.testing.assert_array_equal(s_up, up)
    np.testing.assert_array_equal(s_down, down)
    assert np.isnan(s_up[0]).all()


def test_order_depth_hand_computed() -> None:
    # 95 %: k = ⌈0.95 (n + 1)⌉ = n for n ≤ 38 (the largest), n − 1 at n = 39
    assert order_depth(0.95, 28) == 1
    assert order_depth(0.95, 39) == 2
    # 50 % over 10 scores: n = 10, k = ⌈5.5⌉ = 6, the 5th largest
    assert order_depth(0.5, 10) == 5


def _history(n: int, rng: np.random.Generator) -> UsageHistory:
    """28 days of random use with holes: a unit missing a whole day in the middle, one with a
    missing slot, three cold units (10 days), and the last day half observed."""
    use = rng.gamma(0.6, 12.0, size=(n, 28, 48)) * (rng.random((n, 28, 48)) < 0.4)
    use[0, 12, :] = np.nan  # a day away from the meter
    use[1, 20, 7] = np.nan  # one slot not observed
    use[2:5, :18, :] = np.nan  # cold: 10 days observed
    use[:, 27, 26:] = np.nan  # today, observed to 13:00
    h = UsageHistory(n)
    h.load(FIRST, use)
    return h


@pytest.mark.parametrize("level", [0.95, 0.9, 0.6])
@pytest.mark.parametrize(
    "grid",
    [
        rolling_grid(datetime(2026, 10, 28, 13, 0, tzinfo=SlotGrid.day_ahead(FIRST).zoneinfo)),
        rolling_grid(datetime(2026, 10, 28, 0, 30, tzinfo=SlotGrid.day_ahead(FIRST).zoneinfo)),
        SlotGrid.day_ahead(date(2026, 10, 28)),
    ],
    ids=["rolling-13:00", "rolling-00:30", "day-ahead"],
)
def test_learned_forecast_matches_the_sort_based_reference(level: float, grid: SlotGrid) -> None:
    rng = np.random.default_rng(11)
    n = 40
    fleet = Fleet.random(rng, n)
    hist = _history(n, rng)
    units = np.array([0, 1, 2, 7, 8, 30, 39])
    sub = fleet.subset(units)
    prior = draw_forecast(sub, grid)
    new = learned_forecast(hist, units, grid, level, prior)
    ref = reference_learned_forecast(hist, units, grid, level, prior)
    np.testing.assert_array_equal(new.mean_l, ref.mean_l)
    np.testing.assert_array_equal(new.after_end_l, ref.after_end_l)
    for name in ("cum_sigma_l", "over_l", "under_l"):
        np.testing.assert_allclose(getattr(new, name), getattr(ref, name), rtol=0, atol=SCORE_TOL_L)
    # the cold units (2, 7 is warm) keep the national schedule's margins
    over_p, _ = prior.margins_l(level)
    np.testing.assert_array_equal(new.over_l[:, 2], over_p[:, 2])
    assert not np.array_equal(new.over_l[:, 3], over_p[:, 3])


def test_a_whole_fleet_slice_matches_the_reference_per_block() -> None:
    """More units than one streamed block (2 048), all at once by slice."""
    rng = np.random.default_rng(5)
    n = 2100
    fleet = Fleet.random(rng, n)
    hist = _history(n, rng)
    grid = rolling_grid(datetime(2026, 10, 28, 21, 30, tzinfo=SlotGrid.day_ahead(FIRST).zoneinfo))
    prior = draw_forecast(fleet, grid)
    new = learned_forecast(hist, slice(None), grid, 0.95, prior)
    ref = reference_learned_forecast(hist, slice(None), grid, 0.95, prior)
    np.testing.assert_array_equal(new.mean_l, ref.mean_l)
    np.testing.assert_allclose(new.over_l, ref.over_l, rtol=0, atol=SCORE_TOL_L)
    np.testing.assert_allclose(new.under_l, ref.under_l, rtol=0, atol=SCORE_TOL_L)


def test_a_derivation_is_reused_only_while_the_history_is_unchanged() -> None:
    """Two slots of one roll share the chunk's class means; a slot observed after them is in
    the next forecast (as the reference, which derives everything each time, has it)."""
    rng = np.random.default_rng(8)
    n = 12
    fleet = Fleet.random(rng, n)
    hist = _history(n, rng)
    zone = SlotGrid.day_ahead(FIRST).zoneinfo
    for hour in (13, 13, 14):  # 13:00 twice (kept), then 14:00 after 13:00 was observed
        at = datetime(2026, 10, 28, hour, 0, tzinfo=zone)
        if hour == 14:
            version = hist.version
            hist.observe(datetime(2026, 10, 28, 13, 0, tzinfo=zone), slice(None), np.full(n, 300.0))
            hist.observe(datetime(2026, 10, 28, 13, 30, tzinfo=zone), slice(None), np.zeros(n))
            assert hist.version == version + 2
        grid = rolling_grid(at)
        prior = draw_forecast(fleet, grid)
        new = learned_forecast(hist, slice(None), grid, 0.95, prior)
        ref = reference_learned_forecast(hist, slice(None), grid, 0.95, prior)
        np.testing.assert_array_equal(new.mean_l, ref.mean_l)
        np.testing.assert_allclose(new.over_l, ref.over_l, rtol=0, atol=SCORE_TOL_L)
