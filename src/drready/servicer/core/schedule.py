"""The running servicer's schedule as a pure core: given the time and what ran, which jobs are
due (U2, D3, F1, F5; issue 11 item 2: a schedule in local time that catches a missed run up once).

No I/O and no clock of its own: :meth:`Schedule.due` takes ``now`` (on the process clock,
:func:`drready.domain.clock.clock_from_env`, so a scaled clock runs the same schedule faster)
and each job's :class:`JobState` (what the servicer stored after each run) and answers the jobs
to run, each with the instant it runs *for*; :meth:`Schedule.next_wake` answers when to look
again. The service (:mod:`drready.servicer.run`) runs the jobs, stores their outcome and sleeps.

Two kinds of job:

* :class:`DailyJob` — at fixed local times of day (the day-ahead potential collection at 07:00
  and 13:00, the settlement at 10:00). At ``now`` its *due instant* is the latest of its times
  at or before ``now`` (today's, or yesterday's before the first time of the day). It is due when
  no successful run was for that instant or a later one. However many instants were missed while
  the servicer was down, that is **one** run, for the latest instant: a missed run is caught up
  once, a day of runs is never replayed.
* :class:`PeriodicJob` — every ``every`` (dispatch and follow-up of the orders, F5 collection,
  the registry sync). Due when it never ran, or ``every`` after its last successful run; after
  downtime, once.

A job whose last attempt failed is due again only ``retry_after`` after that attempt, so a VTN
that is down is not hammered; its due instant stays where it was until a run succeeds.

Local times are wall-clock times of day in the schedule's zone
(:data:`~drready.domain.time.DEFAULT_TZ`, Japan Standard Time, which has had no daylight saving
time since 1951, so every day has each time exactly once). In a zone with daylight saving a time
in the spring gap resolves to the instant after the gap and one in the autumn fold to its first
occurrence (PEP 495, ``fold=0``).

Examples
--------
>>> from datetime import datetime, time, timedelta
>>> from zoneinfo import ZoneInfo
>>> jst = ZoneInfo("Asia/Tokyo")
>>> schedule = Schedule((DailyJob("potential", (time(7), time(13))),))
>>> ran = {"potential": JobState(last_due_at=datetime(2026, 5, 13, 13, tzinfo=jst))}
>>> [(d.name, d.due_at.isoformat()) for d in schedule.due(datetime(2026, 5, 14, 15, tzinfo=jst),
...                                                        ran)]
[('potential', '2026-05-14T13:00:00+09:00')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from drready.domain import DEFAULT_TZ
from drready.domain.time import ensure_aware, zone

__all__ = ["DailyJob", "Due", "Job", "JobState", "PeriodicJob", "Schedule"]

#: Longest a service sleeps between two looks at its schedule, whatever the jobs say.
MAX_SLEEP = timedelta(minutes=10)


@dataclass(frozen=True)
class DailyJob:
    """A job run at fixed local times of day."""

    name: str
    times: tuple[time, ...]
    """Local times of day (naive :class:`datetime.time`, minute resolution or finer)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if not self.times:
            raise ValueError(f"{self.name}: times must hold at least one time of day")
        if any(t.tzinfo is not None for t in self.times):
            raise ValueError(f"{self.name}: times are local times of day, without a zone")
        if len(set(self.times)) != len(self.times):
            raise ValueError(f"{self.name}: times must not repeat, got {self.times}")
        object.__setattr__(self, "times", tuple(sorted(self.times)))


@dataclass(frozen=True)
class PeriodicJob:
    """A job run every ``every``."""

    name: str
    every: timedelta

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if self.every <= timedelta(0):
            raise ValueError(f"{self.name}: every must be > 0, got {self.every}")


Job = DailyJob | PeriodicJob


@dataclass(frozen=True)
class JobState:
    """What the servicer knows of a job's past runs."""

    last_due_at: datetime | None = None
    """Due instant of the last successful run (``None``: never succeeded)."""
    last_attempt_at: datetime | None = None
    last_ok: bool | None = None
    """Outcome of the last attempt (``None``: never attempted)."""


@dataclass(frozen=True)
class Due:
    """A job to run now, and the instant it runs for (store it as its ``last_due_at``)."""

    name: str
    due_at: datetime


@dataclass(frozen=True)
class Schedule:
    """The jobs of a service, in the order they run when due together."""

    jobs: tuple[Job, ...]
    tz: str = DEFAULT_TZ
    retry_after: timedelta = field(default=timedelta(minutes=5))
    """Wait after a failed attempt before the job is due again."""

    def __post_init__(self) -> None:
        names = [j.name for j in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique, got {names}")
        if self.retry_after <= timedelta(0):
            raise ValueError(f"retry_after must be > 0, got {self.retry_after}")
        zone(self.tz)

    # -------------------------------------------------------------------------------- due
    def due(self, now: datetime, states: Mapping[str, JobState]) -> list[Due]:
        """The jobs due at ``now`` given their ``states`` (a job missing from ``states`` never
        ran), in the schedule's order, each with the instant it runs for."""
        ensure_aware(now, "now")
        out = []
        for job in self.jobs:
            state = states.get(job.name, JobState())
            instant = self._due_instant(job, now, state)
            if instant is not None and not self._waiting_to_retry(now, state):
                out.append(Due(job.name, instant))
        return out

    def next_wake(self, now: datetime, states: Mapping[str, JobState]) -> datetime:
        """The earliest instant after ``now`` at which a job may become due (at most
        :data:`MAX_SLEEP` ahead): sleep until then, then ask :meth:`due` again."""
        ensure_aware(now, "now")
        wake = now + MAX_SLEEP
        for job in self.jobs:
            state = states.get(job.name, JobState())
            if self._due_instant(job, now, state) is not None:
                candidate = now  # due (perhaps waiting for its retry, below)
            elif isinstance(job, DailyJob):
                candidate = self._next_time(job, now)
            else:
                last = state.last_due_at
                candidate = now if last is None else last + job.every
            if state.last_ok is False and state.last_attempt_at is not None:
                candidate = max(candidate, state.last_attempt_at + self.retry_after)
            wake = min(wake, max(candidate, now))
        return wake

    # -------------------------------------------------------------------------------- rules
    def _due_instant(self, job: Job, now: datetime, state: JobState) -> datetime | None:
        last = state.last_due_at
        if isinstance(job, PeriodicJob):
            return now if last is None or now >= last + job.every else None
        latest = self._latest_time(job, now)
        return latest if last is None or last < latest else None

    def _waiting_to_retry(self, now: datetime, state: JobState) -> bool:
        return (
            state.last_ok is False
            and state.last_attempt_at is not None
            and now < state.last_attempt_at + self.retry_after
        )

    def _instants(self, job: DailyJob, day_offsets: Sequence[int], now: datetime) -> list[datetime]:
        tz = zone(self.tz)
        today = now.astimezone(tz).date()
        return [
            datetime.combine(today + timedelta(days=d), t, tzinfo=tz)
            for d in day_offsets
            for t in job.times
        ]

    def _latest_time(self, job: DailyJob, now: datetime) -> datetime:
        """The latest of the job's times at or before ``now`` (today's or yesterday's)."""
        return max(i for i in self._instants(job, (-1, 0), now) if i <= now)

    def _next_time(self, job: DailyJob, now: datetime) -> datetime:
        """The first of the job's times after ``now`` (today's or tomorrow's)."""
        return min(i for i in self._instants(job, (0, 1), now) if i > now)
