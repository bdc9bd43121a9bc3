"""The one tank step (drready.physics.tank_step) and plan execution built on it (F3, E1).

Hand-computed cases: inputs → exact outputs. The numbers are binary fractions (0.75, 0.375,
2⁻¹¹ …) so that every expected value is exact and compared with ``==``; each row is checked as
a scalar unit and all rows together as one fleet (the function is vectorised over units).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from drready.domain import SlotGrid
from drready.domain.tolerances import ENERGY_TOL_KWH, ROUNDOFF, SHORTAGE_TOL_KWH
from drready.physics.tank_step import TankStep, step_retention, tank_step
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.execution import execute_plan
from drready.planning.problem import Fleet, build_problem, draw_forecast

TINY = 2.0**-11  # 0.49 Wh: unmet heat below SHORTAGE_TOL_KWH (1 Wh)
assert TINY < SHORTAGE_TOL_KWH

# (case, (q, plan, full, draw, retention, q_max, reserve, manual),
#  (heat, q_next, delivered, unmet, loss, auto, forced, clipped, shortage))
CASES = [
    (
        "plan followed, draw served, standby loss",
        (4.0, 0.5, 0.375, 1.0, 0.75, 20.0, 2.0, False),
        (0.5, 2.5, 1.0, 0.0, 1.0, False, False, False, False),
    ),
    (
        "automatic reheat below the reserve: full output whatever the plan",
        (1.0, 0.0, 0.375, 0.25, 1.0, 20.0, 2.0, False),
        (0.375, 1.125, 0.25, 0.0, 0.0, True, True, False, False),
    ),
    (
        "at the reserve is not below it: the plan's heat",
        (2.0, 0.125, 0.375, 0.0, 1.0, 20.0, 2.0, False),
        (0.125, 2.125, 0.0, 0.0, 0.0, False, False, False, False),
    ),
    (
        "manual reheat above the reserve: full output, not automatic",
        (8.0, 0.0, 0.375, 0.0, 1.0, 20.0, 2.0, True),
        (0.375, 8.375, 0.0, 0.0, 0.0, False, True, False, False),
    ),
    (
        "full tank refuses the heat that does not fit",
        (9.5, 1.0, 0.375, 0.0, 1.0, 10.0, 2.0, False),
        (0.5, 10.0, 0.0, 0.0, 0.0, False, False, True, False),
    ),
    (
        "full tank with a draw: only the excess over Q_max is refused",
        (9.5, 1.0, 0.375, 0.25, 1.0, 10.0, 2.0, False),
        (0.75, 10.0, 0.25, 0.0, 0.0, False, False, True, False),
    ),
    (
        "exactly full is not clipped",
        (9.0, 1.0, 0.375, 0.0, 1.0, 10.0, 2.0, False),
        (1.0, 10.0, 0.0, 0.0, 0.0, False, False, False, False),
    ),
    (
        "shortage: the draw beyond the stored heat is unmet",
        (0.5, 0.0, 0.375, 2.0, 1.0, 10.0, 0.0, False),
        (0.0, 0.0, 0.5, 1.5, 0.0, False, False, False, True),
    ),
    (
        "automatic reheat that cannot keep up: still a shortage",
        (0.5, 0.0, 0.375, 2.0, 1.0, 10.0, 2.0, False),
        (0.375, 0.0, 0.875, 1.125, 0.0, True, True, False, True),
    ),
    (
        "unmet heat below the shortage tolerance is counted but is no shortage",
        (0.25, 0.0, 0.375, 0.25 + TINY, 1.0, 10.0, 0.0, False),
        (0.0, 0.0, 0.25, TINY, 0.0, False, False, False, False),
    ),
    (
        "empty tank, no draw, no plan: nothing happens",
        (0.0, 0.0, 0.375, 0.0, 0.5, 10.0, 0.0, False),
        (0.0, 0.0, 0.0, 0.0, 0.0, False, False, False, False),
    ),
]
FIELDS = ("heat_kwh", "stored_heat_kwh", "delivered_kwh", "unmet_kwh", "loss_kwh")
FLAGS = ("auto_reheat", "forced", "clipped", "shortage")


def _values(step: TankStep, i: int | None = None) -> tuple[object, ...]:
    def pick(x: np.ndarray) -> object:
        return x.item() if i is None else x[i].item()

    return tuple(pick(getattr(step, f)) for f in (*FIELDS, *FLAGS))


@pytest.mark.parametrize(("case", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_unit_by_hand(case: str, args: tuple[float | bool, ...], expected: tuple) -> None:
    step = tank_step(*args)
    assert step.heat_kwh.shape == ()  # scalar in, 0-d out
    assert _values(step) == expected, case


def test_many_units_at_once_are_the_rows() -> None:
    columns = [np.array(col) for col in zip(*(args for _, args, _ in CASES), strict=True)]
    step = tank_step(*columns)
    assert step.heat_kwh.shape == (len(CASES),)
    for i, (case, _, expected) in enumerate(CASES):
        assert _values(step, i) == expected, case


def test_broadcasts_per_unit_constants_against_per_step_arrays() -> None:
    # (N,) states against scalar settings, as the fleet passes them
    q = np.array([1.0, 4.0, 9.5])
    step = tank_step(q, 1.0, 0.375, 0.0, 1.0, 10.0, 2.0, np.array([False, True, False]))
    assert step.heat_kwh.tolist() == [0.375, 0.375, 0.5]
    assert step.forced.tolist() == [True, True, False]
    assert step.auto_reheat.tolist() == [True, False, False]
    assert step.clipped.tolist() == [False, False, True]


def test_energy_balance_of_every_step() -> None:
    # Q_next = Q − loss + heat − delivered, for any state at or below Q_max
    rng = np.random.default_rng(2)
    n = 5000
    q_max = rng.uniform(5.0, 25.0, n)
    q = rng.uniform(0.0, 1.0, n) * q_max
    step = tank_step(
        q,
        rng.uniform(0.0, 0.4, n) * (rng.random(n) < 0.5),
        0.375,
        rng.exponential(0.3, n) * (rng.random(n) < 0.3),
        rng.uniform(0.99, 1.0, n),
        q_max,
        rng.uniform(0.0, 3.0, n),
        rng.random(n) < 0.05,
    )
    residual = step.stored_heat_kwh - (q - step.loss_kwh + step.heat_kwh - step.delivered_kwh)
    assert np.abs(residual).max() <= ENERGY_TOL_KWH
    assert (step.stored_heat_kwh >= 0.0).all() and (step.stored_heat_kwh <= q_max).all()
    assert (step.unmet_kwh >= 0.0).all() and (step.delivered_kwh >= 0.0).all()
    assert step.shortage.any() and step.clipped.any() and step.auto_reheat.any()


def test_step_retention_is_the_root_of_the_slot_retention() -> None:
    assert float(step_retention(0.81, 2)) == pytest.approx(0.9, rel=ROUNDOFF)
    assert step_retention(np.array([1.0, 0.0625]), 4).tolist() == [1.0, 0.5]


def test_execute_plan_by_hand_two_units_two_slots() -> None:
    # two slots of two steps; unit 0 follows a plan, unit 1 starts below the reserve
    fleet = Fleet(np.array([4, 4]), np.array([370.0, 370.0]), np.array([True, True]))
    grid = SlotGrid.day_ahead(date(2026, 5, 12), n_slots=2)
    base = build_problem(fleet, grid, np.array([4.0, 0.0]), draw_forecast(fleet, grid))
    mains_c = np.array([15.0, 15.0])
    per_l = HEAT_KWH_PER_L_K * (USE_TEMP_C - mains_c[0])
    reserve_l = 1.0 / per_l  # a reserve of 1 kWh
    problem = replace(
        base,
        q0_kwh=np.array([4.0, 0.0]),
        heat_cap_kwh=np.full((2, 2), 1.5),  # 0.75 kWh per step at full output
        retention=np.full((2, 2), 0.5625),  # 0.75 per step
        cop=np.array([[3.0, 3.0], [2.0, 2.0]]),
        q_max_kwh=np.array([10.0, 10.0]),
        mains_temp_c=mains_c,
    )
    plan = np.array([[1.0, 0.0], [0.0, 0.0]])  # unit 0: 0.5 kWh per step in slot 0
    use_l = np.zeros((2, 4))
    use_l[0, 1] = 2.0 / per_l  # unit 0 draws 2 kWh in step 1
    run = execute_plan(problem, plan, use_l, np.zeros((2, 4), bool), reserve_l)
    # step by step (a = 0.75, full output 0.75 kWh, reserve 1 kWh):
    # unit 0: 4 → 3 + 0.5 = 3.5 → 2.625 + 0.5 − 2 = 1.125 | → 0.84375 (plan 0) → 0.84375 is
    #         below the reserve: 0.6328125 + 0.75
    # unit 1: 0 (below: reheat) → 0.75 (below: reheat) → 1.3125 | → 0.984375 (plan 0) →
    #         below: 0.73828125 + 0.75
    q0 = [4.0, 3.5, 1.125, 0.84375, 0.84375 * 0.75 + 0.75]
    q1 = [0.0, 0.75, 1.3125, 0.984375, 0.984375 * 0.75 + 0.75]
    assert run.stored_heat_kwh[0].tolist() == pytest.approx([q0[0], q0[2], q0[4]], rel=ROUNDOFF)
    assert run.stored_heat_kwh[1].tolist() == pytest.approx([q1[0], q1[2], q1[4]], rel=ROUNDOFF)
    # electricity per slot: heat / COP (slot 0 COP 3, slot 1 COP 2)
    assert run.electric_kwh[0].tolist() == pytest.approx([1.0 / 3.0, 0.75 / 2.0], rel=ROUNDOFF)
    assert run.electric_kwh[1].tolist() == pytest.approx([1.5 / 3.0, 0.75 / 2.0], rel=ROUNDOFF)
    assert run.auto_reheat_steps.tolist() == [1, 3]
    assert run.delivered_heat_kwh.tolist() == pytest.approx([2.0, 0.0], rel=ROUNDOFF)
    assert run.unmet_kwh.tolist() == [0.0, 0.0] and run.shortage_steps.tolist() == [0, 0]
    assert not run.has_shortage.any()

    # the automatic-reheat threshold per unit and slot instead of the reserve: 1 kWh in slot
    # 0 (as above), none in slot 1, where both units now only lose standby heat
    per_slot = execute_plan(
        problem,
        plan,
        use_l,
        np.zeros((2, 4), bool),
        reserve_l,
        reheat_below_kwh=np.array([[1.0, 0.0], [1.0, 0.0]]),
    )
    assert per_slot.stored_heat_kwh[0].tolist() == pytest.approx(
        [4.0, 1.125, 1.125 * 0.5625], rel=ROUNDOFF
    )
    assert per_slot.stored_heat_kwh[1].tolist() == pytest.approx(
        [0.0, 1.3125, 1.3125 * 0.5625], rel=ROUNDOFF
    )
    assert per_slot.auto_reheat_steps.tolist() == [0, 2]
    assert per_slot.electric_kwh[:, 1].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="reheat_below_kwh must be"):
        execute_plan(
            problem, plan, use_l, np.zeros((2, 4), bool), reserve_l, reheat_below_kwh=np.ones(2)
        )
