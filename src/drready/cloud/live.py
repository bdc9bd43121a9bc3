"""The maker cloud's live fleet: N simulated water heaters on the process clock, planned on a
rolling horizon (route ii; F1–F6, D6; issue 11 item 3).

:class:`LiveFleet` is what ``drready cloud serve`` runs. Unlike the day-ahead study fleet
(:class:`drready.cloud.fleet.MakerFleet`, one grid planned once, used by the in-process demo), it
lives on a :class:`~drready.domain.clock.Clock` — the process clock,
:func:`~drready.domain.clock.clock_from_env` — and answers at any instant:

* F1 — :meth:`LiveFleet.envelopes` / :meth:`LiveFleet.group_envelope` for any window starting
  within the next 36 h (:mod:`drready.planning.rolling`);
* F2/F3/F4 — :meth:`LiveFleet.apply_requests` per unit, :meth:`LiveFleet.group_request` for the
  fleet as one resource (D6), split over the units in proportion to their potential;
* F5 — :meth:`LiveFleet.power_samples` / :meth:`LiveFleet.group_power`, on/off power and the
  energy counter of the simulated meter (as :class:`~drready.cloud.fleet.MakerFleet`'s);
* F6 — unit ``i`` is ``DeviceId(maker_code, f"C{i + 1:07d}")``.

The state moves with the clock (:meth:`LiveFleet.advance`, called first by every method and by
the cloud's polling loop): at every 30-minute slot boundary the fleet **rolls**
(:func:`drready.planning.rolling.roll`) — the slot that ended is settled as executed against the
households' realised use, and every unit plans again on the 48 h horizon from its executed
stored heat, honouring the requests it accepted and still owes. A request or a group request
re-plans the units concerned at once (:func:`~drready.planning.rolling.replan`). Nothing
depends on the start time: the fleet starts at the night heating start (23:00) before its
clock's now with a quarter-full tank and rolls to now, executing its baseline plan against the
realised use of those hours (the start-up's warm-up), so its state at any hour is one its
households produced.

Scale
-----
State is arrays over units, never a Python object per unit: stored heat, energy counter and
totals (float64), the plan in force (float32, (96, N): 384 B per unit; float32's relative
rounding, 6e-8, moves a slot's heat by < 2e-7 kWh, far below :data:`ENERGY_TOL_KWH`), the slot
in progress as executed and its draws (float32), one float64 amount and potential and an int32
request index per unit and held request — about 0.55 kB per unit (vs ≈ 10 kB for a day-ahead
``MakerFleet``, whose (T, N) float64 problem, bounds and paths are all kept). Planning problems
are built and solved :data:`CHUNK_UNITS` units at a time (working memory ≈ 40 (T+1)-row float64
arrays per chunk, ≈ 0.3 GB) and dropped; a potential request or a roll rebuilds them (≈ 9 s per
10⁶ units on one core, see ``benchmarks/cloud_scale.py``). Per-unit domain objects (envelopes,
responses, plans) are made only for the units a call asks about; a group request answers with
sums.

DR-caused shortages
-------------------
With ``no_dr_twin=True`` the fleet carries a **twin**: the same households on the same clock,
with the same seed — so the same realised use, draw for draw — that is never asked anything.
It rolls with the fleet (:meth:`LiveFleet.advance`), and :meth:`LiveFleet.shortage_count`
compares the two: a unit with more shortage steps (湯切れ) than its twin had a shortage that DR
caused (the demo's rule, :mod:`drready.sim.day_demo`, now measured by the cloud itself). The
twin doubles the fleet's planning work and memory; ``drready cloud serve --status-file`` turns
it on.

Realised use (the simulated meter) is sampled per local day and chunk of :data:`CHUNK_UNITS`
units from ``SeedSequence(seed, spawn_key=(2, day, chunk))``, on/off phases per slot from
``spawn_key=(1, slot)`` — the same draws whenever a day is simulated, whatever was asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from drready.cloud.fleet import (
    DEFAULT_MAKER_CODE,
    GROUP_DEVICE_ID,
    EnvelopeSums,
    GroupOutcome,
    UnitAnswer,
    heating_plan,
    unit_envelope,
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
)
from drready.domain.clock import Clock
from drready.domain.tolerances import REL_TOL, ZERO_KWH
from drready.physics.climate import TOKYO, Climate
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.physics.duty import on_off_energy_kwh, on_off_power_kw
from drready.planning.engine import FleetPlan, FleetPlanner
from drready.planning.forecast import LearningForecaster
from drready.planning.problem import (
    NIGHT_START_HOUR,
    Fleet,
    PlanningProblem,
    build_problem,
    default_initial_heat_kwh,
)
from drready.planning.rolling import (
    Forecaster,
    HeldRequest,
    ProblemAt,
    Rolled,
    ScheduleForecaster,
    SlotRun,
    UnitsState,
    UseAt,
    initial_state,
    planner_for,
    replan,
    roll,
    rolling_grid,
    slot_floor,
    window_reason,
)
from drready.planning.tariff import NIGHT_TOU, Tariff

__all__ = ["CHUNK_UNITS", "FleetInterruptedError", "LiveFleet", "ShortageCount", "Timing"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Units = IntArray | slice

CHUNK_UNITS: Final = 10_000
"""Units planned at once. Small enough that a chunk's planning arrays stay in cache-sized rows
(the greedy's reductions run ≈ 2.5× faster per unit than with 50 000) and its working memory
small; large enough that numpy's per-call overhead is negligible. It is also the unit block of
the realised-use random stream."""
_PHASE_STREAM = 1
_USE_STREAM = 2
_HISTORY_STREAM = 3
_MAX_REJECTED = 10_000
"""Rejected request ids remembered (answered again the same way); the oldest are forgotten."""


class FleetInterruptedError(RuntimeError):
    """A fleet operation stopped by :meth:`LiveFleet.interrupt`."""


@dataclass
class _Window:
    """A held request window of the fleet and the answers its units gave.

    ``held.amount_kwh`` is what each unit accepted and owes [kWh]; ``potential_kwh`` the
    potential it had left when it answered (the reason of a partial answer); ``id_of_unit``
    the index of the unit's request id in ``request_ids`` (-1: not asked in this window).
    """

    held: HeldRequest
    potential_kwh: FloatArray
    id_of_unit: npt.NDArray[np.int32]
    request_ids: list[str]

    def same_key(self, direction: Direction, start: datetime, end: datetime) -> bool:
        h = self.held
        return (h.direction, h.start, h.end) == (direction, start, end)


@dataclass(frozen=True)
class Timing:
    """Wall seconds of the fleet's last heavy operations (for logs and the scale benchmark)."""

    start_up_s: float = 0.0
    roll_s: float = 0.0
    potential_s: float = 0.0
    request_s: float = 0.0


@dataclass(frozen=True)
class ShortageCount:
    """Shortages (湯切れ) of a fleet since it started, and those DR caused (see the module).

    ``dr_caused`` is None when the fleet has no no-DR twin to compare with."""

    at: datetime
    units: int
    shortage_steps: int
    units_with_shortage: int
    twin_shortage_steps: int | None
    dr_caused: int | None


@dataclass
class _GroupSums:
    """The fleet's plan summed over units (D6 F4), from the last full pass."""

    power_kw: FloatArray
    stored_heat_kwh: FloatArray
    cost_yen: float


class LiveFleet:
    """N water heaters of one maker on a clock, planned on a rolling horizon (see the module).

    Parameters
    ----------
    fleet : Fleet
        Households and tanks, one entry per unit.
    clock : Clock
        The process clock (:func:`~drready.domain.clock.clock_from_env`; a
        :class:`~drready.domain.clock.SimClock` in tests).
    maker_code : str
        ECHONET Lite maker code of the device ids (6 hex digits).
    seed : int
        Seed of the households' realised use and of the on/off phases.
    climate, tariff : Climate, Tariff
    confidence : float
        Confidence level of the declared potential (E1), 0.5–0.999.
    step_minutes : int
        Time step of the simulated tank [min]; divides 30.
    forecaster : Forecaster, optional
        What the units plan against, and the hook for learning; the national schedule
        (:class:`~drready.planning.rolling.ScheduleForecaster`) by default.
    learning : bool
        The units learn their households (:class:`~drready.planning.forecast.
        LearningForecaster` at ``confidence``; issue 13 item 2), starting from the
        :data:`~drready.planning.forecast.HISTORY_DAYS` days their households drew before the
        start-up (:meth:`_seed_history`), as a fleet that has been running; the twin learns its
        own. Refused with a ``forecaster``.
    tz : str
        The households' time zone (IANA).
    chunk_units : int
        Units planned at once (part of the realised-use stream: keep it to reproduce a run).
    no_dr_twin : bool
        Carry a twin that is never asked anything, to count DR-caused shortages
        (:meth:`shortage_count`); refused with a ``forecaster`` of the caller's (the twin
        would learn from the same object).
    """

    def __init__(
        self,
        fleet: Fleet,
        clock: Clock,
        *,
        maker_code: str = DEFAULT_MAKER_CODE,
        seed: int = 0,
        climate: Climate = TOKYO,
        tariff: Tariff = NIGHT_TOU,
        confidence: float = 0.95,
        step_minutes: int = 5,
        forecaster: Forecaster | None = None,
        tz: str = DEFAULT_TZ,
        chunk_units: int = CHUNK_UNITS,
        no_dr_twin: bool = False,
        learning: bool = False,
    ) -> None:
        if learning and forecaster is not None:
            raise ValueError("learning makes the fleet's own forecaster: give one or the other")
        if no_dr_twin and forecaster is not None:
            raise ValueError("no_dr_twin needs the default forecaster (the twin learns its own)")
        if isinstance(step_minutes, bool) or step_minutes <= 0 or 30 % step_minutes:
            raise ValueError(f"step_minutes must divide 30 (1, 5, 10, 15, 30), got {step_minutes}")
        if chunk_units < 1:
            raise ValueError(f"chunk_units must be ≥ 1, got {chunk_units}")
        if not 0.5 <= confidence <= 0.999:
            raise ValueError(f"confidence must be within 0.5–0.999, got {confidence}")
        started = time.perf_counter()
        self.fleet = fleet
        self.clock = clock
        self.maker_code = DeviceId(maker_code=maker_code, serial="C0000001").maker_code
        self.seed = int(seed)
        self.climate = climate
        self.tariff = tariff
        self.confidence = confidence
        self.step_minutes = int(step_minutes)
        self.forecaster: Forecaster = forecaster or ScheduleForecaster()
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self.chunk_units = int(chunk_units)
        self.timing = Timing()
        self._names: list[str] | None = None
        self._interrupted = threading.Event()
        self._windows: list[_Window] = []
        self._rejected: dict[str, str] = {}
        self._group_answers: dict[str, DrResponse] = {}
        self._sums: _GroupSums | None = None
        self._phases: tuple[datetime, FloatArray] | None = None
        n, k = fleet.size, 30 // self.step_minutes
        self._q = np.zeros(n)
        self._energy = np.zeros(n)
        self._discarded = np.zeros(n)
        self._unmet = np.zeros(n)
        self._shortages = np.zeros(n, dtype=np.int64)
        self._plan = np.zeros((rolling_grid(clock.now(), tz).n_slots, n), dtype=np.float32)
        self._slot_heat = np.zeros(n)
        self._slot_electric = np.zeros(n)
        self._slot_end = np.zeros(n)
        self._slot_rated = np.zeros(n)
        self._slot_unmet = np.zeros(n)
        self._slot_shortages = np.zeros(n, dtype=np.int64)
        self._slot_use = np.zeros((n, k), dtype=np.float32)
        self._slot_manual = np.zeros((n, k), dtype=bool)
        self._rated = np.zeros(n)
        self._now = clock.now()
        if learning:
            learner = LearningForecaster(
                fleet.size, confidence=confidence, tz=tz, keep_forecasts=True
            )
            self.forecaster = learner
            self._seed_history(learner, self._now)
        self.twin: LiveFleet | None = None
        self._at = self._warm_up(self._now)
        if no_dr_twin:
            self.twin = LiveFleet(
                fleet,
                clock,
                maker_code=maker_code,
                seed=seed,
                climate=climate,
                tariff=tariff,
                confidence=confidence,
                step_minutes=step_minutes,
                tz=tz,
                chunk_units=chunk_units,
                learning=learning,
            )
        self.timing = replace(self.timing, start_up_s=time.perf_counter() - started)

    @classmethod
    def random(
        cls,
        n: int,
        clock: Clock,
        *,
        seed: int = 0,
        maker_code: str = DEFAULT_MAKER_CODE,
        step_minutes: int = 5,
        chunk_units: int = CHUNK_UNITS,
        tariff: Tariff = NIGHT_TOU,
        no_dr_twin: bool = False,
        confidence: float = 0.95,
        learning: bool = False,
    ) -> LiveFleet:
        """``n`` households drawn with :meth:`Fleet.random` from ``seed``."""
        rng = np.random.default_rng(seed)
        return cls(
            Fleet.random(rng, n),
            clock,
            seed=seed,
            maker_code=maker_code,
            step_minutes=step_minutes,
            chunk_units=chunk_units,
            tariff=tariff,
            no_dr_twin=no_dr_twin,
            confidence=confidence,
            learning=learning,
        )

    # ------------------------------------------------------------------ F6
    @property
    def size(self) -> int:
        """Number of units."""
        return self.fleet.size

    def device_id(self, unit: int) -> DeviceId:
        """F6 of unit ``unit``."""
        return DeviceId(maker_code=self.maker_code, serial=f"C{unit + 1:07d}")

    @property
    def names(self) -> list[str]:
        """Resource names of the units (the DeviceId strings), by index (made once)."""
        if self._names is None:
            self._names = [f"{self.maker_code}:C{u + 1:07d}" for u in range(self.size)]
        return self._names

    def index_of(self, name: str) -> int | None:
        """The unit index of resource name ``name``, or None if it is not one of ours."""
        maker, _, serial = name.partition(":")
        if maker != self.maker_code or len(serial) != 8 or serial[0] != "C":
            return None
        digits = serial[1:]
        if not digits.isdigit():
            return None
        u = int(digits) - 1
        return u if 0 <= u < self.size else None

    def rated_inputs_kw(self) -> FloatArray:
        """Each unit's rating (F6): its largest electric input at rated heat output over its
        first horizon (N,) [kW] (the coldest slot's COP)."""
        return self._rated.copy()

    # ------------------------------------------------------------------ clock and state
    @property
    def at(self) -> datetime:
        """Start of the slot in progress: the instant the fleet's state is at."""
        return self._at

    def _seen(self, now: datetime | None) -> datetime:
        """The current instant: ``now`` if given (the caller's reading of the same clock),
        never earlier than an instant already seen."""
        now = self.clock.now() if now is None else now
        if now > self._now:
            self._now = now
        return self._now

    def _pinned(self) -> bool:
        """Whether the slot in progress has begun (its heat is decided)."""
        return self._now > self._at

    def _chunks(self) -> Iterator[tuple[int, slice]]:
        for c, lo in enumerate(range(0, self.size, self.chunk_units)):
            self._check_interrupted()
            yield c, slice(lo, min(lo + self.chunk_units, self.size))

    def _subsets(self, units: IntArray) -> Iterator[IntArray]:
        for lo in range(0, units.size, self.chunk_units):
            self._check_interrupted()
            yield units[lo : lo + self.chunk_units]

    def interrupt(self) -> None:
        """Stop the operation under way at its next chunk of units (:class:`FleetInterruptedError`),
        and every later one: for a process that is stopping and cannot wait for a large
        fleet's roll or potential (the fleet's state may be half rolled: it is not used again).
        Safe to call from another thread."""
        self._interrupted.set()
        if self.twin is not None:
            self.twin.interrupt()

    def _check_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise FleetInterruptedError("the fleet was interrupted: the process is stopping")

    def _problem_at(
        self, units: Units, pending: list[tuple[datetime, FloatArray]] | None = None
    ) -> ProblemAt:
        """The units' planning problem at a slot start; the slots of ``pending`` (executed,
        not yet observed) that ended by then are observed first: a unit plans on everything it
        has measured, so a roll's plan and the answers after it see the same history (and a
        learning fleet's answers reuse the forecast the roll derived)."""
        sub = self.fleet.subset(units)

        def build(start: datetime, q0: FloatArray) -> PlanningProblem:
            if pending:
                self._observe(units, pending, start)
            grid = rolling_grid(start, self.tz)
            forecast = self.forecaster.forecast(sub, grid, units)
            return build_problem(
                sub,
                grid,
                q0,
                forecast,
                climate=self.climate,
                tariff=self.tariff,
                confidence=self.confidence,
            )

        return build

    def _use_at(self, chunk: int, units: slice, seen: list[tuple[datetime, FloatArray]]) -> UseAt:
        """Realised use of chunk ``chunk`` over ``n`` slots from a slot start; each slot's use
        per unit is appended to ``seen`` (what the forecaster observes once the slot is over)."""
        persons, bathtub = self.fleet.persons[units], self.fleet.bathtub[units]
        k = 30 // self.step_minutes
        days: dict[date, tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]] = {}

        def use(start: datetime, n: int) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.bool_]]:
            parts_l, parts_m = [], []
            for j in range(n):
                local = (start + j * SLOT).astimezone(self._zone)
                day = local.date()
                if day not in days:
                    seq = np.random.SeedSequence(
                        self.seed, spawn_key=(_USE_STREAM, day.toordinal(), chunk)
                    )
                    sample = sample_step_use_l(
                        np.random.default_rng(seq),
                        persons,
                        [day_type_for(day)],
                        self.step_minutes,
                        bathtub=bathtub,
                    )
                    days[day] = (sample.use_l, sample.manual_reheat)
                i = (local.hour * 60 + local.minute) // self.step_minutes
                day_l, day_m = days[day]
                parts_l.append(day_l[:, i : i + k])
                parts_m.append(day_m[:, i : i + k])
                seen.append((start + j * SLOT, parts_l[-1].sum(axis=1, dtype=np.float64)))
            return np.concatenate(parts_l, axis=1), np.concatenate(parts_m, axis=1)

        return use

    def _view(self, units: Units) -> UnitsState:
        """The pure core's state of the units at ``units`` (views for a slice)."""
        slot = SlotRun(
            self._slot_heat[units],
            self._slot_electric[units],
            self._slot_end[units],
            self._slot_rated[units],
            self._slot_unmet[units],
            self._slot_shortages[units],
            self._slot_use[units],
            self._slot_manual[units],
        )
        return UnitsState(
            self._at,
            self._q[units],
            self._energy[units],
            self._discarded[units],
            self._unmet[units],
            self._shortages[units],
            self._plan[:, units],
            slot,
        )

    def _store(self, units: Units, state: UnitsState, slot: bool = True) -> None:
        """Write ``state`` of the units at ``units`` back (the plan as float32)."""
        self._q[units] = state.stored_heat_kwh
        self._energy[units] = state.energy_kwh
        self._discarded[units] = state.discarded_heat_kwh
        self._unmet[units] = state.unmet_heat_kwh
        self._shortages[units] = state.shortage_steps
        self._plan[:, units] = state.plan_heat_kwh
        if slot:
            s = state.slot
            self._slot_heat[units] = s.heat_kwh
            self._slot_electric[units] = s.electric_kwh
            self._slot_end[units] = s.end_heat_kwh
            self._slot_rated[units] = s.rated_kw
            self._slot_unmet[units] = s.unmet_kwh
            self._slot_shortages[units] = s.shortage_steps
            self._slot_use[units] = s.use_l
            self._slot_manual[units] = s.manual_reheat

    def _held(self, units: Units) -> list[HeldRequest]:
        return [w.held.take(units) for w in self._windows]

    def _observe(
        self, units: Units, seen: list[tuple[datetime, FloatArray]], before: datetime
    ) -> None:
        """Observe the slots of ``seen`` that started before ``before``, in order, and take
        them out of it."""
        later = []
        for start, use_l in seen:
            if start < before:
                self.forecaster.observe(start, units, use_l)
            else:
                later.append((start, use_l))
        seen[:] = later

    def _night_before(self, now: datetime) -> datetime:
        """The night heating start (23:00) at or before the slot of ``now``: the warm-up's."""
        local = slot_floor(now).astimezone(self._zone)
        night = local.replace(hour=NIGHT_START_HOUR, minute=0, second=0, microsecond=0)
        return night if night <= local else night - timedelta(days=1)

    def _seed_history(self, learner: LearningForecaster, now: datetime) -> None:
        """The units' measured past: the use of their households over the ``learner.days``
        local days to the warm-up's 23:00 (the warm-up observes the rest), sampled per chunk
        at 30-minute resolution from ``SeedSequence(seed, spawn_key=(3, first day, chunk))``
        (the households' draw model, on a stream of its own)."""
        last = self._night_before(now).date()
        first = last - timedelta(days=learner.days - 1)
        days = [first + timedelta(days=d) for d in range(learner.days)]
        kinds = [day_type_for(d) for d in days]
        for c, sl in self._chunks():
            seq = np.random.SeedSequence(
                self.seed, spawn_key=(_HISTORY_STREAM, first.toordinal(), c)
            )
            use_l = sample_step_use_l(
                np.random.default_rng(seq),
                self.fleet.persons[sl],
                kinds,
                30,
                bathtub=self.fleet.bathtub[sl],
            ).use_l.reshape(-1, len(days), 48)
            use_l[:, -1, NIGHT_START_HOUR * 2 :] = np.nan  # the warm-up's to observe
            learner.history.load(first, use_l, units=sl)

    def _warm_up(self, now: datetime) -> datetime:
        """Start at the night heating start before ``now`` from a quarter-full tank, then roll
        to the slot of ``now`` (see the module)."""
        to = slot_floor(now)
        start = self._night_before(now)
        sums = self._new_sums()
        for c, sl in self._chunks():
            seen: list[tuple[datetime, FloatArray]] = []
            problem_at = self._problem_at(sl, seen)
            use_at = self._use_at(c, sl, seen)
            grid = rolling_grid(start, self.tz)
            q0 = default_initial_heat_kwh(self.fleet.subset(sl), grid, self.climate)
            first = problem_at(start, q0)
            p = first
            self._rated[sl] = (p.heat_cap_kwh / p.cop / p.slot_h).max(axis=0)
            rolled = initial_state(first, *use_at(start, 1), self.fleet.reserve_l)
            if to > start:
                rolled = roll(
                    rolled.state,
                    to,
                    problem_at=problem_at,
                    use_at=use_at,
                    held=(),
                    reserve_l=self.fleet.reserve_l,
                )
            self._store(sl, rolled.state)
            self._observe(sl, seen, to)
            self._add_sums(sums, rolled)
        self._sums = sums
        return to

    def advance(self, now: datetime | None = None) -> str | None:
        """Roll to the slot of ``now`` (the clock's now if None) if a slot boundary has passed.

        Returns a log line when it rolled, else None.
        """
        now = self._seen(now)
        to = slot_floor(now)
        if to <= self._at:
            return None
        started = time.perf_counter()
        sums = self._new_sums()
        for c, sl in self._chunks():
            # the slot that ended: its draws are in the state's slot run (use_at adds the
            # later ones); each is observed before the first plan made after it
            seen = [(self._at, self._slot_use[sl].sum(axis=1, dtype=np.float64))]
            rolled = roll(
                self._view(sl),
                to,
                problem_at=self._problem_at(sl, seen),
                use_at=self._use_at(c, sl, seen),
                held=self._held(sl),
                reserve_l=self.fleet.reserve_l,
            )
            self._observe(sl, seen, to)
            self._store(sl, rolled.state)
            self._add_sums(sums, rolled)
        slots = (to - self._at) // SLOT
        self._at = to
        self._sums = sums
        self._phases = None
        self._windows = [w for w in self._windows if w.held.end > to]
        if self.twin is not None:
            self.twin.advance(to)
        elapsed = time.perf_counter() - started
        self.timing = replace(self.timing, roll_s=elapsed)
        return (
            f"fleet rolled {slots} slot(s) to {to.isoformat()}: {self.size} unit(s) re-planned "
            f"on the horizon to {(to + self._plan.shape[0] * SLOT).isoformat()} in "
            f"{elapsed:.2f} s ({len(self._windows)} request window(s) held)"
        )

    # ------------------------------------------------------------------ group sums
    def _new_sums(self) -> _GroupSums:
        t = self._plan.shape[0]
        return _GroupSums(np.zeros(t), np.zeros(t + 1), 0.0)

    def _add_sums(self, sums: _GroupSums, rolled: Rolled) -> None:
        plan = rolled.plan
        # clip: round-off below zero is reported as zero (as MakerFleet.group_plan)
        sums.power_kw += plan.power_kw(rolled.problem.slot_h).clip(min=0.0).sum(axis=0)
        sums.stored_heat_kwh += plan.stored_heat_kwh.clip(min=0.0).sum(axis=0)
        sums.cost_yen += float(plan.cost_yen.clip(min=0.0).sum())  # clip: round-off, as above

    # ------------------------------------------------------------------ F1
    def _window(self, start: datetime, end: datetime) -> tuple[int, int, list[datetime]]:
        """Slot indices of a plannable window on the horizon, and its slot starts."""
        reason = window_reason(start, end, self._now, self.tz)
        if reason is not None:
            raise ValueError(reason)
        grid = rolling_grid(self._at, self.tz)
        s, e = grid.window_indices(start, end)
        return s, e, grid.starts()[s:e]

    def _planner(self, units: Units) -> tuple[PlanningProblem, FleetPlanner]:
        problem = self._problem_at(units)(self._at, self._q[units])
        return problem, planner_for(problem, self._view(units), self._pinned())

    def envelopes(
        self, start: datetime, end: datetime, units: list[int] | None = None
    ) -> list[FlexibilityEnvelope]:
        """F1 per unit for ``[start, end)`` (all units if ``units`` is None), against the
        baseline from the current state (requests accepted before are not subtracted).

        Raises
        ------
        ValueError
            The window cannot be planned now (passed, more than 36 h ahead, beyond the
            horizon; the message names it), or a unit index is out of range.
        """
        self.advance()
        s, e, starts = self._window(start, end)
        idx = self._indices(units)
        now, out = self._now, []
        for sub in self._subsets(idx):
            _, planner = self._planner(sub)
            pot = planner.potential(s, e)
            out += [
                unit_envelope(self.device_id(int(u)), now, starts, end, self.confidence, pot, j)
                for j, u in enumerate(sub)
            ]
        return out

    def group_envelope(self, start: datetime, end: datetime) -> FlexibilityEnvelope:
        """F1 of the fleet as one resource (D6): the sums of the units' envelopes
        (:class:`~drready.cloud.fleet.EnvelopeSums`, exact for independent units).

        Raises
        ------
        ValueError
            The window cannot be planned now (the message names it).
        """
        self.advance()
        started = time.perf_counter()
        s, e, starts = self._window(start, end)
        sums = EnvelopeSums(e - s)
        for _, sl in self._chunks():
            _, planner = self._planner(sl)
            sums.add(planner.potential(s, e))
        envelope = sums.envelope(self._now, starts, end, self.confidence)
        self.timing = replace(self.timing, potential_s=time.perf_counter() - started)
        return envelope

    def _indices(self, units: Sequence[int] | None) -> IntArray:
        if units is None:
            return np.arange(self.size)
        idx = np.asarray(list(units), dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= self.size)]
        if bad.size:
            raise ValueError(f"unit index out of range 0–{self.size - 1}: {bad.tolist()}")
        return idx

    # ------------------------------------------------------------------ F2–F4
    def _answer_again(self, unit: int, request: DrRequest) -> DrResponse | None:
        """The answer unit ``unit`` gave to ``request``'s id, if it is still held or rejected."""
        rid = request.request_id
        rejected = self._rejected.get(rid)
        if rejected is not None:
            return DrResponse.from_amounts(request, self.device_id(unit), 0.0, rejected)
        for w in self._windows:
            j = int(w.id_of_unit[unit])
            if j >= 0 and w.request_ids[j] == rid:
                acc = float(w.held.amount_kwh[unit])
                return DrResponse.from_amounts(
                    request, self.device_id(unit), acc, self._reason(request, acc, w, unit)
                )
        return None

    def _reason(self, request: DrRequest, accepted: float, w: _Window, unit: int) -> str | None:
        if accepted >= request.amount_kwh * (1 - REL_TOL):
            return None
        word = "up" if request.direction is Direction.UP else "down"
        return (
            f"{word}-DR potential in the window is {float(w.potential_kwh[unit]):.3f} kWh at "
            f"{self.confidence:.0%} confidence (after earlier requests)"
        )

    def _reject(self, request_id: str, reason: str) -> None:
        self._rejected[request_id] = reason
        while len(self._rejected) > _MAX_REJECTED:
            del self._rejected[next(iter(self._rejected))]

    def _join(
        self, request: DrRequest, units: IntArray, amounts_kwh: FloatArray
    ) -> list[tuple[_Window, IntArray]]:
        """Put ``request`` (``amounts_kwh`` for ``units``) into windows: a unit joins an
        existing window of the same direction and times in which it was not asked and after
        which it has no request (units are independent in the planner, and a unit's own
        requests keep their order), else a new window."""
        n = self.size
        last = np.full(units.size, -1)
        for k, w in enumerate(self._windows):
            last[w.id_of_unit[units] >= 0] = k
        chosen = np.full(units.size, -1)
        for k, w in enumerate(self._windows):
            if w.same_key(request.direction, request.start, request.end):
                chosen[(chosen < 0) & (last < k)] = k
        if (chosen < 0).any():
            held = HeldRequest(request.direction, request.start, request.end, np.zeros(n))
            fresh = _Window(held, np.zeros(n), np.full(n, -1, dtype=np.int32), [])
            self._windows.append(fresh)
            chosen[chosen < 0] = len(self._windows) - 1
        out = []
        for k in np.unique(chosen).tolist():
            w = self._windows[k]
            mine = chosen == k
            who = units[mine]
            if request.request_id not in w.request_ids:
                w.request_ids.append(request.request_id)
            w.id_of_unit[who] = w.request_ids.index(request.request_id)
            w.held.amount_kwh[who] = amounts_kwh[mine]
            out.append((w, who))
        return out

    def _replan(
        self,
        units: IntArray | None,
        on_plan: Callable[[IntArray, PlanningProblem, FleetPlan, list[int]], None] | None = None,
    ) -> _GroupSums | None:
        """Re-plan ``units`` (all if None) at the current slot, honouring every held window;
        a new window's amounts become what the units accepted. ``on_plan(units, problem, plan,
        rows)`` sees each chunk's plan (``rows[k]``: the plan's row of window ``k``, -1 if
        not carried). Returns the fleet's plan sums when all units were re-planned."""
        pinned = self._pinned()
        sums = self._new_sums() if units is None else None
        groups: Iterator[Units]
        groups = (sl for _, sl in self._chunks()) if units is None else self._subsets(units)
        for sub in groups:
            state = self._view(sub)
            problem = self._problem_at(sub)(self._at, state.stored_heat_kwh)
            rolled = replan(
                state,
                problem,
                held=self._held(sub),
                pinned=pinned,
                reserve_l=self.fleet.reserve_l,
            )
            self._store(sub, rolled.state, slot=not pinned)
            rows = [-1] * len(self._windows)
            for j, k in enumerate(rolled.carried.held_index):
                rows[k] = j
            for k, w in enumerate(self._windows):
                j = rows[k]
                if j < 0 or w.held.start < self._at:  # in progress: the remainder is not the answer
                    continue
                # keep accepted amounts (re-plans reproduce them), and the potential they had
                asked = w.held.amount_kwh[sub]
                w.held.amount_kwh[sub] = np.minimum(asked, rolled.plan.accepted_kwh[j])
                w.potential_kwh[sub] = np.where(
                    asked > ZERO_KWH, rolled.plan.potential_kwh[j], w.potential_kwh[sub]
                )
            if sums is not None:
                self._add_sums(sums, rolled)
            if on_plan is not None:
                idx = np.arange(self.size)[sub] if isinstance(sub, slice) else sub
                on_plan(idx, problem, rolled.plan, rows)
        if units is not None:
            self._sums = None  # a subset changed: the fleet's sums are out of date
        return sums

    def _honours(self, unit: int) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(
                w.request_ids[int(w.id_of_unit[unit])]
                for w in self._windows
                if w.id_of_unit[unit] >= 0 and w.held.amount_kwh[unit] > ZERO_KWH
            )
        )

    def _plans_of(
        self, units: IntArray, problem: PlanningProblem, plan: FleetPlan
    ) -> dict[int, HeatingPlan]:
        grid, h = problem.grid, problem.slot_h
        power = plan.power_kw(h)
        return {
            int(u): heating_plan(
                self.device_id(int(u)),
                self._now,
                grid,
                power[j],
                plan.stored_heat_kwh[j],
                self._honours(int(u)),
                float(plan.cost_yen[j]),
            )
            for j, u in enumerate(units)
        }

    def apply_requests(
        self, requests: Mapping[int, DrRequest], now: datetime | None = None
    ) -> dict[int, UnitAnswer]:
        """F2→F3/F4: plan ``requests`` (unit index → request) with every request the units
        still owe, and answer each (response, the unit's new plan).

        Each request is accepted up to the potential left after the unit's earlier requests,
        measured from its baseline; one that cannot be planned now (passed, more than 36 h
        ahead, beyond the horizon) is rejected with the reason. A request id a unit has already
        answered is answered again from memory, not planned twice. Only the units asked are
        re-planned.
        """
        started = time.perf_counter()
        now = self._seen(now)
        self.advance(now)
        answers: dict[int, DrResponse] = {}
        fresh: dict[str, tuple[DrRequest, list[int]]] = {}
        for u, req in requests.items():
            self._indices([u])
            earlier = self._answer_again(u, req)
            if earlier is not None:
                answers[u] = earlier
                continue
            reason = window_reason(req.start, req.end, self._now, self.tz)
            if reason is not None:
                self._reject(req.request_id, reason)
                answers[u] = DrResponse.from_amounts(req, self.device_id(u), 0.0, reason)
                continue
            fresh.setdefault(req.request_id, (req, []))[1].append(u)
        joined: list[tuple[DrRequest, _Window, IntArray]] = []
        for req, asked in fresh.values():
            idx = np.asarray(asked, dtype=np.int64)
            amounts = np.full(idx.size, req.amount_kwh)
            joined += [(req, w, who) for w, who in self._join(req, idx, amounts)]
        plans: dict[int, HeatingPlan] = {}

        def keep(units: IntArray, problem: PlanningProblem, plan: FleetPlan, _: list[int]) -> None:
            plans.update(self._plans_of(units, problem, plan))

        if joined:
            self._replan(np.unique(np.concatenate([who for _, _, who in joined])), keep)
        for req, w, who in joined:
            for u in who.tolist():
                acc = min(float(w.held.amount_kwh[u]), req.amount_kwh)
                answers[u] = DrResponse.from_amounts(
                    req, self.device_id(u), acc, self._reason(req, acc, w, u)
                )
        missing = np.array(sorted(set(answers) - set(plans)), dtype=np.int64)
        if missing.size:
            plans.update(self.unit_plans(missing))
        self.timing = replace(self.timing, request_s=time.perf_counter() - started)
        return {u: (answers[u], plans[u]) for u in requests}

    def group_request(self, request: DrRequest, now: datetime | None = None) -> GroupOutcome:
        """A group-level request (D6) split over the units in proportion to their potential.

        Unit ``i`` is asked ``amount × pot_i / Σ pot`` (its whole potential when the request
        exceeds the fleet's); the group accepts the sum of what the units accept, and its plan
        is the sum of every unit's plan. Per-unit answers are not made at fleet scale:
        ``GroupOutcome.units`` is empty (:meth:`accepted_kwh` gives them as an array).
        """
        started = time.perf_counter()
        now = self._seen(now)
        self.advance(now)
        rid = request.request_id
        earlier = self._group_answers.get(rid)
        if earlier is not None:
            honours = (rid,) if earlier.accepted_kwh > 0 else ()
            return GroupOutcome(earlier, self.group_plan(honours), {})
        reason = self._rejected.get(rid) or window_reason(
            request.start, request.end, self._now, self.tz
        )
        accepted = 0.0
        if reason is None:
            s, e, _ = self._window(request.start, request.end)
            pot = np.zeros(self.size)
            for _, sl in self._chunks():
                _, planner = self._planner(sl)
                p = planner.potential(s, e)
                pot[sl] = p.up_kwh if request.direction is Direction.UP else p.down_kwh
            total = float(pot.sum())
            share = min(1.0, request.amount_kwh / total) if total > ZERO_KWH else 0.0
            amounts = pot * share
            asked = np.flatnonzero(amounts > ZERO_KWH)
            windows = self._join(request, asked, amounts[asked]) if asked.size else []
            self._sums = self._replan(None)
            accepted = float(sum(w.held.amount_kwh[who].sum() for w, who in windows))
            if accepted < request.amount_kwh * (1 - REL_TOL):
                word = "up" if request.direction is Direction.UP else "down"
                reason = (
                    f"{word}-DR potential of the group in the window is {total:.3f} kWh at "
                    f"{self.confidence:.0%} confidence; the units accepted {accepted:.3f} kWh"
                )
        else:
            self._reject(rid, reason)
        response = DrResponse.from_amounts(
            request, GROUP_DEVICE_ID, min(accepted, request.amount_kwh), reason
        )
        self._group_answers[rid] = response
        honours = (rid,) if response.accepted_kwh > 0 else ()
        outcome = GroupOutcome(response, self.group_plan(honours), {})
        self.timing = replace(self.timing, request_s=time.perf_counter() - started)
        return outcome

    def accepted_kwh(self, request_id: str) -> FloatArray:
        """What each unit accepted of request ``request_id`` and still owes (N,) [kWh] (0 for
        units not asked, or once its window has ended)."""
        out = np.zeros(self.size)
        for w in self._windows:
            if request_id in w.request_ids:
                j = w.request_ids.index(request_id)
                mine = w.id_of_unit == j
                out[mine] += w.held.amount_kwh[mine]
        return out

    # ------------------------------------------------------------------ plans (F4)
    def unit_plans(self, units: Sequence[int] | IntArray) -> dict[int, HeatingPlan]:
        """The plans in force of ``units`` (F3/F4), from the current state."""
        self.advance()
        idx = self._indices(list(np.asarray(units).tolist()))
        out: dict[int, HeatingPlan] = {}
        for sub in self._subsets(idx):
            problem = self._problem_at(sub)(self._at, self._q[sub])
            heat = np.asarray(self._plan[:, sub], dtype=np.float64)  # (T, n)
            elec = heat / problem.cop
            stored = problem.stored_heat_kwh(heat)
            cost = (elec * problem.price_yen_per_kwh[:, None]).sum(axis=0)
            for j, u in enumerate(sub.tolist()):
                out[u] = heating_plan(
                    self.device_id(u),
                    self._now,
                    problem.grid,
                    elec[:, j] / problem.slot_h,
                    stored[:, j],
                    self._honours(u),
                    float(cost[j]),
                )
        return out

    def unit_plan(self, unit: int) -> HeatingPlan:
        """Unit ``unit``'s plan in force (F3/F4)."""
        return self.unit_plans([unit])[unit]

    def baseline_plan(self, unit: int) -> HeatingPlan:
        """Unit ``unit``'s no-DR plan from the current state (the reference of every DR
        amount)."""
        self.advance()
        problem, planner = self._planner(np.array([unit]))
        base = planner.baseline()
        return heating_plan(
            self.device_id(unit),
            self._now,
            problem.grid,
            base.power_kw(problem.slot_h)[0],
            base.stored_heat_kwh[0],
        )

    def group_plan(self, honours: tuple[str, ...] = ()) -> HeatingPlan:
        """The fleet's plan as one resource (D6): per slot the sum of every unit's plan."""
        self.advance()
        if self._sums is None:
            self._sums = self._replan(None)
        assert self._sums is not None  # a full pass returns the sums
        grid = rolling_grid(self._at, self.tz)
        s = self._sums
        return heating_plan(
            GROUP_DEVICE_ID, self._now, grid, s.power_kw, s.stored_heat_kwh, honours, s.cost_yen
        )

    # ------------------------------------------------------------------ F5
    def _phase(self) -> FloatArray:
        """Each unit's on/off phase in the slot in progress (N,), uniform in [0, 1)."""
        if self._phases is None or self._phases[0] != self._at:
            slot_number = int(self._at.timestamp()) // int(SLOT.total_seconds())
            seq = np.random.SeedSequence(self.seed, spawn_key=(_PHASE_STREAM, slot_number))
            self._phases = (self._at, np.random.default_rng(seq).random(self.size))
        return self._phases[1]

    def _meter_at(self, at: datetime, units: Units) -> tuple[FloatArray, FloatArray]:
        """Instantaneous power [W] and energy counter [kWh] of ``units`` at ``at``: on/off
        operation inside the slot in progress (:class:`~drready.cloud.fleet.MakerFleet`'s
        meter, on the executed slot)."""
        self.advance(at)
        if at < self._at:
            raise ValueError(
                f"at {at.isoformat()} is before the slot in progress {self._at.isoformat()}"
            )
        x = (at - self._at) / SLOT
        e = self._slot_electric[units]
        rated, phase = self._slot_rated[units], self._phase()[units]
        slot_h = SLOT / timedelta(hours=1)
        power_w = on_off_power_kw(e, rated, phase, x, slot_h) * 1000.0
        # the part of the slot is capped at e (its round-off could overshoot by an ulp)
        part = np.minimum(on_off_energy_kwh(e, rated, phase, x, slot_h), e)
        return power_w, self._energy[units] + part

    def power_samples(self, at: datetime, units: list[int] | None = None) -> list[PowerSample]:
        """F5: each unit's instantaneous power and energy counter at ``at`` (``MEASURED``: the
        simulated meter of the executed slot; see :meth:`MakerFleet.power_samples`)."""
        idx = self._indices(units)
        power_w, cumulative = self._meter_at(at, idx)
        return [
            PowerSample(
                device_id=self.device_id(int(u)),
                timestamp=at,
                power_w=float(max(power_w[j], 0.0)),
                cumulative_energy_kwh=float(max(cumulative[j], 0.0)),
                source=PowerSource.MEASURED,
            )
            for j, u in enumerate(idx.tolist())
        ]

    def group_power(self, at: datetime) -> tuple[float, float]:
        """F5 of the fleet as one resource: summed power [W] and energy counter [kWh]."""
        power_w, cumulative = self._meter_at(at, slice(None))
        # clip: as in power_samples, round-off below zero is reported as zero
        return float(power_w.clip(min=0.0).sum()), float(cumulative.clip(min=0.0).sum())

    # ------------------------------------------------------------------ inspection
    def units_state(self) -> UnitsState:
        """A copy of the fleet's state (the pure core's :class:`UnitsState`) at the slot in
        progress."""
        self.advance()
        view = self._view(slice(None))
        return UnitsState(
            view.at,
            view.stored_heat_kwh.copy(),
            view.energy_kwh.copy(),
            view.discarded_heat_kwh.copy(),
            view.unmet_heat_kwh.copy(),
            view.shortage_steps.copy(),
            view.plan_heat_kwh.copy(),
            SlotRun(*(np.array(getattr(view.slot, f.name)) for f in fields(SlotRun))),
        )

    def array_bytes_per_unit(self) -> float:
        """Bytes of the fleet's state arrays and held windows per unit (what stays resident;
        planning works on chunks that are dropped)."""
        arrays = [v for v in vars(self).values() if isinstance(v, np.ndarray)]
        arrays += [self.fleet.persons, self.fleet.tank_volume_l, self.fleet.bathtub]
        for w in self._windows:
            arrays += [w.held.amount_kwh, w.potential_kwh, w.id_of_unit]
        if self._phases is not None:
            arrays.append(self._phases[1])
        return sum(a.nbytes for a in arrays) / self.size

    def stored_heat_kwh(self) -> FloatArray:
        """Each unit's stored heat at the start of the slot in progress (N,) [kWh]."""
        self.advance()
        return self._q.copy()

    def shortage_steps(self, *, advance: bool = True) -> npt.NDArray[np.int64]:
        """Each unit's simulated steps with a shortage (湯切れ) so far, the slot in progress
        included (N,); ``advance=False`` reads the state where it is (no roll: for a process
        that is stopping)."""
        if advance:
            self.advance()
        return self._shortages + self._slot_shortages

    def shortage_count(self, *, advance: bool = True) -> ShortageCount:
        """The fleet's shortages and, with a twin, how many units had more shortage steps
        than their no-DR twin (see the module); ``advance`` as for :meth:`shortage_steps`."""
        mine = self.shortage_steps(advance=advance)
        twin = None if self.twin is None else self.twin.shortage_steps(advance=False)
        return ShortageCount(
            at=self._at,
            units=self.size,
            shortage_steps=int(mine.sum()),
            units_with_shortage=int(np.count_nonzero(mine)),
            twin_shortage_steps=None if twin is None else int(twin.sum()),
            dr_caused=None if twin is None else int(np.count_nonzero(mine > twin)),
        )
