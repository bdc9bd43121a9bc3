"""``/resources``: the water heaters (or groups of them, D6) behind a VEN, with the targets BL
grants them; private to the VEN's client and BL (C1; S1 object privacy).

``resourceName`` is unique across all VENs (409 ``resourceName 'x' exists already``, the same
answer whoever holds the name; see :mod:`drready.openadr.vtn.service` for why and what that
discloses): the profile names a resource by its unit's DeviceId, which is global.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from drready.openadr.models import (
    BlResourceCreate,
    ObjectType,
    Operation,
    Resource,
    ResourceCreate,
    VenResourceCreate,
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
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.routes._params import (
    ResourceNameQuery,
    TargetsQuery,
    VenIdQuery,
    object_id_path,
)
from drready.openadr.vtn.routes._venbody import role_checked_body
from drready.openadr.vtn.service import (
    check_unique_name,
    commit_and_notify,
    conflict_guard,
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
    create_object,
    list_wire,
    new_object_id,
    wire_json,
)
from drready.security.tokens import READ_ALL, READ_VEN_OBJECTS, WRITE_VENS

router = APIRouter(prefix="/resources", tags=["resources"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_VEN_OBJECTS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_VENS))]
checked_body = role_checked_body(
    ResourceCreate, bl_type="BL_RESOURCE_REQUEST", ven_type="VEN_RESOURCE_REQUEST"
)
"""The body of ``POST``/``PUT /resources`` after the role rules (also called by
:mod:`drready.openadr.vtn.fastpath`)."""
Body = Annotated[BlResourceCreate | VenResourceCreate, Depends(checked_body)]
ResourceId = Annotated[str, object_id_path("resourceID")]
RESOURCE = ObjectType.RESOURCE


def _key(name: str) -> str:
    # one name space for every VEN's resources (rows of earlier versions carry
    # RESOURCE:<venID>:<name>; check_unique_name finds them by their name column)
    return f"RESOURCE:{name}"


def _what(name: str) -> str:
    return f"resourceName {name!r}"


def _index(resource: Resource) -> dict[str, Any]:
    return {
        "client_id": resource.client_id,
        "name": resource.resource_name,
        "unique_key": _key(resource.resource_name),
        "ven_id": resource.ven_id,
        "targets": resource.targets or (),
    }


def _no_ven(ven_id: str) -> ApiError:
    # the same for a ven that does not exist and another client's
    return ApiError(404, f"venID: no ven with id {ven_id!r}")


def _check_ven(session: SessionDep, principal: Principal, ven_id: str) -> None:
    try:
        load_owned(
            session=session, principal=principal, object_type=ObjectType.VEN, object_id=ven_id
        )
    except ApiError:
        raise _no_ven(ven_id) from None


@router.get("", response_model=list[dict[str, Any]])
async def search_ven_resources(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    targets: TargetsQuery,
    resource_name: ResourceNameQuery = None,
    ven_id: VenIdQuery = None,
) -> Response:
    """searchVenResources (a VEN sees only its own resources; ``targets`` filters)."""
    rows = list_wire(
        session=session,
        object_type=RESOURCE.value,
        filters=Filters(
            client_id=owner_filter(principal),
            name=resource_name,
            ven_id=ven_id,
            targets_any=None if targets is None else frozenset(targets),
        ),
        skip=page.skip,
        limit=page.limit,
    )
    return json_array_response(body for body, _ in rows)


@router.post("", status_code=201, response_model=dict[str, Any])
async def create_resource(
    request: Request,
    session: SessionDep,
    principal: Writer,
    notifier: NotifierDep,
    body: Body,
) -> Response:
    """createResource: venID must name a ven the requester may access (else 404)."""
    if not is_bl(principal):
        return await create_ven_resource(request, principal, body)
    _check_ven(session, principal, body.ven_id)
    what = _what(body.resource_name)
    check_unique_name(
        session=session, object_type=RESOURCE, name=body.resource_name, object_id=None, what=what
    )
    now = utc_now()
    resource = Resource.from_create(body, object_id=new_object_id(), now=now)
    wire = to_wire(resource)
    with conflict_guard(session, what):
        create_object(
            session=session,
            object_id=resource.id,
            object_type=RESOURCE.value,
            body=wire,
            created=now,
            **_index(resource),
        )
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.CREATE,
        object_type=RESOURCE,
        body=wire,
        what=what,
    )
    return Response(wire_json(wire).encode(), status_code=201, media_type="application/json")


async def create_ven_resource(
    request: Request, principal: Principal, body: BlResourceCreate | VenResourceCreate
) -> Response:
    """createResource by a VEN's client (no targets: the role rules refused them): its
    ``clientID``, the venID and name checks and the insert in a group commit on a DBAPI
    connection (:meth:`drready.openadr.vtn.store.RawStore.create_resource`). Called by the
    route and by :mod:`drready.openadr.vtn.fastpath` (registering a maker's fleet posts
    resources by the hundred thousand)."""
    now = utc_now()
    resource = Resource.from_create(
        body, object_id=new_object_id(), now=now, client_id=principal.client_id
    )
    wire = to_wire(resource)
    text = wire_json(wire)  # stored as is, and answered
    what = _what(resource.resource_name)
    raw: RawStore = request.app.state.raw_store
    try:
        outcome = await raw.create_resource(
            object_id=resource.id,
            body_json=text,
            created=now,
            client_id=principal.client_id,
            name=resource.resource_name,
            ven_id=resource.ven_id,
        )
    except raw.integrity_error:  # a concurrent create of the name (another worker)
        raise ApiError(409, f"{what} exists already") from None
    if outcome == "no ven":
        raise _no_ven(resource.ven_id)
    if outcome == "name taken":
        raise ApiError(409, f"{what} exists already")
    notify(
        notifier=request.app.state.notifier,
        operation=Operation.CREATE,
        object_type=RESOURCE,
        body=wire,
    )
    return Response(text.encode(), status_code=201, media_type="application/json")


@router.get("/{resourceID}")
async def search_ven_resource_by_id(
    session: SessionDep, principal: Reader, resource_id: ResourceId
) -> dict[str, Any]:
    """searchVenResourceByID."""
    row = load_owned(
        session=session, principal=principal, object_type=RESOURCE, object_id=resource_id
    )
    return dict(row.body)


@router.put("/{resourceID}")
async def update_ven_resource(
    session: SessionDep,
    principal: Writer,
    notifier: NotifierDep,
    resource_id: ResourceId,
    body: Body,
) -> dict[str, Any]:
    """updateVenResource: replace it, keeping id and createdDateTime; a VEN's update keeps
    the clientID and the targets BL granted."""
    row = load_owned(
        session=session, principal=principal, object_type=RESOURCE, object_id=resource_id
    )
    _check_ven(session, principal, body.ven_id)
    what = _what(body.resource_name)
    check_unique_name(
        session=session, object_type=RESOURCE, name=body.resource_name, object_id=row.id, what=what
    )
    now = utc_now()
    existing = from_wire(Resource, row.body)
    resource = existing.replaced(body, now=now)
    if not is_bl(principal):
        resource = resource.model_copy(update={"targets": existing.targets})
    wire = to_wire(resource)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=RESOURCE,
        body=wire,
        modified=now,
        index=_index(resource),
        what=what,
    )


@router.delete("/{resourceID}")
async def delete_ven_resource(
    session: SessionDep, principal: Writer, notifier: NotifierDep, resource_id: ResourceId
) -> dict[str, Any]:
    """deleteVenResource: answers the deleted resource."""
    row = load_owned(
        session=session, principal=principal, object_type=RESOURCE, object_id=resource_id
    )
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=RESOURCE, what="resource"
    )
