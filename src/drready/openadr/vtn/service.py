"""Shared route logic of the VTN: privacy (Definition.md "Object Privacy"), unique names,
commit-then-notify (C1, S1).

Privacy as implemented
----------------------
* BL (token role ``bl``) reads and changes every object.
* ven, resource, report and subscription objects created by a VEN get the VEN's ``clientID``
  from its token; a VEN reads, updates and deletes only objects whose ``clientID`` is its own
  (others answer 404 by id and are absent from lists).
* program and event objects: objects without targets are visible to every VEN. An object with
  targets is visible to a VEN only if the targets it requests (``targets`` query) intersected
  with the targets granted to it (its ven objects and their resources) share a target with the
  object; the answer then lists only those targets (target hiding). Read by id without
  ``targets``, and as the event of a report the VEN posts or puts, the VEN requests all the
  targets granted to it.

No existence oracles between VENs
---------------------------------
Whatever a VEN may not see answers exactly as what does not exist: same status, same detail
(``404 no event with id 'x'``, ``404 eventID: no event with id 'x'`` for a report on an event
it cannot see, ``404 venID: no ven with id 'x'``, ``409 programID: no program with id 'x'``
for a subscription to a program it cannot see), so no answer tells another VEN's object from
a missing one.

Names are the one exception a global name space forces: ``venName`` is unique per VTN
(Definition.md "Object names") and ``resourceName`` is unique across all VENs here (stricter
than the spec's "unique to its associated ven": the profile names a resource by its unit's
DeviceId, which is global, and two VENs holding the same name would let one of them be granted
the other's unit as a target). Creating or renaming to a name that is taken answers
``409 venName 'x' exists already`` / ``409 resourceName 'x' exists already`` — the same answer
whether the holder is the requester itself or another VEN, naming neither the holder nor its
id. What it discloses is that the name is taken, which a global name space cannot avoid;
names carry no secrets (DeviceIds are printed on the units), and the object itself stays
unreadable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic_core import to_json
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drready.openadr.models import ObjectType, Operation
from drready.openadr.vtn.deps import Principal, is_bl
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.notify import Notifier
from drready.openadr.vtn.store import (
    StoredObject,
    delete_object,
    get_object,
    granted_among,
    targets_of_vens,
    update_object,
)

__all__ = [
    "TargetView",
    "check_unique",
    "check_unique_name",
    "commit_and_notify",
    "conflict_guard",
    "load_owned",
    "load_targeted",
    "notify",
    "owner_filter",
    "target_view",
    "utc_now",
    "view_for",
]

_log = logging.getLogger("drready.openadr.vtn")


def utc_now() -> datetime:
    """The current time, UTC, whole milliseconds (what the VTN stamps on objects)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TargetView:
    """How a reader sees targeted objects: which targets filter and which remain visible."""

    def __init__(
        self,
        targets_any: frozenset[str] | None,
        include_untargeted: bool,
        hide_to: frozenset[str] | None,
    ) -> None:
        self.targets_any = targets_any
        self.include_untargeted = include_untargeted
        self.hide_to = hide_to

    def visible(self, row: StoredObject) -> bool:
        """Whether the reader may see ``row`` (by-id reads)."""
        if self.targets_any is None:
            return True
        if not row.targets:
            return self.include_untargeted
        return bool(self.targets_any.intersection(row.targets))

    def render(self, row: StoredObject) -> dict[str, Any]:
        """The object as this reader receives it (target hiding for VENs)."""
        return self.render_body(row.body)

    def render_wire(self, stored: str, targets_json: str) -> str:
        """A stored wire JSON text as this reader receives it, given the JSON text of the
        object's ``targets`` column (:data:`~drready.openadr.vtn.store.WireRow`): the text
        itself unless target hiding removes one of the targets, else :meth:`render_body` of
        the decoded body, encoded as :func:`~drready.openadr.vtn.deps.json_response` does."""
        hide_to = self.hide_to
        if hide_to is None or hide_to.issuperset(_target_set(targets_json)):
            return stored
        return to_json(self.render_body(json.loads(stored))).decode()

    def render_body(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored body as this reader receives it (target hiding for VENs)."""
        if self.hide_to is None or not stored.get("targets"):
            return stored
        body = dict(stored)
        if self.hide_to is not None and body.get("targets"):
            kept = [t for t in body["targets"] if t in self.hide_to]
            if kept:
                body["targets"] = kept
            else:
                del body["targets"]
        return body


@lru_cache(maxsize=4096)
def _target_set(targets_json: str) -> frozenset[str]:
    # objects share few distinct target lists (a unit, a group): decode each list once
    targets: list[str] = json.loads(targets_json)
    return frozenset(targets)


def target_view(
    *, session: Session, principal: Principal, requested: Sequence[str] | None
) -> TargetView:
    """The targeting rules for a program/event read by ``principal`` with ``targets=requested``.

    BL: ``targets`` is a plain filter (objects having one of them). VEN: effective targets =
    requested ∩ granted; objects without targets always pass; answers are target-hidden.
    """
    if is_bl(principal) or not requested:
        return view_for(principal, requested, frozenset())
    granted = granted_among(session=session, client_id=principal.client_id, wanted=requested)
    return view_for(principal, requested, granted)


def view_for(
    principal: Principal, requested: Sequence[str] | None, granted: frozenset[str]
) -> TargetView:
    """:func:`target_view` given the targets granted to the principal (ignored for BL)."""
    wanted = frozenset(requested) if requested else None
    if is_bl(principal):
        return TargetView(wanted, False, None)
    effective = (wanted or frozenset()) & granted
    return TargetView(effective, True, effective)


def owner_filter(principal: Principal) -> str | None:
    """The ``clientID`` a reader is restricted to (``None`` for BL)."""
    return None if is_bl(principal) else principal.client_id


def load_owned(
    *, session: Session, principal: Principal, object_type: ObjectType, object_id: str
) -> StoredObject:
    """A ven/resource/report/subscription the principal may access, else 404."""
    row = get_object(session=session, object_type=object_type.value, object_id=object_id)
    owner = owner_filter(principal)
    if row is None or (owner is not None and row.client_id != owner):
        raise ApiError(404, f"no {object_type.value.lower()} with id {object_id!r}")
    return row


def load_targeted(
    *,
    session: Session,
    principal: Principal,
    object_type: ObjectType,
    object_id: str,
    requested: Sequence[str] | None,
) -> tuple[StoredObject, TargetView]:
    """A program/event the principal may read, else 404; with the view to render it.

    A VEN reading by id without ``targets`` (the spec's ``GET /events/{eventID}`` has no such
    parameter) reads with all the targets granted to it, as a report on the event is checked
    (:func:`visible_event_program_id`); with ``targets``, with those it was granted.
    """
    row = get_object(session=session, object_type=object_type.value, object_id=object_id)
    if is_bl(principal) or requested:
        view = target_view(session=session, principal=principal, requested=requested)
    else:
        granted = targets_of_vens(session=session, client_id=principal.client_id)
        view = view_for(principal, sorted(granted), granted)
    if row is None or (not is_bl(principal) and not view.visible(row)):
        raise ApiError(404, f"no {object_type.value.lower()} with id {object_id!r}")
    if is_bl(principal):
        view = TargetView(None, True, None)  # by id, BL reads the object as it is
    return row, view


def check_unique(*, session: Session, unique_key: str, object_id: str | None, what: str) -> None:
    """409 if another object holds ``unique_key`` (Definition.md "Object names")."""
    stmt = select(StoredObject.id).where(StoredObject.unique_key == unique_key)
    holder = session.scalars(stmt).first()
    if holder is not None and holder != object_id:
        raise ApiError(409, f"{what} exists already")


def check_unique_name(
    *, session: Session, object_type: ObjectType, name: str, object_id: str | None, what: str
) -> None:
    """409 if another object of ``object_type`` has the name ``name`` (its ``name`` column,
    whichever ``unique_key`` spelling it was stored under)."""
    stmt = select(StoredObject.id).where(
        StoredObject.object_type == object_type.value, StoredObject.name == name
    )
    for holder in session.scalars(stmt):
        if holder != object_id:
            raise ApiError(409, f"{what} exists already")


@contextmanager
def conflict_guard(session: Session, what: str) -> Iterator[None]:
    """Turn a unique-constraint race (``IntegrityError``) into 409."""
    try:
        yield
    except IntegrityError:
        session.rollback()
        raise ApiError(409, f"{what} exists already") from None


def commit_and_notify(
    *,
    session: Session,
    notifier: Notifier,
    operation: Operation,
    object_type: ObjectType,
    body: dict[str, Any],
    what: str,
) -> None:
    """Commit, then hand the change to the notifier (its failures are logged, not raised)."""
    with conflict_guard(session, what):
        session.commit()
    notify(notifier=notifier, operation=operation, object_type=object_type, body=body)


def notify(
    *, notifier: Notifier, operation: Operation, object_type: ObjectType, body: dict[str, Any]
) -> None:
    """Hand a committed change to the notifier (a copy of ``body``); its failures are logged,
    not raised."""
    try:
        notifier.publish(operation, object_type, dict(body))
    except Exception:
        _log.exception("notifier failed for %s %s", operation.value, object_type.value)


def update_and_notify(
    *,
    session: Session,
    notifier: Notifier,
    row: StoredObject,
    object_type: ObjectType,
    body: dict[str, Any],
    modified: datetime,
    index: Mapping[str, Any],
    what: str,
) -> dict[str, Any]:
    """Store ``body`` (and its ``index`` columns) in ``row``, commit, notify; ``body`` (what PUT
    answers). A unique-key clash becomes 409 naming ``what``."""
    with conflict_guard(session, what):
        update_object(session=session, row=row, body=body, modified=modified, **index)
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.UPDATE,
        object_type=object_type,
        body=body,
        what=what,
    )
    return body


def delete_and_notify(
    *,
    session: Session,
    notifier: Notifier,
    row: StoredObject,
    object_type: ObjectType,
    what: str,
) -> dict[str, Any]:
    """Delete ``row``, commit, notify; the deleted object's body (what DELETE answers)."""
    body = dict(row.body)
    delete_object(session=session, row=row)
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.DELETE,
        object_type=object_type,
        body=body,
        what=what,
    )
    return body
