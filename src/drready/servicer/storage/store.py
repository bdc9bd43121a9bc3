"""The servicer's repository: every record it keeps, one transaction per operation (U1, U2, D3,
F1, F2, F5; reliability: nothing lost across a restart, duplicate reports change nothing).

:class:`ServicerStore` writes and reads the tables of :mod:`drready.servicer.storage.db`. Each
method commits before it returns, so a servicer killed at any instant loses at most the operation it
was in; :meth:`ServicerStore.open_dispatches` and :meth:`ServicerStore.awaiting_response` are
what a restarted servicer resumes from.

Idempotency (a report may be polled, delivered or processed more than once):

* :meth:`~ServicerStore.mark_processed` records a VTN report id once and answers ``False``
  the second time. Process a report *first*, then mark it: a crash in between re-processes it
  after the restart, and the writes below make that harmless.
* :meth:`~ServicerStore.record_potentials`, :meth:`~ServicerStore.record_response`: the same
  report id again changes nothing.
* :meth:`~ServicerStore.record_power_readings`, :meth:`~ServicerStore.add_tracking_points`: a
  row already there (same key) is left as it is.
* :meth:`~ServicerStore.upsert_meter_slots`: a slot is replaced only if its value changed.
* :meth:`~ServicerStore.add_assignments`: the same (resource, round) of a dispatch again
  returns the existing assignment.

Assignment life (``AssignmentStatus``)::

    pending ──mark_assignment_sent──► sent ──record_response──► accepted | partial | rejected
       │                               │                              ▲
       │                               └──mark_silent──► silent ──────┘ (late: recorded, flagged)
       └──────────── cancel_assignments ──► cancelled (also from sent, accepted, partial)

**Late responses.** An assignment whose answer did not come in time is declared ``silent`` by
the servicer, which then re-dispatches its amount to other resources in the next round. If the
answer arrives after that, it is still recorded — status, accepted amount, reason, time and
report id, since the device may act on it and settlement must know — but with ``late = True``
(outcome :attr:`ResponseOutcome.LATE`). A late answer never re-opens the round: whoever sums
what a dispatch can count on takes on-time answers (``late`` false) only, and treats a late
acceptance as a bonus to reconcile in settlement. Answers to a ``cancelled`` assignment are
ignored. A *different* report answering an already-answered assignment replaces the answer if it
is newer (:attr:`ResponseOutcome.REVISED`) and is ignored otherwise
(:attr:`ResponseOutcome.STALE`).

Arrays: readings, meter slots and tracking points go in and come out as numpy arrays (one row
per element); datetimes come back timezone-aware in UTC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from drready.domain import (
    DEFAULT_TZ,
    MAX_POWER_W,
    SLOT,
    Direction,
    PowerSample,
    ResponseStatus,
    ensure_aware,
    require_slot_aligned,
)
from drready.servicer.storage.crypto import KeyRing
from drready.servicer.storage.db import (
    WRITE_OPTION,
    Assignment,
    AssignmentStatus,
    Base,
    Dispatch,
    DispatchStatus,
    HeaterSource,
    MeterSlot,
    Potential,
    PotentialRequest,
    PowerReading,
    ProcessedReport,
    Resource,
    TargetKind,
    TrackingPoint,
    TrackingRun,
    check_id,
    dialect_insert,
    enum_value,
    make_engine,
    utc_now,
)
from drready.servicer.storage.migrations import ensure_schema
from drready.servicer.storage.registry import Registry

__all__ = [
    "AssignmentRecord",
    "DispatchRecord",
    "MeterSlotMatrix",
    "PotentialInput",
    "PotentialRequestRecord",
    "PotentialTable",
    "PowerSeries",
    "ResponseOutcome",
    "ServicerStore",
    "TrackingRunRecord",
    "TrackingSeries",
]

FloatArray = npt.NDArray[np.float64]

_REL_TOL = 1e-6
_ZERO_KWH = 1e-6
_MAX_ENERGY_KWH = 1e7
_CHUNK = 5000
#: Largest offered power of a tracking run [kW] (as the rated power of a resource).
_MAX_POWER_KW = MAX_POWER_W / 1000.0

_POTENTIAL_REQUEST = cast(Table, PotentialRequest.__table__)
_POTENTIAL = cast(Table, Potential.__table__)
_DISPATCH = cast(Table, Dispatch.__table__)
_ASSIGNMENT = cast(Table, Assignment.__table__)
_POWER = cast(Table, PowerReading.__table__)
_METER = cast(Table, MeterSlot.__table__)
_PROCESSED = cast(Table, ProcessedReport.__table__)
_RESOURCE = cast(Table, Resource.__table__)
_RUN = cast(Table, TrackingRun.__table__)
_POINT = cast(Table, TrackingPoint.__table__)


class ResponseOutcome(StrEnum):
    """What :meth:`ServicerStore.record_response` did with an answer."""

    RECORDED = "recorded"
    """First answer to a sent assignment."""
    DUPLICATE = "duplicate"
    """The same report again: nothing changed."""
    LATE = "late"
    """Answer to an assignment already declared silent: recorded, flagged ``late``."""
    REVISED = "revised"
    """A newer report replaced an earlier answer."""
    STALE = "stale"
    """An older report than the answer on record: nothing changed."""
    IGNORED = "ignored"
    """The assignment was cancelled: nothing changed."""
    UNKNOWN = "unknown"
    """No assignment has this event id: nothing changed."""


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


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    """A resource's share of a dispatch in one round, and its answer."""

    id: int
    dispatch_id: int
    resource_id: str
    round: int
    requested_kwh: float
    event_id: str | None
    status: AssignmentStatus
    accepted_kwh: float | None
    reason: str | None
    late: bool
    sent_at: datetime | None
    responded_at: datetime | None
    report_id: str | None

    @property
    def event_name(self) -> str:
        """A stable VTN event name for this assignment: after a crash between creating the
        event and :meth:`ServicerStore.mark_assignment_sent`, look the event up by it instead
        of sending a second one."""
        return f"drready-assignment-{self.id}"


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """A dispatch with all its assignments (every round), by assignment id."""

    id: int
    label: str
    direction: Direction
    window_start: datetime
    window_end: datetime
    target_kind: TargetKind
    target: Any
    created_at: datetime
    status: DispatchStatus
    assignments: tuple[AssignmentRecord, ...]


@dataclass(frozen=True)
class PowerSeries:
    """Power readings of one resource, by time."""

    resource_id: str
    timestamps: tuple[datetime, ...]
    power_w: FloatArray
    cumulative_kwh: FloatArray
    """NaN where the reading had no counter."""
    sources: tuple[str, ...]
    report_ids: tuple[str | None, ...]


@dataclass(frozen=True)
class MeterSlotMatrix:
    """Metered energy of resources × 30-minute slots; NaN where no value is stored."""

    resource_ids: tuple[str, ...]
    slot_starts: tuple[datetime, ...]
    energy_kwh: FloatArray
    """Shape (len(resource_ids), len(slot_starts)) [kWh]."""

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        """Where a value is stored."""
        return ~np.isnan(self.energy_kwh)


@dataclass(frozen=True, slots=True)
class TrackingRunRecord:
    """A command-following run."""

    id: int
    started_at: datetime
    offered_kw: float
    tolerance_share: float
    step_s: float
    label: str


@dataclass(frozen=True)
class TrackingSeries:
    """The points of a command-following run, by time."""

    run: TrackingRunRecord
    t: tuple[datetime, ...]
    t_s: FloatArray
    """Seconds since the run's ``started_at``."""
    command_kw: FloatArray
    heater_kw: FloatArray
    battery_kw: FloatArray
    output_kw: FloatArray
    soc_kwh: FloatArray
    heater_measured: npt.NDArray[np.bool_]
    """True where the heater power was measured (F5), False where it was planned."""


# ---------------------------------------------------------------------- validation helpers


def _number(
    value: float,
    field: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
) -> float:
    x = float(value)
    ok = math.isfinite(x)
    if ok and lo is not None:
        ok = x > lo if lo_open else x >= lo
    if ok and hi is not None:
        ok = x <= hi
    if not ok:
        left = "(" if lo_open else "["
        lo_text = "-inf" if lo is None else f"{lo:g}"
        hi_text = "inf" if hi is None else f"{hi:g}"
        raise ValueError(
            f"{field} must be finite and in {left}{lo_text}, {hi_text}], got {value!r}"
        )
    return x


def _array(
    values: npt.ArrayLike,
    field: str,
    n: int,
    lo: float | None = None,
    hi: float | None = None,
    *,
    allow_nan: bool = False,
) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{field} must have {n} elements (one per row), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if allow_nan:
        bad &= ~np.isnan(arr)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= arr < lo
        if hi is not None:
            bad |= arr > hi
    if bad.any():
        i = int(np.argmax(bad))
        lo_text = "-inf" if lo is None else f"{lo:g}"
        hi_text = "inf" if hi is None else f"{hi:g}"
        raise ValueError(
            f"{field}[{i}] must be finite and in [{lo_text}, {hi_text}], got {arr[i]!r}"
        )
    return arr


def _strings(values: str | Sequence[str], field: str, n: int) -> list[str]:
    if isinstance(values, str):
        return [check_id(values, field)] * n
    out = list(values)
    if len(out) != n:
        raise ValueError(f"{field} must have {n} elements (one per row), got {len(out)}")
    for i, v in enumerate(out):
        check_id(v, f"{field}[{i}]")
    return out


def _json(value: Any, field: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{field} must be JSON (finite numbers, str keys): {err}") from None


def _window(start: datetime, end: datetime) -> None:
    ensure_aware(start, "window_start")
    ensure_aware(end, "window_end")
    if not start < end:
        raise ValueError(
            f"window_end must be after window_start, got window_start={start.isoformat()}, "
            f"window_end={end.isoformat()}"
        )


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _assignment(row: Any) -> AssignmentRecord:
    return AssignmentRecord(
        id=row.id,
        dispatch_id=row.dispatch_id,
        resource_id=row.resource_id,
        round=row.round,
        requested_kwh=row.requested_kwh,
        event_id=row.event_id,
        status=AssignmentStatus(row.status),
        accepted_kwh=row.accepted_kwh,
        reason=row.reason,
        late=bool(row.late),
        sent_at=row.sent_at,
        responded_at=row.responded_at,
        report_id=row.report_id,
    )


class ServicerStore:
    """Repository of the servicer's records over one SQLAlchemy engine (see module docstring).

    The schema must exist: :meth:`open` migrates it, or call
    ``drready.servicer.storage.migrations.ensure_schema(engine)`` first.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> ServicerStore:
        """A store on ``url`` (default: ``$DRREADY_SERVICER_DATABASE_URL`` or a SQLite file),
        migrated to the newest schema unless ``migrate`` is false."""
        engine = make_engine(url)
        if migrate:
            ensure_schema(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The engine (shared with :meth:`registry`)."""
        return self._engine

    def registry(self, keys: KeyRing | None = None) -> Registry:
        """The registry on the same database."""
        return Registry(self._engine, keys)

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self._engine.dispose()

    # ------------------------------------------------------------------ F1 potential
    def record_potential_request(
        self,
        *,
        request_id: str,
        window_start: datetime,
        window_end: datetime,
        requested_at: datetime | None = None,
    ) -> bool:
        """Record a potential request event; False if it was already recorded (unchanged)."""
        check_id(request_id, "request_id")
        _window(window_start, window_end)
        at = utc_now() if requested_at is None else ensure_aware(requested_at, "requested_at")
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

    def potential_request(self, request_id: str) -> PotentialRequestRecord | None:
        """The potential request with this event id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_POTENTIAL_REQUEST).where(_POTENTIAL_REQUEST.c.id == request_id)
            ).first()
        if row is None:
            return None
        return PotentialRequestRecord(row.id, row.window_start, row.window_end, row.requested_at)

    def record_potentials(
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
        at = utc_now() if received_at is None else ensure_aware(received_at, "received_at")
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
                    "up_kwh": _number(p.up_kwh, f"potentials[{i}].up_kwh", 0.0, _MAX_ENERGY_KWH),
                    "down_kwh": _number(
                        p.down_kwh, f"potentials[{i}].down_kwh", 0.0, _MAX_ENERGY_KWH
                    ),
                    "confidence": _number(p.confidence, f"potentials[{i}].confidence", 0.0, 1.0),
                    "slots": _json(p.slots, f"potentials[{i}].slots"),
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
            self._require_resources(conn, [r["resource_id"] for r in rows], "potentials")
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

    def potentials(self, request_id: str) -> PotentialTable:
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

    # ------------------------------------------------------------------ F2 dispatch
    def create_dispatch(
        self,
        *,
        label: str,
        direction: Direction | str,
        window_start: datetime,
        window_end: datetime,
        target_kind: TargetKind | str,
        target: Any,
        assignments: Sequence[tuple[str, float]] = (),
        created_at: datetime | None = None,
    ) -> int:
        """Create an open dispatch and its round-1 assignments (``(resource_id, requested_kwh)``)
        in one transaction; returns the dispatch id."""
        check_id(label, "label")
        direction_value = enum_value(Direction, direction, "direction")
        kind = enum_value(TargetKind, target_kind, "target_kind")
        _window(window_start, window_end)
        target_json = _json(target, "target")
        at = utc_now() if created_at is None else ensure_aware(created_at, "created_at")
        rows = self._assignment_rows(assignments)
        with self._writer.begin() as conn:
            dispatch_id = conn.execute(
                _DISPATCH.insert()
                .values(
                    label=label,
                    direction=direction_value.value,
                    window_start=window_start,
                    window_end=window_end,
                    target_kind=kind.value,
                    target=target_json,
                    created_at=at,
                    status=DispatchStatus.OPEN.value,
                )
                .returning(_DISPATCH.c.id)
            ).scalar_one()
            if rows:
                self._insert_assignments(conn, dispatch_id, 1, rows)
        return int(dispatch_id)

    @staticmethod
    def _assignment_rows(assignments: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        for i, item in enumerate(assignments):
            try:
                resource_id, requested = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"assignments[{i}] must be a (resource_id, requested_kwh) pair"
                ) from None
            check_id(resource_id, f"assignments[{i}].resource_id")
            if resource_id in seen:
                raise ValueError(f"assignments[{i}].resource_id {resource_id!r} appears twice")
            seen.add(resource_id)
            out.append(
                (
                    resource_id,
                    _number(
                        requested,
                        f"assignments[{i}].requested_kwh",
                        0.0,
                        _MAX_ENERGY_KWH,
                        lo_open=True,
                    ),
                )
            )
        return out

    def _require_resources(self, conn: Connection, resource_ids: Sequence[str], field: str) -> None:
        wanted = list(dict.fromkeys(resource_ids))
        found: set[str] = set()
        for chunk in _chunks(wanted):
            found.update(conn.scalars(select(_RESOURCE.c.id).where(_RESOURCE.c.id.in_(chunk))))
        missing = [r for r in wanted if r not in found]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ValueError(
                f"{field}: unknown resource id(s) {missing[:3]!r}{more} (register them first)"
            )

    def _insert_assignments(
        self, conn: Connection, dispatch_id: int, round_: int, rows: list[tuple[str, float]]
    ) -> list[int]:
        self._require_resources(conn, [r for r, _ in rows], "assignments")
        stmt = dialect_insert(conn, _ASSIGNMENT).on_conflict_do_nothing(
            index_elements=[
                _ASSIGNMENT.c.dispatch_id,
                _ASSIGNMENT.c.resource_id,
                _ASSIGNMENT.c.round,
            ]
        )
        conn.execute(
            stmt,
            [
                {
                    "dispatch_id": dispatch_id,
                    "resource_id": resource_id,
                    "round": round_,
                    "requested_kwh": requested,
                    "status": AssignmentStatus.PENDING.value,
                    "late": False,
                }
                for resource_id, requested in rows
            ],
        )
        existing: dict[str, tuple[int, float]] = {}
        for chunk in _chunks([r for r, _ in rows]):
            for aid, resource_id, requested in conn.execute(
                select(_ASSIGNMENT.c.id, _ASSIGNMENT.c.resource_id, _ASSIGNMENT.c.requested_kwh)
                .where(_ASSIGNMENT.c.dispatch_id == dispatch_id)
                .where(_ASSIGNMENT.c.round == round_)
                .where(_ASSIGNMENT.c.resource_id.in_(chunk))
            ):
                existing[resource_id] = (aid, requested)
        ids = []
        for resource_id, requested in rows:
            aid, stored = existing[resource_id]
            if not math.isclose(stored, requested, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(
                    f"assignment of resource {resource_id!r} in round {round_} of dispatch "
                    f"{dispatch_id} exists with requested_kwh {stored!r}, got {requested!r}"
                )
            ids.append(int(aid))
        return ids

    def add_assignments(
        self, *, dispatch_id: int, round: int, assignments: Sequence[tuple[str, float]]
    ) -> list[int]:
        """Add round ``round`` assignments (``(resource_id, requested_kwh)``) to an open
        dispatch; returns their ids in input order. Calling it again with the same pairs
        returns the same ids (a different amount for an existing one is a ``ValueError``)."""
        if isinstance(round, bool) or not isinstance(round, int) or round < 1:
            raise ValueError(f"round must be an integer ≥ 1, got {round!r}")
        rows = self._assignment_rows(assignments)
        with self._writer.begin() as conn:
            status = conn.execute(
                select(_DISPATCH.c.status).where(_DISPATCH.c.id == dispatch_id)
            ).scalar_one_or_none()
            if status is None:
                raise ValueError(f"dispatch_id {dispatch_id!r} does not exist")
            if status != DispatchStatus.OPEN.value:
                raise ValueError(f"dispatch {dispatch_id} is {status}; assignments need it open")
            return self._insert_assignments(conn, dispatch_id, round, rows) if rows else []

    def mark_assignment_sent(
        self, *, assignment_id: int, event_id: str, sent_at: datetime | None = None
    ) -> bool:
        """Record that a pending assignment's DR event was created on the VTN.

        Returns False (nothing changed) if it is already marked sent with this event id.
        ``ValueError`` if the assignment does not exist, has another event id, is no longer
        pending, or the event id belongs to another assignment.
        """
        check_id(event_id, "event_id")
        at = utc_now() if sent_at is None else ensure_aware(sent_at, "sent_at")
        try:
            with self._writer.begin() as conn:
                row = conn.execute(
                    select(_ASSIGNMENT.c.status, _ASSIGNMENT.c.event_id)
                    .where(_ASSIGNMENT.c.id == assignment_id)
                    .with_for_update()
                ).first()
                if row is None:
                    raise ValueError(f"assignment_id {assignment_id!r} does not exist")
                if row.event_id is not None:
                    if row.event_id == event_id:
                        return False
                    raise ValueError(
                        f"assignment {assignment_id} was sent as event {row.event_id!r}, "
                        f"not {event_id!r}"
                    )
                if row.status != AssignmentStatus.PENDING.value:
                    raise ValueError(
                        f"assignment {assignment_id} is {row.status}; only a pending one can be "
                        "sent"
                    )
                conn.execute(
                    update(_ASSIGNMENT)
                    .where(_ASSIGNMENT.c.id == assignment_id)
                    .values(event_id=event_id, sent_at=at, status=AssignmentStatus.SENT.value)
                )
                return True
        except IntegrityError as err:
            raise ValueError(f"event_id {event_id!r} belongs to another assignment") from err

    def record_response(
        self,
        *,
        event_id: str,
        status: ResponseStatus | str,
        accepted_kwh: float,
        report_id: str,
        responded_at: datetime | None = None,
        reason: str | None = None,
    ) -> ResponseOutcome:
        """Record a resource's answer to the DR event ``event_id`` (see the module docstring
        for the rule on duplicates, late and revised answers).

        ``accepted_kwh`` must be in [0, requested_kwh] (relative tolerance 1e-6) and 0 for a
        rejection.
        """
        check_id(event_id, "event_id")
        check_id(report_id, "report_id")
        answer = enum_value(ResponseStatus, status, "status")
        accepted = _number(accepted_kwh, "accepted_kwh", 0.0)
        if answer is ResponseStatus.REJECTED and accepted > _ZERO_KWH:
            raise ValueError(f"accepted_kwh must be 0 when status is 'rejected', got {accepted!r}")
        at = utc_now() if responded_at is None else ensure_aware(responded_at, "responded_at")
        with self._writer.begin() as conn:
            row = conn.execute(
                select(_ASSIGNMENT).where(_ASSIGNMENT.c.event_id == event_id).with_for_update()
            ).first()
            if row is None:
                return ResponseOutcome.UNKNOWN
            if accepted > row.requested_kwh * (1 + _REL_TOL) + _ZERO_KWH:
                raise ValueError(
                    f"accepted_kwh must be in [0, {row.requested_kwh!r}] (the requested amount "
                    f"of event {event_id!r}), got {accepted!r}"
                )
            if row.report_id == report_id:
                return ResponseOutcome.DUPLICATE
            current = AssignmentStatus(row.status)
            if current is AssignmentStatus.CANCELLED:
                return ResponseOutcome.IGNORED
            if current in (AssignmentStatus.SENT, AssignmentStatus.PENDING):
                outcome, late = ResponseOutcome.RECORDED, False
            elif current is AssignmentStatus.SILENT:
                outcome, late = ResponseOutcome.LATE, True
            elif row.responded_at is not None and at <= row.responded_at:
                return ResponseOutcome.STALE
            else:
                outcome, late = ResponseOutcome.REVISED, bool(row.late)
            conn.execute(
                update(_ASSIGNMENT)
                .where(_ASSIGNMENT.c.id == row.id)
                .values(
                    status=answer.value,
                    accepted_kwh=accepted,
                    reason=reason,
                    late=late,
                    responded_at=at,
                    report_id=report_id,
                )
            )
            return outcome

    def mark_silent(self, *, assignment_ids: Sequence[int]) -> int:
        """Declare sent assignments silent (no answer in time); rows changed."""
        return self._set_status(assignment_ids, AssignmentStatus.SILENT, (AssignmentStatus.SENT,))

    def cancel_assignments(self, *, assignment_ids: Sequence[int]) -> int:
        """Cancel pending, sent, accepted or partial assignments; rows changed."""
        return self._set_status(
            assignment_ids,
            AssignmentStatus.CANCELLED,
            (
                AssignmentStatus.PENDING,
                AssignmentStatus.SENT,
                AssignmentStatus.ACCEPTED,
                AssignmentStatus.PARTIAL,
            ),
        )

    def _set_status(
        self, ids: Sequence[int], new: AssignmentStatus, allowed: tuple[AssignmentStatus, ...]
    ) -> int:
        wanted = list(dict.fromkeys(int(i) for i in ids))
        count = 0
        with self._writer.begin() as conn:
            for chunk in _chunks(wanted):
                result = conn.execute(
                    update(_ASSIGNMENT)
                    .where(_ASSIGNMENT.c.id.in_(chunk))
                    .where(_ASSIGNMENT.c.status.in_([s.value for s in allowed]))
                    .values(status=new.value)
                )
                count += result.rowcount
        return count

    def close_dispatch(self, *, dispatch_id: int) -> bool:
        """Close an open dispatch; whether it changed."""
        with self._writer.begin() as conn:
            result = conn.execute(
                update(_DISPATCH)
                .where(_DISPATCH.c.id == dispatch_id)
                .where(_DISPATCH.c.status == DispatchStatus.OPEN.value)
                .values(status=DispatchStatus.CLOSED.value)
            )
            return result.rowcount > 0

    def _dispatches(self, conn: Connection, where: Any) -> list[DispatchRecord]:
        heads = conn.execute(select(_DISPATCH).where(where).order_by(_DISPATCH.c.id)).all()
        by_dispatch: dict[int, list[AssignmentRecord]] = {h.id: [] for h in heads}
        for chunk in _chunks(list(by_dispatch)):
            for row in conn.execute(
                select(_ASSIGNMENT)
                .where(_ASSIGNMENT.c.dispatch_id.in_(chunk))
                .order_by(_ASSIGNMENT.c.id)
            ):
                by_dispatch[row.dispatch_id].append(_assignment(row))
        return [
            DispatchRecord(
                id=h.id,
                label=h.label,
                direction=Direction(h.direction),
                window_start=h.window_start,
                window_end=h.window_end,
                target_kind=TargetKind(h.target_kind),
                target=h.target,
                created_at=h.created_at,
                status=DispatchStatus(h.status),
                assignments=tuple(by_dispatch[h.id]),
            )
            for h in heads
        ]

    def get_dispatch(self, dispatch_id: int) -> DispatchRecord | None:
        """A dispatch with all its assignments, or ``None``."""
        with self._engine.connect() as conn:
            found = self._dispatches(conn, _DISPATCH.c.id == dispatch_id)
        return found[0] if found else None

    def dispatches(self) -> list[DispatchRecord]:
        """Every dispatch, open or closed, with all its assignments, oldest first."""
        with self._engine.connect() as conn:
            return self._dispatches(conn, _DISPATCH.c.id.is_not(None))

    def open_dispatches(self) -> list[DispatchRecord]:
        """Every open dispatch with all its assignments, oldest first (restart recovery)."""
        with self._engine.connect() as conn:
            return self._dispatches(conn, _DISPATCH.c.status == DispatchStatus.OPEN.value)

    def get_assignment(self, assignment_id: int) -> AssignmentRecord | None:
        """The assignment with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_ASSIGNMENT).where(_ASSIGNMENT.c.id == assignment_id)).first()
        return None if row is None else _assignment(row)

    def assignment_by_event(self, event_id: str) -> AssignmentRecord | None:
        """The assignment sent as VTN event ``event_id``, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_ASSIGNMENT).where(_ASSIGNMENT.c.event_id == event_id)
            ).first()
        return None if row is None else _assignment(row)

    def awaiting_response(self, *, sent_before: datetime) -> list[AssignmentRecord]:
        """Sent assignments without an answer whose event went out before ``sent_before``
        (the candidates to declare silent), oldest first."""
        ensure_aware(sent_before, "sent_before")
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_ASSIGNMENT)
                .where(_ASSIGNMENT.c.status == AssignmentStatus.SENT.value)
                .where(_ASSIGNMENT.c.sent_at < sent_before)
                .order_by(_ASSIGNMENT.c.sent_at, _ASSIGNMENT.c.id)
            ).all()
        return [_assignment(r) for r in rows]

    # ------------------------------------------------------------------ reports
    def mark_processed(
        self, *, report_id: str, kind: str, processed_at: datetime | None = None
    ) -> bool:
        """Record that a VTN report was processed; False if it already was (unchanged)."""
        check_id(report_id, "report_id")
        if not isinstance(kind, str) or not 1 <= len(kind) <= 32:
            raise ValueError(f"kind must be 1–32 characters, got {kind!r}")
        at = utc_now() if processed_at is None else ensure_aware(processed_at, "processed_at")
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _PROCESSED)
                .values(id=report_id, kind=kind, processed_at=at)
                .on_conflict_do_nothing(index_elements=[_PROCESSED.c.id])
                .returning(_PROCESSED.c.id)
            )
            return conn.execute(stmt).first() is not None

    def is_processed(self, report_id: str) -> bool:
        """Whether :meth:`mark_processed` recorded this report."""
        with self._engine.connect() as conn:
            return (
                conn.execute(select(_PROCESSED.c.id).where(_PROCESSED.c.id == report_id)).first()
                is not None
            )

    # ------------------------------------------------------------------ F5 power
    def record_power_readings(
        self,
        *,
        resource_ids: str | Sequence[str],
        timestamps: Sequence[datetime],
        power_w: npt.ArrayLike,
        source: str | Sequence[str],
        cumulative_kwh: npt.ArrayLike | None = None,
        report_id: str | None = None,
    ) -> int:
        """Store power readings (one per element; a single resource id or source applies to
        all); a reading already stored for (resource, timestamp) is left unchanged. Returns the
        number of new rows. ``cumulative_kwh`` may hold NaN where a reading has no counter."""
        n = len(timestamps)
        ids = _strings(resource_ids, "resource_ids", n)
        stamps = [ensure_aware(t, f"timestamps[{i}]") for i, t in enumerate(timestamps)]
        power = _array(power_w, "power_w", n, 0.0, MAX_POWER_W)
        counter = (
            np.full(n, np.nan)
            if cumulative_kwh is None
            else _array(cumulative_kwh, "cumulative_kwh", n, 0.0, None, allow_nan=True)
        )
        sources = [source] * n if isinstance(source, str) else list(source)
        if len(sources) != n:
            raise ValueError(f"source must have {n} elements (one per row), got {len(sources)}")
        for i, s in enumerate(sources):
            if s not in ("measured", "estimated"):
                raise ValueError(f"source[{i}] must be 'measured' or 'estimated', got {s!r}")
        if report_id is not None:
            check_id(report_id, "report_id")
        if n == 0:
            return 0
        rows = [
            {
                "resource_id": ids[i],
                "timestamp": stamps[i],
                "power_w": float(power[i]),
                "cumulative_kwh": None if math.isnan(counter[i]) else float(counter[i]),
                "source": sources[i],
                "report_id": report_id,
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            self._require_resources(conn, ids, "resource_ids")
            stmt = (
                dialect_insert(conn, _POWER)
                .on_conflict_do_nothing(index_elements=[_POWER.c.resource_id, _POWER.c.timestamp])
                .returning(_POWER.c.resource_id)
            )
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in _chunks(rows))

    def record_power_samples(
        self, *, resource_id: str, samples: Sequence[PowerSample], report_id: str | None = None
    ) -> int:
        """:meth:`record_power_readings` from domain :class:`~drready.domain.PowerSample`\\ s of
        one resource (their ``device_id`` is not checked: a group reports as one resource)."""
        return self.record_power_readings(
            resource_ids=resource_id,
            timestamps=[s.timestamp for s in samples],
            power_w=[s.power_w for s in samples],
            cumulative_kwh=[s.cumulative_energy_kwh for s in samples],
            source=[s.source.value for s in samples],
            report_id=report_id,
        )

    def power_readings(self, *, resource_id: str, start: datetime, end: datetime) -> PowerSeries:
        """The readings of a resource in ``[start, end)``, by time."""
        ensure_aware(start, "start")
        ensure_aware(end, "end")
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_POWER)
                .where(_POWER.c.resource_id == resource_id)
                .where(_POWER.c.timestamp >= start)
                .where(_POWER.c.timestamp < end)
                .order_by(_POWER.c.timestamp)
            ).all()
        return PowerSeries(
            resource_id=resource_id,
            timestamps=tuple(r.timestamp for r in rows),
            power_w=np.array([r.power_w for r in rows], dtype=np.float64),
            cumulative_kwh=np.array(
                [np.nan if r.cumulative_kwh is None else r.cumulative_kwh for r in rows],
                dtype=np.float64,
            ),
            sources=tuple(r.source for r in rows),
            report_ids=tuple(r.report_id for r in rows),
        )

    # ------------------------------------------------------------------ meter slots
    def upsert_meter_slots(
        self,
        *,
        resource_ids: str | Sequence[str],
        slot_starts: Sequence[datetime],
        energy_kwh: npt.ArrayLike,
        source: str,
        updated_at: datetime | None = None,
    ) -> int:
        """Store metered energy per (resource, 30-minute slot); a slot is replaced only if its
        energy or source differs. Returns the rows inserted or changed.

        ``slot_starts`` must be aware and on 30-minute boundaries; ``energy_kwh`` finite, ≥ 0.
        """
        n = len(slot_starts)
        ids = _strings(resource_ids, "resource_ids", n)
        starts = [
            require_slot_aligned(s, f"slot_starts[{i}]", DEFAULT_TZ)
            for i, s in enumerate(slot_starts)
        ]
        energy = _array(energy_kwh, "energy_kwh", n, 0.0, _MAX_ENERGY_KWH)
        if not isinstance(source, str) or not 1 <= len(source) <= 32:
            raise ValueError(f"source must be 1–32 characters, got {source!r}")
        at = utc_now() if updated_at is None else ensure_aware(updated_at, "updated_at")
        if n == 0:
            return 0
        keys = set(zip(ids, (s.timestamp() for s in starts), strict=True))
        if len(keys) != n:
            raise ValueError("(resource_ids, slot_starts) pairs must be unique within one call")
        rows = [
            {
                "resource_id": ids[i],
                "slot_start": starts[i],
                "energy_kwh": float(energy[i]),
                "source": source,
                "updated_at": at,
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            self._require_resources(conn, ids, "resource_ids")
            stmt = dialect_insert(conn, _METER)
            ex = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=[_METER.c.resource_id, _METER.c.slot_start],
                set_={
                    "energy_kwh": ex.energy_kwh,
                    "source": ex.source,
                    "updated_at": ex.updated_at,
                },
                where=(_METER.c.energy_kwh != ex.energy_kwh) | (_METER.c.source != ex.source),
            ).returning(_METER.c.resource_id)
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in _chunks(rows))

    def meter_slots(
        self, *, resource_ids: Sequence[str], start: datetime, end: datetime
    ) -> MeterSlotMatrix:
        """Metered energy of ``resource_ids`` × the slots of ``[start, end)`` (aligned ends).

        ``energy_kwh[i, k]`` is resource ``i``'s energy in slot ``k``, NaN where none is stored.
        """
        require_slot_aligned(start, "start", DEFAULT_TZ)
        require_slot_aligned(end, "end", DEFAULT_TZ)
        if not start < end:
            raise ValueError(
                f"end must be after start, got start={start.isoformat()}, end={end.isoformat()}"
            )
        if isinstance(resource_ids, str):
            raise TypeError("resource_ids must be a sequence of ids, not one string")
        ids = list(resource_ids)
        index = {rid: i for i, rid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("resource_ids must be unique")
        n_slots = (end - start) // SLOT
        start_s = start.timestamp()
        slot_starts = tuple((start + k * SLOT).astimezone(start.tzinfo) for k in range(n_slots))
        energy = np.full((len(ids), n_slots), np.nan)
        with self._engine.connect() as conn:
            for chunk in _chunks(ids):
                rows = conn.execute(
                    select(_METER.c.resource_id, _METER.c.slot_start, _METER.c.energy_kwh)
                    .where(_METER.c.resource_id.in_(chunk))
                    .where(_METER.c.slot_start >= start)
                    .where(_METER.c.slot_start < end)
                ).all()
                if not rows:
                    continue
                r_idx = np.fromiter((index[r[0]] for r in rows), dtype=np.int64, count=len(rows))
                t_s = np.fromiter(
                    (r[1].timestamp() for r in rows), dtype=np.float64, count=len(rows)
                )
                k_idx = np.rint((t_s - start_s) / SLOT.total_seconds()).astype(np.int64)
                energy[r_idx, k_idx] = np.fromiter(
                    (r[2] for r in rows), dtype=np.float64, count=len(rows)
                )
        return MeterSlotMatrix(resource_ids=tuple(ids), slot_starts=slot_starts, energy_kwh=energy)

    # ------------------------------------------------------------------ U1 tracking
    def create_tracking_run(
        self,
        *,
        started_at: datetime,
        offered_kw: float,
        tolerance_share: float,
        step_s: float,
        label: str,
    ) -> int:
        """Create a command-following run; returns its id.

        ``offered_kw`` ≥ 0, ``tolerance_share`` in [0, 1] (the allowed deviation as a share of
        the offered power), ``step_s`` > 0.
        """
        ensure_aware(started_at, "started_at")
        values = {
            "started_at": started_at,
            "offered_kw": _number(offered_kw, "offered_kw", 0.0, _MAX_POWER_KW),
            "tolerance_share": _number(tolerance_share, "tolerance_share", 0.0, 1.0),
            "step_s": _number(step_s, "step_s", 0.0, 86400.0, lo_open=True),
            "label": check_id(label, "label"),
        }
        with self._writer.begin() as conn:
            run_id = conn.execute(_RUN.insert().values(values).returning(_RUN.c.id)).scalar_one()
        return int(run_id)

    def tracking_run(self, run_id: int) -> TrackingRunRecord | None:
        """The run with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_RUN).where(_RUN.c.id == run_id)).first()
        if row is None:
            return None
        return TrackingRunRecord(
            row.id, row.started_at, row.offered_kw, row.tolerance_share, row.step_s, row.label
        )

    def add_tracking_points(
        self,
        *,
        run_id: int,
        t_s: npt.ArrayLike,
        command_kw: npt.ArrayLike,
        heater_kw: npt.ArrayLike,
        battery_kw: npt.ArrayLike,
        output_kw: npt.ArrayLike,
        soc_kwh: npt.ArrayLike,
        heater_source: HeaterSource | str | Sequence[str],
    ) -> int:
        """Store points of a run at ``t_s`` seconds after its start (arrays of equal length;
        ``battery_kw`` signed, + charging: consumption positive like the heaters); a point
        already stored is left unchanged. Returns the number of new points."""
        t = np.asarray(t_s, dtype=np.float64)
        if t.ndim != 1:
            raise ValueError(f"t_s must be a 1-D array, got shape {t.shape}")
        n = t.size
        t = _array(t, "t_s", n, 0.0, None)
        if np.unique(t).size != n:
            raise ValueError("t_s must not repeat a time")
        command = _array(command_kw, "command_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        heater = _array(heater_kw, "heater_kw", n, 0.0, _MAX_POWER_KW)
        battery = _array(battery_kw, "battery_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        output = _array(output_kw, "output_kw", n, -_MAX_POWER_KW, _MAX_POWER_KW)
        soc = _array(soc_kwh, "soc_kwh", n, 0.0, _MAX_ENERGY_KWH)
        if isinstance(heater_source, str):
            sources = [enum_value(HeaterSource, heater_source, "heater_source").value] * n
        else:
            sources = [
                enum_value(HeaterSource, s, f"heater_source[{i}]").value
                for i, s in enumerate(heater_source)
            ]
            if len(sources) != n:
                raise ValueError(
                    f"heater_source must have {n} elements (one per row), got {len(sources)}"
                )
        run = self.tracking_run(run_id)
        if run is None:
            raise ValueError(f"run_id {run_id!r} does not exist")
        if n == 0:
            return 0
        micros = np.rint(t * 1e6).astype(np.int64)
        rows = [
            {
                "run_id": run_id,
                "t": run.started_at + timedelta(microseconds=int(micros[i])),
                "command_kw": float(command[i]),
                "heater_kw": float(heater[i]),
                "battery_kw": float(battery[i]),
                "output_kw": float(output[i]),
                "soc_kwh": float(soc[i]),
                "heater_source": sources[i],
            }
            for i in range(n)
        ]
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, _POINT)
                .on_conflict_do_nothing(index_elements=[_POINT.c.run_id, _POINT.c.t])
                .returning(_POINT.c.run_id)
            )
            return sum(len(conn.execute(stmt, chunk).all()) for chunk in _chunks(rows))

    def tracking_points(self, run_id: int) -> TrackingSeries:
        """All points of a run, by time. ``ValueError`` if the run does not exist."""
        run = self.tracking_run(run_id)
        if run is None:
            raise ValueError(f"run_id {run_id!r} does not exist")
        with self._engine.connect() as conn:
            # mappings: a Row's attribute ``t`` is its tuple form, not the column
            rows = (
                conn.execute(select(_POINT).where(_POINT.c.run_id == run_id).order_by(_POINT.c.t))
                .mappings()
                .all()
            )
        t: tuple[datetime, ...] = tuple(r["t"] for r in rows)

        def column(name: str) -> FloatArray:
            return np.array([r[name] for r in rows], dtype=np.float64)

        return TrackingSeries(
            run=run,
            t=t,
            t_s=np.array([(x - run.started_at).total_seconds() for x in t], dtype=np.float64),
            command_kw=column("command_kw"),
            heater_kw=column("heater_kw"),
            battery_kw=column("battery_kw"),
            output_kw=column("output_kw"),
            soc_kwh=column("soc_kwh"),
            heater_measured=np.array(
                [r["heater_source"] == HeaterSource.MEASURED.value for r in rows], dtype=np.bool_
            ),
        )

    # ------------------------------------------------------------------ housekeeping
    def counts(self) -> dict[str, int]:
        """Rows per servicer table (for status pages and tests)."""
        with self._engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in sorted(Base.metadata.tables.items())
            }
