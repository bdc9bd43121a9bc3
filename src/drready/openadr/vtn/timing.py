"""When an event ends, for the ``active`` filter of ``GET /events`` (C1, F2 requests).

openadr3.yaml: ``active`` — "ignore events that have transpired". An event's intervals run
back to back from the event's ``intervalPeriod.start`` unless an interval has its own
``intervalPeriod``; an interval without a duration inherits the event's. ``P9999Y`` is infinity
and ``0001-01-01`` as start means 'now' (User Guide 7.3) — taken as the creation time. An end
beyond what a datetime holds (``9999-12-31T23:00:00Z`` plus two hours, ``P99999999999D``) is
open-ended, never an error (S1: a hostile event is stored or refused, never a 500).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drready.openadr.models import (
    START_NOW,
    Event,
    IntervalPeriod,
    is_infinite_duration,
    parse_duration,
)

__all__ = ["event_end"]


def _duration(text: str | None) -> timedelta | None:
    if text is None or is_infinite_duration(text):
        return None
    try:
        return parse_duration(text)
    except ValueError:  # years or months: no fixed length → treat as open-ended
        return None
    except OverflowError:  # longer than a timedelta holds (~2.7 million years): open-ended
        return None


def _start(period: IntervalPeriod | None, created: datetime) -> datetime | None:
    if period is None or period.start is None:
        return None
    return created if period.start == START_NOW else period.start


def event_end(event: Event, *, created: datetime) -> datetime | None:
    """The end of the event's last interval (UTC), or ``None`` when open-ended or unknown.

    ``None`` keeps the event in ``active=true`` answers: an event is dropped only when it
    certainly has transpired.
    """
    try:
        end = _end(event, created)
        return None if end is None else end.astimezone(UTC)
    except OverflowError:  # past year 9999 (or before year 1 in UTC): open-ended
        return None


def _end(event: Event, created: datetime) -> datetime | None:
    if event.duration is not None:
        return None  # intervals loop over a duration (User Guide): not modelled here
    base = event.interval_period
    cursor = _start(base, created)
    base_duration = None if base is None else base.duration
    intervals = event.intervals or ()
    if not intervals:
        length = _duration(base_duration)
        return None if cursor is None or length is None else cursor + length
    end: datetime | None = None
    for interval in intervals:
        own = interval.interval_period
        start = _start(own, created) or cursor
        length = _duration(own.duration if own and own.duration else base_duration)
        if start is None or length is None:
            return None
        interval_end = start + length
        end = interval_end if end is None else max(end, interval_end)
        cursor = interval_end
    return end
