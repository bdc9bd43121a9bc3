"""Potential requests and the resources' answers to them: the ``potential_request`` and
``potential`` tables (F1, D5; reliability: the same report twice changes nothing).

:class:`PotentialStore` records each potential-request event the servicer sends and, per
(request, resource), the DR potential a VEN reported: up/down kWh over the window, the
confidence they hold at, and the envelope's per-slot detail. A (request, resource) answer is
replaced only by a *different* report received no earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Engine, Table, select

from drready.servicer.storage.db import WRITE_OPTION, Potential, PotentialRequest, dialect_insert
from drready.servicer.storage.validation import (
    MAX_ENERGY_KWH,
    FloatArray,
    check_id,
    check_json,
    check_number,
    check_window,
    instant,
    require_resources,
)

__all__ = ["PotentialInput", "PotentialRequestRecord", "PotentialStore", "PotentialTable"]

_POTENTIAL_REQUEST = cast(Table, PotentialRequest.__table__)
_POTENTIAL = cast(Table, Potential.__table__)


@dataclass(frozen=True, slots=True)
class PotentialInput:
    """One resource's answer to a potential request (F1), as read from its report.

    ``up_kwh``/``down_kwh``: energy the resource can add/avoid inside the window [kWh], ≥ 0;
    ``confidence``: the level they hold at, in [0, 1]; ``slots``: optional JSON-able detail
    (e.g. the envelope's per-slot bounds).
    """

    resource_id: str
    up_kwh: float
    down_kwh: float
    confidence: float
    slots: Any = None


@dataclass(frozen=True, slots=True)
class PotentialRequestRecord:
    """A potential request event."""

    request_id: str
    window_start: datetime
    window_end: datetime
    requested_at: datetime


@dataclass(frozen=True)
class PotentialTable:
    """The answers to one potential request, one element per resource (by resource id)."""

    request_id: str
    resource_ids: tuple[str, ...]
    up_kwh: FloatArray
    down_kwh: FloatArray
    confidence: FloatArray
    slots: tuple[Any, ...]
    report_ids: tuple[str, ...]
    received_at: tuple[datetime, ...]

    def __len__(self) -> int:
        return len(self.resource_ids)


class PotentialStore:
    """Potential requests and answers over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def record_request(
        self,
        *,
        request_id: str,
        window_start: datetime,
        window_end: datetime,
        requested_at: datetime | None = None,
    ) -> bool:
        """Record a potential request event; False if it was already recorded (unchanged)."""
        check_id(request_id, "request_id")
        check_window(window_start, window_end)
        at = instant(requested_at, "requested_at")
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _POTENTIAL_REQUEST)
                .values(
                    id=request_id,
                    window_start=window_start,
                    window_end=window_end,
                    requested_at=at,
                )
                .on_conflict_do_nothing(index_elements=[_POTENTIAL_REQUEST.c.id])
                .returning(_POTENTIAL_REQUEST.c.id)
            )
            return conn.execute(stmt).first() is not None

    def request(self, request_id: str) -> PotentialRequestRecord | None:
        """The potential request with this event id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_POTENTIAL_REQUEST).where(_POTENTIAL_REQUEST.c.id == request_id)
            ).first()
        if row is None:
            return None
        return PotentialRequestRecord(row.id, row.window_start, row.window_end, row.requested_at)

    def latest_request(
        self, *, window_start: datetime, window_end: datetime
    ) -> PotentialRequestRecord | None:
        """The most recent potential request for exactly ``[window_start, window_end)``, or
        ``None``."""
        check_window(window_start, window_end)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_POTENTIAL_REQUEST)
                .where(_POTENTIAL_REQUEST.c.window_start == window_start)
                .where(_POTENTIAL_REQUEST.c.window_end == window_end)
                .order_by(_POTENTIAL_REQUEST.c.requested_at.desc(), _POTENTIAL_REQUEST.c.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        return PotentialRequestRecord(row.id, row.window_start, row.window_end, row.requested_at)

    def open_requests(
        self, *, window_end_after: datetime, requested_after: datetime
    ) -> list[PotentialRequestRecord]:
        """The potential requests whose window ends after ``window_end_after``, asked after
        ``requested_after`` (those answers may still come), oldest first."""
        instant(window_end_after, "window_end_after")
        instant(requested_after, "requested_after")
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_POTENTIAL_REQUEST)
                .where(_POTENTIAL_REQUEST.c.window_end > window_end_after)
                .where(_POTENTIAL_REQUEST.c.requested_at > requested_after)
                .order_by(_POTENTIAL_REQUEST.c.requested_at, _POTENTIAL_REQUEST.c.id)
            ).all()
        return [
            PotentialRequestRecord(r.id, r.window_start, r.window_end, r.requested_at) for r in rows
        ]

    def record(
        self,
        *,
        request_id: str,
        potentials: Sequence[PotentialInput],
        report_id: str,
        received_at: datetime | None = None,
    ) -> int:
        """Record answers to a potential request from one report; rows written.

        A (request, resource) answer is replaced only by a *different* report received no
        earlier; the same report again changes nothing (returns 0).
        """
        check_id(request_id, "request_id")
        check_id(report_id, "report_id")
        at = instant(received_at, "received_at")
        rows = []
        seen: set[str] = set()
        for i, p in enumerate(potentials):
            rid = check_id(p.resource_id, f"potentials[{i}].resource_id")
            if rid in seen:
                raise ValueError(f"potentials[{i}].resource_id {rid!r} appears twice")
            seen.add(rid)
            rows.append(
                {
                    "request_id": request_id,
                    "resource_id": rid,
                    "up_kwh": check_number(
                        p.up_kwh, f"potentials[{i}].up_kwh", 0.0, MAX_ENERGY_KWH
                    ),
                    "down_kwh": check_number(
                        p.down_kwh, f"potentials[{i}].down_kwh", 0.0, MAX_ENERGY_KWH
                    ),
                    "confidence": check_number(
                        p.confidence, f"potentials[{i}].confidence", 0.0, 1.0
                    ),
                    "slots": check_json(p.slots, f"potentials[{i}].slots"),
                    "report_id": report_id,
                    "received_at": at,
                }
            )
        if not rows:
            return 0
        with self._writer.begin() as conn:
            if (
                conn.execute(
                    select(_POTENTIAL_REQUEST.c.id).where(_POTENTIAL_REQUEST.c.id == request_id)
                ).first()
                is None
            ):
                raise ValueError(
                    f"request_id {request_id!r} is not a recorded potential request "
                    "(record_potential_request first)"
                )
            require_resources(conn, [r["resource_id"] for r in rows], "potentials")
            stmt = dialect_insert(conn, _POTENTIAL)
            ex = stmt.excluded
            columns = ("up_kwh", "down_kwh", "confidence", "slots", "report_id", "received_at")
            stmt = stmt.on_conflict_do_update(
                index_elements=[_POTENTIAL.c.request_id, _POTENTIAL.c.resource_id],
                set_={c: ex[c] for c in columns},
                where=(_POTENTIAL.c.report_id != ex.report_id)
                & (_POTENTIAL.c.received_at <= ex.received_at),
            ).returning(_POTENTIAL.c.resource_id)
            return len(conn.execute(stmt, rows).all())

    def table(self, request_id: str) -> PotentialTable:
        """The answers to a potential request, by resource id (empty if none)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_POTENTIAL)
                .where(_POTENTIAL.c.request_id == request_id)
                .order_by(_POTENTIAL.c.resource_id)
            ).all()
        return PotentialTable(
            request_id=request_id,
            resource_ids=tuple(r.resource_id for r in rows),
            up_kwh=np.array([r.up_kwh for r in rows], dtype=np.float64),
            down_kwh=np.array([r.down_kwh for r in rows], dtype=np.float64),
            confidence=np.array([r.confidence for r in rows], dtype=np.float64),
            slots=tuple(r.slots for r in rows),
            report_ids=tuple(r.report_id for r in rows),
            received_at=tuple(r.received_at for r in rows),
        )
