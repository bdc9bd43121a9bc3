"""The rolling horizon's pure core (drready.planning.rolling): the window rules as a table, held
requests carried across a re-plan against hand-computed amounts, a roll that keeps stored heat
and energy continuous on a hand-computed tank, and a request accepted yesterday still honoured
after the roll into today (F1–F4; issue 11 item 3)."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from drready.domain import DEFAULT_TZ, SLOT, Direction, SlotGrid
from drready.domain.time import zone
from drready.domain.tolerances import ENERGY_TOL_KWH, REL_TOL
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.planning import rolling
from drready.planning.engine import FleetPlanner
from drready.planning.problem import Fleet, PlanningProblem, build_problem, draw_forecast
from drready.planning.rolling import (
    HeldRequest,
    carry,
    initial_state,
    lead_reason,
    planner_for,
    replan,
    roll,
    rolling_grid,
    slot_floor,
    window_reason,
)

TZ = zone(DEFAULT_TZ)
Use = tuple[npt.NDArray[np.floating], npt.NDArray[np.bool_]]


def jst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=TZ)


def test_the_docstring_examples() -> None:
    assert doctest.testmod(rolling).failed == 0


# ---------------------------------------------------------------------------------- the window
TOMORROW = (jst(13, 10), jst(13, 14))
WINDOW_CASES = [
    # now, start, end, expected reason (a fragment) or None
    (jst(12, 4, 45), *TOMORROW, None),  # the case the issue tried: 29 h 15 min ahead
    (jst(12, 12), *TOMORROW, None),
    (jst(12, 22, 30), *TOMORROW, None),
    (jst(12, 12), jst(14, 0), jst(14, 2), None),  # exactly now + 36 h
    (jst(12, 12), jst(14, 0, 30), jst(14, 2), "more than 36 h ahead"),
    (jst(12, 4, 45), jst(14, 10), jst(14, 14), "starting by 2026-05-13T16:45:00+09:00"),
    (jst(12, 12), jst(12, 11, 30), jst(12, 13), "has passed"),
    (jst(12, 12, 10), jst(12, 12), jst(12, 13), "has passed"),  # the slot in progress
    (jst(12, 12, 10), jst(12, 12, 30), jst(12, 13), None),  # the next slot
    # starts 35.5 h ahead, ends 30 min after the horizon (22:30 + 48 h)
    (jst(12, 22, 30), jst(14, 10), jst(14, 23), "outside the planning horizon"),
]


@pytest.mark.parametrize(("now", "start", "end", "expected"), WINDOW_CASES)
def test_window_reason(now: datetime, start: datetime, end: datetime, expected: str | None) -> None:
    reason = window_reason(start, end, now)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason


def test_the_horizon_is_48_h_from_the_slot_in_progress() -> None:
    grid = rolling_grid(jst(12, 4, 45))
    assert (grid.start, grid.end, grid.n_slots) == (jst(12, 4, 30), jst(14, 4, 30), 96)
    assert slot_floor(jst(12, 4, 30)) == jst(12, 4, 30)
    assert slot_floor(jst(12, 4, 59) + timedelta(seconds=59)) == jst(12, 4, 30)
    reason = lead_reason(jst(14, 10), jst(12, 4, 45))
    assert reason is not None and "rolling horizon" in reason and "36 h" in reason
    assert lead_reason(jst(13, 16, 30), jst(12, 4, 45)) is None


# ---------------------------------------------------------------------------------- carry
T0 = datetime(2026, 5, 12, 10, tzinfo=UTC)
GRID4 = SlotGrid(start=T0, n_slots=4, tz="UTC")
BASE = np.full((4, 2), 0.3)  # the new baseline: 0.3 kWh per slot, both units
PROMISED = np.array([[1.2, 0.0], [0.8, 0.1], [0.0, 0.0], [0.0, 0.0]])  # the previous plan
CARRY_CASES = [
    # direction, start, end, owed per unit → expected (start, end) and amounts
    (Direction.UP, T0 + SLOT, T0 + 3 * SLOT, [1.0, 0.5], (1, 3), [1.0, 0.5]),  # not begun
    (Direction.UP, T0, T0 + 2 * SLOT, [1.0, 0.5], (0, 2), [1.0, 0.5]),  # begins now
    # in progress: promised 2.0 / 0.1 in the rest, baseline 0.6 → 1.4 / nothing more
    (Direction.UP, T0 - SLOT, T0 + 2 * SLOT, [1.0, 0.5], (0, 2), [1.4, 0.0]),
    # unit 1 owes nothing in this window: it stays at 0 whatever its plan does there
    (Direction.UP, T0 - SLOT, T0 + 2 * SLOT, [1.0, 0.0], (0, 2), [1.4, 0.0]),
    # down-DR in progress: baseline 0.6 minus the promise 0.1 → 0.5 still to shed by unit 1
    (Direction.DOWN, T0 - SLOT, T0 + 2 * SLOT, [0.2, 0.2], (0, 2), [0.0, 0.5]),
]


@pytest.mark.parametrize(("direction", "start", "end", "owed", "slots", "amounts"), CARRY_CASES)
def test_carry(
    direction: Direction,
    start: datetime,
    end: datetime,
    owed: list[float],
    slots: tuple[int, int],
    amounts: list[float],
) -> None:
    held = HeldRequest(direction, start, end, np.array(owed))
    carried = carry([held], GRID4, BASE, PROMISED)
    (req,) = carried.requests
    assert carried.held_index == (0,)
    assert (req.direction, req.start, req.end) == (direction, *slots)
    np.testing.assert_allclose(req.amount_kwh, amounts, atol=1e-12)


def test_carry_drops_ended_requests_and_keeps_the_order() -> None:
    ended = HeldRequest(Direction.UP, T0 - 2 * SLOT, T0, np.array([1.0, 1.0]))
    later = HeldRequest(Direction.DOWN, T0 + 2 * SLOT, T0 + 4 * SLOT, np.array([0.1, 0.0]))
    first = HeldRequest(Direction.UP, T0 + SLOT, T0 + 2 * SLOT, np.array([0.2, 0.3]))
    carried = carry([ended, later, first], GRID4, BASE, PROMISED)
    assert carried.held_index == (1, 2)
    assert [(r.start, r.end) for r in carried.requests] == [(2, 4), (1, 2)]


# ---------------------------------------------------------------------------------- a hand tank
RETENTION = 0.9
COP = 2.0
CAP_KWH = 2.0


def hand_problem_at(start: datetime, q0: npt.NDArray[np.float64]) -> PlanningProblem:
    """1 unit, 4 slots from ``start``: 10 % standby loss per slot, COP 2, at most 2 kWh of heat
    per slot, no expected use, the tank must hold 4 kWh at the end; flat price."""
    one = np.ones((4, 1))
    lower = np.zeros((5, 1))
    lower[-1] = 4.0
    return PlanningProblem(
        grid=SlotGrid(start=start, n_slots=4, tz="UTC"),
        q0_kwh=np.minimum(q0, 10.0),
        draw_kwh=0 * one,
        lower_kwh=lower,
        upper_kwh=np.full((5, 1), 10.0),
        retention=RETENTION * one,
        cop=COP * one,
        heat_cap_kwh=CAP_KWH * one,
        heat_min_kwh=0 * one,
        price_yen_per_kwh=np.full(4, 10.0),
        q_max_kwh=np.array([10.0]),
        mains_temp_c=np.array([15.0]),
        air_temp_c=np.full(4, 15.0),
        unavoidable_shortfall_kwh=np.zeros(1),
        confidence=0.95,
    )


def no_use(start: datetime, n: int) -> Use:
    """No hot water used (one simulation step per slot)."""
    return np.zeros((1, n)), np.zeros((1, n), dtype=bool)


def test_a_roll_keeps_stored_heat_and_energy_continuous() -> None:
    """By hand: each step is Q' = 0.9·Q + x (no use, no reserve); a slot's electricity x / 2."""
    first = initial_state(hand_problem_at(T0, np.array([5.0])), *no_use(T0, 1), reserve_l=0.0)
    s0 = first.state
    # the baseline heats as late as it can (a flat price: ties go to the later slot): 5 kWh
    # decays to 3.28 by the end, so the last slot tops up 0.72 and slot 0 does nothing
    np.testing.assert_allclose(first.plan.heat_kwh[0], [0, 0, 0, 4.0 - 5.0 * 0.9**4], atol=1e-12)
    assert s0.slot.electric_kwh[0] == 0.0
    assert s0.slot.end_heat_kwh[0] == pytest.approx(4.5, rel=1e-15)

    one = roll(s0, T0 + SLOT, problem_at=hand_problem_at, use_at=no_use, held=(), reserve_l=0.0)
    s1 = one.state
    assert s1.at == T0 + SLOT
    assert s1.stored_heat_kwh[0] == s0.slot.end_heat_kwh[0]  # the executed tank, exactly
    assert s1.energy_kwh[0] == s0.energy_kwh[0] + s0.slot.electric_kwh[0]
    assert one.executed == (T0,)

    # three slots later: slots 1 and 2 executed under the plan in force, then a re-plan
    three = roll(
        s1, T0 + 4 * SLOT, problem_at=hand_problem_at, use_at=no_use, held=(), reserve_l=0.0
    )
    s4 = three.state
    x = np.asarray(s1.plan_heat_kwh)[:3, 0]  # heat of slots 1, 2, 3 as planned at T0 + SLOT
    q = 4.5
    for heat in x:  # Q' = 0.9·Q + x, step by step
        q = RETENTION * q + heat
    assert s4.stored_heat_kwh[0] == pytest.approx(q, rel=1e-12)
    assert s4.energy_kwh[0] == pytest.approx(x.sum() / COP, rel=1e-12)
    assert three.executed == (T0 + SLOT, T0 + 2 * SLOT, T0 + 3 * SLOT)
    # energy balance: stored change = heat added − standby loss (no use, nothing discarded)
    loss = 0.0
    q = 4.5
    for heat in x:
        loss += (1 - RETENTION) * q
        q = RETENTION * q + heat
    assert s4.stored_heat_kwh[0] - 4.5 == pytest.approx(x.sum() - loss, abs=1e-12)
    assert s4.discarded_heat_kwh[0] == 0.0


def test_a_pause_longer_than_the_plan_plans_again_where_it_ends() -> None:
    first = initial_state(hand_problem_at(T0, np.array([5.0])), *no_use(T0, 1), reserve_l=0.0)
    later = roll(
        first.state,
        T0 + 11 * SLOT,  # past the 4-slot plan twice
        problem_at=hand_problem_at,
        use_at=no_use,
        held=(),
        reserve_l=0.0,
    )
    assert later.state.at == T0 + 11 * SLOT
    assert len(later.executed) == 11
    # every plan keeps 4 kWh at its horizon end: the tank never runs down to nothing
    assert later.state.stored_heat_kwh[0] > 2.0
    assert later.state.energy_kwh[0] > 0.0


def test_a_replan_at_the_slot_start_moves_its_heat_and_after_it_keeps_it() -> None:
    first = initial_state(hand_problem_at(T0, np.array([5.0])), *no_use(T0, 1), reserve_l=0.0)
    state, problem = first.state, first.problem
    # up-DR of 1 kWh in slot 0: only possible while slot 0 has not begun
    up = HeldRequest(Direction.UP, T0, T0 + SLOT, np.array([1.0]))
    free = replan(state, problem, held=[up], pinned=False, reserve_l=0.0)
    assert free.plan.accepted_kwh[0, 0] == pytest.approx(1.0)
    assert free.state.slot.heat_kwh[0] == pytest.approx(2.0)  # 1 kWh electricity at COP 2
    assert free.state.slot.end_heat_kwh[0] == pytest.approx(0.9 * 5.0 + 2.0)
    pinned = replan(state, problem, held=[up], pinned=True, reserve_l=0.0)
    assert pinned.plan.accepted_kwh[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert pinned.state.slot == state.slot  # decided at its start: unchanged
    assert planner_for(problem, state, pinned=True).potential(0, 1).up_kwh[0] == 0.0


# ---------------------------------------------------------------------------------- households
def fleet_model(n: int, seed: int) -> tuple[Fleet, Callable[..., PlanningProblem]]:
    fleet = Fleet.random(np.random.default_rng(seed), n)

    def problem_at(start: datetime, q0: npt.NDArray[np.float64]) -> PlanningProblem:
        grid = rolling_grid(start)
        return build_problem(fleet, grid, q0, draw_forecast(fleet, grid))

    return fleet, problem_at


def sampled_use(fleet: Fleet, seed: int) -> Callable[[datetime, int], Use]:
    """Realised use per local day (5-minute steps), the same whenever a day is asked."""
    cache: dict[object, Use] = {}

    def use(start: datetime, n: int) -> Use:
        parts_l, parts_m = [], []
        for j in range(n):
            local = (start + j * SLOT).astimezone(TZ)
            day = local.date()
            if day not in cache:
                rng = np.random.default_rng(seed + day.toordinal())
                s = sample_step_use_l(rng, fleet.persons, [day_type_for(day)], 5, bathtub=True)
                cache[day] = (s.use_l, s.manual_reheat)
            i = (local.hour * 60 + local.minute) // 5
            parts_l.append(cache[day][0][:, i : i + 6])
            parts_m.append(cache[day][1][:, i : i + 6])
        return np.concatenate(parts_l, axis=1), np.concatenate(parts_m, axis=1)

    return use


def window_extra_kwh(
    problem: PlanningProblem, plan_e: npt.NDArray[np.float64], s: int, e: int
) -> npt.NDArray[np.float64]:
    """A plan's electricity in slots ``[s, e)`` minus the baseline's, per unit [kWh]."""
    base = FleetPlanner(problem).baseline().electric_kwh
    out: npt.NDArray[np.float64] = plan_e[:, s:e].sum(axis=1) - base[:, s:e].sum(axis=1)
    return out


def test_a_request_accepted_yesterday_is_honoured_after_the_roll() -> None:
    fleet, problem_at = fleet_model(5, seed=4)
    use_at = sampled_use(fleet, seed=4)
    yesterday = jst(12, 20)
    q0 = np.full(fleet.size, 6.0)
    first = initial_state(problem_at(yesterday, q0), *use_at(yesterday, 1), fleet.reserve_l)
    w0, w1 = jst(13, 10), jst(13, 12)
    assert window_reason(w0, w1, yesterday) is None
    s, e = first.problem.grid.window_indices(w0, w1)
    up = planner_for(first.problem, first.state, pinned=False).potential(s, e).up_kwh
    assert (up > 0.5).all()
    held = [HeldRequest(Direction.UP, w0, w1, 0.5 * up)]
    accepted = replan(first.state, first.problem, held=held, pinned=False, reserve_l=40.0)
    np.testing.assert_allclose(accepted.plan.accepted_kwh[0], 0.5 * up, rtol=REL_TOL)

    # overnight: 26 slots executed against the households' use, the plan re-made at 09:00
    rolled = roll(
        accepted.state, jst(13, 9), problem_at=problem_at, use_at=use_at, held=held, reserve_l=40.0
    )
    assert rolled.state.at == jst(13, 9) and len(rolled.executed) == 26
    (carried,) = rolled.carried.requests
    np.testing.assert_allclose(carried.amount_kwh, 0.5 * up)  # not begun: the accepted amount
    np.testing.assert_allclose(rolled.plan.accepted_kwh[0], 0.5 * up, rtol=REL_TOL)
    s, e = rolled.problem.grid.window_indices(w0, w1)
    extra = window_extra_kwh(rolled.problem, rolled.plan.electric_kwh, s, e)
    np.testing.assert_allclose(extra, 0.5 * up, rtol=REL_TOL, atol=ENERGY_TOL_KWH)
    # stored heat comes from the executed tank, not from a fresh one
    assert not np.allclose(rolled.state.stored_heat_kwh, q0)
    assert (rolled.state.energy_kwh > 0).all()

    # into the window: the rest keeps the energy the 09:00 plan promised for 11:00–12:00
    promised = rolled.plan.electric_kwh[:, s + 2 : e].sum(axis=1)  # 11:00 is 2 slots in
    assert (promised > 0.5).all()  # the plan heats in the rest of the window
    inside = roll(
        rolled.state, jst(13, 11), problem_at=problem_at, use_at=use_at, held=held, reserve_l=40.0
    )
    s2, e2 = inside.problem.grid.window_indices(jst(13, 11), w1)
    got = inside.plan.electric_kwh[:, s2:e2].sum(axis=1)
    np.testing.assert_allclose(got, promised, rtol=REL_TOL, atol=ENERGY_TOL_KWH)
    # and once the window is over, nothing is carried any more
    after = roll(
        inside.state, jst(13, 12), problem_at=problem_at, use_at=use_at, held=held, reserve_l=40.0
    )
    assert after.carried.requests == ()
    assert (after.state.shortage_steps == 0).all()


@pytest.mark.parametrize("hour", [(4, 45), (12, 0), (22, 30)])
def test_a_potential_for_tomorrow_daytime_at_any_hour(hour: tuple[int, int]) -> None:
    fleet, problem_at = fleet_model(3, seed=6)
    use_at = sampled_use(fleet, seed=6)
    now = jst(12, *hour)
    start = slot_floor(now)
    first = initial_state(problem_at(start, np.full(3, 5.0)), *use_at(start, 1), fleet.reserve_l)
    w0, w1 = TOMORROW
    assert window_reason(w0, w1, now) is None
    s, e = first.problem.grid.window_indices(w0, w1)
    pot = planner_for(first.problem, first.state, pinned=now > start).potential(s, e)
    assert (pot.up_kwh > 0.5).all() and pot.baseline_kw.shape == (3, 8)
    assert first.problem.grid.end >= now + rolling.LEAD_TIME + timedelta(hours=4)
