"""The time axis of the unified data model: 30-minute slots, timezone-aware (D1; F1–F4).

The market's unit is a 30-minute slot aligned to the hour, so every window, request and plan in
the domain is expressed on a :class:`SlotGrid`. Datetimes must be timezone-aware; any UTC offset
is accepted and compared as an instant (``10:00+09:00`` and ``01:00Z`` are the same slot) and is
converted to the grid's zone (``Asia/Tokyo`` by default) for display. Arithmetic is done in UTC so
that zones with daylight saving time also work.

The planning horizon is 48 h (96 slots): long enough for a day-ahead plan that starts with the
night heating at 23:00 of the previous day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as dtime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from .base import DomainModel, format_number

__all__ = [
    "DEFAULT_TZ",
    "MAX_HORIZON_HOURS",
    "MAX_SLOTS",
    "SLOT",
    "SLOT_HOURS",
    "SLOT_MINUTES",
    "Instant",
    "SlotGrid",
    "count_window_slots",
    "ensure_aware",
    "is_slot_aligned",
    "require_slot_aligned",
    "zone",
]

#: Length of one market slot [min].
SLOT_MINUTES = 30
#: Length of one market slot [h].
SLOT_HOURS = SLOT_MINUTES / 60
#: Length of one market slot.
SLOT = timedelta(minutes=SLOT_MINUTES)
#: Longest window, request or plan [h].
MAX_HORIZON_HOURS = 48
#: Most slots in a window, request or plan (48 h of 30-minute slots).
MAX_SLOTS = MAX_HORIZON_HOURS * 60 // SLOT_MINUTES
#: Default display/planning timezone (IANA name).
DEFAULT_TZ = "Asia/Tokyo"


def zone(tz: str, field: str = "tz") -> ZoneInfo:
    """Return the :class:`~zoneinfo.ZoneInfo` for an IANA name; ``ValueError`` naming ``field``."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as err:
        raise ValueError(
            f"{field} must be a valid IANA timezone name (e.g. 'Asia/Tokyo'), got {tz!r}"
        ) from err


def ensure_aware(dt: datetime, field: str) -> datetime:
    """Return ``dt`` if it is timezone-aware, else raise ``ValueError`` naming ``field``."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(
            f"{field} must be timezone-aware (with a UTC offset, e.g. +09:00), "
            f"got naive {dt.isoformat()}"
        )
    return dt


def is_slot_aligned(dt: datetime) -> bool:
    """Whether ``dt``'s wall-clock time is on a 30-minute boundary (minute 0 or 30, second 0)."""
    return dt.minute % SLOT_MINUTES == 0 and dt.second == 0 and dt.microsecond == 0


def _clock(dt: datetime) -> str:
    if dt.second == 0 and dt.microsecond == 0:
        return dt.strftime("%H:%M")
    if dt.microsecond == 0:
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%H:%M:%S.%f")


def require_slot_aligned(dt: datetime, field: str, tz: str | None = None) -> datetime:
    """Return ``dt`` if aware and slot-aligned (checked in ``tz`` if given), else ``ValueError``.

    The message names ``field``: ``start must be aligned to a 30-minute slot boundary
    (minute 0 or 30, second 0), got 10:15 (2026-05-12T10:15:00+09:00)``.
    """
    ensure_aware(dt, field)
    local = dt if tz is None else dt.astimezone(zone(tz))
    if not is_slot_aligned(local):
        raise ValueError(
            f"{field} must be aligned to a 30-minute slot boundary (minute 0 or 30, second 0), "
            f"got {_clock(local)} ({local.isoformat()})"
        )
    return dt


def _utc(dt: datetime) -> datetime:
    # Subtracting two datetimes that share a tzinfo object ignores their offsets (wall-clock
    # arithmetic); going through UTC makes every difference an elapsed time.
    return dt.astimezone(UTC)


def count_window_slots(
    start: datetime,
    end: datetime,
    *,
    start_field: str = "start",
    end_field: str = "end",
) -> int:
    """Number of 30-minute slots in the window ``[start, end)``, after validating it.

    Both ends must be aware and slot-aligned, ``start < end``, and the window at most
    ``MAX_HORIZON_HOURS`` long; otherwise ``ValueError`` naming the offending field, e.g.
    ``window longer than the planning horizon: 50.0 h > 48 h``.
    """
    require_slot_aligned(start, start_field)
    require_slot_aligned(end, end_field)
    length = _utc(end) - _utc(start)
    if length <= timedelta(0):
        raise ValueError(
            f"{end_field} must be after {start_field}, got {start_field}={start.isoformat()}, "
            f"{end_field}={end.isoformat()}"
        )
    hours = length / timedelta(hours=1)
    if hours > MAX_HORIZON_HOURS:
        raise ValueError(
            f"window longer than the planning horizon: {hours:.1f} h > {MAX_HORIZON_HOURS} h "
            f"({start_field}={start.isoformat()}, {end_field}={end.isoformat()})"
        )
    if length % SLOT:
        raise ValueError(
            f"window {start_field}..{end_field} must be a whole number of 30-minute slots, "
            f"got {hours:g} h"
        )
    return length // SLOT


def _aware_before(value: Any, info: ValidationInfo) -> Any:
    # Give naive ``datetime`` objects an error message that names the field.
    if isinstance(value, datetime):
        ensure_aware(value, info.field_name or "datetime")
    return value


def _fixed_offset(value: datetime) -> datetime:
    """The same wall time with its UTC offset as a fixed zone.

    An instant is what the models carry: a named zone would make a wall time inside a DST gap
    or overlap mean different instants before and after a JSON round trip.
    """
    if isinstance(value.tzinfo, timezone):
        return value
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime has run first
    return value.replace(tzinfo=timezone(offset), fold=0)


#: A timezone-aware datetime, held with a fixed UTC offset; naive ones are refused with a
#: message naming the field.
Instant = Annotated[AwareDatetime, BeforeValidator(_aware_before), AfterValidator(_fixed_offset)]


class SlotGrid(DomainModel):
    """A run of consecutive 30-minute slots: the time axis of windows, requests and plans.

    ``start`` must be on a 30-minute boundary in ``tz``; the grid covers ``[start, end)`` with
    ``end = start + n_slots × 30 min`` (elapsed time, so DST transitions are handled).
    """

    start: Instant = Field(description="Start of the first slot (aligned, timezone-aware).")
    n_slots: int = Field(description=f"Number of 30-minute slots, 1–{MAX_SLOTS} (≤ 48 h).")
    tz: str = Field(default=DEFAULT_TZ, description="IANA timezone for display and alignment.")

    @model_validator(mode="after")
    def _check(self) -> SlotGrid:
        if not 1 <= self.n_slots <= MAX_SLOTS:
            raise ValueError(
                f"n_slots must be between 1 and {MAX_SLOTS} (48 h of 30-minute slots), "
                f"got {self.n_slots}"
            )
        zone(self.tz, "tz")
        require_slot_aligned(self.start, "start", self.tz)
        return self

    # -- derived values ---------------------------------------------------------------------
    @property
    def zoneinfo(self) -> ZoneInfo:
        """The grid's timezone."""
        return ZoneInfo(self.tz)

    @property
    def slot_minutes(self) -> int:
        """Slot length [min] (always 30)."""
        return SLOT_MINUTES

    @property
    def slot_hours(self) -> float:
        """Slot length [h] (always 0.5)."""
        return SLOT_HOURS

    @property
    def end(self) -> datetime:
        """End of the last slot (exclusive), in ``tz``."""
        return self._at(self.n_slots)

    @property
    def hours(self) -> float:
        """Length of the grid [h]."""
        return self.n_slots * SLOT_HOURS

    def _at(self, k: int) -> datetime:
        return (_utc(self.start) + k * SLOT).astimezone(self.zoneinfo)

    def starts(self) -> list[datetime]:
        """Start of every slot, in ``tz``."""
        return [self._at(k) for k in range(self.n_slots)]

    # -- lookups ----------------------------------------------------------------------------
    def _range(self) -> str:
        return f"[{self._at(0).isoformat()}, {self.end.isoformat()})"

    def _offset_slots(self, dt: datetime, field: str) -> int:
        ensure_aware(dt, field)
        delta = _utc(dt) - _utc(self.start)
        if delta % SLOT:
            local = dt.astimezone(self.zoneinfo)
            raise ValueError(
                f"{field} must be aligned to a 30-minute slot boundary of the grid "
                f"(minute 0 or 30, second 0), got {_clock(local)} ({local.isoformat()})"
            )
        return delta // SLOT

    def index_of(self, dt: datetime) -> int:
        """Index of the slot starting at ``dt``.

        Raises
        ------
        ValueError
            If ``dt`` is naive, not on a slot boundary, or outside ``[start, end)``.
        """
        k = self._offset_slots(dt, "dt")
        if not 0 <= k < self.n_slots:
            raise ValueError(
                f"dt must be a slot start inside the grid {self._range()}, "
                f"got {dt.astimezone(self.zoneinfo).isoformat()}"
            )
        return k

    def window_indices(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Half-open slot index range ``(i, j)`` of the window ``[start, end)``.

        Raises
        ------
        ValueError
            If an end is naive or not on a slot boundary, ``start >= end``, or the window is not
            inside the grid.
        """
        i = self._offset_slots(start, "start")
        j = self._offset_slots(end, "end")
        if i >= j:
            raise ValueError(
                f"end must be after start, got start={start.isoformat()}, end={end.isoformat()}"
            )
        if i < 0 or j > self.n_slots:
            raise ValueError(
                f"window [{start.isoformat()}, {end.isoformat()}) must be inside the grid "
                f"{self._range()}"
            )
        return i, j

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether :meth:`window_indices` accepts ``[start, end)`` (aligned, non-empty, inside).

        Naive datetimes are a programming error and still raise ``ValueError``.
        """
        ensure_aware(start, "start")
        ensure_aware(end, "end")
        try:
            self.window_indices(start, end)
        except ValueError:
            return False
        return True

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def day_ahead(cls, day: date, tz: str = DEFAULT_TZ, n_slots: int = 64) -> SlotGrid:
        """Grid for the heating that serves ``day``: from 23:00 local of the previous day.

        The night heating of a heat pump water heater starts in the evening before the day it
        serves; 64 slots (32 h) reach 07:00 of the day after ``day``.
        """
        start = datetime.combine(day - timedelta(days=1), dtime(23, 0), tzinfo=zone(tz))
        return cls(start=start, n_slots=n_slots, tz=tz)

    def __str__(self) -> str:
        return f"SlotGrid({self._range()}, {self.n_slots} × {format_number(SLOT_MINUTES)} min)"
