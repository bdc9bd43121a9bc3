"""``/vens``: the servicer's VENs (a home gateway or a maker cloud each, D6), with the targets BL
grants them; private to the VEN's client and BL (C1; S1 object privacy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from drready.openadr.models import (
    BlVenCreate,
    ObjectType,
    Operation,
    Ven,
    VenCreate,
    VenVenCreate,
    from_wire,
    to_wire,
)
from drready.openadr.vtn.deps import (
    NotifierDep,
    PageDep,
    Principal,
    SessionDep,
    is_bl,
    json_array_response,
    require_scopes,
)
from drready.openadr.vtn.routes._params import TargetsQuery, VenNameQuery, object_id_path
from drready.openadr.vtn.routes._venbody import role_checked_body
from drready.openadr.vtn.service import (
    check_unique,
    commit_and_notify,
    conflict_guard,
    delete_and_notify,
    load_owned,
    owner_filter,
    update_and_notify,
    utc_now,
)
from drready.openadr.vtn.store import (
    Filters,
    create_object,
    list_wire,
    new_object_id,
)
from drready.security.tokens import READ_ALL, READ_VEN_OBJECTS, WRITE_VENS

router = APIRouter(prefix="/vens", tags=["vens"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_VEN_OBJECTS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_VENS))]
Body = Annotated[
    BlVenCreate | VenVenCreate,
    Depends(role_checked_body(VenCreate, bl_type="BL_VEN_REQUEST", ven_type="VEN_VEN_REQUEST")),
]
VenId = Annotated[str, object_id_path("venID")]
VEN = ObjectType.VEN


def _index(ven: Ven) -> dict[str, Any]:
    return {
        "client_id": ven.client_id,
        "name": ven.ven_name,
        "unique_key": f"VEN:{ven.ven_name}",
        "targets": ven.targets or (),
    }


def _what(name: str) -> str:
    return f"venName {name!r}"


@router.get("", response_model=list[dict[str, Any]])
async def search_vens(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    targets: TargetsQuery,
    ven_name: VenNameQuery = None,
) -> Response:
    """searchVens (a VEN sees only its own ven objects; ``targets`` filters, no hiding)."""
    rows = list_wire(
        session=session,
        object_type=VEN.value,
        filters=Filters(
            client_id=owner_filter(principal),
            name=ven_name,
            targets_any=None if targets is None else frozenset(targets),
        ),
        skip=page.skip,
        limit=page.limit,
    )
    return json_array_response(body for body, _ in rows)


@router.post("", status_code=201)
async def create_ven(
    session: SessionDep, principal: Writer, notifier: NotifierDep, body: Body
) -> dict[str, Any]:
    """createVen: BL names the clientID and may grant targets; a VEN's clientID is its own."""
    what = _what(body.ven_name)
    check_unique(session=session, unique_key=f"VEN:{body.ven_name}", object_id=None, what=what)
    now = utc_now()
    extra = {} if isinstance(body, BlVenCreate) else {"client_id": principal.client_id}
    ven = Ven.from_create(body, object_id=new_object_id(), now=now, **extra)
    wire = to_wire(ven)
    with conflict_guard(session, what):
        create_object(
            session=session,
            object_id=ven.id,
            object_type=VEN.value,
            body=wire,
            created=now,
            **_index(ven),
        )
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.CREATE,
        object_type=VEN,
        body=wire,
        what=what,
    )
    return wire


@router.get("/{venID}")
async def search_ven_by_id(session: SessionDep, principal: Reader, ven_id: VenId) -> dict[str, Any]:
    """searchVenByID."""
    row = load_owned(session=session, principal=principal, object_type=VEN, object_id=ven_id)
    return dict(row.body)


@router.put("/{venID}")
async def update_ven(
    session: SessionDep, principal: Writer, notifier: NotifierDep, ven_id: VenId, body: Body
) -> dict[str, Any]:
    """updateVen: replace it, keeping id and createdDateTime; a VEN's update keeps the
    clientID and the targets BL granted."""
    row = load_owned(session=session, principal=principal, object_type=VEN, object_id=ven_id)
    what = _what(body.ven_name)
    check_unique(session=session, unique_key=f"VEN:{body.ven_name}", object_id=row.id, what=what)
    now = utc_now()
    existing = from_wire(Ven, row.body)
    ven = existing.replaced(body, now=now)
    if not is_bl(principal):
        ven = ven.model_copy(update={"targets": existing.targets})
    wire = to_wire(ven)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=VEN,
        body=wire,
        modified=now,
        index=_index(ven),
        what=what,
    )


@router.delete("/{venID}")
async def delete_ven(
    session: SessionDep, principal: Writer, notifier: NotifierDep, ven_id: VenId
) -> dict[str, Any]:
    """deleteVen: answers the deleted ven (its resources stay until deleted themselves)."""
    row = load_owned(session=session, principal=principal, object_type=VEN, object_id=ven_id)
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=VEN, what="ven"
    )
