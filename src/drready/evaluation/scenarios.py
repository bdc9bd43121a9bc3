"""The scenario library: households the forecast was not made for (E1; issue 13 item 3).

Each *class* takes households of 1–4 persons whose everyday use is the national schedule's
(sampled on the real 2026 calendar, :func:`~drready.physics.draws.day_type_on`) and changes it
the way real homes depart from it; every class runs under every tariff (flat, night,
three-period TOU, :data:`~drready.evaluation.households.TARIFFS`), and every day is scored in
every 3-hour window of the day, up and down (:data:`ALL_WINDOWS`), by
:func:`~drready.evaluation.households.evaluate_households` — units that learn from the first 14
days, then are asked for what they declare.

=====================  ======================================================================
class                  what changes (each home its own dates)
=====================  ======================================================================
``standard``           nothing: the schedule's variation only
``late-baths``         everything drawn 17:00–23:00 comes 2 h later (baths at 23:00–01:00)
``guests``             one Friday–Sunday in the scored weeks with twice the use, one before
``trips``              three days away (no use) in the scored weeks, back on the fourth, and one
                       trip in the history
``shift-workers``      alternate weeks on nights: the whole day's use 8 h later
``heavy-use``          1.5 × the use, every day
``seasonal``           use rising from 0.8 × to 1.3 × over the span (autumn into winter)
=====================  ======================================================================

The span is :data:`SPAN_START` (2026-11-01) + 14 days of history + ``scored_days`` + one, so
the mains water cools through it too. The targets (:func:`library_targets`) hold for every
class, tariff and window: deliverability ≥ 95 %, no DR-caused shortage, declared ≥ 80 % of the
perfect-foresight potential.
"""

from __future__ import annotations

import time as time_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from drready.domain import Direction
from drready.evaluation.deliverability import EvalWindow, WindowOutcome
from drready.evaluation.households import (
    HISTORY_DAYS_DEFAULT,
    STEPS_PER_DAY,
    TARIFFS,
    Households,
    evaluate_households,
)
from drready.evaluation.scorecard import (
    MIN_DECLARED_KWH,
    TOLERANCE,
    Scorecard,
    outcome_stats,
    window_label,
)
from drready.physics.draws import day_type_on, sample_step_use_l

__all__ = [
    "ALL_WINDOWS",
    "CLASSES",
    "SPAN_START",
    "TARGET_DECLARED_OVER_ORACLE",
    "build_library",
    "library_dict",
    "library_targets",
    "run_library",
]

Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

SPAN_START = date(2026, 11, 1)
ALL_WINDOWS: tuple[EvalWindow, ...] = tuple(
    EvalWindow(direction, time(h), time((h + 3) % 24))
    for direction in (Direction.UP, Direction.DOWN)
    for h in range(0, 24, 3)
)
"""Every 3-hour window of the day, up and down (16)."""
TARGET_DELIVERABILITY = 0.95
TARGET_DECLARED_OVER_ORACLE = 0.80
_K = STEPS_PER_DAY // 24  # steps per hour


def _late_baths(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    evening = np.zeros(STEPS_PER_DAY, dtype=bool)
    evening[17 * _K : 23 * _K] = True
    mask = np.tile(evening, n_days)
    moved = np.where(mask, use, 0.0)
    use[:, mask] = 0.0
    use[:, 2 * _K :] += moved[:, : -2 * _K]


def _weekend_start(rng: np.random.Generator, first: date, lo: int, hi: int) -> int:
    """A Friday's day index in [lo, hi) (any day there if the range holds no Friday)."""
    fridays = [d for d in range(lo, hi) if (first + timedelta(days=d)).weekday() == 4]
    return int(rng.choice(fridays or list(range(lo, max(hi, lo + 1)))))


def _guests(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    for i in range(use.shape[0]):
        for lo, hi in ((2, HISTORY_DAYS_DEFAULT - 3), (HISTORY_DAYS_DEFAULT - 1, n_days - 2)):
            d = _weekend_start(rng, SPAN_START, lo, hi)
            use[i, d * STEPS_PER_DAY : (d + 3) * STEPS_PER_DAY] *= 2.0


def _trips(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    for i in range(use.shape[0]):
        for lo, hi in ((1, HISTORY_DAYS_DEFAULT - 4), (HISTORY_DAYS_DEFAULT - 2, n_days - 4)):
            d = int(rng.integers(lo, max(hi, lo + 1)))
            use[i, d * STEPS_PER_DAY : (d + 3) * STEPS_PER_DAY] = 0.0


def _shift_workers(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    phase = rng.integers(0, 2, use.shape[0])
    out = use.copy()
    for d in range(n_days - 1):
        rows = np.flatnonzero(((d // 7) % 2) == phase)
        seg = slice(d * STEPS_PER_DAY, (d + 1) * STEPS_PER_DAY)
        later = slice(d * STEPS_PER_DAY + 8 * _K, (d + 1) * STEPS_PER_DAY + 8 * _K)
        out[rows, seg] -= use[rows, seg]
        out[rows, later] += use[rows, seg]
    use[:] = np.maximum(out, 0.0)


def _heavy(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    use *= np.float32(1.5)


def _seasonal(use: Float32Array, rng: np.random.Generator, n_days: int) -> None:
    factor = np.repeat(np.linspace(0.8, 1.3, n_days, dtype=np.float32), STEPS_PER_DAY)
    use *= factor[None, :]


CLASSES: dict[str, Callable[[Float32Array, np.random.Generator, int], None] | None] = {
    "standard": None,
    "late-baths": _late_baths,
    "guests": _guests,
    "trips": _trips,
    "shift-workers": _shift_workers,
    "heavy-use": _heavy,
    "seasonal": _seasonal,
}
"""The scenario classes and how each changes the sampled use in place (module docstring)."""


def build_library(
    per_class: int, scored_days: int, seed: int, classes: tuple[str, ...] | None = None
) -> Households:
    """``per_class`` homes of every class under every tariff (each tariff its own homes),
    over 14 days of history + ``scored_days`` + 1 from :data:`SPAN_START`."""
    if not 1 <= per_class <= 2000:
        raise ValueError(f"per_class must be within 1–2000, got {per_class}")
    if not 1 <= scored_days <= 60:
        raise ValueError(f"scored_days must be within 1–60, got {scored_days}")
    names = tuple(CLASSES) if classes is None else classes
    unknown = [c for c in names if c not in CLASSES]
    if unknown:
        raise ValueError(f"classes: unknown {unknown[0]!r}; use {', '.join(CLASSES)}")
    rng = np.random.default_rng(seed)
    n_days = HISTORY_DAYS_DEFAULT + scored_days + 1
    types = [day_type_on(SPAN_START + timedelta(days=d)) for d in range(n_days)]
    uses, persons, tanks, tariffs, groups = [], [], [], [], []
    for cls in names:
        for tariff in TARIFFS:
            p = rng.choice(np.arange(1, 5), size=per_class, p=[0.2, 0.3, 0.25, 0.25])
            use = sample_step_use_l(rng, p, types, 5).use_l
            change = CLASSES[cls]
            if change is not None:
                change(use, rng, n_days)
            big = rng.random(per_class) < np.where(p >= 3, 0.7, 0.2)
            uses.append(use)
            persons.append(p.astype(np.int64))
            tanks.append(np.where(big, 460.0, 370.0))
            tariffs += [tariff] * per_class
            groups += [cls] * per_class
    n = len(groups)
    return Households(
        first_day=SPAN_START,
        use_l=np.concatenate(uses).astype(np.float32),
        persons=np.concatenate(persons),
        tank_l=np.concatenate(tanks),
        tariff=tuple(tariffs),
        names=tuple(f"{g}-{i}" for i, g in enumerate(groups)),
        group=tuple(groups) if n else None,
    )


@dataclass(frozen=True)
class LibraryResult:
    """One scorecard over all homes of the library, and their classes and tariffs."""

    scorecard: Scorecard
    homes: Households
    runtime_s: float

    def mask(self, cls: str, tariff: str) -> BoolArray:
        """Cases (home × scored day, day-major) of a class and tariff."""
        group = np.array(self.homes.group or ("",) * self.homes.size)
        tar = np.array(self.homes.tariff)
        per_home = (group == cls) & (tar == tariff)
        out: BoolArray = np.tile(per_home, len(self.scorecard.days))
        return out


def run_library(
    per_class: int = 20,
    scored_days: int = 14,
    seed: int = 7,
    *,
    windows: tuple[EvalWindow, ...] = ALL_WINDOWS,
    classes: tuple[str, ...] | None = None,
    confidence: float = 0.95,
    on_day: Callable[[date], None] | None = None,
) -> LibraryResult:
    """Build the library (:func:`build_library`) and score it (``ours``)."""
    t0 = time_module.perf_counter()
    homes = build_library(per_class, scored_days, seed, classes)
    sc = evaluate_households(
        homes, windows=windows, confidence=confidence, seed=seed, on_day=on_day
    )
    return LibraryResult(sc, homes, time_module.perf_counter() - t0)


def _take(o: WindowOutcome, m: BoolArray) -> WindowOutcome:
    return WindowOutcome(
        o.window,
        o.declared_kwh[m],
        o.delivered_kwh[m],
        o.oracle_kwh[m],
        o.dr_caused_shortage[m],
        o.persons[m],
        o.day_index[m],
    )


@dataclass(frozen=True)
class LibraryTarget:
    cls: str
    tariff: str
    window: str
    name: str
    value: float
    threshold: float
    comparison: str
    passed: bool


def library_targets(res: LibraryResult) -> list[LibraryTarget]:
    """The three targets for every class, tariff and window (``ours``). Declared/oracle is
    measured on the cases the oracle itself finds at least 0.1 kWh in (a window with
    nothing to shift has no ratio); a class with no asked case passes deliverability
    vacuously (nothing was declared to fail)."""
    out: list[LibraryTarget] = []
    sc = res.scorecard
    classes = list(dict.fromkeys(res.homes.group or ()))
    tariffs = list(dict.fromkeys(res.homes.tariff))
    for j, w in enumerate(sc.windows):
        o = sc.outcomes[("ours", j)]
        label = window_label(w)
        for cls in classes:
            for tar in tariffs:
                sub = _take(o, res.mask(cls, tar))
                dv = sub.deliverability(TOLERANCE, MIN_DECLARED_KWH)
                dv = 1.0 if np.isnan(dv) else dv
                has = sub.oracle_kwh >= MIN_DECLARED_KWH
                ratio = _take(sub, has).declared_over_oracle() if has.any() else 1.0
                shortages = float(sub.shortages)
                for name, value, thr, cmp in (
                    ("deliverability", dv, TARGET_DELIVERABILITY, ">="),
                    ("declared/oracle", ratio, TARGET_DECLARED_OVER_ORACLE, ">="),
                    ("DR-caused shortages", shortages, 0.0, "=="),
                ):
                    ok = value >= thr if cmp == ">=" else value == thr
                    out.append(LibraryTarget(cls, tar, label, name, value, thr, cmp, bool(ok)))
    return out


def library_dict(res: LibraryResult) -> dict[str, Any]:
    """JSON form: ``config``, ``runtime_s``, ``classes`` ``{class: {tariff: {window label:
    stats}}}`` (stats as the scorecard's, :func:`~drready.evaluation.scorecard.outcome_stats`),
    ``failed`` (the targets not met) and ``passed``."""
    sc = res.scorecard
    classes: dict[str, dict[str, dict[str, Any]]] = {}
    for cls in dict.fromkeys(res.homes.group or ()):
        per_tariff: dict[str, dict[str, Any]] = {}
        for tar in dict.fromkeys(res.homes.tariff):
            m = res.mask(cls, tar)
            per_tariff[tar] = {
                window_label(w): outcome_stats(_take(sc.outcomes[("ours", j)], m))
                for j, w in enumerate(sc.windows)
            }
        classes[cls] = per_tariff
    tg = library_targets(res)
    return {
        "config": {
            "households": res.homes.size,
            "history_days": HISTORY_DAYS_DEFAULT,
            "scored_days": len(sc.days),
            "first_day": res.homes.first_day.isoformat(),
            "confidence": sc.confidence,
            "seed": sc.seed,
            "windows": [window_label(w) for w in sc.windows],
            "targets": {
                "deliverability": TARGET_DELIVERABILITY,
                "declared_over_oracle": TARGET_DECLARED_OVER_ORACLE,
                "dr_caused_shortages": 0,
            },
        },
        "runtime_s": round(res.runtime_s, 3),
        "classes": classes,
        "targets_checked": len(tg),
        "failed": [
            {
                "class": t.cls,
                "tariff": t.tariff,
                "window": t.window,
                "name": t.name,
                "value": round(t.value, 6),
                "threshold": t.threshold,
                "comparison": t.comparison,
            }
            for t in tg
            if not t.passed
        ],
        "passed": all(t.passed for t in tg),
    }
