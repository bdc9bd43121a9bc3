"""Hot-water use at the tap (litres at ≈ 40 °C) of households, for one unit or a fleet.

The draw is the load the tank must serve and the one thing DR must never leave unserved
(a shortage, 湯切れ). This module gives

* the national standard schedule — hourly litres per use category for 1-4 persons and six day
  types, with the 365-day calendar of day types ([1]_, packaged as CSV files) — and the day
  types of real dates from Japan's calendar (:func:`day_type_on`);
* its expected value on a step grid (:func:`expected_step_use_l`);
* stochastic fleet samples (:func:`sample_step_use_l`): a day-volume factor, per-block volume
  noise, ±1 h timing jitter and manual reheats (沸き増し);
* analytic per-slot moments of those samples (:func:`slot_use_moments_l`,
  :func:`slot_use_var_l2`) for planning safety margins.

It serves the DR potential (F1: how much heating can move without a shortage), the DR-aware plan
(F3) and the common evaluation method (E1). Pure numpy, vectorised over units × time; the only
I/O is reading the packaged CSVs once (cached).

Model of a sample
-----------------
Let ``b[c, g]`` be the schedule's litres of category ``c`` in hour ``g`` of the sampled span
(days concatenated), a *block*. For unit ``i`` the block delivers

    ``V = b[c, g] · F[i, d] · E[i, c, g]``   litres, in hour ``g + J[i, c, g]``,

with ``d = g // 24`` the block's day,

* ``F = exp(σ_d Z − σ_d²/2)``: day factor, lognormal with mean 1, one per unit and day;
* ``E = exp(σ_e Z − σ_e²/2)``: event noise, lognormal with mean 1, one per unit and block;
* ``J ∈ {−1, 0, +1}`` with probabilities ``p/2, 1 − p, p/2`` (``p`` = ``jitter_prob``), except
  that blocks in the first and the last hour of the span never move (so nothing leaves the span).

Within its landing hour a block is spread over the steps: bath fill over the first
:data:`BATH_FILL_MINUTES` minutes, every other category uniformly over the hour. All random
quantities are independent. Manual reheats do not change the use; they are a flag for the heat
pump model.

References
----------
.. [1] Building Research Institute, "平成28年省エネルギー基準に準拠したエネルギー消費性能の評価に
   関する技術情報（住宅）", 第七章 第一節 給湯設備, 付録 M (table M.1: 基準給湯量 per hour by
   number of persons and schedule type; the 365-day schedule calendar). Reference
   implementation BRI-EES-House/pyhees (``section7_1_m.py``, ``section11_3.py``), MIT licence;
   extracted into ``drready/data/hot_water/*.csv``.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from importlib.resources import files

import numpy as np
import numpy.typing as npt

__all__ = [
    "BATH_FILL_MINUTES",
    "CATEGORIES",
    "DayType",
    "DrawSample",
    "DrawVariability",
    "bathers_by_hour",
    "day_type_for",
    "day_type_on",
    "expected_step_use_l",
    "hourly_use_by_category_l",
    "hourly_use_l",
    "sample_step_use_l",
    "slot_use_moments_l",
    "slot_use_var_l2",
]

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

_DATA_PACKAGE = "drready.data.hot_water"
_SCHEDULE_FILE = "reference_hot_water_use_by_hour.csv"
_CALENDAR_FILE = "day_type_calendar.csv"

CATEGORIES: tuple[str, ...] = ("kitchen", "shower", "washbasin", "bath_fill")
"""Use categories, in the order of the schedule's columns."""

_COLUMNS_WITH_BATHTUB = ("kitchen_L", "shower_L", "washbasin_L", "bath_fill_L")
_COLUMNS_WITHOUT_BATHTUB = (
    "kitchen_L",
    "shower_no_bathtub_L",
    "washbasin_L",
    "bath_fill_no_bathtub_L",
)
_ALL_COLUMNS = tuple(dict.fromkeys(_COLUMNS_WITH_BATHTUB + _COLUMNS_WITHOUT_BATHTUB))

BATH_FILL_MINUTES = 15
"""Duration of a bath fill [min]. Assumption: a Japanese bathtub fill of ≈ 180 L at the ≈ 12 L/min
of an EcoCute's automatic fill (湯はり) takes ≈ 15 min; no figure of the national method is used."""

_PERSONS_RANGE = (1, 4)
_MINUTES_PER_DAY = 1440
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_START_DAY = tuple(int(x) for x in np.cumsum((0, *_DAYS_IN_MONTH[:-1])))
_UNIT_CHUNK = 1 << 17
"""Units processed at once by :func:`sample_step_use_l` (bounds temporaries to ≈ 30 MB)."""


class DayType(StrEnum):
    """Day type of the national schedule ([1]_): weekday with large/medium/small use, holiday at
    home with large/small use, holiday out."""

    WEEKDAY_LARGE = "weekday_large"
    WEEKDAY_MEDIUM = "weekday_medium"
    WEEKDAY_SMALL = "weekday_small"
    HOLIDAY_HOME_LARGE = "holiday_home_large"
    HOLIDAY_HOME_SMALL = "holiday_home_small"
    HOLIDAY_OUT = "holiday_out"


_DAY_TYPES: tuple[DayType, ...] = tuple(DayType)
_DAY_TYPE_INDEX = {t: i for i, t in enumerate(_DAY_TYPES)}


def _read_csv(name: str) -> list[dict[str, str]]:
    text = files(_DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@functools.cache
def _schedule_table() -> FloatArray:
    """Schedule as an array [persons - 1, day type, hour, column of _ALL_COLUMNS] [L/h]."""
    table = np.full((4, len(_DAY_TYPES), 24, len(_ALL_COLUMNS)), np.nan)
    for row in _read_csv(_SCHEDULE_FILE):
        p = int(row["persons"]) - 1
        t = _DAY_TYPE_INDEX[DayType(row["day_type"])]
        h = int(row["hour"])
        table[p, t, h] = [float(row[col]) for col in _ALL_COLUMNS]
    if np.isnan(table).any():
        raise RuntimeError(f"{_SCHEDULE_FILE} does not cover every persons/day type/hour")
    table.setflags(write=False)
    return table


@functools.cache
def _calendar() -> tuple[DayType, ...]:
    """Day type of each day of the 365-day year, Jan 1 first."""
    days: list[DayType | None] = [None] * 365
    for row in _read_csv(_CALENDAR_FILE):
        days[_MONTH_START_DAY[int(row["month"]) - 1] + int(row["day"]) - 1] = DayType(
            row["day_type"]
        )
    if any(d is None for d in days):
        raise RuntimeError(f"{_CALENDAR_FILE} does not cover all 365 days")
    return tuple(d for d in days if d is not None)


def day_type_for(day: date) -> DayType:
    """Day type of a calendar date in the national schedule calendar ([1]_).

    Parameters
    ----------
    day : datetime.date
        The date; its year is ignored. Feb 29 takes Feb 28's day type.

    Returns
    -------
    DayType

    Examples
    --------
    >>> from datetime import date
    >>> day_type_for(date(2026, 1, 1)).value
    'holiday_home_large'
    """
    d = min(day.day, 28) if day.month == 2 else day.day
    return _calendar()[_MONTH_START_DAY[day.month - 1] + d - 1]


# The national calendar is a 14-day cycle from a Sunday (its Jan 1) with its holidays inserted:
# day types of (week A, week B) for Sunday … Saturday.
_CYCLE: tuple[tuple[DayType, DayType], ...] = (
    (DayType.HOLIDAY_HOME_LARGE, DayType.HOLIDAY_OUT),  # Sunday
    (DayType.WEEKDAY_MEDIUM, DayType.WEEKDAY_MEDIUM),  # Monday
    (DayType.WEEKDAY_SMALL, DayType.WEEKDAY_SMALL),  # Tuesday
    (DayType.WEEKDAY_MEDIUM, DayType.WEEKDAY_LARGE),  # Wednesday
    (DayType.WEEKDAY_MEDIUM, DayType.WEEKDAY_SMALL),  # Thursday
    (DayType.WEEKDAY_MEDIUM, DayType.WEEKDAY_MEDIUM),  # Friday
    (DayType.HOLIDAY_HOME_SMALL, DayType.HOLIDAY_HOME_SMALL),  # Saturday
)
_FIXED_DAYS: dict[tuple[int, int], DayType] = {
    (1, 1): DayType.HOLIDAY_HOME_LARGE,
    (5, 3): DayType.HOLIDAY_OUT,
    (5, 4): DayType.HOLIDAY_OUT,
    (12, 30): DayType.HOLIDAY_OUT,
    (12, 31): DayType.HOLIDAY_HOME_SMALL,
}
"""Dates the national calendar gives a day type of their own, whatever the weekday."""


@functools.cache
def _japanese_holidays(year: int) -> frozenset[date]:
    import holidays  # imported on first use: ≈ 0.05 s that planning-only callers do not need

    return frozenset(holidays.country_holidays("JP", years=year))


def day_type_on(day: date) -> DayType:
    """Day type of a real date: Japan's weekdays, weekends and public holidays mapped onto the
    national schedule's six day types the way its 365-day calendar assigns them ([1]_).

    The national calendar (:func:`day_type_for`) is a fixed 14-day cycle that starts on a Sunday
    — Sunday holiday-at-home (large) and holiday-out in alternate weeks, Saturday
    holiday-at-home (small), Monday weekday (medium), Tuesday (small), Wednesday medium/large,
    Thursday medium/small, Friday medium — with the public holidays of its base year inserted:
    a holiday on a weekday is holiday-at-home (small), except Jan 1 (holiday-at-home, large),
    May 3–4 and Dec 30 (holiday-out) and Dec 31 (holiday-at-home, small). This function applies
    the same rules to the real date: weekdays and weekends by the real calendar, public holidays
    (incl. substitute holidays) from the ``holidays`` package, the week parity counted from the
    Sunday on or before Jan 1 of the date's year. On 2017, whose Jan 1 was a Sunday as in the
    national calendar, it reproduces that calendar except on the 11 days where the holidays of
    2017 differ from the calendar's (Coming of Age, Marine, Respect for the Aged and Sports Day
    on Mondays, the equinox a day earlier, Mountain Day, a substitute holiday).

    Parameters
    ----------
    day : datetime.date

    Returns
    -------
    DayType

    Examples
    --------
    >>> from datetime import date
    >>> [day_type_on(date(2026, 1, d)).value for d in (1, 2, 3, 4)]
    ['holiday_home_large', 'weekday_medium', 'holiday_home_small', 'holiday_out']
    """
    fixed = _FIXED_DAYS.get((day.month, day.day))
    if fixed is not None:
        return fixed
    weekday = (day.weekday() + 1) % 7  # Sunday 0 … Saturday 6
    if 1 <= weekday <= 5 and day in _japanese_holidays(day.year):
        return DayType.HOLIDAY_HOME_SMALL
    jan1 = date(day.year, 1, 1)
    first_sunday = jan1 - timedelta(days=(jan1.weekday() + 1) % 7)
    week_b = ((day - first_sunday).days // 7) % 2
    return _CYCLE[weekday][week_b]


def _check_persons_scalar(persons: int) -> int:
    if isinstance(persons, bool) or int(persons) != persons:
        raise ValueError(f"persons must be an integer in 1–4, got {persons!r}")
    p = int(persons)
    if not _PERSONS_RANGE[0] <= p <= _PERSONS_RANGE[1]:
        raise ValueError(f"persons must be in 1–4, got {persons!r}")
    return p


def _category_block(persons: int, day_type: DayType, bathtub: bool) -> FloatArray:
    """Litres [category, hour] of one day (4, 24) — a read-only view of the cached table."""
    cols = _COLUMNS_WITH_BATHTUB if bathtub else _COLUMNS_WITHOUT_BATHTUB
    idx = [_ALL_COLUMNS.index(c) for c in cols]
    block: FloatArray = _schedule_table()[persons - 1, _DAY_TYPE_INDEX[day_type]][:, idx].T
    return block


def hourly_use_by_category_l(
    persons: int, day_type: DayType, bathtub: bool = True
) -> dict[str, FloatArray]:
    """Standard hourly hot-water use per category of one day (table M.1 of [1]_).

    Parameters
    ----------
    persons : int
        Household size, 1–4.
    day_type : DayType
        Day type of the national schedule.
    bathtub : bool, default True
        Home with a bathtub (columns ``shower_L``, ``bath_fill_L``) or without
        (``shower_no_bathtub_L``, ``bath_fill_no_bathtub_L``). Note: in table M.1 as
        transcribed by pyhees (``section7_1_m.py``) the no-bathtub columns are all zero, so a
        home without a bathtub only uses the kitchen and the wash basin.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"kitchen", "shower", "washbasin", "bath_fill"}`` → litres at ≈ 40 °C in each hour
        0–23 [L], shape (24,) (fresh copies).

    Raises
    ------
    ValueError
        If ``persons`` is not in 1–4.
    """
    p = _check_persons_scalar(persons)
    block = _category_block(p, DayType(day_type), bool(bathtub))
    return {name: block[i].copy() for i, name in enumerate(CATEGORIES)}


def hourly_use_l(persons: int, day_type: DayType, bathtub: bool = True) -> FloatArray:
    """Standard hourly hot-water use of one day, all categories summed [L], shape (24,).

    Parameters are those of :func:`hourly_use_by_category_l`.

    Examples
    --------
    >>> float(hourly_use_l(4, DayType.WEEKDAY_MEDIUM).sum())
    450.0
    """
    p = _check_persons_scalar(persons)
    result: FloatArray = _category_block(p, DayType(day_type), bool(bathtub)).sum(axis=0)
    return result


@functools.cache
def _bathers_table() -> FloatArray:
    """Bathers per hour [persons - 1, day type, hour, (with bathtub, without)] [persons/h]."""
    table = np.full((4, len(_DAY_TYPES), 24, 2), np.nan)
    for row in _read_csv(_SCHEDULE_FILE):
        p = int(row["persons"]) - 1
        t = _DAY_TYPE_INDEX[DayType(row["day_type"])]
        table[p, t, int(row["hour"])] = [float(row["bathers"]), float(row["bathers_no_bathtub"])]
    if np.isnan(table).any():
        raise RuntimeError(f"{_SCHEDULE_FILE} does not cover every persons/day type/hour")
    table.setflags(write=False)
    return table


def bathers_by_hour(persons: int, day_type: DayType, bathtub: bool = True) -> FloatArray:
    """People taking a bath in each hour of a day (入浴人数 of table M.1 of [1]_), shape (24,).

    The national method spreads a day's bath reheat load over the hours in proportion to these
    (§7-1 eq. (11); :mod:`drready.physics.bath`).

    >>> bathers_by_hour(4, DayType.WEEKDAY_MEDIUM).nonzero()[0].tolist()
    [20, 21, 22]
    """
    p = _check_persons_scalar(persons)
    column = 0 if bathtub else 1
    out: FloatArray = _bathers_table()[p - 1, _DAY_TYPE_INDEX[DayType(day_type)], :, column]
    return out.copy()


@dataclass(frozen=True)
class DrawVariability:
    """Parameters of the stochastic draw model (see the module docstring).

    All defaults are assumptions: no published distribution of Japanese households' day-to-day
    or within-day variation around the national schedule was found. They are chosen so that the
    day-to-day spread of daily use within one day type has a coefficient of variation of
    roughly 15–20 % (day factor 15 %, event noise adding ≈ 5–10 % on a 4-person day, timing
    jitter none over a day), on top of the schedule's own variation between day types.

    Parameters
    ----------
    day_factor_sigma : float, default 0.15
        Sigma of the lognormal whole-day volume factor (mean 1) [-]. ``>= 0``.
    event_sigma : float, default 0.25
        Sigma of the lognormal volume factor (mean 1) of each (unit, day, category, hour)
        block [-]. ``>= 0``.
    jitter_prob : float, default 0.3
        Probability that a block moves one hour earlier or later (half each) [-], in [0, 1].
    manual_reheat_prob_per_day : float, default 0.03
        Probability that a household presses manual reheat (沸き増し) on a day [-], in [0, 1];
        the start is uniform on the step grid in [06:00, 22:00).
    manual_reheat_minutes : int, default 60
        Duration of a manual reheat [min], 1–1440.
    """

    day_factor_sigma: float = 0.15
    event_sigma: float = 0.25
    jitter_prob: float = 0.3
    manual_reheat_prob_per_day: float = 0.03
    manual_reheat_minutes: int = 60

    def __post_init__(self) -> None:
        for name in ("day_factor_sigma", "event_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        for name in ("jitter_prob", "manual_reheat_prob_per_day"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        minutes = self.manual_reheat_minutes
        if isinstance(minutes, bool) or int(minutes) != minutes or not 1 <= minutes <= 1440:
            raise ValueError(f"manual_reheat_minutes must be an integer in 1–1440, got {minutes!r}")

    @property
    def day_factor_cv(self) -> float:
        """Coefficient of variation of the day factor, ``sqrt(exp(σ_d²) − 1)`` [-]."""
        return math.sqrt(math.expm1(self.day_factor_sigma**2))


@dataclass(frozen=True)
class DrawSample:
    """A sampled fleet of draws.

    Attributes
    ----------
    use_l : numpy.ndarray of float32, shape (N, S)
        Hot-water use at ≈ 40 °C in each step [L].
    manual_reheat : numpy.ndarray of bool, shape (N, S)
        True during the steps of a manual reheat (沸き増し).
    """

    use_l: Float32Array
    manual_reheat: BoolArray

    def __post_init__(self) -> None:
        if self.use_l.shape != self.manual_reheat.shape or self.use_l.ndim != 2:
            raise ValueError(
                "use_l and manual_reheat must be 2-D arrays of equal shape, got "
                f"{self.use_l.shape} and {self.manual_reheat.shape}"
            )


# --------------------------------------------------------------------------------------------
# input checks and grouping
# --------------------------------------------------------------------------------------------


def _check_step(step_minutes: int, name: str) -> int:
    if isinstance(step_minutes, bool) or int(step_minutes) != step_minutes:
        raise ValueError(f"{name} must be an integer that divides 60, got {step_minutes!r}")
    s = int(step_minutes)
    if s <= 0 or 60 % s != 0:
        raise ValueError(f"{name} must divide 60 (1, 5, 10, 15, 30, 60, ...), got {step_minutes!r}")
    return s


def _check_persons(persons: npt.ArrayLike) -> IntArray:
    arr = np.asarray(persons)
    if arr.ndim != 1:
        raise ValueError(f"persons must be a 1-D array (N,), got shape {arr.shape}")
    if arr.size and (
        arr.dtype == np.bool_
        or not np.issubdtype(arr.dtype, np.number)
        or not np.all(np.mod(arr, 1) == 0)
    ):
        raise ValueError("persons must hold integers in 1–4")
    if arr.size and (arr.min() < _PERSONS_RANGE[0] or arr.max() > _PERSONS_RANGE[1]):
        raise ValueError(f"persons must be in 1–4, got values from {arr.min()!r} to {arr.max()!r}")
    return arr.astype(np.intp)


def _check_day_types(day_types: Sequence[DayType | str]) -> tuple[DayType, ...]:
    if isinstance(day_types, str) or len(day_types) == 0:
        raise ValueError("day_types must be a non-empty sequence of DayType (one per day)")
    out = []
    for i, t in enumerate(day_types):
        try:
            out.append(DayType(t))
        except ValueError as err:
            raise ValueError(f"day_types[{i}] is not a DayType: {t!r}") from err
    return tuple(out)


def _check_bathtub(bathtub: bool | npt.ArrayLike, n: int) -> BoolArray:
    arr = np.asarray(bathtub)
    if arr.dtype != np.bool_:
        raise ValueError(f"bathtub must be a bool or a bool array (N,), got dtype {arr.dtype}")
    if arr.ndim == 0:
        return np.full(n, bool(arr))
    if arr.shape != (n,):
        raise ValueError(f"bathtub must have shape ({n},) like persons, got {arr.shape}")
    return arr


def _groups(persons: IntArray, bathtub: BoolArray) -> list[tuple[int, bool, IntArray]]:
    """Units sharing a schedule: (persons, bathtub, unit indices), in a fixed order."""
    groups = []
    for p in range(_PERSONS_RANGE[0], _PERSONS_RANGE[1] + 1):
        for tub in (False, True):
            idx = np.flatnonzero((persons == p) & (bathtub == tub))
            if idx.size:
                groups.append((p, tub, idx))
    return groups


def _span_blocks(persons: int, bathtub: bool, day_types: tuple[DayType, ...]) -> FloatArray:
    """Schedule litres [category, hour of span] (4, 24 D)."""
    return np.concatenate([_category_block(persons, t, bathtub) for t in day_types], axis=1)


def _class_of_category() -> IntArray:
    """Within-hour shape class of each category: 0 uniform over the hour, 1 bath fill."""
    return np.array([1 if c == "bath_fill" else 0 for c in CATEGORIES], dtype=np.intp)


def _within_hour_weights(step_minutes: int) -> FloatArray:
    """Fraction of an hour's litres in each of its steps, per class (2, 60 // step) [-]."""
    k = 60 // step_minutes
    start = np.arange(k) * step_minutes
    uniform = np.full(k, 1.0 / k)
    # clip: steps that start after the bath fill has ended overlap it by nothing, not less
    overlap = np.clip(np.minimum(start + step_minutes, BATH_FILL_MINUTES) - start, 0, None)
    bath = overlap / BATH_FILL_MINUTES
    return np.stack([uniform, bath])


def _hourly_by_class(blocks: FloatArray, power: int = 1) -> FloatArray:
    """Sum of ``blocks**power`` per within-hour class (2, H)."""
    cls = _class_of_category()
    out = np.zeros((2, blocks.shape[1]))
    np.add.at(out, cls, blocks**power)
    return out


# --------------------------------------------------------------------------------------------
# expected schedule
# --------------------------------------------------------------------------------------------


def expected_step_use_l(
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    step_minutes: int,
    bathtub: bool | npt.ArrayLike = True,
) -> FloatArray:
    """Noise-free standard schedule of a fleet on a step grid.

    Parameters
    ----------
    persons : array_like of int, shape (N,)
        Household size of each unit, 1–4.
    day_types : sequence of DayType, length D
        Day type of each day of the span (all units share the calendar).
    step_minutes : int
        Step length [min]; must divide 60.
    bathtub : bool or array_like of bool, shape (N,), default True
        Homes with a bathtub (see :func:`hourly_use_by_category_l`).

    Returns
    -------
    numpy.ndarray of float64, shape (N, D * 1440 // step_minutes)
        Litres at ≈ 40 °C in each step [L]. Each hour's litres are spread over its steps: bath
        fill over its first :data:`BATH_FILL_MINUTES` minutes (for 30- or 60-minute steps it
        simply falls in the hour's first step), every other category uniformly.

    Notes
    -----
    This is the mean of each (category, hour) block of :func:`sample_step_use_l` placed at its
    scheduled hour, so its daily totals are the mean daily totals of the samples. Timing jitter
    moves litres to neighbouring hours without changing their mean total (blocks never leave the
    sampled span; across midnight inside the span a few litres move between days), but it
    smooths the per-step mean: the exact per-step mean of the samples is the first output of
    :func:`slot_use_moments_l`.

    Raises
    ------
    ValueError
        If ``persons``, ``day_types``, ``step_minutes`` or ``bathtub`` is invalid (the message
        names it).
    """
    p_arr = _check_persons(persons)
    days = _check_day_types(day_types)
    step = _check_step(step_minutes, "step_minutes")
    tub = _check_bathtub(bathtub, p_arr.size)
    k = 60 // step
    weights = _within_hour_weights(step)
    n_steps = len(days) * _MINUTES_PER_DAY // step
    out = np.zeros((p_arr.size, n_steps))
    for p, has_tub, idx in _groups(p_arr, tub):
        hourly = _hourly_by_class(_span_blocks(p, has_tub, days))  # (2, H)
        row = np.einsum("ch,cj->hj", hourly, weights).reshape(len(days) * 24 * k)
        out[idx] = row
    return out


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------


def _lognormal_mean_one(
    rng: np.random.Generator, sigma: float, size: tuple[int, ...]
) -> Float32Array:
    z = rng.standard_normal(size, dtype=np.float32)
    result: Float32Array = np.exp(np.float32(sigma) * z - np.float32(0.5 * sigma * sigma))
    return result


def sample_step_use_l(
    rng: np.random.Generator,
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    step_minutes: int,
    variability: DrawVariability = DrawVariability(),
    bathtub: bool | npt.ArrayLike = True,
) -> DrawSample:
    """Stochastic hot-water draws of a fleet (model in the module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness; the same seed gives the same sample.
    persons : array_like of int, shape (N,)
        Household size of each unit, 1–4.
    day_types : sequence of DayType, length D
        Day type of each day of the span.
    step_minutes : int
        Step length [min]; must divide 60.
    variability : DrawVariability, optional
        Model parameters.
    bathtub : bool or array_like of bool, shape (N,), default True
        Homes with a bathtub.

    Returns
    -------
    DrawSample
        ``use_l`` [L] and ``manual_reheat``, shape (N, D * 1440 // step_minutes).

    Notes
    -----
    Vectorised over units: Python loops run over the ≤ 8 (persons, bathtub) groups, chunks of
    :data:`_UNIT_CHUNK` units and the non-zero schedule blocks (≈ 20 a day), never over units.
    Random numbers are drawn only for non-zero blocks, in float32, and ``use_l`` is float32:
    1e6 units × 48 steps take 192 MB instead of 384 MB, and float32's relative rounding
    (6e-8) is far below the model's noise. Sum it in float64 when totalling many steps.
    The stream of draws depends on the group order and chunk size, both fixed, so a seed always
    gives the same sample (but a sample of N units is not a prefix of one of N + 1 units).

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).
    """
    p_arr = _check_persons(persons)
    days = _check_day_types(day_types)
    step = _check_step(step_minutes, "step_minutes")
    tub = _check_bathtub(bathtub, p_arr.size)
    var = variability
    n_units = p_arr.size
    k = 60 // step
    n_days = len(days)
    n_hours = 24 * n_days
    n_steps = n_hours * k
    weights = _within_hour_weights(step).astype(np.float32)
    classes = _class_of_category()
    half_jitter = np.float32(0.5 * var.jitter_prob)

    use = np.zeros((n_units, n_steps), dtype=np.float32)
    for p, has_tub, idx in _groups(p_arr, tub):
        blocks = _span_blocks(p, has_tub, days)  # (4, H)
        for lo in range(0, idx.size, _UNIT_CHUNK):
            unit_idx = idx[lo : lo + _UNIT_CHUNK]
            n = unit_idx.size
            acc = np.zeros((2, n_hours, n), dtype=np.float32)  # [class, landing hour, unit]
            for d in range(n_days):
                factor = _lognormal_mean_one(rng, var.day_factor_sigma, (n,))
                cat, hour = np.nonzero(blocks[:, 24 * d : 24 * (d + 1)])
                if cat.size == 0:
                    continue
                vol = _lognormal_mean_one(rng, var.event_sigma, (cat.size, n))
                vol *= factor
                u = rng.random((cat.size, n), dtype=np.float32)
                for j in range(cat.size):
                    c, g = int(cat[j]), 24 * d + int(hour[j])
                    v = vol[j] * np.float32(blocks[c, g])
                    cls = classes[c]
                    if g == 0 or g == n_hours - 1 or var.jitter_prob == 0.0:
                        acc[cls, g] += v  # span edges stay put: nothing leaves the span
                        continue
                    early = u[j] < half_jitter
                    late = u[j] >= np.float32(1.0) - half_jitter
                    acc[cls, g - 1] += np.where(early, v, np.float32(0.0))
                    acc[cls, g + 1] += np.where(late, v, np.float32(0.0))
                    acc[cls, g] += np.where(early | late, np.float32(0.0), v)
            steps = np.empty((n, n_hours, k), dtype=np.float32)
            for j in range(k):
                steps[:, :, j] = (acc[0] * weights[0, j] + acc[1] * weights[1, j]).T
            use[unit_idx] = steps.reshape(n, n_steps)

    reheat = _sample_manual_reheat(rng, n_units, n_days, step, var)
    return DrawSample(use_l=use, manual_reheat=reheat)


def _sample_manual_reheat(
    rng: np.random.Generator, n_units: int, n_days: int, step: int, var: DrawVariability
) -> BoolArray:
    steps_per_day = _MINUTES_PER_DAY // step
    n_steps = n_days * steps_per_day
    mask = np.zeros((n_units, n_steps), dtype=np.bool_)
    if var.manual_reheat_prob_per_day == 0.0 or n_units == 0:
        return mask
    pressed = rng.random((n_units, n_days)) < var.manual_reheat_prob_per_day
    unit, day = np.nonzero(pressed)
    # Start uniform on the step grid in [06:00, 22:00) (assumption, see DrawVariability).
    first, stop = 6 * 60 // step, -(-22 * 60 // step)
    start = day * steps_per_day + rng.integers(first, stop, size=unit.size)
    duration = -(-var.manual_reheat_minutes // step)  # whole steps touched by the reheat
    for j in range(duration):
        pos = start + j
        inside = pos < n_steps  # a reheat running past the span's end is cut there
        mask[unit[inside], pos[inside]] = True
    return mask


# --------------------------------------------------------------------------------------------
# analytic moments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kernels:
    """Per-block contributions as a function of r = t − k g, r in [−k, 2k) (index r + k)."""

    mean: FloatArray  # E[x] of the slot share x, times b
    slot_var: FloatArray  # E[E²] E[x²] − E[x]², times b²
    cum_var: FloatArray  # same for the cumulative share G delivered by boundary t, times b²


def _kernels(w: FloatArray, jitter_prob: float, ex2: float) -> _Kernels:
    """Kernels of one within-hour class for a block that jitters with ``jitter_prob``."""
    k = w.size
    r = np.arange(-k, 2 * k)
    cum_w = np.concatenate([[0.0], np.cumsum(w)])
    cum_w[-1] = 1.0  # exactly one full hour delivered (rounding of the cumsum)
    # offset = k (g − L): L = g − 1 → +k, L = g → 0, L = g + 1 → −k
    landing = ((k, 0.5 * jitter_prob), (0, 1.0 - jitter_prob), (-k, 0.5 * jitter_prob))
    e1s = np.zeros(3 * k)
    e2s = np.zeros(3 * k)
    e1c = np.zeros(3 * k)
    e2c = np.zeros(3 * k)
    for offset, prob in landing:
        j = r + offset
        # clip: indices outside the hour only keep the gather in bounds; np.where zeroes them
        x = np.where((j >= 0) & (j < k), w[np.clip(j, 0, k - 1)], 0.0)
        # clip: before the hour the cumulative weight is 0 (index 0), after it 1 (index k)
        big_g = cum_w[np.clip(j, 0, k)]
        e1s += prob * x
        e2s += prob * x * x
        e1c += prob * big_g
        e2c += prob * big_g * big_g
    return _Kernels(mean=e1s, slot_var=ex2 * e2s - e1s**2, cum_var=ex2 * e2c - e1c**2)


def _spread(values_h: FloatArray, inner: FloatArray, edge: FloatArray, shift: int) -> FloatArray:
    """``out[t] = Σ_g values_h[g] · kernel_g[t + shift − k g + k]`` for t in [0, S).

    ``kernel_g`` is ``edge`` for the span's first and last hour (blocks that never jitter) and
    ``inner`` otherwise; ``shift`` = 0 evaluates at slots, 1 at the boundaries after them.
    """
    k = inner.size // 3
    n_hours = values_h.size
    n_slots = n_hours * k
    inner_v = values_h.copy()
    inner_v[[0, -1]] = 0.0
    edge_v = values_h - inner_v
    out = np.zeros(n_slots)
    for vals, ker in ((inner_v, inner), (edge_v, edge)):
        impulses = np.zeros(n_slots)
        impulses[::k] = vals
        full = np.convolve(impulses, ker)
        out += full[k + shift : k + shift + n_slots]
    return out


def _group_moments(
    blocks: FloatArray, step: int, var: DrawVariability
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(mean, exact Var(Y) per slot, exact Var(cumulative Y) at each slot end) of one group,
    Y being the use before the day factor."""
    k = 60 // step
    weights = _within_hour_weights(step)
    ex2 = math.exp(var.event_sigma**2)
    b1 = _hourly_by_class(blocks)
    b2 = _hourly_by_class(blocks, power=2)
    n_slots = blocks.shape[1] * k
    mean = np.zeros(n_slots)
    slot_var = np.zeros(n_slots)
    cum_var = np.zeros(n_slots)
    for cls in range(2):
        inner = _kernels(weights[cls], var.jitter_prob, ex2)
        edge = _kernels(weights[cls], 0.0, ex2)
        mean += _spread(b1[cls], inner.mean, edge.mean, 0)
        slot_var += _spread(b2[cls], inner.slot_var, edge.slot_var, 0)
        cum_var += _spread(b2[cls], inner.cum_var, edge.cum_var, 1)
        # Blocks whose landing hour has fully passed (r >= 2k) contribute Var(E) b² each.
        impulses = np.zeros(n_slots)
        impulses[::k] = b2[cls]
        done = np.cumsum(impulses)
        boundary = np.arange(1, n_slots + 1)
        passed = boundary - 2 * k
        cum_var[passed >= 0] += (ex2 - 1.0) * done[passed[passed >= 0]]
    # clip: analytically non-negative; the convolution's round-off can leave −1e-13.
    np.clip(slot_var, 0.0, None, out=slot_var)
    np.clip(cum_var, 0.0, None, out=cum_var)
    return mean, slot_var, cum_var


def _moments_common(
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    slot_minutes: int,
    variability: DrawVariability,
    bathtub: bool | npt.ArrayLike,
) -> tuple[int, list[tuple[IntArray, FloatArray, FloatArray, FloatArray]], int]:
    p_arr = _check_persons(persons)
    days = _check_day_types(day_types)
    step = _check_step(slot_minutes, "slot_minutes")
    tub = _check_bathtub(bathtub, p_arr.size)
    results = []
    for p, has_tub, idx in _groups(p_arr, tub):
        mean, slot_var, cum_var = _group_moments(_span_blocks(p, has_tub, days), step, variability)
        results.append((idx, mean, slot_var, cum_var))
    return p_arr.size, results, len(days) * _MINUTES_PER_DAY // step


def slot_use_moments_l(
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    slot_minutes: int = 30,
    variability: DrawVariability = DrawVariability(),
    bathtub: bool | npt.ArrayLike = True,
) -> tuple[FloatArray, FloatArray]:
    """Per-slot mean and independent variance of the sampled use, for planning margins.

    Parameters
    ----------
    persons : array_like of int, shape (N,)
        Household size of each unit, 1–4.
    day_types : sequence of DayType, length D
        Day type of each day of the span.
    slot_minutes : int, default 30
        Slot length [min]; must divide 60.
    variability : DrawVariability, optional
        Model parameters of :func:`sample_step_use_l`.
    bathtub : bool or array_like of bool, shape (N,), default True
        Homes with a bathtub.

    Returns
    -------
    mean_l : numpy.ndarray of float64, shape (N, S)
        Exact mean use of each slot of :func:`sample_step_use_l` [L] (the schedule smoothed by
        the ±1 h jitter).
    independent_var_l2 : numpy.ndarray of float64, shape (N, S)
        Increment per slot of the variance of cumulative use that does not come from the day
        factor [L²]. Entries can be negative (see Notes).

    Notes
    -----
    Write a day's use as ``U_s = F · Y_s`` (``F`` the day factor, ``Y_s`` the use made of
    event noise and jitter, independent of ``F``; ``m_s = E[Y_s] = E[U_s]``). Then
    ``F·C = M·F + F·(C − M)`` for the cumulative ``C_t = Σ_{s≤t} Y_s`` with mean ``M_t`` splits
    into two uncorrelated parts, and **exactly**

        ``Var(Σ_{s≤t} U_s) = (cv_day · M_t)² + cumsum(independent_var_l2)[t]``,

    ``cv_day = sqrt(exp(σ_d²) − 1)`` (:attr:`DrawVariability.day_factor_cv`), with
    ``independent_var_l2[s] = exp(σ_d²) · (Var(C_s) − Var(C_{s−1}))`` and ``Var(C_t)`` the exact
    variance of the cumulative event-and-jitter use from the start of the span. The factor
    ``exp(σ_d²) = E[F²]`` makes the formula exact rather than first order.

    These are increments, not variances of single slots: use from two slots is correlated (one
    hour's block shares its noise across its slots; a jittered block lands in exactly one hour),
    so variances of single slots do not add up. Where a large block's timing uncertainty
    resolves — e.g. the slot after the latest possible bath fill — the cumulative variance
    falls and the increment is negative. Use cumulative sums from the start of the span; the
    variance of single slots is :func:`slot_use_var_l2`.

    Over several days each day has its own factor: the first term becomes
    ``Σ_d (cv_day · M_{d,t})²`` with ``M_{d,t}`` the cumulative mean of day ``d``'s blocks
    (exact but for the few litres jittered across midnight).

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).
    """
    n_units, results, n_slots = _moments_common(
        persons, day_types, slot_minutes, variability, bathtub
    )
    ef2 = math.exp(variability.day_factor_sigma**2)
    mean_l = np.zeros((n_units, n_slots))
    indep = np.zeros((n_units, n_slots))
    for idx, mean, _, cum_var in results:
        mean_l[idx] = mean
        indep[idx] = ef2 * np.diff(cum_var, prepend=0.0)
    return mean_l, indep


def slot_use_var_l2(
    persons: npt.ArrayLike,
    day_types: Sequence[DayType],
    slot_minutes: int = 30,
    variability: DrawVariability = DrawVariability(),
    bathtub: bool | npt.ArrayLike = True,
) -> FloatArray:
    """Exact variance of the use of each single slot of :func:`sample_step_use_l` [L²].

    Parameters are those of :func:`slot_use_moments_l`.

    Returns
    -------
    numpy.ndarray of float64, shape (N, S)
        ``Var(U_s) = (cv_day · m_s)² + exp(σ_d²) · Var(Y_s)`` [L²], notation of
        :func:`slot_use_moments_l` (for multi-day spans, exact but for slots where blocks of
        two days meet by jitter across midnight).
    """
    n_units, results, n_slots = _moments_common(
        persons, day_types, slot_minutes, variability, bathtub
    )
    ef2 = math.exp(variability.day_factor_sigma**2)
    cv2 = variability.day_factor_cv**2
    out = np.zeros((n_units, n_slots))
    for idx, mean, slot_var, _ in results:
        out[idx] = cv2 * mean**2 + ef2 * slot_var
    return out
