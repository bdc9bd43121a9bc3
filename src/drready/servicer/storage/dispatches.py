"""Dispatches and their assignments, with the resources' answers: the ``dispatch`` and
``assignment`` tables (F2, F3/F4 answers, D3; reliability: nothing sent twice across a restart,
duplicate reports change nothing).

:class:`DispatchStore` writes a dispatch and its rounds of assignments, and moves each
assignment along its life — every status change asks the transition tables of
:mod:`drready.servicer.storage.lifecycle` (``ASSIGNMENT_LIFE``, ``DISPATCH_LIFE``):

* :meth:`~DispatchStore.mark_sent` (``send``) refuses with
  :class:`~drready.servicer.storage.lifecycle.TransitionError` what the table refuses; the same
  event id again is a retry and changes nothing.
* :meth:`~DispatchStore.record_response` (``answer_*``) says what it did with an answer as a
  :class:`ResponseOutcome`: an assignment whose status takes no answer (cancelled) ignores it.
* :meth:`~DispatchStore.mark_silent` (``silence``), :meth:`~DispatchStore.cancel` (``cancel``)
  and :meth:`~DispatchStore.close` (the dispatch's ``close``) apply to the records whose status
  takes the event and leave the others as they are; they return how many changed.
* :meth:`~DispatchStore.add_assignments` (the dispatch's ``assign``) needs an open dispatch.

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

:meth:`~DispatchStore.open_dispatches` and :meth:`~DispatchStore.awaiting_response` are what a
restarted servicer resumes from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Engine, Table, case, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from drready.domain import Direction, ResponseStatus, ensure_aware
from drready.domain.tolerances import REL_TOL, ROUNDOFF, ZERO_KWH
from drready.servicer.storage.db import (
    WRITE_OPTION,
    Assignment,
    Dispatch,
    TargetKind,
    dialect_insert,
)
from drready.servicer.storage.lifecycle import (
    ANSWER_EVENTS,
    ASSIGNMENT_LIFE,
    DISPATCH_LIFE,
    AssignmentEvent,
    AssignmentStatus,
    DispatchEvent,
    DispatchStatus,
)
from drready.servicer.storage.validation import (
    MAX_ENERGY_KWH,
    check_id,
    check_json,
    check_number,
    check_window,
    chunks,
    enum_value,
    instant,
    require_resources,
)

__all__ = ["AssignmentRecord", "DispatchRecord", "DispatchStore", "ResponseOutcome"]

_DISPATCH = cast(Table, Dispatch.__table__)
_ASSIGNMENT = cast(Table, Assignment.__table__)

#: Amounts this close are the same stored amount [kWh]: an amount read back from the database
#: is the float that was written, so only round-off separates equal ones; the absolute part
#: covers amounts too small for a relative test (a pWh is no amount anyone dispatches).
_SAME_AMOUNT_ABS_KWH = 1e-12


class ResponseOutcome(StrEnum):
    """What :meth:`DispatchStore.record_response` did with an answer."""

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


#: Outcome and ``late`` flag of an answer to an assignment not answered yet, by its status;
#: from any other status that takes an answer, the answer revises the one on record.
_FIRST_ANSWER: dict[AssignmentStatus, tuple[ResponseOutcome, bool]] = {
    AssignmentStatus.SENT: (ResponseOutcome.RECORDED, False),
    AssignmentStatus.SILENT: (ResponseOutcome.LATE, True),
}


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
        event and :meth:`DispatchStore.mark_sent`, look the event up by it instead of sending a
        second one."""
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
                check_number(
                    requested,
                    f"assignments[{i}].requested_kwh",
                    0.0,
                    MAX_ENERGY_KWH,
                    lo_open=True,
                ),
            )
        )
    return out


def _insert_assignments(
    conn: Connection, dispatch_id: int, round_: int, rows: list[tuple[str, float]]
) -> list[int]:
    require_resources(conn, [r for r, _ in rows], "assignments")
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
                "status": ASSIGNMENT_LIFE.initial.value,
                "late": False,
            }
            for resource_id, requested in rows
        ],
    )
    existing: dict[str, tuple[int, float]] = {}
    for chunk in chunks([r for r, _ in rows]):
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
        if not math.isclose(stored, requested, rel_tol=ROUNDOFF, abs_tol=_SAME_AMOUNT_ABS_KWH):
            raise ValueError(
                f"assignment of resource {resource_id!r} in round {round_} of dispatch "
                f"{dispatch_id} exists with requested_kwh {stored!r}, got {requested!r}"
            )
        ids.append(int(aid))
    return ids


class DispatchStore:
    """Dispatches, assignments and answers over one engine; one transaction per method."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    # ------------------------------------------------------------------ writes
    def create(
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
        check_window(window_start, window_end)
        target_json = check_json(target, "target")
        at = instant(created_at, "created_at")
        rows = _assignment_rows(assignments)
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
                    status=DISPATCH_LIFE.initial.value,
                )
                .returning(_DISPATCH.c.id)
            ).scalar_one()
            if rows:
                _insert_assignments(conn, dispatch_id, 1, rows)
        return int(dispatch_id)

    def add_assignments(
        self, *, dispatch_id: int, round: int, assignments: Sequence[tuple[str, float]]
    ) -> list[int]:
        """Add round ``round`` assignments (``(resource_id, requested_kwh)``) to an open
        dispatch; returns their ids in input order. Calling it again with the same pairs
        returns the same ids (a different amount for an existing one is a ``ValueError``; a
        closed dispatch, a :class:`~drready.servicer.storage.lifecycle.TransitionError`)."""
        if isinstance(round, bool) or not isinstance(round, int) or round < 1:
            raise ValueError(f"round must be an integer ≥ 1, got {round!r}")
        rows = _assignment_rows(assignments)
        with self._writer.begin() as conn:
            status = conn.execute(
                select(_DISPATCH.c.status).where(_DISPATCH.c.id == dispatch_id)
            ).scalar_one_or_none()
            if status is None:
                raise ValueError(f"dispatch_id {dispatch_id!r} does not exist")
            DISPATCH_LIFE.next(
                DispatchStatus(status), DispatchEvent.ASSIGN, subject=f"dispatch {dispatch_id}"
            )
            return _insert_assignments(conn, dispatch_id, round, rows) if rows else []

    def mark_sent(
        self, *, assignment_id: int, event_id: str, sent_at: datetime | None = None
    ) -> bool:
        """Record that a pending assignment's DR event was created on the VTN (``send``).

        Returns False (nothing changed) if it is already marked sent with this event id.
        ``ValueError`` if the assignment does not exist or the event id belongs to another
        assignment; :class:`~drready.servicer.storage.lifecycle.TransitionError` (a
        ``ValueError``) if it is no longer pending, or was sent with another event id.
        """
        check_id(event_id, "event_id")
        at = instant(sent_at, "sent_at")
        try:
            with self._writer.begin() as conn:
                row = conn.execute(
                    select(_ASSIGNMENT.c.status, _ASSIGNMENT.c.event_id)
                    .where(_ASSIGNMENT.c.id == assignment_id)
                    .with_for_update()
                ).first()
                if row is None:
                    raise ValueError(f"assignment_id {assignment_id!r} does not exist")
                if row.event_id is not None and row.event_id == event_id:
                    return False  # a retry of a send already recorded
                new = ASSIGNMENT_LIFE.next(
                    AssignmentStatus(row.status),
                    AssignmentEvent.SEND,
                    subject=f"assignment {assignment_id}",
                    detail=(
                        ""
                        if row.event_id is None
                        else f"it was sent as event {row.event_id!r}, not {event_id!r}"
                    ),
                )
                conn.execute(
                    update(_ASSIGNMENT)
                    .where(_ASSIGNMENT.c.id == assignment_id)
                    .values(event_id=event_id, sent_at=at, status=new.value)
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
        """Record a resource's answer to the DR event ``event_id`` (``answer_*``; see the module
        docstring for the rule on duplicates, late and revised answers).

        ``accepted_kwh`` must be in [0, requested_kwh] (relative tolerance ``REL_TOL``) and 0
        for a rejection.
        """
        check_id(event_id, "event_id")
        check_id(report_id, "report_id")
        answer = enum_value(ResponseStatus, status, "status")
        accepted = check_number(accepted_kwh, "accepted_kwh", 0.0)
        if answer is ResponseStatus.REJECTED and accepted > ZERO_KWH:
            raise ValueError(f"accepted_kwh must be 0 when status is 'rejected', got {accepted!r}")
        at = instant(responded_at, "responded_at")
        event = ANSWER_EVENTS[answer]
        with self._writer.begin() as conn:
            row = conn.execute(
                select(_ASSIGNMENT).where(_ASSIGNMENT.c.event_id == event_id).with_for_update()
            ).first()
            if row is None:
                return ResponseOutcome.UNKNOWN
            if accepted > row.requested_kwh * (1 + REL_TOL) + ZERO_KWH:
                raise ValueError(
                    f"accepted_kwh must be in [0, {row.requested_kwh!r}] (the requested amount "
                    f"of event {event_id!r}), got {accepted!r}"
                )
            if row.report_id == report_id:
                return ResponseOutcome.DUPLICATE
            current = AssignmentStatus(row.status)
            if not ASSIGNMENT_LIFE.allows(current, event):
                return ResponseOutcome.IGNORED
            new = ASSIGNMENT_LIFE.next(current, event)
            first = _FIRST_ANSWER.get(current)
            if first is not None:
                outcome, late = first
            elif row.responded_at is not None and at <= row.responded_at:
                return ResponseOutcome.STALE
            else:
                outcome, late = ResponseOutcome.REVISED, bool(row.late)
            conn.execute(
                update(_ASSIGNMENT)
                .where(_ASSIGNMENT.c.id == row.id)
                .values(
                    status=new.value,
                    accepted_kwh=accepted,
                    reason=reason,
                    late=late,
                    responded_at=at,
                    report_id=report_id,
                )
            )
            return outcome

    def mark_silent(self, *, assignment_ids: Sequence[int]) -> int:
        """Declare sent assignments silent (no answer in time, ``silence``); rows changed."""
        return self._apply(assignment_ids, AssignmentEvent.SILENCE)

    def cancel(self, *, assignment_ids: Sequence[int]) -> int:
        """Cancel assignments (``cancel``: pending, sent, accepted or partial ones); rows
        changed."""
        return self._apply(assignment_ids, AssignmentEvent.CANCEL)

    def _apply(self, ids: Sequence[int], event: AssignmentEvent) -> int:
        """``event`` on each assignment of ``ids`` whose status takes it, the others left as
        they are; rows changed."""
        moves = {s.value: n.value for s, n in ASSIGNMENT_LIFE.moves(event).items()}
        wanted = list(dict.fromkeys(int(i) for i in ids))
        count = 0
        with self._writer.begin() as conn:
            for chunk in chunks(wanted):
                result = conn.execute(
                    update(_ASSIGNMENT)
                    .where(_ASSIGNMENT.c.id.in_(chunk))
                    .where(_ASSIGNMENT.c.status.in_(list(moves)))
                    .values(status=case(moves, value=_ASSIGNMENT.c.status))
                )
                count += result.rowcount
        return count

    def close(self, *, dispatch_id: int) -> bool:
        """Close an open dispatch (``close``); whether it changed."""
        moves = {s.value: n.value for s, n in DISPATCH_LIFE.moves(DispatchEvent.CLOSE).items()}
        with self._writer.begin() as conn:
            result = conn.execute(
                update(_DISPATCH)
                .where(_DISPATCH.c.id == dispatch_id)
                .where(_DISPATCH.c.status.in_(list(moves)))
                .values(status=case(moves, value=_DISPATCH.c.status))
            )
            return result.rowcount > 0

    # ------------------------------------------------------------------ reads
    def _dispatches(self, conn: Connection, where: Any) -> list[DispatchRecord]:
        heads = conn.execute(select(_DISPATCH).where(where).order_by(_DISPATCH.c.id)).all()
        by_dispatch: dict[int, list[AssignmentRecord]] = {h.id: [] for h in heads}
        for chunk in chunks(list(by_dispatch)):
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

    def dispatch(self, dispatch_id: int) -> DispatchRecord | None:
        """A dispatch with all its assignments, or ``None``."""
        with self._engine.connect() as conn:
            found = self._dispatches(conn, _DISPATCH.c.id == dispatch_id)
        return found[0] if found else None

    def dispatches(self) -> list[DispatchRecord]:
        """Every dispatch, open or closed, with all its assignments, oldest first."""
        with self._engine.connect() as conn:
            return self._dispatches(conn, _DISPATCH.c.id.is_not(None))

    def ids_by_label(self, label: str) -> list[int]:
        """The ids of the dispatches labelled ``label``, oldest first (an order's dispatch is
        labelled with the order's id: a servicer killed between creating the dispatch and
        recording it on the order finds it so, instead of dispatching the order twice)."""
        with self._engine.connect() as conn:
            return [
                int(i)
                for i in conn.scalars(
                    select(_DISPATCH.c.id)
                    .where(_DISPATCH.c.label == label)
                    .order_by(_DISPATCH.c.id)
                )
            ]

    def open_dispatches(self) -> list[DispatchRecord]:
        """Every open dispatch with all its assignments, oldest first (restart recovery)."""
        with self._engine.connect() as conn:
            return self._dispatches(conn, _DISPATCH.c.status == DispatchStatus.OPEN.value)

    def assignment(self, assignment_id: int) -> AssignmentRecord | None:
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
