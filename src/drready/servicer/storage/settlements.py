"""Settled dispatches: the ``settlement`` table (U2; reliability: a dispatch is settled once).

The service's daily settlement job settles each closed dispatch from the 30-minute meter
history (:mod:`drready.servicer.settling`) and keeps the result here — the JSON the API answers
``GET /api/v1/settlements/{date}`` with, and the CSV of
:meth:`drready.servicer.core.settlement.Settlement.to_csv` — by dispatch, with the local date
of its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from drready.servicer.storage.db import WRITE_OPTION, SettlementRow, dialect_insert
from drready.servicer.storage.validation import check_json, instant

__all__ = ["SettlementRecord", "SettlementStore"]

_SETTLEMENT = cast(Table, SettlementRow.__table__)


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A settled dispatch."""

    dispatch_id: int
    event_day: date
    settled_at: datetime
    result: Any
    csv: str


def _record(row: Any) -> SettlementRecord:
    return SettlementRecord(row.dispatch_id, row.event_day, row.settled_at, row.result, row.csv)


class SettlementStore:
    """Settlements over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def save(
        self,
        *,
        dispatch_id: int,
        event_day: date,
        result: Any,
        csv: str,
        settled_at: datetime | None = None,
    ) -> bool:
        """Store the settlement of a dispatch; ``False`` (unchanged) if it was settled before."""
        if not isinstance(event_day, date) or isinstance(event_day, datetime):
            raise ValueError(f"event_day must be a date, got {event_day!r}")
        if not isinstance(csv, str):
            raise ValueError("csv must be text")
        body = check_json(result, "result")
        at = instant(settled_at, "settled_at")
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _SETTLEMENT)
                .values(
                    dispatch_id=dispatch_id,
                    event_day=event_day,
                    settled_at=at,
                    result=body,
                    csv=csv,
                )
                .on_conflict_do_nothing(index_elements=[_SETTLEMENT.c.dispatch_id])
                .returning(_SETTLEMENT.c.dispatch_id)
            )
            return conn.execute(stmt).first() is not None

    def get(self, dispatch_id: int) -> SettlementRecord | None:
        """The settlement of a dispatch, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_SETTLEMENT).where(_SETTLEMENT.c.dispatch_id == dispatch_id)
            ).first()
        return None if row is None else _record(row)

    def of_day(self, day: date) -> list[SettlementRecord]:
        """The settlements of the dispatches whose window is on local ``day``, by dispatch."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_SETTLEMENT)
                .where(_SETTLEMENT.c.event_day == day)
                .order_by(_SETTLEMENT.c.dispatch_id)
            ).all()
        return [_record(r) for r in rows]

    def settled_ids(self) -> frozenset[int]:
        """The ids of the dispatches settled so far."""
        with self._engine.connect() as conn:
            return frozenset(conn.scalars(select(_SETTLEMENT.c.dispatch_id)))
