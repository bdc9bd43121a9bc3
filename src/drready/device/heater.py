"""One live, simulated DR-ready heat pump water heater (EcoCute) in domain terms (F1–F6).

:class:`SimulatedWaterHeater` is the thing an ECHONET Lite device node (route i) and a maker
cloud (route ii) wrap: a unit with a clock, a tank whose state moves with time, a heating plan
it follows, and the DR functions of the study group's requirements:

* F1 :meth:`~SimulatedWaterHeater.flexibility_envelope` — DR potential of a window, planned from
  the current slot and the current stored heat;
* F2/F3 :meth:`~SimulatedWaterHeater.submit_requests` — DR requests answered and a re-plan that
  honours them together with earlier accepted requests still ahead;
* F4 :meth:`~SimulatedWaterHeater.heating_plan`; F5 :meth:`~SimulatedWaterHeater.power_sample`
  (measured: it is the simulated unit's own meter); F6 :attr:`~SimulatedWaterHeater.device_id`;
* the live values and settings of ECHONET Lite class 0x026B, including the energy-shift EPCs
  0xC7–0xCF (Release I and later), mapped onto F1–F3 by :mod:`drready.device.energy_shift`.

Physics. Every public method first calls :meth:`~SimulatedWaterHeater.advance`, which steps the
tank from the last simulated instant to ``clock.now()`` in ``step_minutes`` steps by the one tank
step of every simulated unit, :func:`drready.physics.tank_step.tank_step`: the plan's heat rate in
each 30-minute slot; an automatic reheat at full output while the usable hot water is below the
reserve; full output during a manual reheat (沸き増し); heat that does not fit a full tank is not
produced; a draw the tank cannot serve is a shortage (湯切れ) and is counted. Realised use is
sampled per local calendar day with :func:`drready.physics.draws.sample_step_use_l`, seeded by
``seed + day.toordinal()``, so a day's draws are the same whenever that day is simulated. Heat
added, delivered, lost and discarded are totalled so that the energy balance can be checked
(:meth:`~SimulatedWaterHeater.energy_balance`).

Re-planning on a rolling horizon (:mod:`drready.planning.rolling`). The unit plans from its
current slot and stored heat (:meth:`drready.planning.unit.UnitPlanner.at`) over
:data:`HORIZON_SLOTS` slots (48 h: now + 36 h + the longest window): every day at the standard
time to start heating (EPC 0xC8), whenever its plan would no longer cover now + 24 h, and on
every DR request and setting change. F1 and F2 are answered on that horizon as it is at the
moment they are asked, so at any time of day the unit answers for any window that starts within
the next 36 h (:data:`~drready.planning.rolling.LEAD_TIME`); a window starting later is refused
(F1) or rejected (F2) with a reason naming the horizon. Accepted requests still ahead are handed
to every re-plan with their accepted amount; a request whose window has already begun continues
with the energy the previous plan promised for the rest of its window (the remainder's amount
is that energy minus the new baseline's). What the unit expects of its household is its
:class:`~drready.planning.rolling.Forecaster` (the national schedule), which observes every
executed slot's realised use — the hook for learning.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from drready.device.clock import Clock
from drready.device.energy_shift import (
    REPORT_HOURS,
    SHIFT_WINDOW,
    ShiftState,
    allowed_shift_hours,
    check_energy_shifts,
    check_shift_number,
    check_standard_start_hour,
    energy_per_hour_wh,
    expected_energy_wh,
    shift_request,
    shift_window,
    target_day,
)
from drready.domain import (
    DEFAULT_TZ,
    SLOT,
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    FlexibilityEnvelope,
    HeatingPlan,
    PowerSample,
    PowerSource,
    SlotGrid,
)
from drready.domain.tolerances import ZERO_KWH
from drready.physics.climate import TOKYO, Climate
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.physics.tank_step import step_retention, tank_step
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning import rolling
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.problem import relax_problem, seasonal_boil_temp_c
from drready.planning.tariff import NIGHT_TOU, Tariff
from drready.planning.unit import UnitConfig, UnitPlanner

__all__ = [
    "ANNOUNCE_REMAINING_STEP_L",
    "DAYTIME_HOURS",
    "HORIZON_SLOTS",
    "SUPPLY_TEMP_DEFAULT_C",
    "SUPPLY_TEMP_RANGE_C",
    "EnergyBalance",
    "SimulatedWaterHeater",
    "SlotRecord",
]

HORIZON_SLOTS: Final = rolling.HORIZON_SLOTS
"""Slots of every plan (48 h): the rolling horizon, now + 36 h + the longest window; from the
standard start time it covers the whole next day's shift windows."""
DAYTIME_HOURS: Final = (7, 23)
"""``[from, to)`` local hours in which heating counts as daytime (re)heating."""
ANNOUNCE_REMAINING_STEP_L: Final = 10
"""Change of remaining hot water [L] that makes ``remaining_hot_water_l`` announce itself."""
SUPPLY_TEMP_DEFAULT_C: Final = 40
"""Temperature of supplied water setting at construction [°C] (EPC 0xD1): the temperature the
national schedule counts hot-water use at (:data:`~drready.physics.water.USE_TEMP_C`)."""
SUPPLY_TEMP_RANGE_C: Final = (35, 60)
"""Settings of 0xD1 the simulated unit accepts [°C] (the MRA allows 0–100; a unit supplies
between lukewarm and its 60 °C scald limit; below the boil-up temperature, 65–80 °C)."""
_HISTORY_SLOTS = 48 * 14


@dataclass(frozen=True)
class SlotRecord:
    """What the unit did in one executed 30-minute slot.

    ``planned_electric_kwh`` is what the plan(s) in force asked for in the simulated steps of the
    slot; ``electric_kwh`` what the heat pump used. They differ only in steps with a safety or
    manual reheat (``forced_steps``) or where a full tank refused heat (``clipped_steps``).
    """

    start: datetime
    planned_electric_kwh: float
    electric_kwh: float
    forced_steps: int
    clipped_steps: int
    shortage_steps: int


@dataclass(frozen=True)
class EnergyBalance:
    """Heat totals since construction [kWh]; ``residual_kwh`` should be ≈ 0.

    ``stored − initial = added − delivered − loss − discarded``; ``discarded`` is heat above a
    re-evaluated tank capacity when a re-plan's warmer mains temperature lowers ``Q_max``.
    """

    initial_heat_kwh: float
    stored_heat_kwh: float
    heat_added_kwh: float
    heat_delivered_kwh: float
    heat_loss_kwh: float
    heat_discarded_kwh: float
    unmet_heat_kwh: float
    electric_kwh: float

    @property
    def residual_kwh(self) -> float:
        return (self.stored_heat_kwh - self.initial_heat_kwh) - (
            self.heat_added_kwh
            - self.heat_delivered_kwh
            - self.heat_loss_kwh
            - self.heat_discarded_kwh
        )


@dataclass
class _Step:
    """The outcome of the step in progress ``[t, t + step)``, decided at ``t``."""

    heat_kwh: float
    electric_kwh: float
    planned_electric_kwh: float
    draw_kwh: float
    use_l: float
    delivered_kwh: float
    loss_kwh: float
    q_next: float
    forced: bool
    clipped: bool
    shortage: bool


@dataclass
class _Active:
    request: DrRequest
    response: DrResponse


@dataclass
class _SlotAcc:
    start: datetime
    use_l: float = 0.0
    planned: float = 0.0
    electric: float = 0.0
    forced: int = 0
    clipped: int = 0
    shortage: int = 0


def _floor(dt: datetime, minutes: int) -> datetime:
    """``dt`` floored to a multiple of ``minutes`` since the epoch (in its own zone)."""
    seconds = minutes * 60
    ts = dt.timestamp()
    return datetime.fromtimestamp(ts - ts % seconds, tz=dt.tzinfo)


class SimulatedWaterHeater:
    """A simulated DR-ready heat pump water heater on a clock (F1–F6).

    Parameters
    ----------
    config : UnitConfig
        Device id, household size, tank volume [L], bathtub.
    clock : Clock
        Source of the current time (:class:`~drready.device.clock.SimClock` in tests).
    seed : int
        Seed of the realised hot-water use (day ``d`` uses ``seed + d.toordinal()``).
    climate, tariff : Climate, Tariff
        Weather and the customer's tariff used for planning.
    confidence : float
        Confidence of the safety bounds and of the declared DR potential [-].
    initial_heat_kwh : float or None
        Stored heat above mains at construction [kWh]; None: what a day-ahead baseline plan
        expects at this time of day.
    step_minutes : int
        Simulation step [min]; must divide 30.
    standard_start_hour : int
        EPC 0xC8, standard time to start heating: 20–24 or 1 [h] (24 = midnight).
    energy_shifts : int
        EPC 0xC9, number of daytime energy shifts the unit supports, 1 or 2.
    forecaster : Forecaster, optional
        What the unit expects of its household, and the hook for learning (it observes every
        executed slot's use); the national schedule by default.

    Energy shift (ECHONET Lite 0x026B, EPC 0xC7–0xCF)
    --------------------------------------------------
    :meth:`energy_shift_participation` (0xC7), :meth:`shift_time` / :meth:`set_shift_time`
    (0xCA/0xCD), :meth:`expected_energy_at_shift_wh` (0xCB/0xCE) and
    :meth:`energy_per_hour_at_shift_wh` (0xCC/0xCF) follow the mapping onto F1–F3 of
    :mod:`drready.device.energy_shift` (target day, shift windows, the request a shift time
    makes, the MRA's clearing rules); the unit supplies the potential and re-plans.
    """

    def __init__(
        self,
        config: UnitConfig,
        clock: Clock,
        *,
        seed: int = 0,
        climate: Climate = TOKYO,
        tariff: Tariff = NIGHT_TOU,
        confidence: float = 0.95,
        initial_heat_kwh: float | None = None,
        step_minutes: int = 5,
        standard_start_hour: int = 22,
        energy_shifts: int = 1,
        forecaster: rolling.Forecaster | None = None,
    ) -> None:
        if isinstance(step_minutes, bool) or step_minutes <= 0 or 30 % step_minutes:
            raise ValueError(f"step_minutes must divide 30 (1, 5, 10, 15, 30), got {step_minutes}")
        check_standard_start_hour(standard_start_hour)
        check_energy_shifts(energy_shifts)
        self._config = config
        self._clock = clock
        self._seed = int(seed)
        self._climate = climate
        self._tariff = tariff
        self._confidence = confidence
        self._step_min = int(step_minutes)
        self._step = timedelta(minutes=step_minutes)
        self._step_h = step_minutes / 60.0
        self._k = 30 // step_minutes
        self._standard_start_hour = standard_start_hour
        self._energy_shifts = energy_shifts
        self._forecaster = forecaster or rolling.ScheduleForecaster()
        self._fleet = config.fleet()
        self._reserve_l = float(self._fleet.reserve_l)
        self._cap_step_kwh = self._fleet.heat_pump.heat_output_kw * self._step_h

        self.on_change: Callable[[set[str]], None] | None = None
        self._automatic_heating = True
        self._daytime_reheating_permitted = True
        self._supply_c = float(SUPPLY_TEMP_DEFAULT_C)
        self._shift = ShiftState()
        self._active: list[_Active] = []
        self._responses: list[DrResponse] = []
        self._draws: dict[date, tuple[list[float], list[bool]]] = {}
        self._history: deque[SlotRecord] = deque(maxlen=_HISTORY_SLOTS)
        self._busy = False
        self._plan_version = 0
        self._fresh: tuple[tuple[datetime, datetime, int], UnitPlanner] | None = None

        now = clock.now()
        self._t = _floor(now, self._step_min)
        self._q = self._default_heat(self._t) if initial_heat_kwh is None else initial_heat_kwh
        if not (math.isfinite(self._q) and self._q >= 0.0):
            raise ValueError(f"initial_heat_kwh must be finite and >= 0, got {initial_heat_kwh}")
        self._added = self._delivered = self._loss = self._discarded = 0.0
        self._unmet = self._electric = 0.0
        self._shortages = 0
        self._slot = _SlotAcc(_floor(self._t, 30))
        self._replan([])
        self._q0 = self._q  # after a possible clip to the first plan's capacity
        self._discarded = 0.0
        self._decide()
        self._announced = self._live()

    # ------------------------------------------------------------------ identity and config
    @property
    def device_id(self) -> DeviceId:
        """F6: the unit's identity (ECHONET Lite maker code + serial)."""
        return self._config.device_id

    @property
    def config(self) -> UnitConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def now(self) -> datetime:
        """The simulated instant the state is at (a step boundary, ≤ ``clock.now()``)."""
        self.advance()
        return self._t

    # ------------------------------------------------------------------ simulation
    def advance(self) -> None:
        """Step the physics from the last simulated instant to ``clock.now()``.

        Whole steps only: the state is at the last step boundary not after ``now``; the live
        values describe the step in progress. Re-plans at the standard start time and when the
        plan would no longer cover now + 24 h; clears shift times whose window has begun.
        Calls :attr:`on_change` with the names of the live values that changed.
        """
        if self._busy:
            return
        now = self._clock.now()
        if now < self._t + self._step:
            return
        self._busy = True
        try:
            while self._t + self._step <= now:
                self._apply_step()
                if self._t == self._slot_start_of(self._t):
                    self._on_slot_boundary()
                self._decide()
        finally:
            self._busy = False
        self._notify()

    def _slot_start_of(self, t: datetime) -> datetime:
        return _floor(t, 30)

    def _apply_step(self) -> None:
        d = self._cur
        self._added += d.heat_kwh
        self._delivered += d.delivered_kwh
        self._loss += d.loss_kwh
        self._unmet += d.draw_kwh - d.delivered_kwh
        self._electric += d.electric_kwh
        self._shortages += d.shortage
        acc = self._slot
        acc.use_l += d.use_l
        acc.planned += d.planned_electric_kwh
        acc.electric += d.electric_kwh
        acc.forced += d.forced
        acc.clipped += d.clipped
        acc.shortage += d.shortage
        self._q = d.q_next
        self._t = self._t + self._step

    def _on_slot_boundary(self) -> None:
        acc = self._slot
        self._history.append(
            SlotRecord(acc.start, acc.planned, acc.electric, acc.forced, acc.clipped, acc.shortage)
        )
        self._forecaster.observe(acc.start, slice(0, 1), np.array([acc.use_l]))
        t = self._t
        self._slot = _SlotAcc(t)
        self._shift.on_slot_start(t)
        self._active = [a for a in self._active if a.request.end > t]
        local = t.astimezone(self._plan.grid.zoneinfo)
        daily = local.minute == 0 and local.hour == self._standard_start_hour % 24
        if daily or self._plan.grid.end < t + timedelta(hours=24) + SLOT:
            self._replan([])

    def _decide(self) -> None:
        """Decide the step ``[t, t + step)`` from the state at ``t`` (:func:`tank_step`)."""
        s = int((self._t - self._plan_start).total_seconds() // 1800)
        use_l, manual = self._draw_at(self._t)
        planned = self._plan_heat_step[s]
        draw = use_l * self._per_l
        out = tank_step(
            self._q,
            planned,
            self._cap_step_kwh,
            draw,
            self._a_step[s],
            self._q_max,
            self._reserve_kwh,
            manual,
        )
        cop = self._cop[s]
        heat = float(out.heat_kwh)
        self._cur = _Step(
            heat_kwh=heat,
            electric_kwh=heat / cop,
            planned_electric_kwh=planned / cop,
            draw_kwh=draw,
            use_l=use_l,
            delivered_kwh=float(out.delivered_kwh),
            loss_kwh=float(out.loss_kwh),
            q_next=float(out.stored_heat_kwh),
            forced=bool(out.forced),
            clipped=bool(out.clipped),
            shortage=bool(out.shortage),
        )

    def _draw_at(self, t: datetime) -> tuple[float, bool]:
        local = t.astimezone(self._plan.grid.zoneinfo)
        day = local.date()
        if day not in self._draws:
            if len(self._draws) > 3:
                for old in sorted(self._draws)[:-2]:
                    del self._draws[old]
            rng = np.random.default_rng(self._seed + day.toordinal())
            sample = sample_step_use_l(
                rng,
                np.array([self._config.persons]),
                [day_type_for(day)],
                self._step_min,
                bathtub=bool(self._config.bathtub),
            )
            self._draws[day] = (
                [float(x) for x in sample.use_l[0]],
                [bool(x) for x in sample.manual_reheat[0]],
            )
        use, manual = self._draws[day]
        i = min((local.hour * 60 + local.minute) // self._step_min, len(use) - 1)
        return use[i], manual[i]

    def _default_heat(self, t: datetime) -> float:
        local = t.astimezone(ZoneInfo(DEFAULT_TZ))
        day = local.date() + timedelta(days=1 if local.hour >= 23 else 0)
        planner = UnitPlanner.day_ahead(
            self._config,
            day,
            climate=self._climate,
            tariff=self._tariff,
            confidence=self._confidence,
        )
        idx = planner.grid.index_of(_floor(t, 30))
        stored = planner.planner.baseline().stored_heat_kwh[0]
        return float(max(stored[idx], 0.0))

    # ------------------------------------------------------------------ planning
    def _heat_mask(self, grid: SlotGrid) -> np.ndarray | None:
        """1 where the plan may heat, 0 where it may not; None when it may heat everywhere."""
        if not self._automatic_heating:
            return np.zeros(grid.n_slots)
        if self._daytime_reheating_permitted:
            return None
        lo, hi = DAYTIME_HOURS
        return np.array([0.0 if lo <= s.hour < hi else 1.0 for s in grid.starts()])

    def _settings_key(self) -> int:
        return int(self._automatic_heating) + 2 * int(self._daytime_reheating_permitted)

    def _planner(self) -> UnitPlanner:
        """A planner from the current slot and stored heat over the rolling horizon."""
        start = _floor(self._t, 30)
        n = HORIZON_SLOTS
        key = (self._t, start + n * SLOT, self._settings_key())
        if self._fresh is not None and self._fresh[0] == key:
            return self._fresh[1]
        grid = SlotGrid(start=start, n_slots=n)
        up = UnitPlanner.at(
            self._config,
            start,
            initial_heat_kwh=self._q,
            n_slots=n,
            climate=self._climate,
            tariff=self._tariff,
            confidence=self._confidence,
            forecast=self._forecaster.forecast(self._fleet, grid, slice(0, 1)),
        )
        mask = self._heat_mask(up.grid)
        if mask is not None:
            prob = up.problem
            prob = relax_problem(
                replace(prob, heat_cap_kwh=prob.heat_cap_kwh * mask[:, None], staircase_cache=None)
            )
            up = UnitPlanner(self._config, prob, FleetPlanner(prob), up.computed_at)
        self._fresh = (key, up)
        return up

    def _carried(self, planner: UnitPlanner) -> list[DrRequest]:
        """Accepted requests still ahead, as requests to hand to a re-plan from ``planner``."""
        start = planner.grid.start
        out: list[DrRequest] = []
        base: np.ndarray | None = None
        for a in self._active:
            req, acc = a.request, a.response.accepted_kwh
            if acc <= ZERO_KWH or req.end <= start:
                continue
            if req.start >= start:
                out.append(req.model_copy(update={"amount_kwh": acc}))
                continue
            # in progress: keep the energy the previous plan promised for the rest of it
            old = self._plan
            if not (old.grid.contains(start, req.end) and planner.grid.contains(start, req.end)):
                continue
            if base is None:
                base = planner.planner.baseline().electric_kwh[0]
            i, j = planner.grid.window_indices(start, req.end)
            promised = old.window_energy_kwh(start, req.end)
            new_base = float(base[i:j].sum())
            amount = promised - new_base if req.direction is Direction.UP else new_base - promised
            if amount > ZERO_KWH:
                out.append(req.model_copy(update={"start": start, "amount_kwh": amount}))
        return out

    def _replan(self, requests: list[DrRequest]) -> list[DrResponse]:
        planner = self._planner()
        q_max = float(planner.problem.q_max_kwh[0])
        if self._q > q_max:
            self._discarded += self._q - q_max
            self._q = q_max
        carried = self._carried(planner)
        outcome = planner.respond_to_requests(carried + requests)
        self._plan = outcome.heating_plan
        self._plan_version += 1
        prob = planner.problem
        self._plan_start = planner.grid.start
        self._q_max = q_max
        self._mains_c = float(prob.mains_temp_c[0])
        self._per_l = float(HEAT_KWH_PER_L_K * (USE_TEMP_C - self._mains_c))
        self._reserve_kwh = self._reserve_l * self._per_l
        self._boil_c = float(seasonal_boil_temp_c(prob.mains_temp_c)[0])
        cop = prob.cop[:, 0]
        self._cop = [float(c) for c in cop]
        self._a_step = [float(a) for a in step_retention(prob.retention[:, 0], self._k)]
        self._plan_heat_step = [
            s.energy_kwh * float(c) / self._k for s, c in zip(self._plan.slots, cop, strict=True)
        ]
        return outcome.responses[len(carried) :]

    def _submit(self, requests: list[DrRequest]) -> list[DrResponse]:
        answers = {a.request.request_id: a.response for a in self._active}
        fresh: dict[str, DrRequest] = {}  # first of each id not being honoured, in order
        now = self._clock.now()
        for req in requests:
            if req.request_id in answers:
                continue
            too_far = rolling.lead_reason(req.start, now)
            if too_far is not None:  # beyond the rolling horizon: rejected, not planned
                resp = DrResponse.from_amounts(req, self.device_id, 0.0, too_far)
                self._responses.append(resp)
                answers[req.request_id] = resp
                continue
            fresh.setdefault(req.request_id, req)
        if fresh:
            responses = self._replan(list(fresh.values()))
            for req, resp in zip(fresh.values(), responses, strict=True):
                self._responses.append(resp)
                answers[req.request_id] = resp
                if resp.accepted_kwh > ZERO_KWH:
                    self._active.append(_Active(req, resp))
            self._decide()
        return [answers[req.request_id] for req in requests]

    def _withdraw(self, request_ids: set[str]) -> None:
        before = len(self._active)
        self._active = [a for a in self._active if a.request.request_id not in request_ids]
        if len(self._active) != before:
            self._replan([])
            self._decide()

    # ------------------------------------------------------------------ F1–F5
    def _horizon(self) -> tuple[datetime, datetime]:
        h0 = _floor(self._t, 30)
        return h0, h0 + HORIZON_SLOTS * SLOT

    def horizon(self) -> tuple[datetime, datetime]:
        """``[current slot start, + 48 h)``: the rolling horizon, where windows for F1/F2 may
        lie (those starting within the next 36 h, :func:`~drready.planning.rolling.lead_reason`)."""
        self.advance()
        return self._horizon()

    def flexibility_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1: DR potential of ``[start, end)``, planned from the current slot and stored heat.

        The envelope is relative to the unit's no-DR baseline from the current state; it does not
        subtract requests accepted earlier (a request sent against it learns that from its
        response).

        Raises
        ------
        ValueError
            If the window is not aligned, not inside the rolling horizon, or starts more than
            36 h ahead (the message names the window and the horizon).
        """
        self.advance()
        h0, h1 = self._horizon()
        horizon = SlotGrid(start=h0, n_slots=HORIZON_SLOTS)
        if not horizon.contains(start, end):
            raise ValueError(
                f"window [{start.isoformat()}, {end.isoformat()}) is not an aligned window "
                f"inside the current plan horizon [{h0.isoformat()}, {h1.isoformat()})"
            )
        too_far = rolling.lead_reason(start, self._clock.now())
        if too_far is not None:
            raise ValueError(too_far)
        return self._planner().flexibility_envelope(start, end)

    def submit_requests(self, requests: list[DrRequest]) -> list[DrResponse]:
        """F2/F3: answer ``requests`` and re-plan from the current state.

        Earlier accepted requests still ahead are honoured first; each new request is accepted
        up to the potential left (partial or rejected with the reason otherwise, as
        :meth:`UnitPlanner.respond_to_requests` does). A request whose id the unit is already
        honouring (accepted, window not over, not withdrawn) — or that comes twice in
        ``requests`` — is answered with the answer it got, not planned twice, so a controller
        may send a request again (ECHONET Lite 0xF0 carries its id).
        """
        self.advance()
        responses = self._submit(list(requests))
        self._notify()
        return responses

    def active_requests(self) -> list[DrRequest]:
        """Accepted (in full or in part) requests whose window has not ended."""
        self.advance()
        return [a.request for a in self._active]

    def responses(self) -> list[DrResponse]:
        """Every response given, oldest first."""
        self.advance()
        return list(self._responses)

    def heating_plan(self) -> HeatingPlan:
        """F4: the plan in force (DR-aware)."""
        self.advance()
        return self._plan

    def power_sample(self) -> PowerSample:
        """F5: current power and the cumulative energy counter (the unit's own meter)."""
        self.advance()
        return PowerSample(
            device_id=self.device_id,
            timestamp=self._clock.now(),
            power_w=self._power_w(),
            cumulative_energy_kwh=self.cumulative_energy_kwh,
            source=PowerSource.MEASURED,
        )

    def slot_history(self) -> list[SlotRecord]:
        """Executed slots, oldest first (the last 14 days)."""
        self.advance()
        return list(self._history)

    def energy_balance(self) -> EnergyBalance:
        """Heat totals since construction, for checking the energy balance."""
        self.advance()
        return EnergyBalance(
            initial_heat_kwh=self._q0,
            stored_heat_kwh=self._q,
            heat_added_kwh=self._added,
            heat_delivered_kwh=self._delivered,
            heat_loss_kwh=self._loss,
            heat_discarded_kwh=self._discarded,
            unmet_heat_kwh=self._unmet,
            electric_kwh=self._electric,
        )

    # ------------------------------------------------------------------ live values (ECHONET)
    def _power_w(self) -> float:
        return self._cur.electric_kwh / self._step_h * 1000.0

    @property
    def stored_heat_kwh(self) -> float:
        """Heat stored above mains temperature [kWh]."""
        self.advance()
        return self._q

    @property
    def heating(self) -> bool:
        """Whether the heat pump runs now (EPC 0xB2)."""
        self.advance()
        return self._cur.heat_kwh > 0.0

    @property
    def supplying_hot_water(self) -> bool:
        """Whether hot water is being drawn now (EPC 0x90 hot water supply status)."""
        self.advance()
        return self._cur.draw_kwh > 0.0

    @property
    def remaining_hot_water_l(self) -> int:
        """Usable hot water at 40 °C [L]: the stored heat mixed down to the temperature the
        household's use is counted at (:data:`~drready.physics.water.USE_TEMP_C`). Not an
        ECHONET Lite EPC: 0xE1 is :attr:`hot_water_in_tank_l`, 0xD8
        :attr:`suppliable_hot_water_l`."""
        self.advance()
        return int(self._q / self._per_l)

    @property
    def hot_water_in_tank_l(self) -> int:
        """Hot water in the tank [L] (EPC 0xE1, "measured amount of water remaining in tank",
        残湯量): the volume of the tank model's hot layer, water at the boil-up temperature
        above the thermocline (:mod:`drready.physics.tank`),
        ``Q / (c · (T_boil − T_mains))`` with ``Q`` the stored heat above mains. At most the
        usable 90 % of the tank (``Q ≤ Q_max``), so never above 0xE2."""
        self.advance()
        return int(self._q / (HEAT_KWH_PER_L_K * (self._boil_c - self._mains_c)))

    @property
    def suppliable_hot_water_l(self) -> int:
        """Hot water that can still be supplied [L] (EPC 0xD8, "remaining hot water volume",
        給湯可能湯量): litres at the supply temperature setting :attr:`supply_temp_c` (EPC 0xD1)
        the stored heat gives when the hot layer is mixed with mains water at the tap outlet,
        ``Q / (c · (T_supply − T_mains))`` — mixing conserves heat above mains, and the tank
        model serves a draw until ``Q`` is spent. 0 when the hot layer is not hotter than the
        setting (it cannot supply water at that temperature)."""
        self.advance()
        if self._boil_c <= self._supply_c:
            return 0
        return int(self._q / (HEAT_KWH_PER_L_K * (self._supply_c - self._mains_c)))

    @property
    def supply_temp_c(self) -> int:
        """Temperature of supplied water setting [°C] (EPC 0xD1): what 0xD8 counts litres at.
        It does not change the household's use, which is heat at the point of use (the
        national schedule's litres at 40 °C), only how many litres at the setting that is."""
        return round(self._supply_c)

    @supply_temp_c.setter
    def supply_temp_c(self, value: int) -> None:
        lo, hi = SUPPLY_TEMP_RANGE_C
        if isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"supply_temp_c must be within {lo}–{hi} °C, got {value!r}")
        self.advance()
        self._supply_c = float(value)
        self._notify()

    @property
    def full_hot_water_l(self) -> int:
        """Usable hot water at 40 °C of a full tank [L] (the upper end of
        ``remaining_hot_water_l``)."""
        self.advance()
        return int(self._q_max / self._per_l)

    @property
    def tank_capacity_l(self) -> int:
        """Tank volume [L] (EPC 0xE2)."""
        return round(self._config.tank_l)

    @property
    def rated_power_w(self) -> tuple[int, int, int]:
        """Rated electric input of the heat pump, winter / intermediate / summer [W]
        (EPC 0xDB–0xDD), from the JIS test points of the heat pump spec."""
        w, i, s = (round(x * 1000.0) for x in self._fleet.heat_pump.rated_input_kw)
        return (w, i, s)

    @property
    def instantaneous_power_w(self) -> int:
        """Electric power of the step in progress [W] (EPC 0x84)."""
        self.advance()
        return round(self._power_w())

    @property
    def cumulative_energy_kwh(self) -> float:
        """Electric energy since construction [kWh] (EPC 0x85), counting the running step up
        to ``clock.now()``."""
        self.advance()
        part = (self._clock.now() - self._t) / self._step
        return self._electric + self._cur.electric_kwh * min(max(part, 0.0), 1.0)

    @property
    def shortage_count(self) -> int:
        """Simulation steps in which a draw was not fully served (湯切れ)."""
        self.advance()
        return self._shortages

    @property
    def boil_temp_c(self) -> int:
        """Boil-up temperature [°C] (the seasonal automatic mode): the hot layer's."""
        self.advance()
        return round(self._boil_c)

    @property
    def automatic_heating(self) -> bool:
        """Automatic heating on (EPC 0xB0 auto). Off: no planned heating, only the safety
        reheat below the reserve and the consumer's manual reheats."""
        self.advance()
        return self._automatic_heating

    @automatic_heating.setter
    def automatic_heating(self, value: bool) -> None:
        self.advance()
        if bool(value) != self._automatic_heating:
            self._automatic_heating = bool(value)
            self._replan([])
            self._decide()
        self._notify()

    @property
    def daytime_reheating_permitted(self) -> bool:
        """Daytime reheating permitted (EPC 0xC0). Off: the plan may not heat in 07:00–23:00
        (the heat cap of those slots is zero); the safety reheat still runs."""
        self.advance()
        return self._daytime_reheating_permitted

    @daytime_reheating_permitted.setter
    def daytime_reheating_permitted(self, value: bool) -> None:
        self.advance()
        if bool(value) != self._daytime_reheating_permitted:
            self._daytime_reheating_permitted = bool(value)
            self._replan([])
            self._decide()
        self._notify()

    # ------------------------------------------------------------------ energy shift
    @property
    def energy_shift_participation(self) -> bool:
        """EPC 0xC7: whether the unit takes part in the energy shift
        (:mod:`drready.device.energy_shift`)."""
        self.advance()
        return self._shift.participation

    @energy_shift_participation.setter
    def energy_shift_participation(self, value: bool) -> None:
        self.advance()
        self._withdraw(self._shift.set_participation(bool(value)))
        self._notify()

    @property
    def standard_start_hour(self) -> int:
        """EPC 0xC8: standard time to start heating (20–24 or 1) [h]."""
        return self._standard_start_hour

    @property
    def number_of_energy_shifts(self) -> int:
        """EPC 0xC9: 1 or 2."""
        return self._energy_shifts

    def shift_time(self, n: int) -> int | None:
        """EPC 0xCA (n=1) / 0xCD (n=2): the daytime heating shift time [h], None if cleared."""
        check_shift_number(n, self._energy_shifts)
        self.advance()
        return self._shift.shift_time[n]

    def target_day(self) -> date:
        """The day whose shift times are still open (:func:`energy_shift.target_day`)."""
        self.advance()
        return target_day(self._t.astimezone(self._plan.grid.zoneinfo), self._standard_start_hour)

    def _shift_window(self, hour: int) -> tuple[datetime, datetime] | None:
        return shift_window(
            self.target_day(),
            hour,
            self._plan.grid.zoneinfo,
            *self._horizon(),
        )

    def _shift_potential_kwh(self, hour: int) -> float:
        window = self._shift_window(hour)
        if window is None:
            return 0.0
        return self.flexibility_envelope(*window).up_kwh

    def expected_energy_at_shift_wh(self, n: int) -> dict[int, int]:
        """EPC 0xCB (n=1: 10, 13, 15, 17 h) / 0xCE (n=2: 13, 15, 17 h): up-DR potential of each
        shift window of the target day [Wh] (:func:`energy_shift.expected_energy_wh`)."""
        check_shift_number(n, self._energy_shifts)
        self.advance()
        return {h: expected_energy_wh(self._shift_potential_kwh(h)) for h in REPORT_HOURS[n]}

    def energy_per_hour_at_shift_wh(self, n: int) -> dict[int, int]:
        """EPC 0xCC / 0xCF: mean electric input while heating in each shift window [Wh/h]
        (:func:`energy_shift.energy_per_hour_wh`; 0 without potential)."""
        check_shift_number(n, self._energy_shifts)
        self.advance()
        out: dict[int, int] = {}
        for h in REPORT_HOURS[n]:
            window = self._shift_window(h)
            up = 0.0 if window is None else self.flexibility_envelope(*window).up_kwh
            if window is None or up <= ZERO_KWH:
                out[h] = 0
                continue
            planner = self._planner()
            i, j = planner.grid.window_indices(*window)
            fp = planner.planner
            plan = fp.plan([WindowRequest(Direction.UP, i, j, np.array([up]))])
            # net extra heat in the window (heating the baseline had there and the plan moves
            # out counts against it, as it does in ``up``)
            extra = float((plan.heat_kwh[0, i:j] - fp.baseline().heat_kwh[0, i:j]).sum())
            out[h] = energy_per_hour_wh(up, extra, self._fleet.heat_pump.heat_output_kw)
        return out

    def set_shift_time(self, n: int, hour: int | None) -> DrResponse | None:
        """EPC 0xCA / 0xCD set: move heating into the shift window (F2→F3), or clear.

        Returns the response to the DR request the shift time makes
        (:func:`energy_shift.shift_request`), or None when clearing.

        Raises
        ------
        ValueError
            If ``n`` or ``hour`` is out of range, or participation (0xC7) is off.
        """
        check_shift_number(n, self._energy_shifts)
        self.advance()
        if hour is not None:
            allowed = allowed_shift_hours(n, self._energy_shifts)
            if hour not in allowed:
                raise ValueError(f"shift time {n} must be one of {allowed} h or None, got {hour!r}")
            if not self._shift.participation:
                raise ValueError(
                    "energy_shift_participation is off: set it first (EPC 0xC7) before a "
                    "daytime heating shift time"
                )
        self._withdraw(self._shift.clear(n))
        if hour is None:
            self._notify()
            return None
        day = self.target_day()
        window = self._shift_window(hour)
        if window is None:  # begun or beyond the plan: asked all the same, and rejected
            start = datetime.combine(day, dtime(hour, 0), tzinfo=self._plan.grid.zoneinfo)
            window = (start, start + SHIFT_WINDOW)
        req = shift_request(
            n, day, hour, window, self._shift_potential_kwh(hour), self._clock.now()
        )
        (resp,) = self._submit([req])
        if resp.accepted_kwh > ZERO_KWH:
            self._shift.record(n, hour, window[0], req.request_id)
        self._notify()
        return resp

    # ------------------------------------------------------------------ announcements
    def _live(self) -> dict[str, object]:
        return {
            "heating": self._cur.heat_kwh > 0.0,
            "supplying_hot_water": self._cur.draw_kwh > 0.0,
            "remaining_hot_water_l": int(self._q / self._per_l),
            "shortage_count": self._shortages,
            "automatic_heating": self._automatic_heating,
            "daytime_reheating_permitted": self._daytime_reheating_permitted,
            "energy_shift_participation": self._shift.participation,
            "shift_time_1": self._shift.shift_time[1],
            "shift_time_2": self._shift.shift_time[2],
            "boil_temp_c": round(self._boil_c),
            "supply_temp_c": round(self._supply_c),
            "plan": self._plan_version,
        }

    def _notify(self) -> None:
        live = self._live()
        changed: set[str] = set()
        for name, value in live.items():
            last = self._announced.get(name)
            if name == "remaining_hot_water_l":
                assert isinstance(value, int) and isinstance(last, int)
                if abs(value - last) < ANNOUNCE_REMAINING_STEP_L:
                    continue
            elif value == last:
                continue
            changed.add(name)
            self._announced[name] = value
        if changed and self.on_change is not None:
            self.on_change(changed)
