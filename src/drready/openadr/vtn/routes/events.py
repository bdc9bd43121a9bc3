"""``/events``: DR requests (F2) of the servicer to VENs, written by BL, read by VENs through
targeting (C1; S1 object privacy; D6 targets)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from drready.openadr.models import Event, EventCreate, ObjectType, Operation, from_wire, to_wire
from drready.openadr.vtn.deps import (
    NotifierDep,
    PageDep,
    Principal,
    SessionDep,
    is_bl,
    json_array_response,
    json_response,
    request_session,
    require_scopes,
    wire_body,
)
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.routes._params import ProgramIdQuery, TargetsQuery, object_id_path
from drready.openadr.vtn.service import (
    commit_and_notify,
    delete_and_notify,
    load_targeted,
    update_and_notify,
    utc_now,
    view_for,
)
from drready.openadr.vtn.store import (
    Filters,
    RawStore,
    create_object,
    get_object,
    list_wire,
    new_object_id,
)
from drready.openadr.vtn.timing import event_end
from drready.security.tokens import READ_ALL, READ_TARGETS, WRITE_EVENTS

router = APIRouter(prefix="/events", tags=["events"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_TARGETS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_EVENTS))]
Body = Annotated[EventCreate, Depends(wire_body(EventCreate))]
EventId = Annotated[str, object_id_path("eventID")]
EVENT = ObjectType.EVENT


def _index(event: Event) -> dict[str, Any]:
    return {
        "name": event.event_name,
        "program_id": event.program_id,
        "targets": event.targets or (),
        "ends_at": event_end(event, created=event.created_date_time),
    }


def _check_program(session: SessionDep, program_id: str) -> None:
    if get_object(session=session, object_type="PROGRAM", object_id=program_id) is None:
        raise ApiError(409, f"programID: no program with id {program_id!r}")


@router.get("", response_model=list[dict[str, Any]])
async def search_all_events(
    request: Request,
    principal: Reader,
    page: PageDep,
    targets: TargetsQuery,
    program_id: ProgramIdQuery = None,
    active: Annotated[bool | None, Query(description="ignore events that have transpired")] = None,
) -> Response:
    """searchAllEvents."""
    # the hottest read route (also called by drready.openadr.vtn.fastpath): its two queries on
    # a pooled DBAPI connection (store.RawStore), no session
    raw: RawStore = request.app.state.raw_store
    with raw.connect() as connection:
        # a VEN's view needs only which of the targets it asks for are its own (none asked:
        # untargeted events only), not every target of its fleet
        granted = (
            frozenset()
            if is_bl(principal) or not targets
            else raw.granted_among(connection, principal.client_id, targets)
        )
        view = view_for(principal, targets, granted)
        filters = Filters(
            program_id=program_id,
            targets_any=view.targets_any,
            include_untargeted=view.include_untargeted,
            ends_after=utc_now() if active else None,
        )
        rows = raw.list_wire(
            connection,
            object_type=EVENT.value,
            filters=filters,
            skip=page.skip,
            limit=page.limit,
        )
    if rows is None:  # more targets than RawStore prepares for
        with request_session(request) as session:
            rows = list_wire(
                session=session,
                object_type=EVENT.value,
                filters=filters,
                skip=page.skip,
                limit=page.limit,
            )
    return json_array_response(view.render_wire(body, targets) for body, targets in rows)


@router.post("", status_code=201)
async def create_event(
    session: SessionDep, principal: Writer, notifier: NotifierDep, body: Body
) -> dict[str, Any]:
    """createEvent (409 if programID names no program)."""
    _check_program(session, body.program_id)
    now = utc_now()
    event = Event.from_create(body, object_id=new_object_id(), now=now)
    wire = to_wire(event)
    create_object(
        session=session,
        object_id=event.id,
        object_type=EVENT.value,
        body=wire,
        created=now,
        **_index(event),
    )
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.CREATE,
        object_type=EVENT,
        body=wire,
        what="event",
    )
    return wire


@router.get("/{eventID}", response_model=dict[str, Any])
async def search_events_by_id(
    session: SessionDep, principal: Reader, event_id: EventId, targets: TargetsQuery
) -> Response:
    """searchEventsByID (a VEN passes ``targets`` to read a targeted event)."""
    row, view = load_targeted(
        session=session,
        principal=principal,
        object_type=EVENT,
        object_id=event_id,
        requested=targets,
    )
    return json_response(view.render(row))


@router.put("/{eventID}")
async def update_event(
    session: SessionDep, principal: Writer, notifier: NotifierDep, event_id: EventId, body: Body
) -> dict[str, Any]:
    """updateEvent: replace the event, keeping id and createdDateTime."""
    row, _ = load_targeted(
        session=session, principal=principal, object_type=EVENT, object_id=event_id, requested=None
    )
    _check_program(session, body.program_id)
    now = utc_now()
    event = from_wire(Event, row.body).replaced(body, now=now)
    wire = to_wire(event)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=EVENT,
        body=wire,
        modified=now,
        index=_index(event),
        what="event",
    )


@router.delete("/{eventID}")
async def delete_event(
    session: SessionDep, principal: Writer, notifier: NotifierDep, event_id: EventId
) -> dict[str, Any]:
    """deleteEvent: answers the deleted event."""
    row, _ = load_targeted(
        session=session, principal=principal, object_type=EVENT, object_id=event_id, requested=None
    )
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=EVENT, what="event"
    )
