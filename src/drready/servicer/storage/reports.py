"""VTN reports the servicer has processed: the ``processed_report`` table (F1, F3/F4, F5;
reliability: a report polled, delivered or processed more than once is counted once).

Process a report *first*, then :meth:`ProcessedReports.mark` it: a crash in between processes
it again after the restart, and the writes of the other stores make that harmless (the same
report id again changes nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Table, select

from drready.servicer.storage.db import WRITE_OPTION, ProcessedReport, dialect_insert
from drready.servicer.storage.validation import check_id, instant

__all__ = ["ProcessedReports"]

_PROCESSED = cast(Table, ProcessedReport.__table__)


class ProcessedReports:
    """The processed VTN report ids over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def mark(self, *, report_id: str, kind: str, processed_at: datetime | None = None) -> bool:
        """Record that a VTN report was processed; False if it already was (unchanged)."""
        check_id(report_id, "report_id")
        if not isinstance(kind, str) or not 1 <= len(kind) <= 32:
            raise ValueError(f"kind must be 1–32 characters, got {kind!r}")
        at = instant(processed_at, "processed_at")
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _PROCESSED)
                .values(id=report_id, kind=kind, processed_at=at)
                .on_conflict_do_nothing(index_elements=[_PROCESSED.c.id])
                .returning(_PROCESSED.c.id)
            )
            return conn.execute(stmt).first() is not None

    def is_processed(self, report_id: str) -> bool:
        """Whether :meth:`mark` recorded this report."""
        with self._engine.connect() as conn:
            return (
                conn.execute(select(_PROCESSED.c.id).where(_PROCESSED.c.id == report_id)).first()
                is not None
            )
