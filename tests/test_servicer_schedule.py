"""The servicer's schedule core against hand-computed schedules (issue 11 item 2): daily jobs at
local JST times, periodic jobs, a missed run after downtime caught up once (never a day of
runs replayed), failed runs retried after a pause, and when to wake up next."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.servicer.core.schedule import (
    MAX_SLEEP,
    DailyJob,
    Due,
    JobState,
    PeriodicJob,
    Schedule,
)

JST = zone(DEFAULT_TZ)


def at(day: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """An instant on 2026-05-<day> (a Thursday is the 14th) in JST."""
    return datetime(2026, 5, day, hh, mm, ss, tzinfo=JST)


POTENTIAL = DailyJob("potential", (time(13), time(7)))  # given out of order on purpose
SETTLE = DailyJob("settlement", (time(10),))
TICK = PeriodicJob("orders", timedelta(seconds=60))
SCHEDULE = Schedule((POTENTIAL, SETTLE, TICK), retry_after=timedelta(minutes=10))


def ok(due: datetime) -> JobState:
    return JobState(last_due_at=due, last_attempt_at=due, last_ok=True)


# (now, states, expected due jobs) — worked out by hand from the rules in the module docstring
CASES: list[tuple[str, datetime, dict[str, JobState], list[Due]]] = [
    (
        "first start before 07:00: each daily job once, for its latest time (yesterday's)",
        at(14, 6, 59),
        {},
        [Due("potential", at(13, 13)), Due("settlement", at(13, 10)), Due("orders", at(14, 6, 59))],
    ),
    (
        "all caught up at 12:00: nothing daily is due",
        at(14, 12),
        {
            "potential": ok(at(14, 7)),
            "settlement": ok(at(14, 10)),
            "orders": ok(at(14, 11, 59, 30)),
        },
        [],
    ),
    (
        "exactly at 13:00 the second potential run is due; the tick 60 s after the last",
        at(14, 13),
        {"potential": ok(at(14, 7)), "settlement": ok(at(14, 10)), "orders": ok(at(14, 12, 59))},
        [Due("potential", at(14, 13)), Due("orders", at(14, 13))],
    ),
    (
        "down from yesterday 12:00 to 14:30: 13:00, 07:00, 13:00 missed, ONE run for 13:00",
        at(14, 14, 30),
        {"potential": ok(at(13, 7)), "settlement": ok(at(13, 10)), "orders": ok(at(13, 12))},
        [
            Due("potential", at(14, 13)),
            Due("settlement", at(14, 10)),
            Due("orders", at(14, 14, 30)),
        ],
    ),
    (
        "down for three days: still one run each",
        at(17, 8),
        {"potential": ok(at(14, 13)), "settlement": ok(at(14, 10)), "orders": ok(at(14, 13))},
        [Due("potential", at(17, 7)), Due("settlement", at(16, 10)), Due("orders", at(17, 8))],
    ),
    (
        "the tick 59 s after its last run is not due",
        at(14, 12, 0, 59),
        {"potential": ok(at(14, 7)), "settlement": ok(at(14, 10)), "orders": ok(at(14, 12))},
        [],
    ),
    (
        "a failed run waits retry_after (10 min) from its attempt: 07:05 not yet",
        at(14, 7, 5),
        {"potential": JobState(at(13, 13), at(14, 7), False), "settlement": ok(at(13, 10))},
        [Due("orders", at(14, 7, 5))],
    ),
    (
        "… and at 07:10 it is due again, still for 07:00",
        at(14, 7, 10),
        {
            "potential": JobState(at(13, 13), at(14, 7), False),
            "settlement": ok(at(13, 10)),
            "orders": ok(at(14, 7, 9, 30)),
        },
        [Due("potential", at(14, 7))],
    ),
    (
        "at midnight the latest runs are yesterday's",
        at(15, 0),
        {},
        [Due("potential", at(14, 13)), Due("settlement", at(14, 10)), Due("orders", at(15, 0))],
    ),
]


@pytest.mark.parametrize(("what", "now", "states", "expected"), CASES, ids=[c[0] for c in CASES])
def test_due_jobs_by_hand(
    what: str, now: datetime, states: dict[str, JobState], expected: list[Due]
) -> None:
    assert SCHEDULE.due(now, states) == expected


def test_a_job_at_midnight_is_due_at_midnight_for_that_midnight() -> None:
    nightly = Schedule((DailyJob("prune", (time(0),)),))
    assert nightly.due(at(15, 0), {"prune": ok(at(14, 0))}) == [Due("prune", at(15, 0))]
    assert nightly.due(at(14, 23, 59, 59), {"prune": ok(at(14, 0))}) == []


def test_the_same_instant_in_utc_gives_the_same_answer_no_daylight_saving_in_jst() -> None:
    """07:00 JST is 22:00 UTC the evening before on every day of the year (JST has no DST)."""
    states = {"potential": ok(at(13, 13)), "settlement": ok(at(14, 10)), "orders": ok(at(14, 7))}
    now_utc = datetime(2026, 5, 13, 22, 0, tzinfo=UTC)
    assert SCHEDULE.due(now_utc, states) == [Due("potential", at(14, 7))]
    for month in (1, 3, 4, 10, 11, 12):  # around the months other zones change their clocks
        morning = datetime(2026, month, 10, 7, tzinfo=JST)
        assert morning.utcoffset() == timedelta(hours=9)
        assert morning.astimezone(UTC).hour == 22


def test_a_run_recorded_for_the_due_instant_makes_it_not_due() -> None:
    now = at(14, 14, 30)
    states: dict[str, JobState] = {}
    first = SCHEDULE.due(now, states)
    for d in first:
        states[d.name] = ok(d.due_at)
    assert SCHEDULE.due(now, states) == []
    assert SCHEDULE.due(now + timedelta(seconds=60), states) == [Due("orders", at(14, 14, 31))]


@pytest.mark.parametrize(
    ("now", "states", "wake"),
    [
        # caught up at 12:00:10, tick last at 12:00:00 → the next tick at 12:01
        (
            at(14, 12, 0, 10),
            {"potential": ok(at(14, 7)), "settlement": ok(at(14, 10)), "orders": ok(at(14, 12))},
            at(14, 12, 1),
        ),
        # without the tick: the next daily time is 13:00, more than MAX_SLEEP away → 12:10
        (
            at(14, 12),
            {"potential": ok(at(14, 7)), "settlement": ok(at(14, 10))},
            at(14, 12) + MAX_SLEEP,
        ),
    ],
)
def test_next_wake(now: datetime, states: dict[str, JobState], wake: datetime) -> None:
    schedule = Schedule((POTENTIAL, SETTLE)) if "orders" not in states else SCHEDULE
    assert schedule.next_wake(now, states) == wake


def test_next_wake_of_a_failed_job_is_its_retry_and_of_a_near_daily_time_that_time() -> None:
    daily = Schedule((POTENTIAL,), retry_after=timedelta(minutes=10))
    failed = {"potential": JobState(at(13, 13), at(14, 7), False)}
    assert daily.next_wake(at(14, 7, 2), failed) == at(14, 7, 10)
    assert daily.next_wake(at(14, 12, 55), {"potential": ok(at(14, 7))}) == at(14, 13)


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="times must not repeat"):
        DailyJob("x", (time(7), time(7)))
    with pytest.raises(ValueError, match="at least one time"):
        DailyJob("x", ())
    with pytest.raises(ValueError, match="every must be > 0"):
        PeriodicJob("x", timedelta(0))
    with pytest.raises(ValueError, match="unique"):
        Schedule((TICK, TICK))
    with pytest.raises(ValueError, match="timezone-aware"):
        SCHEDULE.due(datetime(2026, 5, 14, 7), {})
