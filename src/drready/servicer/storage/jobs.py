"""The running service's schedule as it went: the ``scheduler_job`` table (U2, D3; reliability:
a servicer restarted after downtime knows which runs it made and catches a missed one up once,
never replaying a day of runs).

One row per job name: the due instant of its last successful run (what the schedule's core,
:mod:`drready.servicer.core.schedule`, compares the next due instant with), the last attempt
and its outcome, and how many runs and failures there were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Table, select

from drready.servicer.storage.db import WRITE_OPTION, SchedulerJob, dialect_insert
from drready.servicer.storage.validation import instant

__all__ = ["JobRecord", "JobStore"]

_JOB = cast(Table, SchedulerJob.__table__)
#: Longest job name and error text kept.
_NAME_LENGTH = 64
_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job of the schedule: its last successful due instant and its last attempt."""

    name: str
    last_due_at: datetime | None
    """Due instant of the last successful run (``None``: it never succeeded)."""
    last_attempt_at: datetime | None
    last_ok: bool | None
    last_error: str | None
    runs: int
    failures: int


class JobStore:
    """Job records over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def record(
        self,
        *,
        name: str,
        due_at: datetime,
        attempted_at: datetime,
        ok: bool,
        error: str | None = None,
    ) -> JobRecord:
        """Record a run of job ``name`` for the instant ``due_at``, attempted at
        ``attempted_at``: a success moves ``last_due_at`` to ``due_at`` (never back), a
        failure keeps it (so the run stays due) and stores the error's first 2000 characters."""
        if not isinstance(name, str) or not 1 <= len(name) <= _NAME_LENGTH:
            raise ValueError(f"name must be 1–{_NAME_LENGTH} characters, got {name!r}")
        due = instant(due_at, "due_at")
        at = instant(attempted_at, "attempted_at")
        text = None if error is None else str(error)[:_ERROR_LENGTH]
        with self._writer.begin() as conn:
            row = conn.execute(select(_JOB).where(_JOB.c.name == name).with_for_update()).first()
            last_due = None if row is None else row.last_due_at
            if ok and (last_due is None or due > last_due):
                last_due = due
            runs = (0 if row is None else int(row.runs)) + 1
            failures = (0 if row is None else int(row.failures)) + (0 if ok else 1)
            error_kept = None if ok else text
            values = {
                "last_due_at": last_due,
                "last_attempt_at": at,
                "last_ok": ok,
                "last_error": error_kept,
                "runs": runs,
                "failures": failures,
                "updated_at": at,
            }
            stmt = dialect_insert(conn, _JOB).values(name=name, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=[_JOB.c.name], set_=values))
        return JobRecord(name, last_due, at, ok, error_kept, runs, failures)

    def all(self) -> Mapping[str, JobRecord]:
        """Every job's record, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_JOB).order_by(_JOB.c.name)).all()
        return {
            r.name: JobRecord(
                name=r.name,
                last_due_at=r.last_due_at,
                last_attempt_at=r.last_attempt_at,
                last_ok=r.last_ok,
                last_error=r.last_error,
                runs=r.runs,
                failures=r.failures,
            )
            for r in rows
        }
