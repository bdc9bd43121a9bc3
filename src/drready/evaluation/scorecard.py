"""The E1 DR-potential scorecard: is each method's declared potential deliverable and not
needlessly small? (E1, F1)

The scorecard (:func:`score` of a :class:`ScorecardSettings`; ``drready evaluate potential``,
:mod:`drready.cli.evaluate`, prints it) runs a Monte Carlo over stochastic households (1–4 persons,
370/460 L tanks, :meth:`Fleet.random`) on representative days of the four seasons (``n`` days
spread evenly over each season, each with its day type from the national schedule calendar),
and for every potential-calculation method (:mod:`drready.evaluation.methods`) and window
(default up 10:00–14:00 and down 00:00–04:00) reports

* declared kWh — what the method declares the evening before;
* delivered kWh — when the unit is asked for exactly its declared amount, re-plans and lives
  through the day's *realised* use with its safeguards, minus the same day without DR (the
  execution of :mod:`drready.evaluation.deliverability`, same draws with and without DR);
* the oracle potential (perfect-foresight planner, from the unit's own baseline);
* deliverability — share of requests (declared ≥ 0.1 kWh) delivering ≥ 95 % of the declared;
* declared/oracle — Σ declared / Σ oracle;
* DR-caused shortages — households short of hot water with DR but not without;

overall and broken down by season, household size and day type; and, per household size and
season, the **shiftable share of the daily boil-up** (the agency's "DR potential evaluation
mode"): Σ declared up-DR in the window / Σ the day's required boil-up electricity (the
expected draw heat of the 24 h from 23:00 the evening before, each slot's heat divided by that
slot's COP), for every method and for the oracle. Shares above 100 % mean the window can absorb
more than the day's own need (the tank is loaded ahead for the evening and the next night).

One day's households, baseline, oracle, realised draws and no-DR execution are shared by every
method; only the DR plan and its execution are per method and window. Households are arrays;
the loops run over days, methods and windows.

The scorecard ends with PASS/FAIL per target (:func:`targets`): ``ours`` ≥ 95 % deliverable,
declared ≥ 85 % of the oracle, no DR-caused shortage in every window; ``naive`` shown
over-declaring (deliverability ≤ 85 % in the up window); ``fixed-margin`` shown under-declaring
(declared/oracle at least 10 points below ``ours`` in every window). The figures come as the
documented JSON form (:func:`scorecard_dict`); the HTML report is :mod:`drready.evaluation.report`.
"""

from __future__ import annotations

import math
import time as time_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import BeforeValidator, Field, StrictInt, field_validator

from drready.domain import Direction, SlotGrid
from drready.domain.base import DomainModel, bounded_float
from drready.domain.time import zone
from drready.evaluation.deliverability import STEP_MINUTES, EvalWindow, WindowOutcome
from drready.evaluation.methods import (
    DEFAULT_FIXED_MARGIN,
    Method,
    MethodContext,
    resolve_methods,
)
from drready.physics.draws import DayType, DrawVariability, day_type_for, sample_step_use_l
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.execution import execute_plan
from drready.planning.problem import (
    Fleet,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    draw_forecast,
    perfect_forecast,
)
from drready.planning.unit import CONFIDENCE_RANGE

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SEASONS: dict[str, tuple[date, date]] = {
    "winter": (date(2025, 12, 1), date(2026, 2, 28)),
    "spring": (date(2026, 3, 1), date(2026, 5, 31)),
    "summer": (date(2026, 6, 1), date(2026, 8, 31)),
    "autumn": (date(2026, 9, 1), date(2026, 11, 30)),
}
"""Meteorological seasons (the calendar's day types ignore the year)."""

DEFAULT_WINDOWS = (
    EvalWindow(Direction.UP, time(10), time(14)),
    EvalWindow(Direction.DOWN, time(0), time(4)),
)
TOLERANCE = 0.05
MIN_DECLARED_KWH = 0.1
MAX_HOUSEHOLDS = 200_000
MAX_DAYS_PER_SEASON = 90
MAX_DAYS = 4 * MAX_DAYS_PER_SEASON

TARGET_DELIVERABILITY = 0.95
TARGET_DECLARED_OVER_ORACLE = 0.85
NAIVE_MAX_DELIVERABILITY = 0.85
FIXED_MARGIN_MIN_GAP = 0.10


def representative_days(days_per_season: int) -> list[tuple[date, str]]:
    """``days_per_season`` days spread evenly over each season (the middle of equal parts)."""
    out = []
    for name, (first, last) in SEASONS.items():
        length = (last - first).days + 1
        for i in range(days_per_season):
            out.append((first + timedelta(days=int((i + 0.5) * length / days_per_season)), name))
    return out


def days_over_the_year(n_days: int) -> list[tuple[date, str]]:
    """``n_days`` days over the four seasons, as evenly as whole days allow: each season gets
    ``n_days // 4`` and the first ``n_days % 4`` seasons (winter, spring, …) one more, each
    spread over its season as :func:`representative_days` spreads them.

    >>> [(d.isoformat(), s) for d, s in days_over_the_year(5)][:2]
    [('2025-12-23', 'winter'), ('2026-02-06', 'winter')]
    """
    out = []
    for k, (name, (first, last)) in enumerate(SEASONS.items()):
        count = n_days // len(SEASONS) + (1 if k < n_days % len(SEASONS) else 0)
        length = (last - first).days + 1
        for i in range(count):
            out.append((first + timedelta(days=int((i + 0.5) * length / count)), name))
    return out


def window_label(w: EvalWindow) -> str:
    return f"{w.direction.value} {w.start:%H:%M}–{w.end:%H:%M}"


def parse_window(text: str) -> EvalWindow:
    """``"up:10:00-14:00"`` → :class:`EvalWindow` (local times on the evaluated day; the end may
    be ``24:00``/``00:00`` for midnight, and must be on a 30-minute boundary)."""
    try:
        direction, _, span = text.partition(":")
        a, _, b = span.partition("-")
        start = _parse_hhmm(a)
        end = _parse_hhmm(b)
        w = EvalWindow(Direction(direction.strip().lower()), start, end)
    except ValueError as err:
        raise ValueError(f"windows: expected 'up|down:HH:MM-HH:MM', got {text!r} ({err})") from err
    if start.minute % 30 or end.minute % 30:
        raise ValueError(f"windows: {text!r} must lie on 30-minute boundaries")
    if end != time(0) and end <= start:
        raise ValueError(f"windows: {text!r} must end after it starts")
    return w


def _parse_hhmm(s: str) -> time:
    h, _, m = s.strip().partition(":")
    hour, minute = int(h), int(m or 0)
    return time(0) if (hour, minute) == (24, 0) else time(hour, minute)


def _window(value: object) -> object:
    """A window given as text (``"up:10:00-14:00"``) is parsed by :func:`parse_window`."""
    return parse_window(value) if isinstance(value, str) else value


class ScorecardSettings(DomainModel):
    """The inputs of one scorecard run (:func:`score`), validated once for the command line and
    for library callers: each error names the field and its range, e.g.
    ``households must be <= 200000, got 300000 (allowed range: [1, 200000])``.

    ``methods`` are names (``ours``, ``naive``, ``fixed-margin``, ``csv``, ``module:function``;
    see :func:`~drready.evaluation.methods.resolve_methods`); a ``csv`` file adds the ``csv``
    method. ``windows`` may be given as text, ``"up|down:HH:MM-HH:MM"``.
    """

    households: Annotated[StrictInt, bounded_float(1, MAX_HOUSEHOLDS)] = 1000
    days_per_season: Annotated[StrictInt, bounded_float(1, MAX_DAYS_PER_SEASON)] = 7
    n_days: Annotated[StrictInt, bounded_float(1, MAX_DAYS)] | None = Field(
        default=None,
        description="Evaluated days in all, spread over the four seasons; replaces "
        "days_per_season when given.",
    )
    seed: Annotated[StrictInt, bounded_float(0)] = 7
    methods: tuple[str, ...] = ("ours", "naive", "fixed-margin")
    fixed_margin: Annotated[float, bounded_float(0.0, 1.0, hi_open=True)] = DEFAULT_FIXED_MARGIN
    csv: Path | None = Field(
        default=None,
        description="Declared values per household and day (columns household, day, "
        "direction, declared_kwh).",
    )
    windows: tuple[Annotated[EvalWindow, BeforeValidator(_window)], ...] = Field(
        default=DEFAULT_WINDOWS, min_length=1
    )
    confidence: Annotated[float, bounded_float(*CONFIDENCE_RANGE)] = 0.95

    @field_validator("csv")
    @classmethod
    def _csv_is_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"csv: no such file {value}")
        return value

    def picked_days(self) -> list[tuple[date, str]]:
        """The evaluated days and their seasons: :func:`days_over_the_year` of ``n_days`` when
        given, else :func:`representative_days` of ``days_per_season``."""
        if self.n_days is not None:
            return days_over_the_year(self.n_days)
        return representative_days(self.days_per_season)

    def days(self) -> list[date]:
        """The evaluated days (:meth:`picked_days`)."""
        return [d for d, _ in self.picked_days()]


@dataclass(frozen=True)
class Scorecard:
    """All cases of a run. ``outcomes[(method, window index)]`` has one entry per case
    (household × day, day-major); ``boilup_kwh`` is the day's required boil-up electricity
    per case, ``oracle_kwh`` per window is in each outcome."""

    n_households: int
    days: list[date]
    seasons: list[str]
    windows: list[EvalWindow]
    methods: list[str]
    outcomes: dict[tuple[str, int], WindowOutcome]
    boilup_kwh: FloatArray
    tank_volume_l: FloatArray
    seed: int
    confidence: float
    fixed_margin: float
    runtime_s: float
    day_type_of: Callable[[date], DayType] = day_type_for
    """The calendar the days' types are read from (the national one for the Monte Carlo, the
    real one, :func:`~drready.physics.draws.day_type_on`, for households on real dates)."""

    @property
    def case_season(self) -> npt.NDArray[np.str_]:
        return np.repeat(np.array(self.seasons), self.n_households)

    @property
    def case_day_type(self) -> npt.NDArray[np.str_]:
        types = [self.day_type_of(d).value for d in self.days]
        return np.repeat(np.array(types), self.n_households)


def run_scorecard(
    n_households: int,
    days_per_season: int,
    seed: int,
    methods: Sequence[Method],
    *,
    windows: Sequence[EvalWindow] = DEFAULT_WINDOWS,
    confidence: float = 0.95,
    fixed_margin: float = DEFAULT_FIXED_MARGIN,
    variability: DrawVariability | None = None,
    on_day: Callable[[date], None] | None = None,
    picked_days: Sequence[tuple[date, str]] | None = None,
) -> Scorecard:
    """Run the Monte Carlo; ``on_day`` is called after each day (progress). ``picked_days``
    (days and their seasons) replaces the ``days_per_season`` representative days.

    The random stream is the one of :func:`~drready.evaluation.deliverability.
    evaluate_declared_potential` (fleet, then per day the initial state and the realised use),
    so ``ours`` matches it for the same seed and days.
    """
    t_start = time_module.perf_counter()
    picked = list(picked_days) if picked_days is not None else representative_days(days_per_season)
    days = [d for d, _ in picked]
    rng = np.random.default_rng(seed)
    fleet = Fleet.random(rng, n_households)
    var = DrawVariability() if variability is None else variability
    n = n_households
    k = 30 // STEP_MINUTES
    parts: dict[tuple[str, int], list[tuple[FloatArray, ...]]] = {
        (m.name, j): [] for m in methods for j in range(len(windows))
    }
    boilup: list[FloatArray] = []
    for di, day in enumerate(days):
        grid = SlotGrid.day_ahead(day, n_slots=64)
        q0 = default_initial_heat_kwh(fleet, grid) * rng.uniform(0.6, 1.4, n)
        forecast = draw_forecast(fleet, grid, var)
        problem = build_problem(fleet, grid, q0, forecast, confidence=confidence)
        planner = FleetPlanner(problem)
        baseline = planner.baseline()
        span, offset = days_covering(grid)
        sample = sample_step_use_l(
            rng, fleet.persons, [day_type_for(d) for d in span], STEP_MINUTES, var, fleet.bathtub
        )
        sl = slice(offset * k, (offset + grid.n_slots) * k)
        use = sample.use_l[:, sl].astype(np.float64)
        manual = sample.manual_reheat[:, sl]
        slot_use = use.reshape(n, grid.n_slots, k).sum(axis=2)
        oracle = FleetPlanner(
            build_problem(
                fleet, grid, q0, perfect_forecast(slot_use, forecast.after_end_l), confidence=0.5
            ),
            # the same rules as the unit's: up-DR never below the unit's own baseline
            in_force_heat_kwh=baseline.heat_kwh,
        )
        base_run = execute_plan(problem, baseline.heat_kwh, use, manual, fleet.reserve_l)
        # the day's required boil-up: the expected draw heat of the 24 h from 23:00, made at
        # the slots' COP (electricity, like the declared amounts)
        boilup.append((problem.draw_kwh[:48] / problem.cop[:48]).sum(axis=0))
        tz = zone(grid.tz)
        for j, w in enumerate(windows):
            start = datetime.combine(day, w.start, tzinfo=tz)
            end_day = day if w.end > w.start else day + timedelta(days=1)
            s, e = grid.window_indices(start, datetime.combine(end_day, w.end, tzinfo=tz))
            pot = planner.potential(s, e)
            opot = oracle.potential(s, e)
            up = w.direction is Direction.UP
            oracle_kwh = np.maximum(
                opot.most_kwh - pot.baseline_kwh if up else pot.baseline_kwh - opot.least_kwh, 0.0
            )
            ctx = MethodContext(problem, planner, fleet, w.direction, s, e, day, di, baseline, pot)
            for m in methods:
                declared = m(ctx)
                dr = planner.plan([WindowRequest(w.direction, s, e, declared)])
                run = execute_plan(problem, dr.heat_kwh, use, manual, fleet.reserve_l)
                diff = (run.electric_kwh[:, s:e] - base_run.electric_kwh[:, s:e]).sum(axis=1)
                caused = (run.has_shortage & ~base_run.has_shortage).astype(np.float64)
                parts[(m.name, j)].append((declared, diff if up else -diff, oracle_kwh, caused))
        if on_day is not None:
            on_day(day)
    outcomes = {}
    for (name, j), rows in parts.items():
        cols = list(zip(*rows, strict=True))
        outcomes[(name, j)] = WindowOutcome(
            window=windows[j],
            declared_kwh=np.concatenate(cols[0]),
            delivered_kwh=np.concatenate(cols[1]),
            oracle_kwh=np.concatenate(cols[2]),
            dr_caused_shortage=np.concatenate(cols[3]).astype(bool),
            persons=np.tile(fleet.persons, len(days)),
            day_index=np.repeat(np.arange(len(days)), n),
        )
    return Scorecard(
        n_households=n,
        days=days,
        seasons=[s for _, s in picked],
        windows=list(windows),
        methods=[m.name for m in methods],
        outcomes=outcomes,
        boilup_kwh=np.concatenate(boilup),
        tank_volume_l=fleet.tank_volume_l,
        seed=seed,
        confidence=confidence,
        fixed_margin=fixed_margin,
        runtime_s=time_module.perf_counter() - t_start,
    )


def score(
    settings: ScorecardSettings, *, on_day: Callable[[date], None] | None = None
) -> Scorecard:
    """Run the scorecard ``settings`` describe; ``on_day`` is called after each day (progress).

    Raises
    ------
    ValueError
        Naming ``methods`` or ``csv`` when a method cannot be resolved (an unknown name, a
        ``module:function`` that does not import, a CSV row outside the evaluated fleet or days).
    """
    methods = resolve_methods(
        settings.methods,
        fixed_margin_share=settings.fixed_margin,
        csv=settings.csv,
        days=settings.days(),
        n_households=settings.households,
    )
    return run_scorecard(
        settings.households,
        settings.days_per_season,
        settings.seed,
        methods,
        windows=settings.windows,
        confidence=settings.confidence,
        fixed_margin=settings.fixed_margin,
        on_day=on_day,
        picked_days=settings.picked_days(),
    )


# ---------------------------------------------------------------------------------------------
# figures


def _subset(o: WindowOutcome, mask: BoolArray) -> WindowOutcome:
    return replace(
        o,
        declared_kwh=o.declared_kwh[mask],
        delivered_kwh=o.delivered_kwh[mask],
        oracle_kwh=o.oracle_kwh[mask],
        dr_caused_shortage=o.dr_caused_shortage[mask],
        persons=o.persons[mask],
        day_index=o.day_index[mask],
    )


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


def outcome_stats(o: WindowOutcome) -> dict[str, Any]:
    """The figures of one set of cases (see :data:`JSON_DOC`)."""
    cases = int(o.declared_kwh.size)

    def mean(a: FloatArray) -> float:
        return float(a.mean()) if cases else float("nan")

    return {
        "cases": cases,
        "asked": int(o.asked(MIN_DECLARED_KWH).sum()),
        "declared_kwh": _num(mean(o.declared_kwh)),
        "delivered_kwh": _num(mean(o.delivered_kwh)),
        "oracle_kwh": _num(mean(o.oracle_kwh)),
        "deliverability": _num(o.deliverability(TOLERANCE, MIN_DECLARED_KWH)),
        "declared_over_oracle": _num(o.declared_over_oracle()),
        "dr_caused_shortages": o.shortages,
    }


def _groups(sc: Scorecard, o: WindowOutcome) -> dict[str, dict[str, BoolArray]]:
    season = sc.case_season
    dtype = sc.case_day_type
    return {
        "by_season": {s: season == s for s in SEASONS if s in sc.seasons},
        "by_persons": {str(p): o.persons == p for p in range(1, 5)},
        "by_day_type": {t: dtype == t for t in dict.fromkeys(dtype.tolist())},
    }


def shiftable_share(sc: Scorecard, window: int) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{method or "oracle": {season or "all": {persons or "all": share}}}`` for an up window:
    Σ declared / Σ the day's required boil-up electricity."""
    season = sc.case_season
    first = sc.outcomes[(sc.methods[0], window)]
    series = {m: sc.outcomes[(m, window)].declared_kwh for m in sc.methods}
    series["oracle"] = first.oracle_kwh
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, declared in series.items():
        per: dict[str, dict[str, float | None]] = {}
        for s in [*SEASONS, "all"]:
            if s != "all" and s not in sc.seasons:
                continue
            ms = np.ones(season.size, bool) if s == "all" else season == s
            row: dict[str, float | None] = {}
            for p in ["1", "2", "3", "4", "all"]:
                mask = ms if p == "all" else ms & (first.persons == int(p))
                total = float(sc.boilup_kwh[mask].sum())
                row[p] = _num(float(declared[mask].sum()) / total) if total > 0 else None
            per[s] = row
        out[name] = per
    return out


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    window: str
    value: float
    threshold: float
    comparison: str
    passed: bool


def targets(sc: Scorecard) -> list[Target]:
    """PASS/FAIL targets for the methods present (see the module docstring)."""
    out: list[Target] = []

    def add(name: str, method: str, j: int, value: float, thr: float, cmp: str) -> None:
        ok = (value >= thr) if cmp == ">=" else (value <= thr) if cmp == "<=" else value == thr
        ok = ok and not math.isnan(value)
        out.append(Target(name, method, window_label(sc.windows[j]), value, thr, cmp, ok))

    for j, w in enumerate(sc.windows):
        if "ours" in sc.methods:
            o = sc.outcomes[("ours", j)]
            add("deliverability", "ours", j, o.deliverability(), TARGET_DELIVERABILITY, ">=")
            add(
                "declared/oracle",
                "ours",
                j,
                o.declared_over_oracle(),
                TARGET_DECLARED_OVER_ORACLE,
                ">=",
            )
            add("DR-caused shortages", "ours", j, float(o.shortages), 0.0, "==")
        if "naive" in sc.methods and w.direction is Direction.UP:
            o = sc.outcomes[("naive", j)]
            add(
                "over-declares: deliverability",
                "naive",
                j,
                o.deliverability(),
                NAIVE_MAX_DELIVERABILITY,
                "<=",
            )
        if "fixed-margin" in sc.methods and "ours" in sc.methods:
            ours_r = sc.outcomes[("ours", j)].declared_over_oracle()
            fm = sc.outcomes[("fixed-margin", j)].declared_over_oracle()
            add(
                "under-declares: declared/oracle",
                "fixed-margin",
                j,
                fm,
                ours_r - FIXED_MARGIN_MIN_GAP,
                "<=",
            )
    return out


JSON_DOC = """\
The scorecard as JSON (``drready evaluate potential --json``):

* ``config``: ``households``, ``days_per_season``, ``seed``, ``confidence``, ``fixed_margin``,
  ``tolerance`` (0.05), ``min_declared_kwh`` (0.1), ``methods`` (names), ``windows`` (list of
  ``{label, direction, start, end}``), ``days`` (list of ``{date, season, day_type}``).
* ``runtime_s``: wall time of the Monte Carlo [s].
* ``results``: ``{method: {window label: {"overall": S, "by_season": {season: S},
  "by_persons": {"1".."4": S}, "by_day_type": {day type: S}}}}`` where ``S`` is
  ``{cases, asked, declared_kwh, delivered_kwh, oracle_kwh`` (means per case [kWh]),
  ``deliverability, declared_over_oracle`` (shares, null when undefined),
  ``dr_caused_shortages}``.
* ``shiftable_share``: ``{up window label: {method or "oracle": {season or "all":
  {"1".."4" or "all": share}}}}`` — Σ declared up-DR / Σ the day's required boil-up electricity.
* ``targets``: list of ``{name, method, window, value, threshold, comparison, passed}``.
* ``passed``: every target passed.
"""


def scorecard_dict(sc: Scorecard) -> dict[str, Any]:
    """The documented JSON form (:data:`JSON_DOC`)."""
    results: dict[str, dict[str, Any]] = {}
    for m in sc.methods:
        per: dict[str, Any] = {}
        for j, w in enumerate(sc.windows):
            o = sc.outcomes[(m, j)]
            entry: dict[str, Any] = {"overall": outcome_stats(o)}
            for gname, masks in _groups(sc, o).items():
                entry[gname] = {key: outcome_stats(_subset(o, mask)) for key, mask in masks.items()}
            per[window_label(w)] = entry
        results[m] = per
    tg = targets(sc)
    return {
        "config": {
            "households": sc.n_households,
            "days_per_season": len(sc.days) // len(SEASONS),
            "n_days": len(sc.days),
            "seed": sc.seed,
            "confidence": sc.confidence,
            "fixed_margin": sc.fixed_margin,
            "tolerance": TOLERANCE,
            "min_declared_kwh": MIN_DECLARED_KWH,
            "methods": list(sc.methods),
            "windows": [
                {
                    "label": window_label(w),
                    "direction": w.direction.value,
                    "start": f"{w.start:%H:%M}",
                    "end": f"{w.end:%H:%M}",
                }
                for w in sc.windows
            ],
            "days": [
                {"date": d.isoformat(), "season": s, "day_type": sc.day_type_of(d).value}
                for d, s in zip(sc.days, sc.seasons, strict=True)
            ],
        },
        "runtime_s": round(sc.runtime_s, 3),
        "results": results,
        "shiftable_share": {
            window_label(w): shiftable_share(sc, j)
            for j, w in enumerate(sc.windows)
            if w.direction is Direction.UP
        },
        "targets": [
            {
                "name": t.name,
                "method": t.method,
                "window": t.window,
                "value": _num(t.value),
                "threshold": round(t.threshold, 6),
                "comparison": t.comparison,
                "passed": t.passed,
            }
            for t in tg
        ],
        "passed": all(t.passed for t in tg),
    }
