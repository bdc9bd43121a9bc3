"""One water heater's F1 and F3 in domain terms: envelope, plan and responses (F1, F3, F4).

Wraps the array planner (:mod:`drready.planning.engine`) for a single unit and speaks the unified
data model (:mod:`drready.domain`): :func:`flexibility_envelope` answers "what can you do in this
window" with a :class:`~drready.domain.FlexibilityEnvelope`; :func:`respond_to_requests` turns
:class:`~drready.domain.DrRequest` objects into a :class:`~drready.domain.HeatingPlan` and one
:class:`~drready.domain.DrResponse` per request. Requests the unit cannot plan for (a window
outside its planning horizon, a start before the planning time) are rejected with the reason,
never dropped. :class:`UnitConfig` (the household and its unit) and :class:`PlanInputs` (the
confidence and the stored heat a plan starts from) are validated pydantic models, so every caller
(the CLI, the device simulator, a maker's controller) gets the same ranges and messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import numpy as np
from pydantic import Field

from drready.domain import (
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    SlotGrid,
)
from drready.domain.base import DomainModel, bounded_float
from drready.domain.tolerances import ENERGY_TOL_KWH, REL_TOL, ZERO_KWH
from drready.physics.climate import TOKYO, Climate
from drready.planning.engine import FleetPlan, FleetPlanner, WindowRequest
from drready.planning.problem import (
    DrawForecast,
    Fleet,
    PlanningProblem,
    build_problem,
    default_initial_heat_kwh,
    draw_forecast,
)
from drready.planning.tariff import NIGHT_TOU, Tariff

#: Household sizes the draw model has profiles for [persons] (:mod:`drready.physics.draws`).
PERSONS_RANGE = (1, 4)
#: Tank volumes the tank model covers [L] (common units are 370 and 460 L).
TANK_L_RANGE = (100.0, 1000.0)
#: Confidence levels the safety bounds are defined for (``docs/dr-potential-method.md`` §2):
#: below 0.5 the bound would sit under the expected use; 0.999 keeps the normal quantile finite
#: and the bounds inside the tank.
CONFIDENCE_RANGE = (0.5, 0.999)
#: Stored heat a tank can hold [kWh]: the largest tank (1000 L) heated from 5 °C mains to 90 °C
#: holds ≈ 99 kWh.
INITIAL_HEAT_KWH_RANGE = (0.0, 100.0)


class UnitConfig(DomainModel):
    """A household and its unit: the inputs a maker's controller knows (F1, F3, F6).

    Validated on construction, so the CLI, the device simulator and a maker's controller share
    one set of ranges and messages naming the field, e.g.
    ``persons must be <= 4, got 7 (allowed range: [1, 4])``.
    """

    device_id: DeviceId
    persons: Annotated[int, bounded_float(*PERSONS_RANGE)] = Field(
        description="Household size [persons], 1–4 (the draw model's profiles)."
    )
    tank_l: Annotated[float, bounded_float(*TANK_L_RANGE)] = Field(
        description="Tank volume [L], 100–1000."
    )
    bathtub: bool = Field(default=True, description="Whether the household fills a bathtub.")

    def __init__(
        self, device_id: DeviceId, persons: int, tank_l: float, bathtub: bool = True
    ) -> None:
        # positional construction, UnitConfig(device, 4, 460.0), as callers wrote it for the
        # dataclass this model replaces
        fields = {"device_id": device_id, "persons": persons, "tank_l": tank_l, "bathtub": bathtub}
        super().__init__(**fields)

    def fleet(self) -> Fleet:
        return Fleet.single(self.persons, self.tank_l, self.bathtub)


class PlanInputs(DomainModel):
    """What a unit's day-ahead plan starts from besides its configuration (F1, F3): the
    confidence of its potential and the stored heat at the planning time (``None``: a typical
    quarter-full tank). Validated like :class:`UnitConfig`; pass the fields to
    :meth:`UnitPlanner.day_ahead`."""

    confidence: Annotated[float, bounded_float(*CONFIDENCE_RANGE)] = 0.95
    initial_heat_kwh: Annotated[float, bounded_float(*INITIAL_HEAT_KWH_RANGE)] | None = None


@dataclass(frozen=True)
class PlanOutcome:
    """A unit's answer to DR requests: the plan (F4), one response per request, and the number
    of slots in which the plan expects the tank to run dry (0 unless even full power cannot
    keep up with the forecast use — reported, never hidden)."""

    heating_plan: HeatingPlan
    responses: list[DrResponse]
    shortage_slots: int


@dataclass(frozen=True)
class UnitPlanner:
    """A unit's planning problem and fast planner over one grid."""

    config: UnitConfig
    problem: PlanningProblem
    planner: FleetPlanner
    computed_at: datetime

    @classmethod
    def day_ahead(
        cls,
        config: UnitConfig,
        day: date,
        *,
        initial_heat_kwh: float | None = None,
        climate: Climate = TOKYO,
        tariff: Tariff = NIGHT_TOU,
        confidence: float = 0.95,
        n_slots: int = 64,
    ) -> UnitPlanner:
        """Plan from 23:00 of the day before ``day`` (the start of its night heating).

        ``initial_heat_kwh`` is the stored heat then [kWh]; a typical quarter-full tank if None.
        """
        start = SlotGrid.day_ahead(day, n_slots=n_slots).start
        return cls.at(
            config,
            start,
            initial_heat_kwh=initial_heat_kwh,
            n_slots=n_slots,
            climate=climate,
            tariff=tariff,
            confidence=confidence,
        )

    @classmethod
    def at(
        cls,
        config: UnitConfig,
        start: datetime,
        *,
        initial_heat_kwh: float | None = None,
        n_slots: int = 64,
        climate: Climate = TOKYO,
        tariff: Tariff = NIGHT_TOU,
        confidence: float = 0.95,
        forecast: DrawForecast | None = None,
    ) -> UnitPlanner:
        """Plan ``n_slots`` slots from any aligned slot start ``start`` (a running unit's re-plan).

        ``initial_heat_kwh`` is the stored heat at ``start`` [kWh]; a typical quarter-full tank
        if None. The draw forecast (``forecast``, by default the national schedule of
        :func:`~drready.planning.problem.draw_forecast`) and the end-of-horizon need are taken
        from the calendar days the grid covers, whatever time of day it starts at.

        Raises
        ------
        ValueError
            If ``start`` is naive or not on a 30-minute boundary, or ``n_slots`` is not 1–96.
        """
        grid = SlotGrid(start=start, n_slots=n_slots)
        fleet = config.fleet()
        q0 = (
            default_initial_heat_kwh(fleet, grid, climate)
            if initial_heat_kwh is None
            else np.array([float(initial_heat_kwh)])
        )
        problem = build_problem(
            fleet,
            grid,
            q0,
            draw_forecast(fleet, grid) if forecast is None else forecast,
            climate=climate,
            tariff=tariff,
            confidence=confidence,
        )
        return cls(config, problem, FleetPlanner(problem), grid.start)

    @property
    def grid(self) -> SlotGrid:
        return self.problem.grid

    def flexibility_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1: the DR potential of the window ``[start, end)`` (must lie inside the grid)."""
        s, e = self.grid.window_indices(start, end)
        pot = self.planner.potential(s, e)
        starts = self.grid.starts()[s:e]
        slots = tuple(
            EnvelopeSlot(
                start=starts[j],
                baseline_kw=float(pot.baseline_kw[0, j]),
                min_kw=float(pot.min_kw[0, j]),
                max_kw=float(pot.max_kw[0, j]),
                cum_min_kwh=float(pot.cum_min_kwh[0, j]),
                cum_max_kwh=float(pot.cum_max_kwh[0, j]),
            )
            for j in range(e - s)
        )
        return FlexibilityEnvelope(
            device_id=self.config.device_id,
            computed_at=self.computed_at,
            window_start=starts[0],
            window_end=end,
            confidence=self.problem.confidence,
            up_kwh=float(pot.up_kwh[0]),
            down_kwh=float(pot.down_kwh[0]),
            slots=slots,
        )

    def baseline_plan(self) -> HeatingPlan:
        """The no-DR plan (F3 without requests)."""
        return self._heating_plan(self.planner.baseline(), ())

    def respond_to_requests(self, requests: list[DrRequest]) -> PlanOutcome:
        """F2→F3/F4: accept each request up to the potential left, re-plan, and answer."""
        planned: list[tuple[int, DrRequest, WindowRequest]] = []
        responses: dict[int, DrResponse] = {}
        for k, req in enumerate(requests):
            reason = self._unplannable_reason(req)
            if reason is not None:
                responses[k] = DrResponse.from_amounts(req, self.config.device_id, 0.0, reason)
                continue
            s, e = self.grid.window_indices(req.start, req.end)
            planned.append((k, req, WindowRequest(req.direction, s, e, np.array([req.amount_kwh]))))
        plan = self.planner.plan([w for _, _, w in planned])
        for j, (k, req, _) in enumerate(planned):
            acc = min(float(plan.accepted_kwh[j, 0]), req.amount_kwh)
            pot = float(plan.potential_kwh[j, 0])
            reason = None
            if acc < req.amount_kwh * (1 - REL_TOL):
                word = "up" if req.direction is Direction.UP else "down"
                reason = (
                    f"{word}-DR potential in the window is {pot:.3f} kWh at "
                    f"{self.problem.confidence:.0%} confidence (after earlier requests)"
                )
            responses[k] = DrResponse.from_amounts(req, self.config.device_id, acc, reason)
        honoured = tuple(
            req.request_id
            for j, (_, req, _) in enumerate(planned)
            if plan.accepted_kwh[j, 0] > ZERO_KWH
        )
        return PlanOutcome(
            heating_plan=self._heating_plan(plan, honoured),
            responses=[responses[k] for k in range(len(requests))],
            shortage_slots=int((plan.stored_heat_kwh[0, 1:] < -ENERGY_TOL_KWH).sum()),
        )

    def _unplannable_reason(self, req: DrRequest) -> str | None:
        if req.start < self.computed_at:
            return (
                f"start {req.start.isoformat()} is before the planning time "
                f"{self.computed_at.isoformat()}"
            )
        if not self.grid.contains(req.start, req.end):
            return (
                f"window {req.start.isoformat()}–{req.end.isoformat()} is outside the planning "
                f"horizon {self.grid.start.isoformat()}–{self.grid.end.isoformat()}"
            )
        return None

    def _heating_plan(self, plan: FleetPlan, honours: tuple[str, ...]) -> HeatingPlan:
        starts = self.grid.starts()
        power = plan.power_kw(self.problem.slot_h)[0]
        stored = plan.stored_heat_kwh[0]
        slots = tuple(
            PlanSlot.from_power(
                starts[t], float(max(power[t], 0.0)), float(max(stored[t + 1], 0.0))
            )
            for t in range(self.grid.n_slots)
        )
        return HeatingPlan(
            device_id=self.config.device_id,
            created_at=self.computed_at,
            grid=self.grid,
            slots=slots,
            honours=honours,
            cost_yen=float(max(plan.cost_yen[0], 0.0)),
        )
