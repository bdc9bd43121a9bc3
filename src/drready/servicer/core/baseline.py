"""Customer baseline of DR resources: "High 4 of 5" with same-day adjustment (U2, D2, D6).

The servicer pays and is paid for *delivered* energy: the difference between what a resource
would have used without the DR event (the **baseline**) and what it used (see
:mod:`drready.servicer.core.settlement`). This module computes that baseline from 30-minute meter
data, vectorised over resources, by the standard method of the Japanese ERAB guideline: on a
weekday, of the 5 most recent eligible weekdays the 4 with the highest use in the event window
are averaged slot by slot ("High 4 of 5"); on a Saturday, Sunday or holiday, the 2 highest of
the 3 most recent such days ("High 2 of 3"); the result is then shifted by the same-day
adjustment (当日調整). It is the guideline's standard baseline for negawatt trading, e.g. of type
1② (類型1②: a retailer procuring negawatts from another retailer's customers [4]_), and the
basis of the household savings programmes that cite it [2]_.

What is implemented, rule by rule
---------------------------------
1. **Slots.** Meter data are kWh per 30-minute slot, 48 slots per local day (Japan has no
   daylight saving time; a zone whose days are not 24 h long is refused). The baseline is a
   per-slot kWh value; the event window is whole slots of one day (:class:`EventWindow`).
2. **Day kinds.** Every day is a weekday (平日) or a Saturday/Sunday/holiday (土日祝日); a
   candidate must be of the event day's kind [1]_ [2]_. The default classification is Saturday
   and Sunday plus the dates in :attr:`BaselineConfig.holidays`; pass ``day_kind_of`` to use any
   other calendar. **The package has no calendar of Japanese public holidays**: the only
   calendar shipped (``drready/data/hot_water/day_type_calendar.csv``, read by
   :func:`drready.physics.draws.day_type_for`) is the year-less behaviour calendar of the national
   hot-water schedule, whose "holiday" days are not the public holidays of any year. The caller
   supplies the holidays (national holidays, substitute holidays, and any year-end days the
   contract treats as holidays).
3. **Candidates.** Going back from the day before the event day, at most
   :attr:`~BaselineConfig.lookback_days` = 30 days ("節電要請日当日から過去30日以内" [2]_), the most
   recent days of the same kind that are *eligible* are taken until there are
   ``n_candidates`` of them (5 on weekdays, 3 otherwise; "DR実施日を除いた5日間" [1]_;
   "更に日を遡り、直近日を設定" [2]_). A day is not eligible when it

   * is a DR day of that resource (one set of dates for all resources, one per resource, or a
     boolean mask),
   * **has a missing value (NaN) in any slot the method reads from it** — the event window and
     the adjustment window (this may be the previous calendar day's evening for an early event),
   * is a **low-usage day**: its energy in the event window is below
     :attr:`~BaselineConfig.low_usage_fraction` = 25 % of the mean window energy of the first
     ``n_candidates`` days that pass the two rules above
     ("対象時間帯における使用量の総平均値と比較して、…25%未満の日も除く" [1]_). The threshold is
     fixed by those first days (which average is meant is not said; this is the reading of
     PJM's rule, which the method comes from [3]_); the days that replace an excluded one must
     pass the same threshold. 0 disables the rule.

   Fewer than ``n_candidates`` eligible days is an error naming the resource and the count found
   (or, with ``strict=False``, a resource marked not ``ok`` with a NaN baseline).
4. **Ranking.** Candidates are ranked by their energy in the event window (the sum of the
   window's slots, the same as ranking by mean use); the ``n_selected`` highest are kept. On a
   tie the more recent day is kept
   ("最小日が複数ある場合は、節電要請日当日から最も遠い1日を除き" [2]_).
5. **Unadjusted baseline.** The mean, slot by slot, of the selected days (all 48 slots of the day;
   only the window slots enter settlement).
6. **Same-day adjustment.** The additive adjustment ``Δ`` is the mean over the slots of the
   adjustment window of (event-day actual − unadjusted baseline of those slots, built from the
   same selected days); it is added to every slot. The window runs from
   :attr:`~BaselineConfig.adjustment_from_h_before` = 4 h to
   :attr:`~BaselineConfig.adjustment_to_h_before` = 1 h before the event start, i.e. the 3 hours
   (6 slots) ending one hour before the event, as in PJM's symmetric additive adjustment [3]_ on
   which the guideline's "High 4 of 5 (当日調整あり)" is modelled. *The stored copies of the
   guideline reachable here did not show the exact hours; both ends are parameters* (some
   programmes use 5 h to 2 h). ``Δ`` is **symmetric**: it may be negative. There is no cap by
   default; :attr:`~BaselineConfig.adjustment_limit_fraction` caps ``|Δ|`` at that fraction of
   the unadjusted baseline's mean over the event window. With
   :attr:`~BaselineConfig.floor_at_zero` (default) an adjusted slot below 0 kWh is set to 0: a
   consumption meter cannot read negative. The event day's actual data in the adjustment window
   must be complete (else error / not ``ok``).
7. **Direction.** The guideline defines this standard baseline for down-DR; this module applies
   the same baseline to up-DR (a high baseline is the conservative choice there too: it credits
   only consumption above the typical high days). Settlement flips the sign
   (:mod:`drready.servicer.core.settlement`).

References
----------
.. [1] Agency for Natural Resources and Energy (資源エネルギー庁),
   "エネルギー・リソース・アグリゲーション・ビジネスに関するガイドライン" (ERAB guideline),
   revised 2020-06-01, chapter 2 "ベースライン",
   standard baseline "High 4 of 5（当日調整あり）", enecho.meti.go.jp .../vpp_dr/files/
   20171129001-1.pdf. Summarised, with the 25 % low-usage rule and the same-day adjustment, in
   igrid support, "夏の節電アクションキャンペーン2024で節電効果が出ませんでした" (2024).
.. [2] A retailer's savings programme terms implementing [1]_ (clause "節電量の計算", published on
   lawinsider.com): weekdays 5 days / Saturdays, Sundays and holidays 3 days, excluded days
   replaced by earlier ones within the past 30 days, the 4 (2) days with the highest use in the
   target hours averaged per 30-minute unit, ties dropping the day farthest from the event.
.. [3] PJM Manual 11, Energy & Ancillary Services Market Operations, Economic Load Response
   customer baseline (CBL): "High 4 of 5" non-event weekdays, low-usage days below 25 % of the
   average replaced, symmetric additive adjustment over the 3 hours ending 1 hour before the
   event. Cited from the manual as known, not re-checked against a stored copy here.
.. [4] ネガワット取引に関する実務者会議, "ネガワット取引（直接協議スキーム）に関する説明会"
   (2016-11-30): 類型1① / 1② of negawatt trading (mirrored on paperzz.com).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from enum import StrEnum
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from drready.domain import DEFAULT_TZ, SLOT, SLOT_MINUTES, SlotGrid
from drready.domain.base import DomainModel, ShortText, bounded_float, format_number
from drready.domain.time import require_slot_aligned, zone

__all__ = [
    "SLOTS_PER_DAY",
    "BaselineAudit",
    "BaselineConfig",
    "BaselineDataError",
    "BaselineResult",
    "DayKind",
    "DayKindOf",
    "DrDays",
    "EventWindow",
    "SelectionRule",
    "compute_baseline",
    "day_kind",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: 30-minute slots in one local day (no daylight saving time).
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
_SLOTS_PER_HOUR = 60 // SLOT_MINUTES
_MAX_ERRORS_LISTED = 5


class DayKind(StrEnum):
    """Kind of day for choosing baseline candidates ([1]_)."""

    WEEKDAY = "weekday"
    """平日: Monday to Friday, not a holiday."""
    WEEKEND_HOLIDAY = "weekend_holiday"
    """土日祝日: Saturday, Sunday or a holiday."""


#: A day classification: date → kind. The default is :func:`day_kind` with the config's holidays.
DayKindOf = Callable[[date], DayKind]


def day_kind(day: date, holidays: Collection[date] = ()) -> DayKind:
    """Weekday, or Saturday/Sunday/holiday, of ``day``.

    Parameters
    ----------
    day : datetime.date
        The date.
    holidays : collection of datetime.date
        Dates to treat as holidays (Japanese public holidays and whatever else the contract
        counts as one); Saturdays and Sundays are always holidays.

    Examples
    --------
    >>> from datetime import date
    >>> day_kind(date(2026, 6, 1)).value, day_kind(date(2026, 6, 6)).value
    ('weekday', 'weekend_holiday')
    >>> day_kind(date(2026, 5, 6), holidays={date(2026, 5, 6)}).value
    'weekend_holiday'
    """
    if day.weekday() >= 5 or day in holidays:
        return DayKind.WEEKEND_HOLIDAY
    return DayKind.WEEKDAY


class SelectionRule(DomainModel):
    """ "High ``n_selected`` of ``n_candidates``": of the most recent eligible days, the highest."""

    n_candidates: int = Field(description="Most recent eligible days considered, 1–30.")
    n_selected: int = Field(description="Highest-use days averaged, 1–n_candidates.")

    @model_validator(mode="after")
    def _check(self) -> SelectionRule:
        if not 1 <= self.n_candidates <= 30:
            raise ValueError(f"n_candidates must be in [1, 30], got {self.n_candidates}")
        if not 1 <= self.n_selected <= self.n_candidates:
            raise ValueError(
                f"n_selected must be in [1, n_candidates] = [1, {self.n_candidates}], "
                f"got {self.n_selected}"
            )
        return self

    def __str__(self) -> str:
        return f"High {self.n_selected} of {self.n_candidates}"


_HoursBefore = Annotated[float, bounded_float(0.0, 24.0)]
_LowUsage = Annotated[float, bounded_float(0.0, 1.0, hi_open=True)]
_Limit = Annotated[float, bounded_float(0.0)]


class BaselineConfig(DomainModel):
    """Parameters of the baseline; the defaults are the guideline's standard baseline ([1]_)."""

    weekday: SelectionRule = Field(
        default=SelectionRule(n_candidates=5, n_selected=4),
        description="Rule on weekdays (High 4 of 5).",
    )
    weekend_holiday: SelectionRule = Field(
        default=SelectionRule(n_candidates=3, n_selected=2),
        description="Rule on Saturdays, Sundays and holidays (High 2 of 3).",
    )
    lookback_days: int = Field(
        default=30, description="How far back candidates are sought [days], n_candidates–90."
    )
    low_usage_fraction: _LowUsage = Field(
        default=0.25,
        description="Days with window energy below this fraction of the mean are dropped, [0, 1).",
    )
    same_day_adjustment: bool = Field(default=True, description="Apply 当日調整.")
    adjustment_from_h_before: _HoursBefore = Field(
        default=4.0, description="Adjustment window start, hours before the event [h], 0.5–24."
    )
    adjustment_to_h_before: _HoursBefore = Field(
        default=1.0, description="Adjustment window end, hours before the event [h], 0–23.5."
    )
    adjustment_limit_fraction: _Limit | None = Field(
        default=None,
        description="Cap |Δ| at this fraction of the mean window baseline (None: no cap).",
    )
    floor_at_zero: bool = Field(default=True, description="Adjusted slots below 0 kWh become 0.")
    holidays: frozenset[date] = Field(
        default=frozenset(), description="Dates counted as holidays besides Saturdays/Sundays."
    )

    @model_validator(mode="after")
    def _check(self) -> BaselineConfig:
        longest = max(self.weekday.n_candidates, self.weekend_holiday.n_candidates)
        if not longest <= self.lookback_days <= 90:
            raise ValueError(
                f"lookback_days must be in [{longest}, 90] (at least the largest n_candidates), "
                f"got {self.lookback_days}"
            )
        for name in ("adjustment_from_h_before", "adjustment_to_h_before"):
            value = getattr(self, name)
            if not float(value * _SLOTS_PER_HOUR).is_integer():
                raise ValueError(
                    f"{name} must be a whole number of 30-minute slots (a multiple of 0.5 h), "
                    f"got {format_number(value)}"
                )
        if self.adjustment_from_h_before <= self.adjustment_to_h_before:
            raise ValueError(
                "adjustment_from_h_before must be greater than adjustment_to_h_before "
                f"(the window runs from the earlier to the later time), got "
                f"{format_number(self.adjustment_from_h_before)} h and "
                f"{format_number(self.adjustment_to_h_before)} h"
            )
        return self

    def rule_for(self, kind: DayKind) -> SelectionRule:
        """The selection rule for an event day of ``kind``."""
        return self.weekday if kind is DayKind.WEEKDAY else self.weekend_holiday

    @property
    def adjustment_slots(self) -> tuple[int, int]:
        """Adjustment window as slot offsets ``(from, to)`` before the event start."""
        return (
            round(self.adjustment_from_h_before * _SLOTS_PER_HOUR),
            round(self.adjustment_to_h_before * _SLOTS_PER_HOUR),
        )


def _midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, dtime(0, 0), tzinfo=zone(tz))


def _check_24h_day(day: date, tz: str) -> None:
    length = _midnight(day + timedelta(days=1), tz).astimezone(UTC) - _midnight(day, tz).astimezone(
        UTC
    )
    if length != timedelta(hours=24):
        raise ValueError(
            f"day {day.isoformat()} is {length / timedelta(hours=1):g} h long in {tz}: the "
            f"baseline needs {SLOTS_PER_DAY} slots per day (a zone without daylight saving time, "
            f"such as {DEFAULT_TZ})"
        )


class EventWindow(DomainModel):
    """The DR event window: slots ``[start_slot, end_slot)`` of local day ``day`` in ``tz``."""

    day: date = Field(description="Local date of the event.")
    start_slot: int = Field(description="First slot (0 = 00:00–00:30), 0–47.")
    end_slot: int = Field(description="Slot after the last one, start_slot+1–48 (48 = midnight).")
    tz: str = Field(default=DEFAULT_TZ, description="IANA timezone of the meter data.")

    @model_validator(mode="after")
    def _check(self) -> EventWindow:
        if not 0 <= self.start_slot < SLOTS_PER_DAY:
            raise ValueError(
                f"start_slot must be in [0, {SLOTS_PER_DAY - 1}], got {self.start_slot}"
            )
        if not self.start_slot < self.end_slot <= SLOTS_PER_DAY:
            raise ValueError(
                f"end_slot must be in [start_slot + 1, {SLOTS_PER_DAY}] = "
                f"[{self.start_slot + 1}, {SLOTS_PER_DAY}], got {self.end_slot}"
            )
        zone(self.tz, "tz")
        _check_24h_day(self.day, self.tz)
        return self

    @classmethod
    def from_times(cls, start: datetime, end: datetime, tz: str = DEFAULT_TZ) -> EventWindow:
        """The window ``[start, end)`` given as aware, slot-aligned datetimes within one local day.

        ``end`` may be the next midnight. A window across midnight must be settled per day.

        Raises
        ------
        ValueError
            Naive or unaligned times, ``end <= start``, or a window that crosses midnight.
        """
        require_slot_aligned(start, "start", tz)
        require_slot_aligned(end, "end", tz)
        zi = zone(tz)
        local_start = start.astimezone(zi)
        day = local_start.date()
        base = _midnight(day, tz).astimezone(UTC)
        i = (start.astimezone(UTC) - base) // SLOT
        j = (end.astimezone(UTC) - base) // SLOT
        if j <= i:
            raise ValueError(
                f"end must be after start, got start={start.isoformat()}, end={end.isoformat()}"
            )
        if j > SLOTS_PER_DAY:
            raise ValueError(
                f"the event window [{start.isoformat()}, {end.isoformat()}) crosses midnight in "
                f"{tz}: split it into one window per day"
            )
        return cls(day=day, start_slot=i, end_slot=j, tz=tz)

    @property
    def n_slots(self) -> int:
        """Number of slots in the window."""
        return self.end_slot - self.start_slot

    @property
    def start(self) -> datetime:
        """Start of the window (aware, in ``tz``)."""
        return self.slot_start(self.start_slot)

    @property
    def end(self) -> datetime:
        """End of the window, exclusive (aware, in ``tz``)."""
        return self.slot_start(self.end_slot)

    def slot_start(self, k: int) -> datetime:
        """Start of slot ``k`` of the day (``k = 48`` is the next midnight), in ``tz``."""
        return (_midnight(self.day, self.tz).astimezone(UTC) + k * SLOT).astimezone(zone(self.tz))

    def slot_grid(self) -> SlotGrid:
        """The window as a :class:`~drready.domain.SlotGrid`."""
        return SlotGrid(start=self.start, n_slots=self.n_slots, tz=self.tz)

    def label(self) -> str:
        """``2026-06-10 14:00–16:00`` (for messages)."""
        end = "24:00" if self.end_slot == SLOTS_PER_DAY else self.end.strftime("%H:%M")
        return f"{self.day.isoformat()} {self.start.strftime('%H:%M')}–{end}"


#: DR days: one collection of dates for every resource, one collection per resource, or a boolean
#: mask of shape (days,) or (resources, days) aligned with the calendar.
DrDays = Collection[date] | Sequence[Collection[date]] | npt.NDArray[np.bool_]


class BaselineDataError(ValueError):
    """The meter data do not allow a baseline for some resources (named in the message).

    ``resource_ids`` lists every resource concerned; ``found`` the eligible days each had.
    """

    def __init__(self, message: str, resource_ids: Sequence[str], found: Sequence[int]) -> None:
        super().__init__(message)
        self.resource_ids = tuple(resource_ids)
        self.found = tuple(found)


class BaselineAudit(DomainModel):
    """How one resource's baseline was made: the days considered and used (for audit)."""

    resource_id: ShortText
    event_day: date
    day_kind: DayKind
    rule: str = Field(description="e.g. 'High 4 of 5'.")
    ok: bool = Field(description="Whether a baseline could be computed.")
    reason: str | None = Field(default=None, description="Why not, when not ok.")
    candidate_days: tuple[date, ...] = Field(description="Eligible days, most recent first.")
    candidate_window_kwh: tuple[float, ...] = Field(description="Their energy in the window.")
    selected_days: tuple[date, ...] = Field(description="The days averaged, most recent first.")
    dropped_days: tuple[date, ...] = Field(description="Candidates not selected (lowest use).")
    dr_days_skipped: int = Field(description="Same-kind days in the lookback that were DR days.")
    missing_data_days_skipped: int = Field(description="Same-kind days with NaN in used slots.")
    low_usage_days_skipped: int = Field(description="Days dropped by the low-usage rule.")
    adjustment_kwh: float | None = Field(description="Same-day adjustment per slot [kWh].")


@dataclass(frozen=True)
class BaselineResult:
    """Baselines of R resources for one event day.

    Arrays are resource-major. ``n_cand`` is the rule's ``n_candidates``, ``n_adj`` the number of
    slots of the adjustment window (0 without adjustment). Rows of resources that are not ``ok``
    hold NaN.
    """

    window: EventWindow
    day_kind: DayKind
    rule: SelectionRule
    config: BaselineConfig
    resource_ids: tuple[str, ...]
    days: tuple[date, ...]
    """The meter-data calendar (consecutive dates)."""
    baseline_kwh: FloatArray
    """(R, 48) adjusted baseline per slot of the event day [kWh]."""
    unadjusted_kwh: FloatArray
    """(R, 48) mean of the selected days per slot [kWh]."""
    adjustment_kwh: FloatArray
    """(R,) additive same-day adjustment per slot [kWh] (0 without adjustment)."""
    adjustment_actual_kwh: FloatArray
    """(R, n_adj) event-day actual in the adjustment window [kWh]."""
    adjustment_baseline_kwh: FloatArray
    """(R, n_adj) unadjusted baseline of the adjustment window [kWh]."""
    candidate_day_index: IntArray
    """(R, n_cand) index into ``days`` of each candidate, most recent first; -1 where none."""
    candidate_window_kwh: FloatArray
    """(R, n_cand) candidate's energy in the event window [kWh]; NaN where none."""
    selected: BoolArray
    """(R, n_cand) whether the candidate is among the ``n_selected`` averaged."""
    ok: BoolArray
    """(R,) whether the baseline could be computed."""
    n_found: IntArray
    """(R,) eligible candidates found (≤ n_cand)."""
    event_data_missing: BoolArray
    """(R,) the event day's actual data in the adjustment window has NaN."""
    dr_days_skipped: IntArray
    missing_data_days_skipped: IntArray
    low_usage_days_skipped: IntArray

    @property
    def n_resources(self) -> int:
        """Number of resources R."""
        return len(self.resource_ids)

    @property
    def window_baseline_kwh(self) -> FloatArray:
        """(R, n_window) adjusted baseline of the event window's slots [kWh]."""
        return self.baseline_kwh[:, self.window.start_slot : self.window.end_slot]

    def candidate_days(self, r: int) -> list[date]:
        """Eligible candidate days of resource ``r``, most recent first."""
        return [self.days[i] for i in self.candidate_day_index[r] if i >= 0]

    def selected_days(self, r: int) -> list[date]:
        """The days averaged for resource ``r``, most recent first."""
        idx = self.candidate_day_index[r][self.selected[r]]
        return [self.days[i] for i in idx if i >= 0]

    def reason(self, r: int) -> str | None:
        """Why resource ``r`` has no baseline (None when ``ok``)."""
        if self.ok[r]:
            return None
        n = self.rule.n_candidates
        if self.n_found[r] < n:
            return (
                f"{int(self.n_found[r])} eligible {_kind_text(self.day_kind)} in the "
                f"{self.config.lookback_days} days before {self.window.day.isoformat()} "
                f"(need {n}; skipped: {int(self.dr_days_skipped[r])} DR days, "
                f"{int(self.missing_data_days_skipped[r])} with missing data, "
                f"{int(self.low_usage_days_skipped[r])} low-usage)"
            )
        return (
            "missing meter data on the event day in the same-day adjustment window "
            f"({self._adjustment_label()})"
        )

    def _adjustment_label(self) -> str:
        a_from, a_to = self.config.adjustment_slots
        w = self.window
        return (
            f"{w.slot_start(w.start_slot - a_from).strftime('%m-%d %H:%M')}–"
            f"{w.slot_start(w.start_slot - a_to).strftime('%H:%M')}"
        )

    def audit(self, r: int) -> BaselineAudit:
        """The audit record of resource ``r``."""
        valid = self.candidate_day_index[r] >= 0
        cand = self.candidate_days(r)
        sel = set(self.selected_days(r)) if self.ok[r] else set()
        return BaselineAudit(
            resource_id=self.resource_ids[r],
            event_day=self.window.day,
            day_kind=self.day_kind,
            rule=str(self.rule),
            ok=bool(self.ok[r]),
            reason=self.reason(r),
            candidate_days=tuple(cand),
            candidate_window_kwh=tuple(float(x) for x in self.candidate_window_kwh[r][valid]),
            selected_days=tuple(d for d in cand if d in sel),
            dropped_days=tuple(d for d in cand if d not in sel) if self.ok[r] else (),
            dr_days_skipped=int(self.dr_days_skipped[r]),
            missing_data_days_skipped=int(self.missing_data_days_skipped[r]),
            low_usage_days_skipped=int(self.low_usage_days_skipped[r]),
            adjustment_kwh=float(self.adjustment_kwh[r]) if self.ok[r] else None,
        )


def _kind_text(kind: DayKind) -> str:
    return "weekdays" if kind is DayKind.WEEKDAY else "Saturdays/Sundays/holidays"


# -- input checking ---------------------------------------------------------------------------


def _check_energy(energy_kwh: npt.ArrayLike) -> FloatArray:
    x = np.asarray(energy_kwh, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != SLOTS_PER_DAY or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"energy_kwh must have shape (resources, days, {SLOTS_PER_DAY}) with at least one "
            f"resource and one day, got {x.shape}"
        )
    if np.isinf(x).any():
        raise ValueError("energy_kwh must be finite or NaN (missing), got ±inf")
    return x


def _check_days(days: Sequence[date], n_days: int) -> tuple[date, ...]:
    out = tuple(days)
    if len(out) != n_days:
        raise ValueError(
            f"days must have one date per day of energy_kwh ({n_days}), got {len(out)}"
        )
    for i, d in enumerate(out):
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ValueError(f"days[{i}] must be a datetime.date, got {d!r}")
        if i and (d - out[i - 1]).days != 1:
            raise ValueError(
                "days must be consecutive dates (missing days as NaN rows), got "
                f"{out[i - 1].isoformat()} followed by {d.isoformat()}"
            )
    return out


def _check_ids(resource_ids: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if resource_ids is None:
        return tuple(f"resource-{r}" for r in range(n))
    ids = tuple(resource_ids)
    if len(ids) != n:
        raise ValueError(f"resource_ids must have one id per resource ({n}), got {len(ids)}")
    for i, rid in enumerate(ids):
        if not isinstance(rid, str) or not 1 <= len(rid) <= 64 or not rid.isprintable():
            raise ValueError(f"resource_ids[{i}] must be 1–64 printable characters, got {rid!r}")
    if len(set(ids)) != n:
        dup = next(rid for rid in ids if ids.count(rid) > 1)
        raise ValueError(f"resource_ids must be unique, {dup!r} appears more than once")
    return ids


def _dr_mask(dr_days: DrDays, days: tuple[date, ...], n_res: int) -> BoolArray:
    n_days = len(days)
    if isinstance(dr_days, np.ndarray):
        mask = np.asarray(dr_days)
        if mask.dtype != np.bool_:
            raise ValueError(f"dr_days as an array must be boolean, got dtype {mask.dtype}")
        if mask.shape == (n_days,):
            return np.broadcast_to(mask, (n_res, n_days))
        if mask.shape == (n_res, n_days):
            return mask
        raise ValueError(
            f"dr_days as a mask must have shape ({n_days},) or ({n_res}, {n_days}), "
            f"got {mask.shape}"
        )
    items = list(dr_days)
    index = {d: i for i, d in enumerate(days)}

    def row(dates: Collection[object], where: str) -> BoolArray:
        out = np.zeros(n_days, dtype=np.bool_)
        for d in dates:
            if not isinstance(d, date) or isinstance(d, datetime):
                raise ValueError(f"{where} must hold datetime.date values, got {d!r}")
            i = index.get(d)
            if i is not None:  # DR days outside the calendar cannot be candidates anyway
                out[i] = True
        return out

    if all(isinstance(d, date) for d in items):
        return np.broadcast_to(row(items, "dr_days"), (n_res, n_days))
    if len(items) != n_res:
        raise ValueError(
            "dr_days must be a collection of dates (for all resources) or one collection per "
            f"resource ({n_res}), got {len(items)} items"
        )
    rows = []
    for r, dates in enumerate(items):
        if isinstance(dates, date | str | bytes) or not isinstance(dates, Collection):
            raise ValueError(f"dr_days[{r}] must be a collection of dates, got {dates!r}")
        rows.append(row(dates, f"dr_days[{r}]"))
    return np.stack(rows)


# -- array helpers ----------------------------------------------------------------------------


def _nan_in_span(x: FloatArray, lo: int, hi: int) -> BoolArray:
    """(R, D): any NaN in slots ``[lo, hi)`` relative to each day's midnight; ``lo`` may be
    negative (slots of the previous day). Day 0 has no previous day: True when ``lo < 0``."""
    r, d, _ = x.shape
    out = np.zeros((r, d), dtype=np.bool_)
    same_lo, same_hi = max(lo, 0), max(hi, 0)
    if same_hi > same_lo:
        out |= np.isnan(x[:, :, same_lo:same_hi]).any(axis=2)
    if lo < 0:
        prev = np.asarray(
            np.isnan(x[:, :, SLOTS_PER_DAY + lo : SLOTS_PER_DAY + min(hi, 0)]).any(axis=2),
            dtype=np.bool_,
        )
        out[:, 1:] |= prev[:, :-1]
        out[:, 0] = True
    return out


def _gather(flat: FloatArray, day_idx: IntArray, lo: int, hi: int) -> FloatArray:
    """Slots ``[lo, hi)`` relative to day ``day_idx[r, k]`` of resource ``r``: (R, K, hi − lo).

    ``flat`` is the (R, D·48) series; every requested position must exist."""
    offsets = np.arange(lo, hi, dtype=np.int64)
    pos = day_idx[:, :, None] * SLOTS_PER_DAY + offsets[None, None, :]
    r = flat.shape[0]
    # clip: rows of resources without a baseline point at day 0; their values are discarded.
    pos = np.clip(pos, 0, flat.shape[1] - 1)
    return np.take_along_axis(flat, pos.reshape(r, -1), axis=1).reshape(
        r, day_idx.shape[1], offsets.size
    )


# -- the method -------------------------------------------------------------------------------


def compute_baseline(
    energy_kwh: npt.ArrayLike,
    days: Sequence[date],
    window: EventWindow,
    *,
    dr_days: DrDays = (),
    config: BaselineConfig | None = None,
    day_kind_of: DayKindOf | None = None,
    resource_ids: Sequence[str] | None = None,
    strict: bool = True,
) -> BaselineResult:
    """Baseline of every resource for the event ``window`` (rules in the module docstring).

    Parameters
    ----------
    energy_kwh : array_like, shape (R, D, 48)
        Metered energy per resource, day and 30-minute slot [kWh]; NaN = missing. Must include
        the event day (its actual data feed the same-day adjustment) and the days before it.
    days : sequence of datetime.date, length D
        Consecutive local dates of ``energy_kwh``'s day axis.
    window : EventWindow
        The event window (a day in ``days``).
    dr_days : collection of dates, sequence of collections, or bool array
        DR days excluded from the candidates: for all resources, per resource, or as a mask of
        shape (D,) or (R, D).
    config : BaselineConfig, optional
        Method parameters; default: the guideline's standard baseline.
    day_kind_of : callable, optional
        ``date -> DayKind``; default: :func:`day_kind` with ``config.holidays``.
    resource_ids : sequence of str, optional
        Names for messages, audit and settlement; default ``resource-0``, ``resource-1``, ….
    strict : bool
        Raise :class:`BaselineDataError` when a resource has no baseline (the default);
        otherwise mark it not ``ok`` (NaN rows).

    Returns
    -------
    BaselineResult

    Raises
    ------
    ValueError
        Bad shapes, calendar, ids or window; :class:`BaselineDataError` (a ``ValueError``) naming
        the resources with too few eligible days (and the count found) or missing event-day data.
    """
    cfg = config if config is not None else BaselineConfig()
    x = _check_energy(energy_kwh)
    n_res, n_days, _ = x.shape
    cal = _check_days(days, n_days)
    ids = _check_ids(resource_ids, n_res)
    if window.day not in cal:
        raise ValueError(
            f"window.day {window.day.isoformat()} must be in days "
            f"[{cal[0].isoformat()}, {cal[-1].isoformat()}]"
        )
    e = cal.index(window.day)
    dr = _dr_mask(dr_days, cal, n_res)
    classify = day_kind_of if day_kind_of is not None else _default_classifier(cfg.holidays)
    kinds = [DayKind(classify(d)) for d in cal]
    kind = kinds[e]
    rule = cfg.rule_for(kind)
    n_cand, n_sel = rule.n_candidates, rule.n_selected
    ws, we = window.start_slot, window.end_slot

    if cfg.same_day_adjustment:
        a_from, a_to = cfg.adjustment_slots
        a0, a1 = ws - a_from, ws - a_to
        if a0 < 0 and e == 0:
            raise ValueError(
                f"the same-day adjustment window starts on {cal[0] - timedelta(days=1)}, the day "
                f"before the event day, which is not in days: add that day's data"
            )
    else:
        a0 = a1 = ws
    span_lo = min(a0, ws)

    # Eligibility of every day of the lookback, most recent first: (R, L).
    first = max(e - cfg.lookback_days, 0)
    look = np.arange(e - 1, first - 1, -1, dtype=np.int64)
    kind_ok = np.array([kinds[i] is kind for i in look], dtype=np.bool_)
    nan_span = _nan_in_span(x, span_lo, we)[:, look]
    dr_l = dr[:, look]
    window_kwh = x[:, look, ws:we].sum(axis=2)
    base_ok = kind_ok[None, :] & ~dr_l & ~nan_span
    # Low-usage rule: threshold from the first n_cand days passing the rules above.
    first_n = base_ok & (np.cumsum(base_ok, axis=1) <= n_cand)
    count = first_n.sum(axis=1)
    mean_first = np.where(first_n, np.nan_to_num(window_kwh), 0.0).sum(axis=1) / np.maximum(
        count, 1
    )
    low = base_ok & (window_kwh < cfg.low_usage_fraction * mean_first[:, None])
    eligible = base_ok & ~low
    cand = eligible & (np.cumsum(eligible, axis=1) <= n_cand)
    n_found = cand.sum(axis=1).astype(np.int64)

    # Candidate positions (most recent first), padded to n_cand.
    width = max(look.size, n_cand)
    pad = width - look.size
    cand_p = np.pad(cand, ((0, 0), (0, pad)), constant_values=False)
    look_p = np.pad(look, (0, pad), constant_values=-1)
    wk_p = np.pad(np.nan_to_num(window_kwh), ((0, 0), (0, pad)))
    pos = np.argsort(~cand_p, axis=1, kind="stable")[:, :n_cand]
    valid = np.take_along_axis(cand_p, pos, axis=1)
    cand_day = np.where(valid, look_p[pos], -1).astype(np.int64)
    cand_w = np.where(valid, np.take_along_axis(wk_p, pos, axis=1), np.nan)
    # Rank by window energy, highest first; the stable sort keeps the more recent on a tie.
    key = np.where(valid, -cand_w, np.inf)
    top = np.argsort(key, axis=1, kind="stable")[:, :n_sel]
    selected = np.zeros((n_res, n_cand), dtype=np.bool_)
    np.put_along_axis(selected, top, True, axis=1)
    selected &= valid

    enough = n_found == n_cand
    sel_day = np.where(enough[:, None], np.take_along_axis(cand_day, top, axis=1), 0)
    flat = x.reshape(n_res, n_days * SLOTS_PER_DAY)
    unadjusted = _gather(flat, sel_day, 0, SLOTS_PER_DAY).mean(axis=1)

    n_adj = a1 - a0
    if n_adj > 0:
        event_idx = np.full((n_res, 1), e, dtype=np.int64)
        adj_actual = _gather(flat, event_idx, a0, a1)[:, 0, :]
        adj_base = _gather(flat, sel_day, a0, a1).mean(axis=1)
        event_missing = np.asarray(np.isnan(adj_actual).any(axis=1), dtype=np.bool_)
        adjustment = np.mean(adj_actual - adj_base, axis=1)
        if cfg.adjustment_limit_fraction is not None:
            limit = cfg.adjustment_limit_fraction * unadjusted[:, ws:we].mean(axis=1)
            # clip: the optional cap on |Δ| (BaselineConfig.adjustment_limit_fraction).
            adjustment = np.clip(adjustment, -limit, limit)
    else:
        adj_actual = np.zeros((n_res, 0))
        adj_base = np.zeros((n_res, 0))
        event_missing = np.zeros(n_res, dtype=np.bool_)
        adjustment = np.zeros(n_res)

    baseline = unadjusted + adjustment[:, None]
    if cfg.floor_at_zero:
        # maximum: a consumption meter cannot read below 0 kWh (BaselineConfig.floor_at_zero).
        baseline = np.where(np.isnan(baseline), baseline, np.maximum(baseline, 0.0))
    ok = enough & ~event_missing
    bad = ~ok
    for arr in (baseline, unadjusted, adj_base):
        arr[bad] = np.nan
    adjustment = np.where(ok, adjustment, np.nan)

    result = BaselineResult(
        window=window,
        day_kind=kind,
        rule=rule,
        config=cfg,
        resource_ids=ids,
        days=cal,
        baseline_kwh=baseline,
        unadjusted_kwh=unadjusted,
        adjustment_kwh=adjustment,
        adjustment_actual_kwh=adj_actual,
        adjustment_baseline_kwh=adj_base,
        candidate_day_index=cand_day,
        candidate_window_kwh=cand_w,
        selected=selected,
        ok=ok,
        n_found=n_found,
        event_data_missing=event_missing,
        dr_days_skipped=(kind_ok[None, :] & dr_l).sum(axis=1).astype(np.int64),
        missing_data_days_skipped=(kind_ok[None, :] & ~dr_l & nan_span)
        .sum(axis=1)
        .astype(np.int64),
        low_usage_days_skipped=low.sum(axis=1).astype(np.int64),
    )
    if strict and bad.any():
        raise _data_error(result)
    return result


def _default_classifier(holidays: frozenset[date]) -> DayKindOf:
    def classify(day: date) -> DayKind:
        return day_kind(day, holidays)

    return classify


def _data_error(result: BaselineResult) -> BaselineDataError:
    bad = np.flatnonzero(~result.ok)
    lines = [f"resource {result.resource_ids[r]!r}: {result.reason(int(r))}" for r in bad]
    more = len(lines) - _MAX_ERRORS_LISTED
    shown = lines[:_MAX_ERRORS_LISTED] + ([f"… and {more} more"] if more > 0 else [])
    message = (
        f"no {result.rule} baseline for {bad.size} of {result.n_resources} resources on "
        f"{result.window.label()} ({result.day_kind.value}): " + "; ".join(shown)
    )
    return BaselineDataError(
        message,
        [result.resource_ids[r] for r in bad],
        [int(result.n_found[r]) for r in bad],
    )
