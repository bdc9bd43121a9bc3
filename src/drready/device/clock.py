"""Clocks for a live device: wall time, or simulated time that tests can jump (F5, F1–F4).

A device's live values (current power F5, remaining hot water, the plan in force F4) are values
*at a time*; :class:`SimulatedWaterHeater <drready.device.heater.SimulatedWaterHeater>` reads
that time from a :class:`Clock`. :class:`WallClock` is real time in a zone (``Asia/Tokyo`` by
default); :class:`SimClock` runs ``speed`` times faster than wall time from its construction and
can be jumped with :meth:`SimClock.advance` — ``speed=0`` gives a clock that moves only when told
to, which is what tests and fast simulations use.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from drready.domain import DEFAULT_TZ, ensure_aware

__all__ = ["Clock", "SimClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class WallClock:
    """Real time, displayed in ``tz`` (an IANA name, ``Asia/Tokyo`` by default)."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz)


class SimClock:
    """Simulated time: ``start`` at construction, then ``speed`` × elapsed wall time.

    Parameters
    ----------
    start : datetime
        Simulated instant at construction (timezone-aware).
    speed : float
        Simulated seconds per wall-clock second, ``>= 0`` (0: time moves only by
        :meth:`advance`).
    """

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        ensure_aware(start, "start")
        if not speed >= 0.0 or speed == float("inf"):
            raise ValueError(f"speed must be finite and >= 0, got {speed!r}")
        self._start = start
        self._speed = float(speed)
        self._t0 = time.monotonic()
        self._offset = timedelta(0)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = timedelta(seconds=(time.monotonic() - self._t0) * self._speed)
        return self._start + self._offset + elapsed

    def advance(self, delta: timedelta) -> datetime:
        """Jump forward by ``delta`` (``>= 0``); returns the new simulated time."""
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot go back: delta must be >= 0, got {delta}")
        self._offset += delta
        return self.now()
