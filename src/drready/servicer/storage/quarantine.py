"""VEN reports and resources the servicer set aside: the ``quarantined_report`` table (S1, F1,
F3/F4, F5; issue 12 item 2: trust no peer).

The BL loop (:mod:`drready.servicer.service`) never raises on what one VEN sends: a report that
does not follow the profile, speaks for a resource its client does not own, answers no event of
ours, or carries values no resource can have, is stored here with its reason and left out; the
others go on. Counted by reason in the metrics and shown on the dashboard.

Names and details come from a possibly hostile peer: they are stored as printable text (control
characters escaped, NUL included, which PostgreSQL refuses in text) and cut to their column.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, Table, func, select

from drready.servicer.storage.db import (
    ID_LENGTH,
    WRITE_OPTION,
    QuarantinedReport,
    QuarantineReason,
    dialect_insert,
)
from drready.servicer.storage.validation import enum_value, instant

__all__ = ["DETAIL_LENGTH", "QuarantineRecord", "QuarantineStore", "printable"]

_Q = cast(Table, QuarantinedReport.__table__)
#: Longest detail stored [characters]: enough for a validation message, not for a flood.
DETAIL_LENGTH = 500


def printable(text: object, limit: int = ID_LENGTH) -> str:
    """``text`` as printable text of at most ``limit`` characters (non-printables escaped)."""
    s = str(text)
    if not s.isprintable():
        s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


class QuarantineRecord(BaseModel):
    """A report or resource set aside, as stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    report_id: str
    kind: str
    client_id: str | None
    resource_name: str
    reason: QuarantineReason
    detail: str
    quarantined_at: datetime


class QuarantineStore:
    """The quarantine over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def record(
        self,
        *,
        report_id: str,
        kind: str,
        client_id: str | None,
        resource_name: str | None,
        reason: QuarantineReason | str,
        detail: str,
        at: datetime | None = None,
    ) -> bool:
        """Set a report (or one resource of it) aside; False if it already was (same report,
        resource and reason). Every text is made printable and cut, never refused."""
        values = {
            "report_id": printable(report_id),
            "kind": printable(kind, 32),
            "client_id": None if client_id is None else printable(client_id),
            "resource_name": "" if resource_name is None else printable(resource_name),
            "reason": enum_value(QuarantineReason, reason, "reason").value,
            "detail": printable(detail, DETAIL_LENGTH),
            "quarantined_at": instant(at, "at"),
        }
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _Q)
                .values(values)
                .on_conflict_do_nothing(
                    index_elements=[_Q.c.report_id, _Q.c.resource_name, _Q.c.reason]
                )
                .returning(_Q.c.id)
            )
            return conn.execute(stmt).first() is not None

    def counts(self) -> dict[QuarantineReason, int]:
        """How many were set aside, by reason (every reason present, 0 included)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_Q.c.reason, func.count()).group_by(_Q.c.reason)).all()
        out = {r: 0 for r in QuarantineReason}
        for reason, n in rows:
            out[QuarantineReason(reason)] = int(n)
        return out

    def latest(self, limit: int = 10) -> list[QuarantineRecord]:
        """The ``limit`` latest set aside, newest first."""
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(_Q).order_by(_Q.c.quarantined_at.desc(), _Q.c.id.desc()).limit(limit)
                )
                .mappings()
                .all()
            )
        return [QuarantineRecord.model_validate(dict(r)) for r in rows]
