"""The E1 check on households given as draws: measured homes, or the scenario library's
(E1, F1; issue 13 items 2, 3).

:class:`Households` are N homes with their own hot-water use over consecutive local days (5-minute
steps, litres at 40 °C), household size, tank and tariff — nothing drawn from drready's
generator at evaluation time. :func:`evaluate_households` lets every home live through the
days as a unit that **learns** it would (:mod:`drready.planning.forecast`):

* each evening at 23:00 the unit forecasts the next 32 h from its own measured use so far
  (the national schedule while it has seen fewer than 14 days), plans its baseline under its
  tariff, and executes the first 24 h of it against the home's real use — the tank state the
  next evening starts from is the one the home produced;
* from day ``history_days`` on (the first 14 days are history) each day is scored as the
  scorecard scores (:mod:`drready.evaluation.scorecard`): for every window and method the
  declared amount, the re-planned day executed with the same draws, delivered vs declared,
  DR-caused shortages, and the perfect-foresight (oracle) potential from the unit's own
  baseline.

The result is a :class:`~drready.evaluation.scorecard.Scorecard` (cases = households × scored
days), so ``drready evaluate potential --draws … --homes …`` prints the same JSON as the Monte
Carlo. Homes are grouped by tariff (one planning problem per tariff and day); everything else is
arrays over homes.

The measured-data files (:func:`read_households_csv`):

* DRAWS — columns ``household,time,litres_40c``: ISO 8601 time *with* UTC offset, litres at
  40 °C drawn in the interval that starts there (any resolution of 1 minute or more; rows are
  summed into 5-minute steps of Japan's local time);
* HOMES — columns ``household,persons,tank_l,tariff``: persons 1–8 (beyond 4 the cold start
  scales the 4-person schedule), tank 100–1000 L, tariff ``flat``, ``night`` or ``tou``
  (:data:`~drready.planning.tariff.TARIFFS`).

The evaluated span is the files' whole date range, the same for every home: a day without rows
for a home is a day it drew nothing. Errors name the file, line, column and allowed range.
"""

from __future__ import annotations

import csv
import math
import time as time_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from drready.domain import DEFAULT_TZ, Direction, SlotGrid
from drready.domain.time import zone
from drready.evaluation.deliverability import STEP_MINUTES, EvalWindow, WindowOutcome
from drready.evaluation.methods import Method, MethodContext, resolve_methods
from drready.evaluation.scorecard import DEFAULT_WINDOWS, Scorecard
from drready.physics.draws import day_type_on
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.execution import execute_plan
from drready.planning.forecast import (
    MIN_HISTORY_DAYS,
    UsageHistory,
    learned_forecast,
)
from drready.planning.problem import (
    MAX_PERSONS,
    Fleet,
    build_problem,
    default_initial_heat_kwh,
    draw_forecast,
    perfect_forecast,
)
from drready.planning.tariff import FLAT_RATE, NIGHT_TOU, Tariff, TariffPeriod

__all__ = [
    "HISTORY_DAYS_DEFAULT",
    "TARIFFS",
    "Households",
    "evaluate_households",
    "read_households_csv",
    "season_of",
]

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

STEPS_PER_DAY = 1440 // STEP_MINUTES
STEPS_PER_SLOT = 30 // STEP_MINUTES
HISTORY_DAYS_DEFAULT = MIN_HISTORY_DAYS
"""Days at the start that are history only (the units learn from them; none is scored)."""
_GRID_SLOTS = 64
_MAX_DAYS = 400
_MAX_HOUSEHOLDS = 20_000


THREE_PERIOD_TOU = Tariff(
    name="illustrative three-period TOU (night 23–07, peak 17–23)",
    periods=(
        TariffPeriod(start=time(23, 0), end=time(7, 0), price_yen_per_kwh=26.0),
        TariffPeriod(start=time(7, 0), end=time(17, 0), price_yen_per_kwh=34.0),
        TariffPeriod(start=time(17, 0), end=time(23, 0), price_yen_per_kwh=42.0),
    ),
)
"""Night, day and an evening peak: the shape of Japan's three-period household plans."""

TARIFFS: dict[str, Tariff] = {"flat": FLAT_RATE, "night": NIGHT_TOU, "tou": THREE_PERIOD_TOU}
"""Tariffs by the names a HOMES file uses (``tariff``: flat, night, tou); illustrative round
prices, not any retailer's."""


def season_of(day: date) -> str:
    """Meteorological season of a date (Dec–Feb winter, …)."""
    return ("winter", "spring", "summer", "autumn")[(day.month % 12) // 3]


@dataclass(frozen=True)
class Households:
    """N homes and their use over consecutive local days from ``first_day``.

    ``use_l`` is (N, days · 288) litres at 40 °C per 5-minute step (float32); ``persons``,
    ``tank_l`` (N,); ``tariff`` the tariff name of each home (:data:`TARIFFS`); ``names`` the
    homes' names; ``group`` an optional class label per home (the scenario library's).
    """

    first_day: date
    use_l: Float32Array
    persons: IntArray
    tank_l: FloatArray
    tariff: tuple[str, ...]
    names: tuple[str, ...]
    group: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = self.persons.shape[0]
        if n < 1:
            raise ValueError("households: at least one home is needed")
        if self.use_l.ndim != 2 or self.use_l.shape[0] != n or self.use_l.shape[1] % STEPS_PER_DAY:
            raise ValueError(f"use_l must be (N, days·{STEPS_PER_DAY}), got {self.use_l.shape}")
        if np.any(~np.isfinite(self.use_l)) or np.any(self.use_l < 0):
            raise ValueError("use_l must be finite and ≥ 0")
        for name, seq in (("tariff", self.tariff), ("names", self.names)):
            if len(seq) != n:
                raise ValueError(f"{name} must have one entry per home ({n}), got {len(seq)}")
        if self.group is not None and len(self.group) != n:
            raise ValueError(f"group must have one entry per home ({n})")
        bad = sorted(set(self.tariff) - set(TARIFFS))
        if bad:
            raise ValueError(f"tariff must be one of {', '.join(TARIFFS)}, got {bad[0]!r}")

    @property
    def size(self) -> int:
        return int(self.persons.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.use_l.shape[1] // STEPS_PER_DAY)

    def fleet(self) -> Fleet:
        return Fleet(self.persons, self.tank_l.astype(np.float64), np.ones(self.size, dtype=bool))

    def take(self, idx: IntArray) -> Households:
        """The homes at ``idx``."""
        return replace(
            self,
            use_l=self.use_l[idx],
            persons=self.persons[idx],
            tank_l=self.tank_l[idx],
            tariff=tuple(self.tariff[i] for i in idx),
            names=tuple(self.names[i] for i in idx),
            group=None if self.group is None else tuple(self.group[i] for i in idx),
        )


def _slot_use(use_steps: Float32Array) -> FloatArray:
    """(N, S·k) steps → (N, S) slots [L], in float64."""
    n = use_steps.shape[0]
    out: FloatArray = use_steps.astype(np.float64).reshape(n, -1, STEPS_PER_SLOT).sum(axis=2)
    return out


def evaluate_households(
    homes: Households,
    *,
    windows: Sequence[EvalWindow] = DEFAULT_WINDOWS,
    methods: Sequence[str | Method] = ("ours",),
    history_days: int = HISTORY_DAYS_DEFAULT,
    confidence: float = 0.95,
    learning: bool = True,
    seed: int = 0,
    on_day: Callable[[date], None] | None = None,
) -> Scorecard:
    """Let the homes live through their days as learning units and score the days after the
    history (see the module). ``learning=False`` keeps the national schedule throughout (the
    cold start, for comparison). ``seed`` only names the run (nothing is random here).

    Raises
    ------
    ValueError
        If the span leaves no scored day (it needs ``history_days`` + 2 days: the last day only
        completes the final day-ahead horizon) or an argument is out of range.
    """
    if not 1 <= history_days <= _MAX_DAYS:
        raise ValueError(f"history_days must be within 1–{_MAX_DAYS}, got {history_days}")
    if homes.n_days < history_days + 2:
        raise ValueError(
            f"draws: {homes.n_days} days given; at least {history_days + 2} are needed "
            f"({history_days} of history, one scored, and the next morning)"
        )
    t_start = time_module.perf_counter()
    resolved = resolve_methods(methods, n_households=homes.size)
    groups = {name: np.flatnonzero(np.array(homes.tariff) == name) for name in TARIFFS}
    groups = {k: v for k, v in groups.items() if v.size}
    n = homes.size
    scored = list(range(history_days, homes.n_days - 1))
    n_days = len(scored)
    # per (method, window): declared, delivered, oracle, DR-caused shortage, (scored day, home)
    acc = {(m.name, j): np.zeros((4, n_days, n)) for m in resolved for j in range(len(windows))}
    boilup = np.zeros((n_days, n))
    parts = {
        name: _TariffRun(homes.take(idx), name, confidence, learning)
        for name, idx in groups.items()
    }
    for d in range(1, homes.n_days - 1):
        day = homes.first_day + timedelta(days=d)
        si = d - history_days
        for name, idx in groups.items():
            rows = parts[name].day(d, si if si >= 0 else None, windows, resolved)
            if rows is None:
                continue
            boil, per = rows
            boilup[si, idx] = boil
            for key, values in per.items():
                for k, v in enumerate(values):
                    acc[key][k, si, idx] = v
        if si >= 0 and on_day is not None:
            on_day(day)
    outcomes = {
        (mname, j): WindowOutcome(
            window=windows[j],
            declared_kwh=a[0].reshape(-1),
            delivered_kwh=a[1].reshape(-1),
            oracle_kwh=a[2].reshape(-1),
            dr_caused_shortage=a[3].reshape(-1).astype(bool),
            persons=np.tile(homes.persons.astype(np.int64), n_days),
            day_index=np.repeat(np.arange(n_days, dtype=np.int64), n),
        )
        for (mname, j), a in acc.items()
    }
    days = [homes.first_day + timedelta(days=d) for d in scored]
    return Scorecard(
        n_households=n,
        days=days,
        seasons=[season_of(d) for d in days],
        windows=list(windows),
        methods=[m.name for m in resolved],
        outcomes=outcomes,
        boilup_kwh=boilup.reshape(-1),
        tank_volume_l=homes.tank_l.astype(np.float64),
        seed=seed,
        confidence=confidence,
        fixed_margin=0.0,
        runtime_s=time_module.perf_counter() - t_start,
        day_type_of=day_type_on,
    )


class _TariffRun:
    """The homes of one tariff living through the days (state: the tank at 23:00, the
    history)."""

    def __init__(self, homes: Households, tariff: str, confidence: float, learning: bool) -> None:
        self.homes = homes
        self.fleet = homes.fleet()
        self.tariff = TARIFFS[tariff]
        self.confidence = confidence
        self.learning = learning
        self.history = UsageHistory(homes.size)
        first = SlotGrid.day_ahead(homes.first_day + timedelta(days=1), n_slots=_GRID_SLOTS)
        self.q0 = default_initial_heat_kwh(self.fleet, first)
        slots = _slot_use(homes.use_l).reshape(homes.size, homes.n_days, 48)
        self.slots = slots
        self.known_until = 0  # days fully loaded into the history

    def _learn_until(self, d: int) -> None:
        """History: days before ``d − 1`` whole, day ``d − 1`` up to 23:00 (the planning time)."""
        if d - 1 > self.known_until:
            self.history.load(
                self.homes.first_day + timedelta(days=self.known_until),
                self.slots[:, self.known_until : d - 1, :],
            )
            self.known_until = d - 1
        partial = self.slots[:, d - 1 : d, :].copy()
        partial[:, :, 46:] = np.nan
        self.history.load(self.homes.first_day + timedelta(days=d - 1), partial)

    def day(
        self,
        d: int,
        scored: int | None,
        windows: Sequence[EvalWindow],
        methods: Sequence[Method],
    ) -> tuple[FloatArray, dict[tuple[str, int], tuple[FloatArray, ...]]] | None:
        """Plan day ``d`` (grid from 23:00 of day ``d − 1``), score it if ``scored`` is its index
        among the scored days, and carry the tank to 23:00 of day ``d``."""
        homes, fleet = self.homes, self.fleet
        day = homes.first_day + timedelta(days=d)
        grid = SlotGrid.day_ahead(day, n_slots=_GRID_SLOTS)
        prior = draw_forecast(fleet, grid, day_type=day_type_on)
        if self.learning:
            self._learn_until(d)
            forecast = learned_forecast(self.history, slice(None), grid, self.confidence, prior)
        else:
            forecast = prior
        problem = build_problem(
            fleet, grid, self.q0, forecast, tariff=self.tariff, confidence=self.confidence
        )
        planner = FleetPlanner(problem)
        baseline = planner.baseline()
        lo = ((d - 1) * 48 + 46) * STEPS_PER_SLOT
        use = homes.use_l[:, lo : lo + _GRID_SLOTS * STEPS_PER_SLOT].astype(np.float64)
        manual = np.zeros(use.shape, dtype=bool)
        base_run = execute_plan(problem, baseline.heat_kwh, use, manual, fleet.reserve_l)
        out: dict[tuple[str, int], tuple[FloatArray, ...]] = {}
        boil = (problem.draw_kwh[:48] / problem.cop[:48]).sum(axis=0)
        if scored is not None:
            slot_use = _slot_use(use.astype(np.float32))
            oracle = FleetPlanner(
                build_problem(
                    fleet,
                    grid,
                    self.q0,
                    perfect_forecast(slot_use, forecast.after_end_l),
                    tariff=self.tariff,
                    confidence=0.5,
                ),
                # the same rules as the unit's: up-DR never below the unit's own baseline
                in_force_heat_kwh=baseline.heat_kwh,
            )
            tz = zone(grid.tz)
            for j, w in enumerate(windows):
                start = datetime.combine(day, w.start, tzinfo=tz)
                end_day = day if w.end > w.start else day + timedelta(days=1)
                s, e = grid.window_indices(start, datetime.combine(end_day, w.end, tzinfo=tz))
                pot = planner.potential(s, e)
                opot = oracle.potential(s, e)
                up = w.direction is Direction.UP
                oracle_kwh = np.maximum(
                    opot.most_kwh - pot.baseline_kwh if up else pot.baseline_kwh - opot.least_kwh,
                    0.0,
                )
                ctx = MethodContext(
                    problem, planner, fleet, w.direction, s, e, day, scored, baseline, pot
                )
                for m in methods:
                    declared = m(ctx)
                    dr = planner.plan([WindowRequest(w.direction, s, e, declared)])
                    run = execute_plan(problem, dr.heat_kwh, use, manual, fleet.reserve_l)
                    diff = (run.electric_kwh[:, s:e] - base_run.electric_kwh[:, s:e]).sum(axis=1)
                    caused = (run.has_shortage & ~base_run.has_shortage).astype(np.float64)
                    out[(m.name, j)] = (declared, diff if up else -diff, oracle_kwh, caused)
        # the tank at 23:00 of day d, as the baseline left it
        self.q0 = np.maximum(base_run.stored_heat_kwh[:, 48], 0.0)
        return (boil, out) if scored is not None else None


# ---------------------------------------------------------------------------------------------
# measured data from files


def _fail(path: Path, where: str, msg: str) -> ValueError:
    return ValueError(f"{path.name} {where}: {msg}")


def _read_rows(path: Path, need: tuple[str, ...], option: str) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            names = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in need if c not in names]
            if missing:
                raise ValueError(
                    f"{option}: {path.name} line 1: missing column {missing[0]!r} "
                    f"(columns must be {','.join(need)})"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                rows.append((line, {k.strip(): (v or "").strip() for k, v in row.items() if k}))
    except OSError as err:
        raise ValueError(f"{option}: cannot read {path}: {err}") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{option}: {path.name} is not UTF-8 text: {err}") from err
    if not rows:
        raise ValueError(f"{option}: {path.name} has no data rows")
    return rows


def _int_in(text: str, lo: int, hi: int, path: Path, line: int, column: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"{option}: {path.name} line {line}: {column} must be an integer within {lo}–{hi}, "
            f"got {text!r}"
        ) from None
    if not lo <= value <= hi:
        raise ValueError(
            f"{option}: {path.name} line {line}: {column} must be within {lo}–{hi}, got {value}"
        )
    return value


def _float_in(
    text: str, lo: float, hi: float, path: Path, line: int, column: str, option: str
) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(
            f"{option}: {path.name} line {line}: {column} must be a number within "
            f"{lo:g}–{hi:g}, got {text!r}"
        )
    return value


def read_households_csv(
    draws: Path,
    homes: Path,
    tz: str = DEFAULT_TZ,
    min_days: int = HISTORY_DAYS_DEFAULT + 2,
) -> Households:
    """Read a DRAWS and a HOMES file (see the module docstring) into :class:`Households`.

    Raises
    ------
    ValueError
        Starting ``draws:`` or ``homes:`` and naming the file, line, column and allowed range
        (a missing column, a bad number, a time without UTC offset, a household in one file
        but not the other, a duplicate home, a span shorter than ``min_days`` days).
    """
    local = ZoneInfo(tz)
    home_rows = _read_rows(homes, ("household", "persons", "tank_l", "tariff"), "homes")
    info: dict[str, tuple[int, float, str]] = {}
    for line, row in home_rows:
        name = row["household"]
        if not name:
            raise ValueError(f"homes: {homes.name} line {line}: household must not be empty")
        if name in info:
            raise ValueError(f"homes: {homes.name} line {line}: household {name!r} repeats")
        persons = _int_in(row["persons"], 1, MAX_PERSONS, homes, line, "persons", "homes")
        tank = _float_in(row["tank_l"], 100.0, 1000.0, homes, line, "tank_l", "homes")
        tariff = row["tariff"].lower()
        if tariff not in TARIFFS:
            raise ValueError(
                f"homes: {homes.name} line {line}: tariff must be one of "
                f"{', '.join(TARIFFS)}, got {row['tariff']!r}"
            )
        if len(info) >= _MAX_HOUSEHOLDS:
            raise ValueError(f"homes: at most {_MAX_HOUSEHOLDS} households")
        info[name] = (persons, tank, tariff)
    draw_rows = _read_rows(draws, ("household", "time", "litres_40c"), "draws")
    events: list[tuple[str, datetime, float]] = []
    for line, row in draw_rows:
        name = row["household"]
        if name not in info:
            raise ValueError(
                f"draws: {draws.name} line {line}: household {name!r} is not in {homes.name}"
            )
        try:
            at = datetime.fromisoformat(row["time"])
        except ValueError:
            raise ValueError(
                f"draws: {draws.name} line {line}: time must be ISO 8601 with a UTC offset "
                f"(e.g. 2026-11-02T19:05:00+09:00), got {row['time']!r}"
            ) from None
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(
                f"draws: {draws.name} line {line}: time {row['time']!r} has no UTC offset "
                "(e.g. +09:00)"
            )
        litres = _float_in(row["litres_40c"], 0.0, 1000.0, draws, line, "litres_40c", "draws")
        events.append((name, at.astimezone(local), litres))
    first = min(e[1] for e in events).date()
    last = max(e[1] for e in events).date()
    n_days = (last - first).days + 1
    if n_days > _MAX_DAYS:
        raise ValueError(f"draws: the span {first}–{last} is {n_days} days, at most {_MAX_DAYS}")
    if n_days < min_days:
        raise ValueError(
            f"draws: the span {first}–{last} is {n_days} days; at least {min_days} are needed "
            f"({min_days - 2} of history, one scored, and the next morning)"
        )
    names = list(info)
    pos = {name: i for i, name in enumerate(names)}
    use = np.zeros((len(names), n_days * STEPS_PER_DAY), dtype=np.float64)
    for name, at, litres in events:
        # the local day and its wall-clock minutes (Japan has no daylight saving time)
        step = (at.date() - first).days * STEPS_PER_DAY + (at.hour * 60 + at.minute) // STEP_MINUTES
        use[pos[name], step] += litres
    return Households(
        first_day=first,
        use_l=use.astype(np.float32),
        persons=np.array([info[k][0] for k in names], dtype=np.int64),
        tank_l=np.array([info[k][1] for k in names], dtype=np.float64),
        tariff=tuple(info[k][2] for k in names),
        names=tuple(names),
    )
