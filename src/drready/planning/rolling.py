"""The rolling horizon: units carry their state from slot to slot and re-plan on a horizon that
always covers now + 36 h + the longest window (F1–F4; issue 11 item 3).

A running unit — the maker cloud's fleet (:class:`drready.cloud.live.LiveFleet`) or a single
simulated device (:class:`drready.device.heater.SimulatedWaterHeater`) — must answer a potential
request (F1) or a DR request (F2) at any instant, for any window that starts within the next
:data:`LEAD_TIME` (36 h): a day-ahead request for tomorrow's daytime arrives at 07:00 as well as
at 22:30. Nothing may depend on when the process started. This module is the part of that which
needs no clock, no I/O and no per-unit Python objects: arrays over units in, arrays out.

The horizon
-----------
At an instant ``now`` the units plan on :func:`rolling_grid` — :data:`HORIZON_SLOTS` (96)
30-minute slots from the start of the slot in progress, i.e. 48 h = :data:`LEAD_TIME` +
:data:`LONGEST_WINDOW`: every window that starts by ``now + 36 h`` and lasts at most 12 h
(the longest window one ECHONET Lite 0xF3 carries, and the servicer's longest potential window)
lies inside it. :func:`window_reason` says why a window cannot be planned — passed, starting
more than 36 h ahead, or ending after the horizon — naming the horizon, so that a unit rejects
such a request with the reason instead of failing.

The state and the roll
----------------------
:class:`UnitsState` is what carries over: the stored heat at the start of the slot in progress
(the executed tank state, never a fresh tank), the metered energy counter, the plan in force,
and the slot in progress already executed under it (:class:`SlotRun`: the slot's heat is decided
at its start, as an EcoCute's controller decides it, so its meter reading is known for F5). The
accepted DR requests still ahead are :class:`HeldRequest` windows in absolute time, with an
amount per unit.

:func:`roll` moves a state to a later slot boundary ``to``: the slot in progress ends as
executed, slots between are executed under the plan in force with the units' own safeguards
(:func:`drready.planning.execution.execute_plan`, the one tank step of every simulated unit —
stored heat and energy are continuous across the roll), and at ``to`` the units plan again on
the new horizon from the executed stored heat, honouring the held requests
(:func:`carry`), then execute the new slot in progress. :func:`replan` re-plans at the same slot
when a request or a setting arrives: after the slot's start its heat stays as decided (pinned,
:class:`~drready.planning.engine.FleetPlanner` ``pinned_heat_kwh``).

Held requests across a re-plan (the rules of the live device, now for fleets): a request not yet
begun keeps its accepted amount, measured from the new baseline (DR amounts are deviations from
the unit's no-DR plan, the settlement quantity); one in progress keeps the energy the previous
plan promised for the rest of its window (the remainder's amount is that energy minus the new
baseline's, or the reverse for down-DR); an ended one is dropped.

Learning
--------
What the units plan against is a :class:`Forecaster`: :class:`ScheduleForecaster`, the national
schedule (:func:`~drready.planning.problem.draw_forecast`), is the only one for now; its
:meth:`~Forecaster.observe` receives every executed slot's realised use — the hook where a
learned forecast goes.

Everything here is vectorised over units (arrays (N,) or time-major (T, N)) and independent
across units, so a caller may apply it to any subset or chunk of a fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from drready.domain import DEFAULT_TZ, SLOT, Direction, SlotGrid
from drready.domain.time import MAX_SLOTS
from drready.domain.tolerances import ZERO_KWH
from drready.planning.engine import FleetPlan, FleetPlanner, WindowRequest
from drready.planning.execution import execute_plan
from drready.planning.problem import DrawForecast, Fleet, PlanningProblem, draw_forecast

__all__ = [
    "HORIZON_SLOTS",
    "LEAD_TIME",
    "LONGEST_WINDOW",
    "Carried",
    "Forecaster",
    "HeldRequest",
    "ProblemAt",
    "Rolled",
    "ScheduleForecaster",
    "SlotRun",
    "UnitsState",
    "UseAt",
    "carry",
    "initial_state",
    "lead_reason",
    "planner_for",
    "replan",
    "roll",
    "rolling_grid",
    "slot_floor",
    "window_reason",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Units = IntArray | slice

LEAD_TIME: Final = timedelta(hours=36)
"""How far ahead a window may start: F1/F2 are answered for any window starting by now + 36 h."""
LONGEST_WINDOW: Final = timedelta(hours=12)
"""The longest window the horizon always holds at the far end (one 0xF3 EDT; the servicer's
potential windows)."""
HORIZON_SLOTS: Final = (LEAD_TIME + LONGEST_WINDOW) // SLOT
"""Slots of the rolling horizon from the slot in progress: 96 (48 h, the grid's maximum)."""
assert HORIZON_SLOTS <= MAX_SLOTS

ProblemAt = Callable[[datetime, FloatArray], PlanningProblem]
"""Builds the units' planning problem on the rolling horizon from a slot start and the stored
heat there [kWh] (the caller's households, climate, tariff, forecast)."""
UseAt = Callable[[datetime, int], tuple[npt.NDArray[np.floating], BoolArray]]
"""The units' realised hot-water use [L at 40 °C] and manual reheats over ``n`` slots from a slot
start, (N, n·k) each (``k`` simulation steps per slot)."""


# ------------------------------------------------------------------ the horizon


def slot_floor(at: datetime) -> datetime:
    """The start of the 30-minute slot containing ``at`` (in ``at``'s zone).

    Slots are counted from the Unix epoch, which matches the local half hours of every zone
    whose UTC offset is a whole number of half hours (Asia/Tokyo).

    >>> from datetime import timezone
    >>> slot_floor(datetime(2026, 5, 12, 4, 45, 10, tzinfo=timezone.utc)).isoformat()
    '2026-05-12T04:30:00+00:00'
    """
    seconds = int(SLOT.total_seconds())
    ts = at.timestamp()
    return datetime.fromtimestamp(ts - ts % seconds, tz=at.tzinfo)


def rolling_grid(at: datetime, tz: str = DEFAULT_TZ) -> SlotGrid:
    """The rolling horizon at ``at``: :data:`HORIZON_SLOTS` slots from the slot in progress."""
    start = slot_floor(at).astimezone(ZoneInfo(tz))
    return SlotGrid(start=start, n_slots=HORIZON_SLOTS, tz=tz)


def lead_reason(start: datetime, now: datetime) -> str | None:
    """Why a window starting at ``start`` is too far ahead at ``now`` (None if it is not)."""
    latest = now + LEAD_TIME
    if start <= latest:
        return None
    return (
        f"window starts {start.isoformat()}, more than 36 h ahead: the rolling horizon takes "
        f"windows starting by {latest.isoformat()} (now {now.isoformat()} + 36 h)"
    )


def window_reason(
    start: datetime, end: datetime, now: datetime, tz: str = DEFAULT_TZ
) -> str | None:
    """Why ``[start, end)`` cannot be planned at ``now`` on the rolling horizon, or None.

    Passed (``start < now``), starting more than :data:`LEAD_TIME` ahead, or not an aligned
    window inside :func:`rolling_grid` (ending after the horizon); each reason names the time
    or the horizon.
    """
    if start < now:
        return f"start {start.isoformat()} has passed (now {now.isoformat()})"
    too_far = lead_reason(start, now)
    if too_far is not None:
        return too_far
    grid = rolling_grid(now, tz)
    if not grid.contains(start, end):
        return (
            f"window {start.isoformat()}–{end.isoformat()} is outside the planning horizon "
            f"{grid.start.isoformat()}–{grid.end.isoformat()} (48 h from the slot in progress)"
        )
    return None


# ------------------------------------------------------------------ learning


@runtime_checkable
class Forecaster(Protocol):
    """What units expect of their households, and the hook where they learn from what happened.

    ``units`` are the indices (or slice) of the units in the caller's fleet; ``fleet`` is the
    subset at those indices.
    """

    def forecast(self, fleet: Fleet, grid: SlotGrid, units: Units) -> DrawForecast:
        """Expected use and its uncertainty over ``grid``."""
        ...

    def observe(self, slot_start: datetime, units: Units, use_l: FloatArray) -> None:
        """The realised use of an executed slot, (N,) [L at 40 °C]."""
        ...


class ScheduleForecaster:
    """The national schedule for every unit (:func:`~drready.planning.problem.draw_forecast`);
    it learns nothing yet — :meth:`observe` is where a learned forecast would take its data."""

    def forecast(self, fleet: Fleet, grid: SlotGrid, units: Units) -> DrawForecast:
        return draw_forecast(fleet, grid)

    def observe(self, slot_start: datetime, units: Units, use_l: FloatArray) -> None:
        return None


# ------------------------------------------------------------------ held requests


@dataclass(frozen=True)
class HeldRequest:
    """An accepted DR request window the units still owe, in absolute time.

    ``amount_kwh`` (N,) is each unit's accepted amount [kWh] (0: not asked, or nothing
    accepted), a deviation from the unit's baseline.
    """

    direction: Direction
    start: datetime
    end: datetime
    amount_kwh: FloatArray

    def take(self, units: Units) -> HeldRequest:
        """The same window for the units at ``units``."""
        return replace(self, amount_kwh=self.amount_kwh[units])


@dataclass(frozen=True)
class Carried:
    """Held requests as window requests on a horizon: ``requests[j]`` carries
    ``held[held_index[j]]`` (ended requests are left out)."""

    held_index: tuple[int, ...]
    requests: tuple[WindowRequest, ...]


def carry(
    held: Sequence[HeldRequest],
    grid: SlotGrid,
    baseline_electric_kwh: FloatArray,
    promised_electric_kwh: FloatArray,
) -> Carried:
    """The held requests on ``grid`` (see "Held requests across a re-plan" above).

    Parameters
    ----------
    held : sequence of HeldRequest
        In the order they were accepted (the order the planner honours them in).
    grid : SlotGrid
        The horizon planned now.
    baseline_electric_kwh : (T, N)
        The new baseline's electricity per slot of ``grid`` [kWh], time-major.
    promised_electric_kwh : (T, N)
        The previous plan's electricity per slot of ``grid`` [kWh], time-major (rows it did not
        cover: anything — only the rest of a request in progress is read).

    Examples
    --------
    One unit; an up-DR request of 1 kWh in progress since the slot before the grid, promised
    2.0 kWh in the rest of its window where the new baseline has 0.6 kWh: 1.4 kWh remain.

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 5, 12, 10, tzinfo=timezone.utc)
    >>> g = SlotGrid(start=t0, n_slots=4, tz="UTC")
    >>> h = HeldRequest(Direction.UP, t0 - SLOT, t0 + 2 * SLOT, np.array([1.0]))
    >>> c = carry([h], g, np.full((4, 1), 0.3), np.array([[1.2], [0.8], [0.0], [0.0]]))
    >>> r = c.requests[0]
    >>> c.held_index, r.start, r.end, round(float(r.amount_kwh[0]), 6)
    ((0,), 0, 2, 1.4)
    """
    index: list[int] = []
    requests: list[WindowRequest] = []
    for i, h in enumerate(held):
        if h.end <= grid.start:
            continue
        end = min(h.end, grid.end)
        if h.start >= grid.start:
            s, e = grid.window_indices(h.start, end)
            amount = np.asarray(h.amount_kwh, dtype=np.float64).copy()
        else:  # in progress: the energy promised for the rest of the window
            s, e = grid.window_indices(grid.start, end)
            promised = promised_electric_kwh[s:e].sum(axis=0)
            base = baseline_electric_kwh[s:e].sum(axis=0)
            rest = promised - base if h.direction is Direction.UP else base - promised
            # clip: a promise at or below the new baseline asks for nothing more; units that
            # owe nothing in this window stay at 0
            amount = np.where(h.amount_kwh > ZERO_KWH, np.maximum(rest, 0.0), 0.0)
        index.append(i)
        requests.append(WindowRequest(h.direction, s, e, amount))
    return Carried(tuple(index), tuple(requests))


# ------------------------------------------------------------------ the state


@dataclass(frozen=True)
class SlotRun:
    """The slot in progress, executed at its start under the plan in force; per unit (N,).

    ``use_l`` and ``manual_reheat`` (N, k) are its realised draws (kept to execute it again if
    the plan changes at the very start of the slot); ``rated_kw`` is the electric input at the
    rated heat output in the slot, the level of on/off operation (F5,
    :mod:`drready.physics.duty`).
    """

    heat_kwh: FloatArray
    electric_kwh: FloatArray
    end_heat_kwh: FloatArray
    rated_kw: FloatArray
    unmet_kwh: FloatArray
    shortage_steps: IntArray
    use_l: npt.NDArray[np.floating]
    manual_reheat: BoolArray

    def take(self, units: Units) -> SlotRun:
        return SlotRun(
            self.heat_kwh[units],
            self.electric_kwh[units],
            self.end_heat_kwh[units],
            self.rated_kw[units],
            self.unmet_kwh[units],
            self.shortage_steps[units],
            self.use_l[units],
            self.manual_reheat[units],
        )


@dataclass(frozen=True)
class UnitsState:
    """What units carry from slot to slot, at the start ``at`` of the slot in progress.

    Attributes
    ----------
    at : datetime
        Start of the slot in progress (a slot boundary).
    stored_heat_kwh : (N,)
        Stored heat above mains at ``at`` [kWh] (the executed tank state).
    energy_kwh : (N,)
        Electricity metered from the units' start to ``at`` [kWh] (the F5 counter).
    discarded_heat_kwh, unmet_heat_kwh : (N,)
        Totals to ``at`` [kWh]: heat above a re-evaluated tank capacity (a warmer mains
        temperature lowers it) and heat the households drew but the tank could not give.
    shortage_steps : (N,)
        Simulation steps with a shortage (湯切れ) to ``at``.
    plan_heat_kwh : (T, N)
        The plan in force, heat per slot from ``at`` [kWh], time-major (any float dtype; row 0
        is ``slot.heat_kwh``).
    slot : SlotRun
        The slot in progress.
    """

    at: datetime
    stored_heat_kwh: FloatArray
    energy_kwh: FloatArray
    discarded_heat_kwh: FloatArray
    unmet_heat_kwh: FloatArray
    shortage_steps: IntArray
    plan_heat_kwh: npt.NDArray[np.floating]
    slot: SlotRun

    @property
    def n_units(self) -> int:
        return int(self.stored_heat_kwh.shape[0])

    def take(self, units: Units) -> UnitsState:
        """The state of the units at ``units`` (views for a slice)."""
        return UnitsState(
            self.at,
            self.stored_heat_kwh[units],
            self.energy_kwh[units],
            self.discarded_heat_kwh[units],
            self.unmet_heat_kwh[units],
            self.shortage_steps[units],
            self.plan_heat_kwh[:, units],
            self.slot.take(units),
        )


@dataclass(frozen=True)
class Rolled:
    """A state and the plan just made at it.

    ``problem`` is the horizon's planning problem (from ``state.at`` and
    ``state.stored_heat_kwh``), ``plan`` the plan in force (its ``accepted_kwh`` rows: first
    ``carried.requests``, then the new requests), ``executed`` the starts of the slots that
    ended in this step (their realised use is what a :class:`Forecaster` observes).
    """

    state: UnitsState
    problem: PlanningProblem
    plan: FleetPlan
    carried: Carried
    executed: tuple[datetime, ...] = ()


# ------------------------------------------------------------------ steps


def _run_slot(
    problem: PlanningProblem,
    heat_kwh: FloatArray,
    use_l: npt.NDArray[np.floating],
    manual: BoolArray,
    reserve_l: float,
) -> SlotRun:
    """Execute slot 0 of ``problem`` with ``heat_kwh`` (N,) planned and the draws given."""
    run = execute_plan(problem, heat_kwh[:, None], use_l, manual, reserve_l)
    return SlotRun(
        heat_kwh=heat_kwh,
        electric_kwh=run.electric_kwh[:, 0],
        end_heat_kwh=run.stored_heat_kwh[:, 1],
        rated_kw=problem.heat_cap_kwh[0] / problem.cop[0] / problem.slot_h,
        unmet_kwh=run.unmet_kwh,
        shortage_steps=run.shortage_steps,
        use_l=use_l,
        manual_reheat=manual,
    )


def planner_for(problem: PlanningProblem, state: UnitsState, pinned: bool) -> FleetPlanner:
    """The planner of ``state``'s horizon: the slot in progress pinned to its decided heat when
    ``pinned`` (the slot has begun), free at its very start."""
    heat = state.slot.heat_kwh[None, :] if pinned else None
    return FleetPlanner(problem, pinned_heat_kwh=heat)


def _promised(
    problem: PlanningProblem, origin: datetime, heat: npt.NDArray[np.floating]
) -> FloatArray:
    """A plan's heat from ``origin`` (T', N) as electricity on ``problem``'s grid (T, N) [kWh]
    (rows it does not cover are 0)."""
    shift = (problem.grid.start - origin) // SLOT
    out = np.zeros((problem.n_slots, problem.n_units))
    rows = heat[shift : shift + problem.n_slots]
    out[: rows.shape[0]] = rows
    out /= problem.cop
    return out


def _plan(
    problem: PlanningProblem,
    planner: FleetPlanner,
    held: Sequence[HeldRequest],
    previous: tuple[datetime, npt.NDArray[np.floating]],
    new: Sequence[WindowRequest],
) -> tuple[FleetPlan, Carried]:
    """Plan ``held`` (carried from the ``previous`` plan: its origin and heat) then ``new``."""
    if not held:
        return planner.plan(list(new)), Carried((), ())
    promised = _promised(problem, *previous)
    carried = carry(held, problem.grid, planner.baseline_electric_kwh(), promised)
    return planner.plan([*carried.requests, *new]), carried


def initial_state(
    problem: PlanningProblem,
    use_l: npt.NDArray[np.floating],
    manual: BoolArray,
    reserve_l: float,
) -> Rolled:
    """Units starting at ``problem.grid.start`` with ``problem.q0_kwh``: the baseline plan in
    force, its first slot executed with the draws given (N, k); counters at 0."""
    planner = FleetPlanner(problem)
    plan = planner.plan([])
    slot = _run_slot(problem, plan.heat_kwh[:, 0].copy(), use_l, manual, reserve_l)
    n = problem.n_units
    state = UnitsState(
        at=problem.grid.start,
        stored_heat_kwh=problem.q0_kwh.copy(),
        energy_kwh=np.zeros(n),
        discarded_heat_kwh=np.zeros(n),
        unmet_heat_kwh=np.zeros(n),
        shortage_steps=np.zeros(n, dtype=np.int64),
        plan_heat_kwh=plan.heat_kwh.T,
        slot=slot,
    )
    return Rolled(state, problem, plan, Carried((), ()))


def roll(
    state: UnitsState,
    to: datetime,
    *,
    problem_at: ProblemAt,
    use_at: UseAt,
    held: Sequence[HeldRequest],
    reserve_l: float,
) -> Rolled:
    """Move ``state`` to the later slot boundary ``to`` and plan there (see the module).

    The slot in progress ends as executed; the slots after it, up to ``to``, are executed under
    the plan in force (a pause longer than the plan re-plans where the plan ends, honouring
    ``held``); at ``to`` the units plan on the new horizon from the executed stored heat,
    honouring ``held`` (:func:`carry`), and the new slot in progress is executed.

    Raises
    ------
    ValueError
        If ``to`` is not a slot boundary after ``state.at``.
    """
    if to <= state.at or (to - state.at) % SLOT:
        raise ValueError(
            f"to must be a slot boundary after {state.at.isoformat()}, got {to.isoformat()}"
        )
    slot = state.slot
    q = slot.end_heat_kwh
    energy = state.energy_kwh + slot.electric_kwh
    discarded = state.discarded_heat_kwh.copy()
    unmet = state.unmet_heat_kwh + slot.unmet_kwh
    shortages = state.shortage_steps + slot.shortage_steps
    origin, heat = state.at, state.plan_heat_kwh
    executed = [state.at]
    t = state.at + SLOT
    while t < to:
        problem = problem_at(t, q)
        discarded += q - problem.q0_kwh  # heat above a lower capacity is not kept
        q = problem.q0_kwh
        offset = (t - origin) // SLOT
        if offset >= heat.shape[0]:  # a pause longer than the plan in force: plan again here
            plan, _ = _plan(problem, FleetPlanner(problem), held, (origin, heat), ())
            origin, heat, offset = t, plan.heat_kwh.T, 0
        n = min((to - t) // SLOT, heat.shape[0] - offset)
        use_l, manual = use_at(t, n)
        planned = np.asarray(heat[offset : offset + n], dtype=np.float64).T
        run = execute_plan(problem, planned, use_l, manual, reserve_l)
        q = run.stored_heat_kwh[:, -1].copy()
        energy = energy + run.electric_kwh.sum(axis=1)
        unmet = unmet + run.unmet_kwh
        shortages = shortages + run.shortage_steps
        executed += [t + j * SLOT for j in range(n)]
        t += n * SLOT
    problem = problem_at(to, q)
    discarded += q - problem.q0_kwh
    plan, carried = _plan(problem, FleetPlanner(problem), held, (origin, heat), ())
    use_l, manual = use_at(to, 1)
    new_slot = _run_slot(problem, plan.heat_kwh[:, 0].copy(), use_l, manual, reserve_l)
    new = UnitsState(
        at=to,
        stored_heat_kwh=problem.q0_kwh.copy(),
        energy_kwh=energy,
        discarded_heat_kwh=discarded,
        unmet_heat_kwh=unmet,
        shortage_steps=shortages,
        plan_heat_kwh=plan.heat_kwh.T,
        slot=new_slot,
    )
    return Rolled(new, problem, plan, carried, tuple(executed))


def replan(
    state: UnitsState,
    problem: PlanningProblem,
    *,
    held: Sequence[HeldRequest],
    new: Sequence[WindowRequest] = (),
    pinned: bool,
    reserve_l: float,
) -> Rolled:
    """Plan again at ``state``'s slot, honouring ``held`` and then ``new`` (in order).

    ``problem`` is the state's horizon (built from ``state.at`` and ``state.stored_heat_kwh``).
    ``pinned``: the slot in progress has begun and keeps its decided heat; at its very start
    (not pinned) it takes the new plan's heat and is executed again with its draws.
    """
    if problem.grid.start != state.at:
        raise ValueError(
            f"problem must start at the state's slot {state.at.isoformat()}, "
            f"got {problem.grid.start.isoformat()}"
        )
    planner = planner_for(problem, state, pinned)
    plan, carried = _plan(problem, planner, held, (state.at, state.plan_heat_kwh), new)
    slot = state.slot
    if not pinned:
        heat = plan.heat_kwh[:, 0].copy()
        slot = _run_slot(problem, heat, slot.use_l, slot.manual_reheat, reserve_l)
    return Rolled(replace(state, plan_heat_kwh=plan.heat_kwh.T, slot=slot), problem, plan, carried)
