"""The potential runs of ``drready servicer run`` ask for the windows still ahead of the
instant they stand for (issue 11 item 2; the stack's warm-up and its down-DR sizing, item 5):
the next day's windows (the day-ahead collection) and the windows of the run's own day that
have not begun (the intraday refresh: at 13:00 the evening window again, after the noon
up-DR); a run caught up after midnight asks for that day's windows still ahead — not for the
day after ``now``, whose own runs will come.

Hand-computed cases on the default windows (10:00–14:00, 17:00–20:00) in Japan Standard Time.
"""

from __future__ import annotations

from datetime import datetime, time

import pytest

from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.servicer.core.schedule import DailyJob, JobState, Schedule
from drready.servicer.run import day_ahead_windows

TZ = zone(DEFAULT_TZ)
WINDOWS = ((time(10), time(14)), (time(17), time(20)))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=TZ)


MORNING, EVENING = (10, 14), (17, 20)


def w(day: int, hours: tuple[int, int]) -> tuple[datetime, datetime]:
    return at(day, hours[0]), at(day, hours[1])


@pytest.mark.parametrize(
    ("due_at", "now", "expected"),
    [
        # on time at 07:00 and 13:00: the rest of today, and tomorrow
        (at(14, 7), at(14, 7), [w(14, MORNING), w(14, EVENING), w(15, MORNING), w(15, EVENING)]),
        (at(14, 13), at(14, 13, 5), [w(14, EVENING), w(15, MORNING), w(15, EVENING)]),
        # the 23:00 run: tomorrow's windows only (today's are over)
        (at(13, 23), at(13, 23), [w(14, MORNING), w(14, EVENING)]),
        # caught up at 05:00: the windows of the day that has begun, both still ahead
        (at(13, 23), at(14, 5), [w(14, MORNING), w(14, EVENING)]),
        (at(13, 13), at(14, 5), [w(14, MORNING), w(14, EVENING)]),
        # caught up at 12:30: the noon window has begun and is not asked
        (at(13, 13), at(14, 12, 30), [w(14, EVENING)]),
        (at(13, 13), at(14, 20), []),
    ],
)
def test_the_windows_a_potential_run_asks_for(
    due_at: datetime, now: datetime, expected: list[tuple[datetime, datetime]]
) -> None:
    assert day_ahead_windows(due_at, now, WINDOWS) == expected


def test_a_window_across_midnight_ends_the_next_day() -> None:
    assert day_ahead_windows(at(14, 7), at(14, 7), ((time(22), time(2)),)) == [
        (at(14, 22), at(15, 2)),
        (at(15, 22), at(16, 2)),
    ]


def test_the_schedule_hands_a_catch_up_the_instant_it_stands_for() -> None:
    """What the service passes as ``due_at``: a servicer up at 05:00 that last ran at 07:00
    the day before runs once, for 23:00 (the stack's --potential-at 07:00,13:00,23:00)."""
    schedule = Schedule((DailyJob("potential", (time(7), time(13), time(23))),))
    ran = {"potential": JobState(last_due_at=at(13, 7))}
    (due,) = schedule.due(at(14, 5), ran)
    assert due.due_at == at(13, 23)
    assert day_ahead_windows(due.due_at, at(14, 5), WINDOWS) == [w(14, MORNING), w(14, EVENING)]
