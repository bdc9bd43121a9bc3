"""Units that learn their household: a forecast from the unit's own measured draws, with its
confidence from its own forecast errors (F1, F3, E1; issue 13 item 2).

Every unit keeps the hot-water use it measured over the last :data:`HISTORY_DAYS` days, per
30-minute slot (:class:`UsageHistory`), and forecasts from it (:func:`learned_forecast`):

* **expected use** per slot: the mean of the unit's past days of the same *class* — workdays
  and days off (Saturdays, Sundays and Japan's public holidays, from the real calendar via
  :func:`~drready.physics.draws.day_type_on`) — or of all its past days while it has seen fewer
  than :data:`MIN_CLASS_DAYS` of that class;
* **confidence** per slot boundary of the planning horizon: the split-conformal bounds
  (:mod:`drready.planning.conformal`) of the *cumulative* use from the planning time to that
  boundary, above and below the expected use, from the unit's own scores — for every past day,
  the cumulative use it drew over the horizon's span starting at the same time of day, less
  what the forecast would have said *without that day* (leave-one-out). These are what the
  planning problem's safety bounds need (:func:`~drready.planning.problem.build_problem`:
  lower bound ``reserve + over``, upper bound ``Q_max − under``), and never below ``z`` times
  the errors' own root mean square (with fewer than the guaranteed number of scores, 19 at
  95 %, the conformal rank falls back to the largest past error). While a boundary has fewer
  than those 19 scores (the first days after the cold start) the use's upper and lower curves
  are never inside the cold start's at the same planning time (the national schedule's expected
  cumulative use ± its ``z·σ`` + timing margins): the unit is no less careful than the cold
  start until its own errors can vouch for it (issue 13 item 3).

So a trip (days of no use) or a week with guests (days of double use) enters the means and,
above all, the scores as soon as it has happened: the bounds widen, the declared potential
shrinks instead of breaking. **Cold start**: a unit with fewer than :data:`MIN_HISTORY_DAYS`
observed days uses the national schedule's forecast (:func:`~drready.planning.problem.
draw_forecast`), as before.

State per unit: one byte per slot and day, the square root of the litres coded on 0–254
(:func:`encode_use_l`, 255 = not observed): 28 days × 48 slots = **1 344 B per unit** (1.34 GB for
10⁶ units), shared day labels for the fleet. The coding's error is below 2 % of a slot's use
above 10 L and below 0.1 L under it. Everything is numpy over units × days × slots; the
scores are computed for the units asked (a chunk of a fleet) when a forecast is made, without
holding them: one past day at a time, time-major, into a running maximum and minimum (the
conformal bound among ≤ 38 scores at 95 % is the extreme one;
:class:`~drready.planning.conformal.StreamedBounds`), blocks of :data:`SCORE_BLOCK_UNITS`
units — no sort and no (units × boundaries × days) array (``benchmarks/learning_forecast.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from drready.domain import DEFAULT_TZ, SlotGrid
from drready.physics.draws import DayType, DrawVariability, day_type_for, day_type_on
from drready.planning.conformal import StreamedBounds, min_scores_for
from drready.planning.forecast_cache import CompactForecast, ForecastStore
from drready.planning.problem import (
    NIGHT_START_HOUR,
    DrawForecast,
    Fleet,
    draw_forecast,
)

__all__ = [
    "HISTORY_DAYS",
    "MIN_CLASS_DAYS",
    "MIN_HISTORY_DAYS",
    "LearningForecaster",
    "UsageHistory",
    "decode_use_l",
    "encode_use_l",
    "is_day_off",
    "learned_forecast",
]

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Units = IntArray | slice

SLOTS_PER_DAY: Final = 48
HISTORY_DAYS: Final = 28
"""Days of measured use a unit keeps (enough for 26–27 scores: a guaranteed bound at 95 %)."""
MIN_HISTORY_DAYS: Final = 14
"""Complete days a unit needs before it forecasts from its own use (cold start before)."""
MIN_CLASS_DAYS: Final = 3
"""Past days of a class (workday, day off) below which the class mean is the all-days mean."""
_MISSING: Final = 255
_CODE_PER_SQRT_L: Final = 8.0
"""Code = round(8·√litres): 254 ↔ 1 008 L per slot, the coding's largest value."""
MAX_SLOT_USE_L: Final = (254 / _CODE_PER_SQRT_L) ** 2


def encode_use_l(use_l: npt.ArrayLike) -> UInt8Array:
    """Litres per slot → one byte: ``round(8·√L)`` on 0–254 (uses above 1 008 L are capped).

    >>> encode_use_l([0.0, 1.0, 180.0]).tolist()
    [0, 8, 107]
    """
    x = np.asarray(use_l, dtype=np.float64)
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise ValueError("use_l must be finite and ≥ 0")
    # clip: a slot's use above the coding's range is capped at its largest value
    return np.clip(np.rint(np.sqrt(x) * _CODE_PER_SQRT_L), 0, 254).astype(np.uint8)


def decode_use_l(codes: npt.ArrayLike) -> Float32Array:
    """One byte → litres (float32); 255 (not observed) → NaN.

    >>> decode_use_l(np.array([0, 8, 107, 255], dtype=np.uint8)).astype(float).round(1).tolist()
    [0.0, 1.0, 178.9, nan]
    """
    return _DECODED_L[np.asarray(codes, dtype=np.uint8)]


_DECODED_L: Final = (np.arange(256, dtype=np.float32) / np.float32(_CODE_PER_SQRT_L)) ** 2
"""Litres of every code (one gather decodes a history); code 255 is NaN."""
_DECODED_L[_MISSING] = np.nan


@functools.lru_cache(maxsize=4096)
def is_day_off(day: date) -> bool:
    """Saturday, Sunday or a Japanese public holiday (and the national calendar's fixed days
    off: Dec 30–31, May 3–4): a day whose national day type is a holiday type
    (:func:`~drready.physics.draws.day_type_on`).

    >>> is_day_off(date(2026, 1, 12)), is_day_off(date(2026, 1, 13))
    (True, False)
    """
    return day_type_on(day).value.startswith("holiday")


class UsageHistory:
    """The measured use of N units over the last ``days`` local days, per 30-minute slot.

    A ring of ``days`` rows, one per local date (shared by the fleet); each unit's row holds
    one coded byte per slot (:func:`encode_use_l`), 255 where nothing was observed. Observing a
    slot of a date newer than the ring holds recycles the oldest row.

    Parameters
    ----------
    n_units : int
        Units, ≥ 1.
    days : int
        Days kept, :data:`MIN_HISTORY_DAYS`–366.
    tz : str
        The households' time zone (IANA): slots and dates are local.
    """

    def __init__(self, n_units: int, days: int = HISTORY_DAYS, tz: str = DEFAULT_TZ) -> None:
        if n_units < 1:
            raise ValueError(f"n_units must be ≥ 1, got {n_units}")
        if not MIN_HISTORY_DAYS <= days <= 366:
            raise ValueError(f"days must be within {MIN_HISTORY_DAYS}–366, got {days}")
        self.codes: UInt8Array = np.full((n_units, days, SLOTS_PER_DAY), _MISSING, np.uint8)
        self.dates: IntArray = np.full(days, -1, dtype=np.int64)
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self.version = 0
        """Counts the writes: what was derived from the history holds while it is unchanged."""
        self.unit_version: IntArray = np.zeros(n_units, dtype=np.int64)
        """Per unit, :attr:`version` at the last write that touched it (a recycled row touches
        every unit): what was derived for some units holds while their largest is unchanged
        (:meth:`version_of`)."""
        self.derived: tuple[object, _Derived] | None = None
        """(key, value) of the last derivation :func:`learned_forecast` made (one chunk's)."""

    @property
    def n_units(self) -> int:
        return int(self.codes.shape[0])

    @property
    def days(self) -> int:
        return int(self.codes.shape[1])

    @property
    def bytes_per_unit(self) -> int:
        """State per unit [B] (the coded use; the fleet's day labels are shared)."""
        return self.days * SLOTS_PER_DAY * self.codes.itemsize

    def _row(self, day: date) -> int | None:
        """The ring row of ``day``, recycling the oldest; None if ``day`` is older than kept."""
        o = day.toordinal()
        row = o % self.days
        held = int(self.dates[row])
        if held == o:
            return row
        if held > o:
            return None
        self.dates[row] = o
        self.codes[:, row, :] = _MISSING
        self.version += 1
        self.unit_version[:] = self.version
        return row

    def observe(self, slot_start: datetime, units: Units, use_l: npt.ArrayLike) -> None:
        """The use of one executed slot [L at 40 °C], (n,) for the units at ``units``."""
        local = slot_start.astimezone(self._zone)
        row = self._row(local.date())
        if row is None:
            return
        slot = local.hour * 2 + local.minute // 30
        self.codes[units, row, slot] = encode_use_l(use_l)
        self.version += 1
        self.unit_version[units] = self.version

    def load(self, first_day: date, use_l: npt.ArrayLike, units: Units = slice(None)) -> None:
        """Many whole days at once: ``use_l`` (n, days, 48) [L] from ``first_day`` (NaN: not
        observed). Days older than the ring keeps are dropped."""
        x = np.asarray(use_l, dtype=np.float64)
        if x.ndim != 3 or x.shape[2] != SLOTS_PER_DAY:
            raise ValueError(f"use_l must be (units, days, 48), got {x.shape}")
        missing = np.isnan(x)
        codes = encode_use_l(np.where(missing, 0.0, x))
        codes[missing] = _MISSING
        for d in range(x.shape[1]):
            row = self._row(first_day + timedelta(days=d))
            if row is not None:
                self.codes[units, row, :] = codes[:, d, :]
        self.version += 1
        self.unit_version[units] = self.version

    def series(self, units: Units) -> tuple[list[date], Float32Array]:
        """The units' use as consecutive dates from the oldest kept to the newest: the dates
        and (n, dates, 48) litres, NaN where not observed."""
        held = np.sort(self.dates[self.dates >= 0])
        if held.size == 0:
            return [], np.zeros((self._count(units), 0, SLOTS_PER_DAY), np.float32)
        first, last = int(held[0]), int(held[-1])
        days = [date.fromordinal(o) for o in range(first, last + 1)]
        out = np.full((self._count(units), len(days), SLOTS_PER_DAY), np.nan, np.float32)
        codes = self.codes[units]
        for o in held:
            out[:, int(o) - first, :] = decode_use_l(codes[:, int(o) % self.days, :])
        return days, out

    def _count(self, units: Units) -> int:
        return int(np.arange(self.n_units)[units].size)

    def version_of(self, units: Units) -> int:
        """The last :attr:`version` that wrote to any of the units at ``units`` (what was
        derived for them since is still theirs)."""
        v = self.unit_version[units]
        return int(v.max()) if v.size else 0


@dataclass(frozen=True)
class _DayMeans:
    """Per unit: the mean use per slot of workdays and of days off (n, 2, 48) and the days
    observed (n,) (the day of the planning time counts: it is observed up to it)."""

    means: FloatArray
    n_days: IntArray


_Derived = tuple[list[date], int, _DayMeans, Float32Array]


def _class_means(use: Float32Array, off: BoolArray) -> tuple[_DayMeans, Float32Array]:
    """Class means and every past day's residual (n, D, 48): its use less the leave-one-out
    forecast of it (the mean of the other complete days of its class, or of all of them while
    the class has fewer than :data:`MIN_CLASS_DAYS` others), NaN where the day is incomplete.

    One class at a time. The sums are float32 and exact: a decoded use is ``c²/64`` litres
    (``c`` ≤ 254, :func:`decode_use_l`), so a sum is a multiple of 1/64, exact in float32 (in
    any order, as in float64) below 2²⁴/64 = 262 144 L — always within 260 days.
    """
    nan = np.isnan(use)
    complete: BoolArray = np.asarray(~nan.any(axis=2))  # (n, D)
    observed = (~nan.all(axis=2)).sum(axis=1)  # days with any slot observed
    del nan
    cls = np.stack([~off, off])  # (2, D)
    parts = []
    for c in (0, 1):
        days = np.flatnonzero(cls[c])
        xc = use[:, days, :]  # a copy (fancy index): incomplete days count as 0 in the sums
        done = complete[:, days]
        xc[~done] = 0.0
        parts.append((days, xc, done, xc.sum(axis=1), done.sum(axis=1)))
    s_c32 = np.stack([p[3] for p in parts], axis=1)  # (n, 2, 48), exact
    n_c = np.stack([p[4] for p in parts], axis=1)  # (n, 2)
    s_all32 = s_c32[:, 0, :] + s_c32[:, 1, :]  # exact
    n_all = n_c.sum(axis=1)
    s_c, s_all = s_c32.astype(np.float64), s_all32.astype(np.float64)
    use_cls = n_c >= MIN_CLASS_DAYS
    mean_all = s_all / np.maximum(n_all, 1)[:, None]
    means = np.where(
        use_cls[:, :, None], s_c / np.maximum(n_c, 1)[:, :, None], mean_all[:, None, :]
    )
    # leave-one-out: each complete day's forecast from the others, (sum − day) / (count − 1)
    # of its class where the class keeps enough days without it, else of all days
    den_all = np.maximum(n_all - 1, 1).astype(np.float32)[:, None]
    resid = np.empty_like(use)
    for c, (days, xc, done, _, n_own) in enumerate(parts):
        ok = ((n_own - 1) >= MIN_CLASS_DAYS)[:, None]
        num = np.where(ok, s_c32[:, c, :], s_all32)
        den = np.where(ok, np.maximum(n_own - 1, 1).astype(np.float32)[:, None], den_all)
        r = xc - (num[:, None, :] - xc) / den[:, None, :]
        r[~done] = np.nan
        resid[:, days, :] = r
    return _DayMeans(means, observed.astype(np.int64)), resid


def _derived(history: UsageHistory, units: Units) -> _Derived:
    """The dates, unit count, class means and residuals of the units at ``units``, kept for
    the next call while the history is unchanged (a roll over several slots plans each slot
    from the same history: one derivation per chunk, not one per slot)."""
    key = (
        (history.version, units.start, units.stop, units.step) if isinstance(units, slice) else None
    )
    if key is not None and history.derived is not None and history.derived[0] == key:
        return history.derived[1]
    days, use = history.series(units)
    n = int(use.shape[0])
    if days:
        dm, resid = _class_means(use, np.array([is_day_off(d) for d in days]))
    else:
        dm, resid = _DayMeans(np.zeros((n, 2, SLOTS_PER_DAY)), np.zeros(n, np.int64)), use
    value = (days, n, dm, resid)
    history.derived = (key, value) if key is not None else None
    return value


def learned_forecast(
    history: UsageHistory,
    units: Units,
    grid: SlotGrid,
    confidence: float,
    prior: DrawForecast,
) -> DrawForecast:
    """The forecast of the units at ``units`` over ``grid`` from their own history (see the
    module), the cold-start ``prior`` (the national schedule's, same units and grid) for units
    with fewer than :data:`MIN_HISTORY_DAYS` days observed (the day in progress counts).

    Returns a :class:`~drready.planning.problem.DrawForecast` with ``over_l``/``under_l`` at
    ``confidence`` (for :func:`~drready.planning.problem.build_problem` at the same
    confidence).
    """
    if not 0.5 <= confidence <= 0.999:
        raise ValueError(f"confidence must be within 0.5–0.999, got {confidence}")
    days, n, dm, resid = _derived(history, units)
    t = grid.n_slots
    if prior.mean_l.shape != (t, n):
        raise ValueError(f"prior.mean_l must be ({t}, {n}), got {prior.mean_l.shape}")
    over_p, under_p = prior.margins_l(confidence)
    if not days:
        return _with_margins(prior, over_p, under_p, confidence)
    learned = dm.n_days >= MIN_HISTORY_DAYS
    if not learned.any():
        return _with_margins(prior, over_p, under_p, confidence)
    zone = ZoneInfo(grid.tz)
    start = grid.start.astimezone(zone)
    offset = start.hour * 2 + start.minute // 30
    # expected use over the grid and until the next 23:00 after its end, by each date's class
    # (the end condition of days_covering: the next 23:00 strictly after the end's hour)
    end = offset + t
    night = NIGHT_START_HOUR * 2
    stop = (end // 48 + (0 if end % 48 < night else 1)) * 48 + night
    horizon_days = [start.date() + timedelta(days=i) for i in range(stop // 48 + 1)]
    cls_of = np.array([is_day_off(d) for d in horizon_days], dtype=np.int64)
    ahead = dm.means[:, cls_of, :].reshape(n, -1)  # (n, H·48) from 00:00 of the start's date
    mean = ahead[:, offset:end]
    after = ahead[:, end:stop].sum(axis=1)
    # scores: for every past day w, the cumulative error over the horizon's span from the same
    # time of day, running[a_w + j] − running[a_w] at boundary j (a_w = 48·w + offset), NaN
    # from the first slot not observed on — streamed one past day at a time (see _score_bounds)
    over, under, rms, count = _score_bounds(resid.reshape(n, -1), len(days), offset, t, confidence)
    z = NormalDist().inv_cdf(confidence)
    # never below z times the errors' own root mean square: with fewer than 39 scores the
    # conformal rank at 95 % is the largest score, whose coverage n/(n+1) is only just the
    # target at each boundary, while a plan must hold at all of them at once
    over = np.fmax(over, z * rms)
    under = np.fmax(under, z * rms)
    # boundaries no past day reached: the prior's margin; units still cold: the prior
    # throughout (all (t, n), the planning problem's layout)
    over_l = np.clip(np.where(np.isnan(over), over_p, over), 0.0, None)
    under_l = np.clip(np.where(np.isnan(under), under_p, under), 0.0, None)
    # fewer scores than a guaranteed bound needs (the first days after the cold start): the
    # use's curves never inside the cold start's at the same planning time — the upper one
    # (expected cumulative use + over) never below the national schedule's + its margin, the
    # lower one never above its − its margin: no less careful than the cold start until the
    # unit's own errors can vouch for it
    few = count < min_scores_for(confidence)
    zero = np.zeros((1, n))
    gap = np.concatenate([zero, np.cumsum(prior.mean_l - mean.T, axis=0)])  # national − learned
    over_l = np.where(few, np.fmax(over_l, gap + over_p), over_l)
    under_l = np.where(few, np.fmax(under_l, under_p - gap), under_l)
    sigma = np.where(np.isnan(rms), prior.cum_sigma_l, rms)
    keep = learned[None, :]
    return DrawForecast(
        mean_l=np.ascontiguousarray(np.where(keep, mean.T, prior.mean_l)),
        cum_sigma_l=np.where(keep, sigma, prior.cum_sigma_l),
        after_end_l=np.where(learned, after, prior.after_end_l),
        over_l=np.where(keep, over_l, over_p),
        under_l=np.where(keep, under_l, under_p),
        confidence=confidence,
    )


SCORE_BLOCK_UNITS: Final = 2048
"""Units whose scores are streamed together: one past day's (boundaries, units) float32 block
stays within the core's cache (97 × 2 048 × 4 B ≈ 0.8 MB)."""


def _score_bounds(
    resid: Float32Array, d_count: int, offset: int, t: int, confidence: float
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Conformal bounds (over, under), root mean square and count of the scores at the
    ``t + 1`` boundaries of a horizon starting at slot ``offset`` of the day, (t + 1, n) each,
    from the units' residuals ``resid`` (n, 48·D) (NaN: not scored).

    The scores of past day ``w`` at boundary ``j`` are ``R[a + j] − R[a]``, ``R`` the running
    sum of ``resid`` and ``a = 48·w + offset`` — streamed day by day into
    :class:`~drready.planning.conformal.StreamedBounds` and a sum of squares, time-major
    (one day's scores are ``t + 1`` contiguous rows of ``R``), never held as a (units,
    boundaries, days) array. ``R[i]`` is finite exactly up to the first NaN residual ``p``, so
    a score is there iff ``a + j ≤ p``, which counts them without looking:
    ``n_j = clip(⌊(p − offset − j) / 48⌋ + 1, 0, D)``.
    """
    n, length = resid.shape
    nan = np.isnan(resid)
    first_nan = np.where(nan.any(axis=1), nan.argmax(axis=1), length)  # p per unit
    j = np.arange(t + 1)
    count = np.clip(
        (first_nan[None, :] - offset - j[:, None]) // SLOTS_PER_DAY + 1, 0, d_count
    ).astype(np.int64)  # (t + 1, n)
    over = np.empty((t + 1, n))
    under = np.empty((t + 1, n))
    sum_sq = np.zeros((t + 1, n))
    for lo in range(0, n, SCORE_BLOCK_UNITS):
        hi = min(lo + SCORE_BLOCK_UNITS, n)
        b = hi - lo
        running = np.full((length + t + 1, b), np.nan, np.float32)  # past the history: none
        running[0] = 0.0
        running[1 : length + 1] = resid[lo:hi].T
        for i in range(2, length + 1):  # row by row: 10× numpy's cumsum along axis 0
            np.add(running[i], running[i - 1], out=running[i])
        stream = StreamedBounds((t + 1, b), confidence, d_count)
        score = np.empty((t + 1, b), np.float32)
        sq = np.empty((t + 1, b), np.float32)
        block_sq = np.zeros((t + 1, b))
        for w in range(d_count):
            a = w * SLOTS_PER_DAY + offset
            np.subtract(running[a : a + t + 1], running[a], out=score)
            stream.add(score)
            np.multiply(score, score, out=sq)
            np.fmax(sq, np.float32(0.0), out=sq)  # fmax: a missing score (NaN) adds 0
            block_sq += sq
        sum_sq[:, lo:hi] = block_sq
        over[:, lo:hi], under[:, lo:hi] = stream.bounds(count[:, lo:hi])
    rms = np.where(count > 0, np.sqrt(sum_sq / np.maximum(count, 1)), np.nan)
    return over, under, rms, count


def _with_margins(
    f: DrawForecast, over: FloatArray, under: FloatArray, confidence: float
) -> DrawForecast:
    return DrawForecast(
        f.mean_l, f.cum_sigma_l, f.after_end_l, over_l=over, under_l=under, confidence=confidence
    )


DayTypeOf = Callable[[date], DayType]


@dataclass
class LearningForecaster:
    """A :class:`~drready.planning.rolling.Forecaster` whose units learn their households:
    it keeps each unit's measured use (:class:`UsageHistory`, fed by :meth:`observe` — the
    live fleet and the single heater call it after every executed slot) and forecasts from it
    (:func:`learned_forecast`), the national schedule until a unit has
    :data:`MIN_HISTORY_DAYS` days observed.

    ``confidence`` must be the planner's (the bounds are made at it); ``day_type`` is the
    calendar of the cold-start schedule (the national one by default, as the simulated
    households draw; :func:`~drready.physics.draws.day_type_on` for real dates).

    ``keep_forecasts`` (the live fleet's): every forecast is handed out through
    :class:`~drready.planning.forecast_cache.CompactForecast` (two bytes a value, the bounds
    rounded outward), and the last one of each contiguous range of units is kept
    (:class:`~drready.planning.forecast_cache.ForecastStore`, ≈ 0.8 kB a unit) and given back
    while those units' history (:meth:`UsageHistory.version_of`) and the grid are unchanged:
    a roll derives it, the answers until the next roll reuse it. Units given as a slice (a
    caller's chunk) are kept; an index array reads what is kept for the same range but is not
    kept itself (answers for a few units leave the chunks' entries alone). The units of a range
    must stay the same units of the same fleet (as a caller's chunks are).
    """

    n_units: int
    confidence: float = 0.95
    days: int = HISTORY_DAYS
    tz: str = DEFAULT_TZ
    variability: DrawVariability | None = None
    day_type: DayTypeOf = day_type_for
    keep_forecasts: bool = False
    history: UsageHistory = field(init=False)
    kept: ForecastStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence <= 0.999:
            raise ValueError(f"confidence must be within 0.5–0.999, got {self.confidence}")
        self.history = UsageHistory(self.n_units, self.days, self.tz)
        self.kept = ForecastStore()

    def forecast(self, fleet: Fleet, grid: SlotGrid, units: Units) -> DrawForecast:
        if not self.keep_forecasts:
            return self._forecast(fleet, grid, units)
        chunk = _unit_range(units, self.n_units)
        key = (self.history.version_of(units), grid.start, grid.n_slots, grid.tz)
        held = None if chunk is None else self.kept.get(chunk, key)
        if held is None:
            held = CompactForecast.encode(self._forecast(fleet, grid, units))
            if chunk is not None and isinstance(units, slice):  # a chunk: kept
                self.kept.put(chunk, key, held)
        return held.decode()

    def _forecast(self, fleet: Fleet, grid: SlotGrid, units: Units) -> DrawForecast:
        prior = draw_forecast(fleet, grid, self.variability, day_type=self.day_type)
        return learned_forecast(self.history, units, grid, self.confidence, prior)

    def observe(self, slot_start: datetime, units: Units, use_l: FloatArray) -> None:
        self.history.observe(slot_start, units, use_l)


def _unit_range(units: Units, n_units: int) -> tuple[int, int] | None:
    """``(first, stop)`` of units that are one ascending run of indices (a slice of step 1,
    or such an index array); None otherwise."""
    if isinstance(units, slice):
        first, stop, step = units.indices(n_units)
        return (first, stop) if step == 1 and stop > first else None
    u = np.asarray(units)
    if u.ndim != 1 or u.size == 0 or u.dtype.kind not in "iu":
        return None
    first, last = int(u[0]), int(u[-1])
    if first < 0 or last - first + 1 != u.size or not (np.diff(u) == 1).all():
        return None
    return (first, last + 1)
