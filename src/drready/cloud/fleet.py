"""The maker cloud's fleet: N simulated water heaters planned as arrays (route ii; F1–F6, D6).

:class:`MakerFleet` is the manufacturer's server-side view of its units: one planning problem
over the day-ahead grid of a day (:meth:`drready.domain.SlotGrid.day_ahead`, 64 slots from 23:00
the evening before) for all units at once, solved by the fast path
(:class:`drready.planning.engine.FleetPlanner`), and the domain objects the OpenADR profile
carries:

* F6 — unit ``i`` is ``DeviceId(maker_code, f"C{i + 1:07d}")`` (no personal data);
* F1 — :meth:`MakerFleet.envelopes` per unit, :meth:`MakerFleet.group_envelope` for the fleet as
  one resource (D6);
* F2/F3/F4 — :meth:`MakerFleet.apply_requests` per unit, :meth:`MakerFleet.group_request` for a
  group request split over the units;
* F5 — :meth:`MakerFleet.power_samples` and :meth:`MakerFleet.group_power`, the instantaneous
  power and energy counter of a simulated meter (see there and "Instantaneous power" below).

Planning semantics
------------------
Potentials are declared against the **baseline** plan (DR amounts are deviations from the
baseline, the settlement quantity; see :mod:`drready.planning.engine`). Accepted requests
accumulate across calls: the fleet keeps an ordered list of request windows, each with an
amount per unit, and every call re-plans all of them at once with
:meth:`FleetPlanner.plan` (earlier requests first, with their *accepted* amounts, so that
their answers do not change), so a second event is planned honouring the first. Units are
independent in the planner (each column of the arrays is one unit's problem), so a request for a
unit not yet asked in an existing window of the same direction joins that window; a unit's own
requests always keep their order.

Limitation: the fleet plans the whole day ahead from 23:00 the evening before, as the day-ahead
grid does. A request is planned as if it had been known then; requests are meant to arrive
before their window (the market's day-ahead timing), and one whose window starts before the
cloud's ``now`` is rejected with that reason. Slots already past are not frozen (the live single
unit, :class:`drready.device.SimulatedWaterHeater`, re-plans from its current state instead).

Instantaneous power (F5, for U1)
--------------------------------
The simulated meter gives each unit an electric energy per slot (the plan executed against sampled
household use, :func:`drready.planning.execution.execute_plan`). A CO2 heat pump does not draw that
energy as a steady slot mean: it runs at its rated input for part of the slot and is off for the
rest (:mod:`drready.physics.duty`). The fleet therefore reports, at an instant in slot ``k``,

* the **rated electric input** of the unit in slot ``k``, ``p = heat_cap_kwh / cop / slot_h`` from
  the planning problem: the heat pump's rated heat output (``heat_cap_kwh / slot_h``, 4.5 kW for
  :data:`drready.physics.heatpump.RATED_33_CLASS`) divided by the slot's COP (air temperature,
  boil-up and inlet temperature), i.e. :func:`drready.physics.heatpump.electric_input_kw` — the
  same input the executed energy was computed with, so a slot's energy never needs more than
  ``p · slot_h`` (duty ≤ 1 up to round-off);
* the **power** :func:`~drready.physics.duty.on_off_power_kw`: ``p`` while the unit is on, 0 while
  it is off (the full-slot level ``e / slot_h`` when the duty is 1);
* the **energy counter**: the metered energy of the slots before ``k`` plus
  :func:`~drready.physics.duty.on_off_energy_kwh` of slot ``k`` — continuous, never decreasing,
  and equal to the slot energies' running sum at every slot boundary, so slot energies (and the
  settlement computed from them) are those of the meter, unchanged.

Where in the slot a unit runs is its **phase**, one per unit and slot, drawn uniformly in [0, 1)
from the fleet's seed and day (a random stream of its own, independent of the household-use
sample; the same on every call, whatever the plan). A real unit starts heating at times set by
its own controls (tank sensors, its schedule, the maker's optimiser), not in step with the
others; independent phases are the simplest stand-in, so the fleet's power fluctuates inside a
slot around the slot mean, with variance ``Σ p² d (1 − d)`` over units of duty ``d`` — the
fluctuation a servicer following a minute-by-minute command (U1) must absorb, e.g. with a
battery. Limitation: phases of consecutive slots are independent, so a unit that runs through
the end of one slot does not necessarily continue at the start of the next one, and the
executed energy's timing inside the slot (e.g. an automatic reheat in a given 5-minute step) is
not kept — only each slot's energy is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from drready.domain import (
    SLOT,
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    PowerSample,
    PowerSource,
    SlotGrid,
)
from drready.domain.tolerances import REL_TOL, ZERO_KWH
from drready.physics.climate import TOKYO, Climate
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.physics.duty import on_off_energy_kwh, on_off_power_kw
from drready.planning.engine import FleetPlan, FleetPlanner, WindowPotential, WindowRequest
from drready.planning.execution import Execution, execute_plan
from drready.planning.problem import (
    Fleet,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    draw_forecast,
)
from drready.planning.tariff import NIGHT_TOU, Tariff

__all__ = [
    "DEFAULT_MAKER_CODE",
    "GROUP_DEVICE_ID",
    "EnvelopeSums",
    "GroupOutcome",
    "MakerFleet",
    "SimulatedMeter",
    "UnitAnswer",
    "heating_plan",
    "unit_envelope",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_MAKER_CODE = "000005"
"""The maker code of the examples in the docs (``000005:HW0000001``)."""
GROUP_DEVICE_ID = DeviceId(maker_code="000000", serial="FLEET")
"""The device id the profile gives the fleet group resource (``profile.GROUP_RESOURCE``)."""

_PHASE_STREAM = 1
"""Spawn key of the random stream of the units' on/off phases: the household-use sample of the
meter is the root stream of the same seed (spawn key ``()``), so the two are independent."""

UnitAnswer = tuple[DrResponse, HeatingPlan]
"""A unit's answer to a request: its response (F2) and its DR-aware plan (F3/F4)."""


@dataclass(frozen=True)
class SimulatedMeter:
    """Per unit and slot of the grid (N, T) [kWh] under the current plan and the baseline
    plan, and per unit (N,) the simulated steps with a hot-water shortage under each."""

    electric_kwh: FloatArray
    baseline_electric_kwh: FloatArray
    shortage_steps: npt.NDArray[np.int64]
    baseline_shortage_steps: npt.NDArray[np.int64]


@dataclass
class _Window:
    """One request window of the accumulated plan: an amount per unit [kWh]."""

    direction: Direction
    start: int
    end: int
    amount_kwh: FloatArray
    request_ids: dict[int, str] = field(default_factory=dict)

    def as_request(self) -> WindowRequest:
        return WindowRequest(self.direction, self.start, self.end, self.amount_kwh.copy())


@dataclass(frozen=True)
class GroupOutcome:
    """The fleet's answer to a group request (D6): the group's response and plan (the sum of
    every unit's plan), and each asked unit's own answer."""

    response: DrResponse
    plan: HeatingPlan
    units: dict[int, UnitAnswer]


def unit_envelope(
    device_id: DeviceId,
    computed_at: datetime,
    starts: list[datetime],
    end: datetime,
    confidence: float,
    pot: WindowPotential,
    u: int,
) -> FlexibilityEnvelope:
    """F1 of unit (row) ``u`` of ``pot``, whose window's slots start at ``starts`` and end at
    ``end``."""
    return FlexibilityEnvelope(
        device_id=device_id,
        computed_at=computed_at,
        window_start=starts[0],
        window_end=end,
        confidence=confidence,
        up_kwh=float(pot.up_kwh[u]),
        down_kwh=float(pot.down_kwh[u]),
        slots=tuple(
            EnvelopeSlot(
                start=starts[j],
                baseline_kw=float(pot.baseline_kw[u, j]),
                min_kw=float(pot.min_kw[u, j]),
                max_kw=float(pot.max_kw[u, j]),
                cum_min_kwh=float(pot.cum_min_kwh[u, j]),
                cum_max_kwh=float(pot.cum_max_kwh[u, j]),
            )
            for j in range(len(starts))
        ),
    )


@dataclass
class EnvelopeSums:
    """Running sums of units' potentials of one window of ``n_slots`` slots (D6), added a
    chunk of units at a time (:meth:`add`); :meth:`envelope` is the group's F1.

    Summing is exact for independent units: the fleet's set of feasible power profiles is the
    (Minkowski) sum of the units' sets, so the least and most fleet power in a slot are the sums
    of the units' least and most power in that slot (each unit reaches its own bound
    independently of the others), and the same holds for the least and most cumulative energy
    up to each slot end and for the window totals ``up_kwh`` / ``down_kwh``. As for a single
    unit, the per-slot and cumulative bounds together describe the set from outside: a profile
    meeting them all is not guaranteed feasible, which is why a group request is split over the
    units, each of which plans its own share.
    """

    n_slots: int
    baseline_kw: FloatArray = field(init=False)
    min_kw: FloatArray = field(init=False)
    max_kw: FloatArray = field(init=False)
    cum_min_kwh: FloatArray = field(init=False)
    cum_max_kwh: FloatArray = field(init=False)
    up_kwh: float = 0.0
    down_kwh: float = 0.0

    def __post_init__(self) -> None:
        for name in ("baseline_kw", "min_kw", "max_kw", "cum_min_kwh", "cum_max_kwh"):
            setattr(self, name, np.zeros(self.n_slots))

    def add(self, pot: WindowPotential) -> None:
        """Add the units of ``pot``."""
        self.baseline_kw += pot.baseline_kw.sum(axis=0)
        self.min_kw += pot.min_kw.sum(axis=0)
        self.max_kw += pot.max_kw.sum(axis=0)
        self.cum_min_kwh += pot.cum_min_kwh.sum(axis=0)
        self.cum_max_kwh += pot.cum_max_kwh.sum(axis=0)
        self.up_kwh += float(pot.up_kwh.sum())
        self.down_kwh += float(pot.down_kwh.sum())

    def envelope(
        self, computed_at: datetime, starts: list[datetime], end: datetime, confidence: float
    ) -> FlexibilityEnvelope:
        """The group's envelope (:data:`GROUP_DEVICE_ID`)."""
        base = self.baseline_kw
        lo = np.minimum(self.min_kw, base)  # sums keep the order up to round-off
        hi = np.maximum(self.max_kw, base)
        cum_lo = self.cum_min_kwh
        cum_hi = np.maximum(self.cum_max_kwh, cum_lo)
        return FlexibilityEnvelope(
            device_id=GROUP_DEVICE_ID,
            computed_at=computed_at,
            window_start=starts[0],
            window_end=end,
            confidence=confidence,
            up_kwh=self.up_kwh,
            down_kwh=self.down_kwh,
            slots=tuple(
                EnvelopeSlot(
                    start=starts[j],
                    baseline_kw=float(base[j]),
                    min_kw=float(lo[j]),
                    max_kw=float(hi[j]),
                    cum_min_kwh=float(cum_lo[j]),
                    cum_max_kwh=float(cum_hi[j]),
                )
                for j in range(self.n_slots)
            ),
        )


def heating_plan(
    device_id: DeviceId,
    created_at: datetime,
    grid: SlotGrid,
    power_kw: FloatArray,
    stored_heat_kwh: FloatArray,
    honours: tuple[str, ...] = (),
    cost_yen: float | None = None,
) -> HeatingPlan:
    """F4 from arrays: power per slot (T,) [kW] and stored heat at slot boundaries (T+1,) [kWh];
    round-off below zero is reported as zero."""
    starts = grid.starts()
    return HeatingPlan(
        device_id=device_id,
        created_at=created_at,
        grid=grid,
        slots=tuple(
            PlanSlot.from_power(
                starts[t],
                float(max(power_kw[t], 0.0)),
                float(max(stored_heat_kwh[t + 1], 0.0)),
            )
            for t in range(grid.n_slots)
        ),
        honours=honours,
        cost_yen=None if cost_yen is None else float(max(cost_yen, 0.0)),
    )


class MakerFleet:
    """N water heaters of one maker, planned together over the day-ahead grid of ``day``.

    Parameters
    ----------
    fleet : Fleet
        Households and tanks, one entry per unit.
    day : datetime.date
        The day served; the grid runs from 23:00 the day before for ``n_slots`` slots.
    maker_code : str
        ECHONET Lite maker code of the device ids (6 hex digits).
    seed : int
        Seed of the simulated household use and on/off phases behind :meth:`power_samples`.
    climate, tariff : Climate, Tariff
    confidence : float
        Confidence level of the declared potential (E1), 0.5–0.999.
    initial_heat_kwh : float array (N,), optional
        Stored heat at the grid start [kWh]; a quarter-full tank if None.
    step_minutes : int
        Time step of the simulated meter [min]; divides 30.
    n_slots : int
        Length of the grid (64 = 32 h, to 07:00 the day after ``day``).
    """

    def __init__(
        self,
        fleet: Fleet,
        day: date,
        *,
        maker_code: str = DEFAULT_MAKER_CODE,
        seed: int = 0,
        climate: Climate = TOKYO,
        tariff: Tariff = NIGHT_TOU,
        confidence: float = 0.95,
        initial_heat_kwh: FloatArray | None = None,
        step_minutes: int = 5,
        n_slots: int = 64,
    ) -> None:
        if 30 % step_minutes:
            raise ValueError(f"step_minutes must divide 30, got {step_minutes}")
        self.fleet = fleet
        self.day = day
        self.grid = SlotGrid.day_ahead(day, n_slots=n_slots)
        self.device_ids = [
            DeviceId(maker_code=maker_code, serial=f"C{i + 1:07d}") for i in range(fleet.size)
        ]
        self._index = {str(d): i for i, d in enumerate(self.device_ids)}
        q0 = (
            default_initial_heat_kwh(fleet, self.grid, climate)
            if initial_heat_kwh is None
            else np.asarray(initial_heat_kwh, dtype=float)
        )
        self.problem = build_problem(
            fleet,
            self.grid,
            q0,
            draw_forecast(fleet, self.grid),
            climate=climate,
            tariff=tariff,
            confidence=confidence,
        )
        self.planner = FleetPlanner(self.problem)
        self.computed_at = self.grid.start
        self.seed = seed
        self.step_minutes = step_minutes
        self._windows: list[_Window] = []
        self._answers: dict[tuple[int, str], DrResponse] = {}
        self._plan: FleetPlan = self.planner.baseline()
        self._metered: FloatArray | None = None
        self._phase_cache: FloatArray | None = None

    @classmethod
    def random(
        cls, n: int, day: date, *, seed: int = 0, maker_code: str = DEFAULT_MAKER_CODE
    ) -> MakerFleet:
        """``n`` households drawn with :meth:`Fleet.random` from ``seed``."""
        rng = np.random.default_rng(seed)
        return cls(Fleet.random(rng, n), day, maker_code=maker_code, seed=seed)

    # ------------------------------------------------------------------ F6
    @property
    def size(self) -> int:
        """Number of units."""
        return self.fleet.size

    @property
    def names(self) -> list[str]:
        """Resource names of the units (the DeviceId strings), by index."""
        return [str(d) for d in self.device_ids]

    def index_of(self, name: str) -> int | None:
        """The unit index of resource name ``name``, or None if it is not one of ours."""
        return self._index.get(name)

    # ------------------------------------------------------------------ F1
    def _potential(self, start: datetime, end: datetime) -> tuple[int, int, WindowPotential]:
        s, e = self.grid.window_indices(start, end)
        return s, e, self.planner.potential(s, e)

    def envelopes(
        self, start: datetime, end: datetime, units: list[int] | None = None
    ) -> list[FlexibilityEnvelope]:
        """F1 per unit for ``[start, end)`` (inside the grid), against the baseline.

        Raises
        ------
        ValueError
            The window is not aligned or not inside the grid, or a unit index is out of range.
        """
        s, e, pot = self._potential(start, end)
        starts = self.grid.starts()[s:e]
        confidence = self.problem.confidence
        return [
            unit_envelope(self.device_ids[u], self.computed_at, starts, end, confidence, pot, u)
            for u in self._units(units)
        ]

    def group_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1 of the fleet as one resource (D6): the sums of the units' envelopes
        (:class:`EnvelopeSums`, exact for independent units)."""
        s, e, pot = self._potential(start, end)
        sums = EnvelopeSums(e - s)
        sums.add(pot)
        starts = self.grid.starts()[s:e]
        return sums.envelope(self.computed_at, starts, end, self.problem.confidence)

    def _units(self, units: list[int] | None) -> list[int]:
        if units is None:
            return list(range(self.size))
        bad = [u for u in units if not 0 <= u < self.size]
        if bad:
            raise ValueError(f"unit index out of range 0–{self.size - 1}: {bad}")
        return list(units)

    # ------------------------------------------------------------------ F2–F4
    def _unplannable_reason(self, req: DrRequest, now: datetime | None) -> str | None:
        if req.start < self.computed_at:
            return (
                f"start {req.start.isoformat()} is before the planning time "
                f"{self.computed_at.isoformat()}"
            )
        if now is not None and req.start < now:
            return f"start {req.start.isoformat()} has passed (now {now.isoformat()})"
        if not self.grid.contains(req.start, req.end):
            return (
                f"window {req.start.isoformat()}–{req.end.isoformat()} is outside the planning "
                f"horizon {self.grid.start.isoformat()}–{self.grid.end.isoformat()}"
            )
        return None

    def _window_for(self, unit: int, direction: Direction, s: int, e: int) -> _Window:
        """The window a new request of ``unit`` joins: an existing one of the same key in which
        the unit has not been asked and after which it has no request, else a new one."""
        last = max((k for k, w in enumerate(self._windows) if unit in w.request_ids), default=-1)
        for k, w in enumerate(self._windows):
            same = (w.direction, w.start, w.end) == (direction, s, e)
            if same and k >= last and unit not in w.request_ids:
                return w
        w = _Window(direction, s, e, np.zeros(self.size))
        self._windows.append(w)
        return w

    def apply_requests(
        self, requests: dict[int, DrRequest], now: datetime | None = None
    ) -> dict[int, UnitAnswer]:
        """F2→F3/F4: plan ``requests`` (unit index → request) together with every request
        accepted before, and answer each.

        All windows are planned at once by :meth:`FleetPlanner.plan` with per-unit amounts (0
        for units not asked). Each request is accepted up to the potential left after the
        unit's earlier requests, measured from the baseline; a request the unit cannot plan
        (window outside the grid, start before the planning time or before ``now``) is
        rejected with the reason. A request id a unit has already answered is answered again
        from memory, not planned twice.
        """
        out: dict[int, UnitAnswer] = {}
        pending: list[tuple[int, DrRequest, _Window]] = []
        for u, req in requests.items():
            self._units([u])
            earlier = self._answers.get((u, req.request_id))
            if earlier is not None:
                out[u] = (earlier, self.unit_plan(u))
                continue
            reason = self._unplannable_reason(req, now)
            if reason is not None:
                response = DrResponse.from_amounts(req, self.device_ids[u], 0.0, reason)
                self._answers[(u, req.request_id)] = response
                out[u] = (response, self.unit_plan(u))
                continue
            s, e = self.grid.window_indices(req.start, req.end)
            w = self._window_for(u, req.direction, s, e)
            w.amount_kwh[u] = req.amount_kwh
            w.request_ids[u] = req.request_id
            pending.append((u, req, w))
        if not pending:
            return out
        plan = self.planner.plan([w.as_request() for w in self._windows])
        position = {id(w): k for k, w in enumerate(self._windows)}
        for k, w in enumerate(self._windows):  # keep accepted amounts: re-plans reproduce them
            w.amount_kwh = np.minimum(w.amount_kwh, plan.accepted_kwh[k])
        self._plan = plan
        self._metered = None
        for u, req, w in pending:
            k = position[id(w)]
            acc = min(float(plan.accepted_kwh[k, u]), req.amount_kwh)
            reason = None
            if acc < req.amount_kwh * (1 - REL_TOL):
                word = "up" if req.direction is Direction.UP else "down"
                reason = (
                    f"{word}-DR potential in the window is {float(plan.potential_kwh[k, u]):.3f} "
                    f"kWh at {self.problem.confidence:.0%} confidence (after earlier requests)"
                )
            self._answers[(u, req.request_id)] = DrResponse.from_amounts(
                req, self.device_ids[u], acc, reason
            )
        for u, req, _ in pending:
            out[u] = (self._answers[(u, req.request_id)], self.unit_plan(u))
        return out

    def group_request(self, request: DrRequest, now: datetime | None = None) -> GroupOutcome:
        """A group-level request (D6) split over the units in proportion to their potential.

        Unit ``i`` is asked ``amount × pot_i / Σ pot`` (its whole potential when the request
        exceeds the fleet's), never more than its potential in the window (from the baseline,
        as declared by :meth:`group_envelope`); the group accepts the sum of what the units
        accept, and its plan is the sum of every unit's plan.
        """
        reason = self._unplannable_reason(request, now)
        if reason is None:
            _, _, pot = self._potential(request.start, request.end)
            per_unit = pot.up_kwh if request.direction is Direction.UP else pot.down_kwh
            total = float(per_unit.sum())
            share = min(1.0, request.amount_kwh / total) if total > ZERO_KWH else 0.0
            amounts = per_unit * share
            unit_requests = {
                int(u): request.model_copy(update={"amount_kwh": float(amounts[u])})
                for u in np.flatnonzero(amounts > ZERO_KWH)
            }
            units = self.apply_requests(unit_requests, now)
            accepted = sum(r.accepted_kwh for r, _ in units.values())
            if accepted < request.amount_kwh * (1 - REL_TOL):
                word = "up" if request.direction is Direction.UP else "down"
                reason = (
                    f"{word}-DR potential of the group in the window is {total:.3f} kWh at "
                    f"{self.problem.confidence:.0%} confidence; the units accepted "
                    f"{accepted:.3f} kWh"
                )
        else:
            units, accepted = {}, 0.0
        response = DrResponse.from_amounts(
            request, GROUP_DEVICE_ID, min(accepted, request.amount_kwh), reason
        )
        honours = (request.request_id,) if response.accepted_kwh > 0 else ()
        return GroupOutcome(response, self.group_plan(honours), units)

    # ------------------------------------------------------------------ plans
    def unit_plan(self, unit: int) -> HeatingPlan:
        """Unit ``unit``'s current DR-aware plan (F3/F4)."""
        honours = tuple(
            dict.fromkeys(
                w.request_ids[unit]
                for w in self._windows
                if unit in w.request_ids and w.amount_kwh[unit] > ZERO_KWH
            )
        )
        return heating_plan(
            self.device_ids[unit],
            self.computed_at,
            self.grid,
            self._plan.power_kw(self.problem.slot_h)[unit],
            self._plan.stored_heat_kwh[unit],
            honours,
            float(self._plan.cost_yen[unit]),
        )

    def baseline_plan(self, unit: int) -> HeatingPlan:
        """Unit ``unit``'s no-DR plan (the reference of every DR amount)."""
        base = self.planner.baseline()
        return heating_plan(
            self.device_ids[unit],
            self.computed_at,
            self.grid,
            base.power_kw(self.problem.slot_h)[unit],
            base.stored_heat_kwh[unit],
        )

    def group_plan(self, honours: tuple[str, ...] = ()) -> HeatingPlan:
        """The fleet's plan as one resource (D6): per slot the sum of every unit's plan."""
        # clip: as in unit_plan, round-off below zero is reported as zero
        power = self._plan.power_kw(self.problem.slot_h).clip(min=0.0).sum(axis=0)
        stored = self._plan.stored_heat_kwh.clip(min=0.0).sum(axis=0)
        cost = float(self._plan.cost_yen.clip(min=0.0).sum())  # clip: round-off, as above
        return heating_plan(
            GROUP_DEVICE_ID, self.computed_at, self.grid, power, stored, honours, cost
        )

    def advance(self, now: datetime | None = None) -> str | None:
        """The day-ahead fleet does not roll: it plans its one grid (nothing to do)."""
        return None

    # ------------------------------------------------------------------ F5
    def _execute(self, heat_kwh: FloatArray) -> Execution:
        """``heat_kwh`` (a plan's heat per slot) executed against the sampled household use,
        the same sample (seeded by ``seed`` and the day) whatever the plan."""
        days, offset = days_covering(self.grid)
        rng = np.random.default_rng(self.seed + self.day.toordinal())
        sample = sample_step_use_l(
            rng,
            self.fleet.persons,
            [day_type_for(d) for d in days],
            self.step_minutes,
            bathtub=self.fleet.bathtub,
        )
        k = 30 // self.step_minutes
        steps = slice(offset * k, (offset + self.grid.n_slots) * k)
        return execute_plan(
            self.problem,
            heat_kwh,
            sample.use_l[:, steps],
            sample.manual_reheat[:, steps],
            self.fleet.reserve_l,
        )

    def _meter(self) -> FloatArray:
        """Electricity per slot (N, T) [kWh] of the current plan executed against sampled use."""
        if self._metered is None:
            self._metered = self._execute(self._plan.heat_kwh).electric_kwh
        return self._metered

    def simulated_meter(self) -> SimulatedMeter:
        """The simulated meter of the grid, with and without DR, for settlement studies.

        The current plan and the baseline plan, both executed against the same sampled
        household use: the difference is exactly what the DR changed (the physical delivery),
        and a shortage under the current plan that the baseline did not have is one the DR
        caused.
        """
        run = self._execute(self._plan.heat_kwh)
        base = self._execute(self.planner.baseline().heat_kwh)
        return SimulatedMeter(
            electric_kwh=run.electric_kwh.copy(),
            baseline_electric_kwh=base.electric_kwh.copy(),
            shortage_steps=run.shortage_steps.copy(),
            baseline_shortage_steps=base.shortage_steps.copy(),
        )

    def rated_inputs_kw(self) -> FloatArray:
        """Each unit's rating (F6): its largest electric input at rated heat output over the
        grid (N,) [kW] (the coldest slot's COP)."""
        p = self.problem
        out: FloatArray = (p.heat_cap_kwh / p.cop / p.slot_h).max(axis=0)
        return out

    def _rated_input_kw(self, k: int) -> FloatArray:
        """Electric input at the rated heat output in slot ``k`` (N,) [kW]:
        ``heat_cap_kwh / cop / slot_h``.

        The heat pump's most heat per slot divided by the slot's COP, per hour — what the unit
        draws while it runs (:func:`drready.physics.heatpump.electric_input_kw`).
        """
        p = self.problem
        out: FloatArray = p.heat_cap_kwh[k] / p.cop[k] / p.slot_h
        return out

    def _phases(self) -> FloatArray:
        """Each unit's on/off phase per slot (N, T), uniform in [0, 1), from the seed and day."""
        if self._phase_cache is None:
            seq = np.random.SeedSequence(
                self.seed + self.day.toordinal(), spawn_key=(_PHASE_STREAM,)
            )
            self._phase_cache = np.random.default_rng(seq).random((self.size, self.grid.n_slots))
        return self._phase_cache

    def _meter_at(self, at: datetime) -> tuple[FloatArray, FloatArray]:
        """Instantaneous power (N,) [W] and cumulative energy since the grid start (N,) [kWh] at
        ``at``: on/off operation inside the slot of ``at`` (see "Instantaneous power")."""
        offset = at - self.grid.start
        if not self.grid.start <= at < self.grid.end:
            raise ValueError(
                f"at {at.isoformat()} is outside the grid {self.grid.start.isoformat()}–"
                f"{self.grid.end.isoformat()}"
            )
        k = offset // SLOT
        x = (offset - k * SLOT) / SLOT
        # clip: execution round-off below zero is no energy, so the counter never runs backwards
        elec = self._meter()[:, : k + 1].clip(min=0.0)
        e = elec[:, k]
        # cumsum adds in slot order, so the counter at the slot's end is exactly the next slot's
        # start; the part of slot k is capped at e_k (its round-off could overshoot by an ulp)
        before = np.cumsum(elec, axis=1)[:, k - 1] if k else np.zeros(self.size)
        rated, phase, slot_h = self._rated_input_kw(k), self._phases()[:, k], self.problem.slot_h
        power_w = on_off_power_kw(e, rated, phase, x, slot_h) * 1000.0
        part = np.minimum(on_off_energy_kwh(e, rated, phase, x, slot_h), e)
        return power_w, before + part

    def power_samples(self, at: datetime, units: list[int] | None = None) -> list[PowerSample]:
        """F5: each unit's instantaneous power and energy counter at ``at`` from a **simulated
        meter**.

        The fleet's current plan is executed against sampled household use (seeded by ``seed``
        and the day) with the units' own safeguards (automatic and manual reheat, full tank;
        :func:`drready.planning.execution.execute_plan`), in ``step_minutes`` steps, which gives
        each unit's electric energy per slot. Inside the slot a unit runs at its rated electric
        input for the share of the slot that energy needs, starting at its own phase (see
        "Instantaneous power" in the module docstring): the sample's power [W] is that input or
        0 — not the slot mean — and its counter [kWh] is the energy used from the grid start to
        ``at``. It stands in for the meter of a real unit and is therefore marked ``MEASURED``;
        it is *not* the plan, and differs from it where the households' use differs from the
        forecast.

        Raises
        ------
        ValueError
            If ``at`` is outside the grid.
        """
        power_w, cumulative = self._meter_at(at)
        return [
            PowerSample(
                device_id=self.device_ids[u],
                timestamp=at,
                power_w=float(max(power_w[u], 0.0)),
                cumulative_energy_kwh=float(max(cumulative[u], 0.0)),
                source=PowerSource.MEASURED,
            )
            for u in self._units(units)
        ]

    def group_power(self, at: datetime) -> tuple[float, float]:
        """F5 of the fleet as one resource: summed instantaneous power [W] and energy counter
        [kWh] at ``at`` from the same simulated meter as :meth:`power_samples`.

        The sum of on/off units: it fluctuates inside a slot around the slot's mean power (the
        metered slot energy over the slot's hours), which it matches on average over the slot.
        """
        power_w, cumulative = self._meter_at(at)
        # clip: as in power_samples, round-off below zero is reported as zero
        return float(power_w.clip(min=0.0).sum()), float(cumulative.clip(min=0.0).sum())
