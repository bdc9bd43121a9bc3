"""``/reports``: what VENs report to the servicer (F1 potential, F4 plan, F5 power), private to
the reporting VEN and BL (C1; S1 object privacy).

A VEN reports only on an event it can see (its targets granted, as ``GET /events`` with all of
them; :func:`drready.openadr.vtn.store.visible_event_program_id`): any other ``eventID``
answers ``404 eventID: no event with id 'x'``, the answer for an event that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from drready.openadr.models import ObjectType, Operation, Report, ReportCreate, from_wire, to_wire
from drready.openadr.vtn.deps import (
    NotifierDep,
    PageDep,
    Principal,
    SessionDep,
    is_bl,
    json_array_response,
    parse_wire_body,
    require_scopes,
    wire_body,
)
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.notify import Notifier
from drready.openadr.vtn.routes._params import (
    ClientNameQuery,
    EventIdQuery,
    ProgramIdQuery,
    object_id_path,
)
from drready.openadr.vtn.service import (
    delete_and_notify,
    load_owned,
    notify,
    owner_filter,
    update_and_notify,
    utc_now,
)
from drready.openadr.vtn.store import (
    Filters,
    RawStore,
    list_wire,
    new_object_id,
    visible_event_program_id,
    wire_json,
)
from drready.security.tokens import READ_ALL, READ_VEN_OBJECTS, WRITE_REPORTS

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_VEN_OBJECTS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_REPORTS))]
Body = Annotated[ReportCreate, Depends(wire_body(ReportCreate))]
ReportId = Annotated[str, object_id_path("reportID")]
REPORT = ObjectType.REPORT


def _no_event(event_id: str) -> ApiError:
    # the same for an event that does not exist and one the VEN cannot see
    return ApiError(404, f"eventID: no event with id {event_id!r}")


def _index(session: SessionDep, principal: Principal, report: Report) -> dict[str, Any]:
    event = visible_event_program_id(
        session=session, event_id=report.event_id, client_id=owner_filter(principal)
    )
    if event is None:
        raise _no_event(report.event_id)
    return {
        "client_id": report.client_id,
        "name": report.client_name,
        "event_id": report.event_id,
        "program_id": event[0],
    }


@router.get("", response_model=list[dict[str, Any]])
async def search_all_reports(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    program_id: ProgramIdQuery = None,
    event_id: EventIdQuery = None,
    client_name: ClientNameQuery = None,
) -> Response:
    """searchAllReports (a VEN sees only its own reports)."""
    rows = list_wire(
        session=session,
        object_type=REPORT.value,
        filters=Filters(
            client_id=owner_filter(principal),
            program_id=program_id,
            event_id=event_id,
            name=client_name,
        ),
        skip=page.skip,
        limit=page.limit,
    )
    return json_array_response(body for body, _ in rows)


@router.post("", status_code=201, response_model=dict[str, Any])
async def create_report(request: Request, principal: Writer) -> Response:
    """createReport: ``clientID`` is the requester's (from its token)."""
    # the hottest write route (also called by drready.openadr.vtn.fastpath): body and notifier
    # without dependencies of their own (same order and answers as Body / NotifierDep), the
    # event lookup and insert in a group commit on a DBAPI connection (store.RawStore)
    body: ReportCreate = await parse_wire_body(request, ReportCreate)
    notifier: Notifier = request.app.state.notifier
    now = utc_now()
    report = Report.from_create(
        body, object_id=new_object_id(), now=now, client_id=principal.client_id
    )
    wire = to_wire(report)
    text = wire_json(wire)  # stored as is, and answered
    raw: RawStore = request.app.state.raw_store
    try:
        stored = await raw.create_report(
            object_id=report.id,
            body_json=text,
            created=now,
            client_id=report.client_id,
            name=report.client_name,
            event_id=report.event_id,
            sees_all_events=is_bl(principal),
        )
    except raw.integrity_error:
        raise ApiError(409, "report exists already") from None
    if not stored:
        raise _no_event(report.event_id)
    notify(notifier=notifier, operation=Operation.CREATE, object_type=REPORT, body=wire)
    return Response(text.encode(), status_code=201, media_type="application/json")


@router.get("/{reportID}")
async def search_reports_by_report_id(
    session: SessionDep, principal: Reader, report_id: ReportId
) -> dict[str, Any]:
    """searchReportsByReportID."""
    row = load_owned(session=session, principal=principal, object_type=REPORT, object_id=report_id)
    return dict(row.body)


@router.put("/{reportID}")
async def update_report(
    session: SessionDep, principal: Writer, notifier: NotifierDep, report_id: ReportId, body: Body
) -> dict[str, Any]:
    """updateReport: replace the report, keeping id, createdDateTime and clientID."""
    row = load_owned(session=session, principal=principal, object_type=REPORT, object_id=report_id)
    now = utc_now()
    report = from_wire(Report, row.body).replaced(body, now=now)
    wire = to_wire(report)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=REPORT,
        body=wire,
        modified=now,
        index=_index(session, principal, report),
        what="report",
    )


@router.delete("/{reportID}")
async def delete_report(
    session: SessionDep, principal: Writer, notifier: NotifierDep, report_id: ReportId
) -> dict[str, Any]:
    """deleteReport: answers the deleted report."""
    row = load_owned(session=session, principal=principal, object_type=REPORT, object_id=report_id)
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=REPORT, what="report"
    )
