"""Dispatch of standard-only ECHONET Lite units (issue 15 item 1, U2, D5): up-DR only, only for a
window holding a whole 4-hour shift from one of the unit's shift hours, its whole declared amount
or nothing; hand-computed cases."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from drready.domain import Direction
from drready.domain.time import DEFAULT_TZ, zone
from drready.servicer.core.dispatch import (
    EnergyTarget,
    PowerTarget,
    PriceTarget,
    ResourcePotentials,
    contains_energy_shift,
    dispatch,
    redispatch,
)

TZ = zone(DEFAULT_TZ)
UP, DOWN = Direction.UP, Direction.DOWN
SHIFT = [10, 13, 15, 17]


def at(hour: int, day: int = 8) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=TZ)


def pots(
    declared_kwh: list[float], start: int = 10, end: int = 14, down_kwh: float = 0.0
) -> ResourcePotentials:
    """Resources r0, r1, … with baseline 0, 10 kW of room per slot and their declared amounts
    (up, and ``down_kwh`` each down with a 2 kW baseline) over ``start``–``end`` h."""
    r, s = len(declared_kwh), 2 * (end - start)
    base = np.full((r, s), 2.0 if down_kwh else 0.0)
    cum_base = np.cumsum(base, axis=1) * 0.5
    return ResourcePotentials(
        names=tuple(f"r{i}" for i in range(r)),
        baseline_kw=base,
        min_kw=np.zeros((r, s)),
        max_kw=base + 10.0,
        cum_min_kwh=np.zeros((r, s)),
        cum_max_kwh=cum_base + 1e3,
        up_kwh=np.asarray(declared_kwh, dtype=float),
        down_kwh=np.full(r, down_kwh),
        window_start=at(start),
        window_end=at(end),
    )


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        (at(10), at(14), [10], True),  # exactly [10:00, 14:00)
        (at(11), at(14), [10], False),  # starts after 10:00
        (at(10), at(13), [10], False),  # ends before 14:00
        (at(9), at(18), [13], True),  # 13–17 inside 9–18
        (at(9), at(18), [15], False),  # 15–19 ends after 18
        (at(10), at(14), [13, 15, 17], False),
        (at(10), at(14), SHIFT, True),
        (at(20, 8), at(14, 9), [10], True),  # the next day's 10:00
        (at(10), at(14), [], False),
        (at(10), at(14), [24, -1], False),  # not hours of a day
    ],
)
def test_contains_energy_shift(
    start: datetime, end: datetime, hours: list[int], expected: bool
) -> None:
    assert contains_energy_shift(start, end, hours) is expected


def test_contains_energy_shift_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        contains_energy_shift(datetime(2026, 12, 8, 10), datetime(2026, 12, 8, 14), [10])


def test_window_10_to_14_with_shift_10_gets_its_whole_amount() -> None:
    plan = dispatch(
        pots([3.0]), EnergyTarget(direction=UP, energy_kwh=5.0), energy_shift_hours={"r0": [10]}
    )
    assert plan.requested_kwh.tolist() == pytest.approx([3.0])
    assert plan.shortfall_kwh == pytest.approx(2.0)


def test_window_11_to_14_is_not_a_shift_window() -> None:
    plan = dispatch(
        pots([3.0], start=11), EnergyTarget(direction=UP, energy_kwh=5.0),
        energy_shift_hours={"r0": [10]},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == [0.0]
    assert plan.shortfall_kwh == pytest.approx(5.0)


def test_down_dr_never() -> None:
    plan = dispatch(
        pots([3.0, 3.0], down_kwh=2.0), EnergyTarget(direction=DOWN, energy_kwh=3.0),
        energy_shift_hours={"r0": SHIFT},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == pytest.approx([0.0, 2.0])  # r1 (DR-ready) only


def test_never_a_part_even_when_the_target_is_smaller() -> None:
    plan = dispatch(
        pots([3.0]), EnergyTarget(direction=UP, energy_kwh=2.0), energy_shift_hours={"r0": [10]}
    )
    assert plan.requested_kwh.tolist() == [0.0]  # 3 kWh would exceed the 2 kWh target


def test_two_standard_one_dr_ready_whole_amounts_only() -> None:
    # r0, r1 standard (3 kWh each), r2 DR-ready (2 kWh); target 4 kWh: one standard whole
    # (the first by name among equal amounts) + 1 kWh from the DR-ready unit
    plan = dispatch(
        pots([3.0, 3.0, 2.0]), EnergyTarget(direction=UP, energy_kwh=4.0),
        energy_shift_hours={"r0": SHIFT, "r1": SHIFT},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == pytest.approx([3.0, 0.0, 1.0])
    assert plan.shortfall_kwh == pytest.approx(0.0)
    # target 7: both standard would make 6 ≤ 7, DR-ready 1 more
    plan = dispatch(
        pots([3.0, 3.0, 2.0]), EnergyTarget(direction=UP, energy_kwh=7.0),
        energy_shift_hours={"r0": SHIFT, "r1": SHIFT},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == pytest.approx([3.0, 3.0, 1.0])


def test_largest_first_within_the_target() -> None:
    # 4, 2.5, 1.5 kWh standard, target 6: 4 taken, 2.5 would exceed (6.5), 1.5 fits → 5.5
    plan = dispatch(
        pots([4.0, 2.5, 1.5]), EnergyTarget(direction=UP, energy_kwh=6.0),
        energy_shift_hours={"r0": [10], "r1": [10], "r2": [10]},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == pytest.approx([4.0, 0.0, 1.5])
    assert plan.shortfall_kwh == pytest.approx(0.5)


def test_power_target_fixed_profile_within_every_slot() -> None:
    # greedy fill of 3 kWh at 10 kW room: 6 kW in the first slot; a 5 kW target cannot take it
    plan = dispatch(
        pots([3.0, 2.0]), PowerTarget(direction=UP, power_kw=5.0), energy_shift_hours={"r0": [10]}
    )
    assert plan.requested_kwh[0] == 0.0
    plan = dispatch(
        pots([3.0, 2.0]), PowerTarget(direction=UP, power_kw=6.0), energy_shift_hours={"r0": [10]}
    )
    assert plan.requested_kwh[0] == pytest.approx(3.0)
    assert plan.deviation_kw[0].tolist() == pytest.approx([6.0] + [0.0] * 7)


def test_price_target_only_when_worth_it() -> None:
    cheap = PriceTarget(
        direction=UP, price_yen_per_kwh=(-5.0,) * 8, compensation_yen_per_kwh=1.0
    )  # every up kWh is worth 4 yen
    plan = dispatch(pots([3.0]), cheap, energy_shift_hours={"r0": [10]})
    assert plan.requested_kwh.tolist() == pytest.approx([3.0])
    capped = cheap.model_copy(update={"max_energy_kwh": 2.0})
    assert dispatch(pots([3.0]), capped, energy_shift_hours={"r0": [10]}).requested_kwh[0] == 0.0


def test_redispatch_never_asks_a_committed_standard_unit_again() -> None:
    plan = redispatch(
        pots([3.0, 3.0]), EnergyTarget(direction=UP, energy_kwh=3.0),
        committed_kwh=[3.0, 0.0], energy_shift_hours={"r0": [10], "r1": [10]},
    )  # fmt: skip
    assert plan.requested_kwh.tolist() == pytest.approx([0.0, 3.0])
    excluded = redispatch(
        pots([3.0, 3.0]), EnergyTarget(direction=UP, energy_kwh=3.0),
        excluded=["r1"], energy_shift_hours={"r0": [10], "r1": [10]},
    )  # fmt: skip
    assert excluded.requested_kwh.tolist() == pytest.approx([3.0, 0.0])


def test_unknown_name_and_missing_window_are_refused() -> None:
    with pytest.raises(ValueError, match="energy_shift_hours must name known resources"):
        dispatch(
            pots([3.0]), EnergyTarget(direction=UP, energy_kwh=1.0), energy_shift_hours={"x": [10]}
        )
    p = pots([3.0])
    bare = ResourcePotentials(
        names=p.names, baseline_kw=p.baseline_kw, min_kw=p.min_kw, max_kw=p.max_kw,
        cum_min_kwh=p.cum_min_kwh, cum_max_kwh=p.cum_max_kwh, up_kwh=p.up_kwh, down_kwh=p.down_kwh,
    )  # fmt: skip
    with pytest.raises(ValueError, match="window_start"):
        dispatch(bare, EnergyTarget(direction=UP, energy_kwh=1.0), energy_shift_hours={"r0": [10]})


def test_without_standard_units_nothing_changes() -> None:
    a = dispatch(pots([2.0, 4.0, 6.0]), EnergyTarget(direction=UP, energy_kwh=6.0))
    b = dispatch(
        pots([2.0, 4.0, 6.0]), EnergyTarget(direction=UP, energy_kwh=6.0), energy_shift_hours={}
    )
    assert a.requested_kwh.tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert b.requested_kwh.tolist() == pytest.approx([1.0, 2.0, 3.0])
