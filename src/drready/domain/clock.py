"""One clock for every drready process: wall time, or simulated time on a shared epoch (issue 11
item 4; F5 timestamps, F1/F2 windows, every schedule).

A DR day only makes sense if every party agrees what time it is: the servicer's schedule, the
events' windows, the maker cloud's and the home gateway's plans and the power readings are all
instants on one clock. By default that clock is the wall clock. For demos and soak tests a day
can run in minutes: :class:`ScaledClock` maps wall time onto simulated time *from a shared
epoch* — simulated time ``sim_start`` at the wall instant ``wall_start`` (Unix seconds), then
``scale`` simulated seconds per wall second — so separate processes given the same
:class:`ClockSpec` (one environment variable, :data:`ENV_CLOCK`, or ``--time-scale`` on the
command line) compute the same simulated instant at the same wall instant, with no messages
between them. A process turns its timers into wall seconds with :meth:`ScaledClock.wall_seconds`
(polling every 10 simulated seconds at ``scale=720`` waits 13.9 ms).

:class:`SimClock` is the stepped clock of tests and the in-process demo driver: it moves only
when told (``speed=0``) or at a fixed speed from its construction, in one process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, ValidationError

from .base import DomainModel
from .time import DEFAULT_TZ, ensure_aware

__all__ = [
    "ENV_CLOCK",
    "MAX_TIME_SCALE",
    "Clock",
    "ClockSpec",
    "ScaledClock",
    "SimClock",
    "WallClock",
    "clock_from_env",
]

#: Environment variable that hands every child process the same clock: the JSON of a
#: :class:`ClockSpec`. Unset: the wall clock.
ENV_CLOCK = "DRREADY_CLOCK"

#: Fastest simulated time [simulated s per wall s]: a day in 86.4 s. Faster, the parties' own
#: work (planning, HTTP round trips) would take simulated hours.
MAX_TIME_SCALE = 1000.0


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class WallClock:
    """Real time, displayed in ``tz`` (an IANA name, :data:`~drready.domain.time.DEFAULT_TZ`)."""

    scale = 1.0

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Wall seconds to wait for ``sim_seconds`` of this clock's time (the same)."""
        return sim_seconds


class ClockSpec(DomainModel):
    """A shared simulated clock: ``sim_start`` at Unix time ``wall_start``, then ``scale``×."""

    sim_start: AwareDatetime = Field(description="Simulated instant at wall_start.")
    wall_start: float = Field(ge=0, description="Unix time [s] at which sim_start holds.")
    scale: float = Field(
        ge=1.0, le=MAX_TIME_SCALE, description="Simulated seconds per wall second, 1–1000."
    )

    @classmethod
    def starting_now(cls, sim_start: datetime, scale: float) -> ClockSpec:
        """A spec whose simulated time is ``sim_start`` now."""
        return cls(sim_start=sim_start, wall_start=time.time(), scale=scale)

    def to_env(self) -> str:
        """The value of :data:`ENV_CLOCK` for child processes."""
        return self.model_dump_json()


class ScaledClock:
    """Simulated time on a shared epoch (see the module docstring).

    >>> from datetime import timezone
    >>> spec = ClockSpec(sim_start=datetime(2026, 5, 14, 7, tzinfo=timezone.utc),
    ...                  wall_start=1000.0, scale=720.0)
    >>> ScaledClock(spec, wall_time=lambda: 1010.0).now().isoformat()
    '2026-05-14T09:00:00+00:00'
    """

    def __init__(self, spec: ClockSpec, wall_time: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self.scale = spec.scale
        self._wall_time = wall_time

    def now(self) -> datetime:
        wall_s = self._wall_time()
        return self.spec.sim_start + timedelta(seconds=(wall_s - self.spec.wall_start) * self.scale)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Wall seconds to wait for ``sim_seconds`` of simulated time."""
        return sim_seconds / self.scale


class SimClock:
    """Simulated time in one process: ``start`` at construction, then ``speed`` × elapsed wall
    time, and jumps by :meth:`advance`.

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


def clock_from_env(
    env: Mapping[str, str] | None = None, tz: str = DEFAULT_TZ
) -> WallClock | ScaledClock:
    """The process's clock: :class:`ScaledClock` from :data:`ENV_CLOCK`, else the wall clock.

    Raises
    ------
    ValueError
        :data:`ENV_CLOCK` is set but is not the JSON of a valid :class:`ClockSpec` (the message
        names the variable and the field).
    """
    raw = (os.environ if env is None else env).get(ENV_CLOCK)
    if not raw:
        return WallClock(tz)
    try:
        spec = ClockSpec.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as err:
        raise ValueError(f"{ENV_CLOCK}: not a valid clock spec ({err})") from None
    return ScaledClock(spec)
