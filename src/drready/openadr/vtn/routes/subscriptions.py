"""``/subscriptions``: webhook registrations of VENs and BL, private to their creator and BL
(C1; S1 object privacy, HTTPS-only callbacks)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from drready.openadr.models import (
    ObjectType,
    Operation,
    Subscription,
    SubscriptionCreate,
    from_wire,
    to_wire,
)
from drready.openadr.vtn.deps import (
    NotifierDep,
    PageDep,
    Principal,
    SessionDep,
    json_array_response,
    require_scopes,
    wire_body,
)
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.routes._params import (
    ClientNameQuery,
    ObjectsQuery,
    ProgramIdQuery,
    object_id_path,
)
from drready.openadr.vtn.service import (
    commit_and_notify,
    delete_and_notify,
    load_owned,
    load_targeted,
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
from drready.openadr.vtn.webhooks import CallbackRejectedError
from drready.security.tokens import READ_ALL, READ_VEN_OBJECTS, WRITE_SUBSCRIPTIONS

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_VEN_OBJECTS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_SUBSCRIPTIONS))]
Body = Annotated[SubscriptionCreate, Depends(wire_body(SubscriptionCreate))]
SubscriptionId = Annotated[str, object_id_path("subscriptionID")]
SUBSCRIPTION = ObjectType.SUBSCRIPTION


def _verify_callbacks(notifier: Any, subscription: Subscription) -> None:
    """The echo challenge of every callback (when the notifier delivers webhooks): a
    subscription whose callback fails it is not created (Definition.md, Webhooks)."""
    verify = getattr(notifier, "verify_callback", None)
    if verify is None:
        return
    for i, operation in enumerate(subscription.object_operations):
        try:
            verify(operation.callback_url)
        except CallbackRejectedError as err:
            raise ApiError(400, f"objectOperations.{i}.callbackUrl: {err}") from err


def _check_program(session: SessionDep, principal: Principal, program_id: str) -> None:
    """409 unless the requester can see the program: the same answer for a program that does
    not exist and one targeted elsewhere (no existence oracle)."""
    try:
        load_targeted(
            session=session,
            principal=principal,
            object_type=ObjectType.PROGRAM,
            object_id=program_id,
            requested=None,
        )
    except ApiError:
        raise ApiError(409, f"programID: no program with id {program_id!r}") from None


def _index(session: SessionDep, principal: Principal, subscription: Subscription) -> dict[str, Any]:
    for i, operation in enumerate(subscription.object_operations):
        if not operation.callback_url.lower().startswith("https://"):
            raise ApiError(
                400,
                f"objectOperations.{i}.callbackUrl: must be an https URL "
                "(Definition.md, Security: Webhooks)",
            )
    program_id = subscription.program_id
    if program_id is not None:
        _check_program(session, principal, program_id)
    return {
        "client_id": subscription.client_id,
        "name": subscription.client_name,
        "program_id": program_id,
        "objects": {o.value for op in subscription.object_operations for o in op.objects},
        "targets": subscription.targets or (),
    }


@router.get("", response_model=list[dict[str, Any]])
async def search_subscriptions(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    program_id: ProgramIdQuery = None,
    client_name: ClientNameQuery = None,
    objects: ObjectsQuery = None,
) -> Response:
    """searchSubscriptions (a VEN sees only its own subscriptions)."""
    rows = list_wire(
        session=session,
        object_type=SUBSCRIPTION.value,
        filters=Filters(
            client_id=owner_filter(principal),
            program_id=program_id,
            name=client_name,
            objects_any=None if objects is None else frozenset(o.value for o in objects),
        ),
        skip=page.skip,
        limit=page.limit,
    )
    return json_array_response(body for body, _ in rows)


@router.post("", status_code=201)
def create_subscription(
    session: SessionDep, principal: Writer, notifier: NotifierDep, body: Body
) -> dict[str, Any]:
    """createSubscription: ``clientID`` is the requester's (from its token)."""
    now = utc_now()
    subscription = Subscription.from_create(
        body, object_id=new_object_id(), now=now, client_id=principal.client_id
    )
    _verify_callbacks(notifier, subscription)
    wire = to_wire(subscription)
    create_object(
        session=session,
        object_id=subscription.id,
        object_type=SUBSCRIPTION.value,
        body=wire,
        created=now,
        **_index(session, principal, subscription),
    )
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.CREATE,
        object_type=SUBSCRIPTION,
        body=wire,
        what="subscription",
    )
    return wire


@router.get("/{subscriptionID}")
async def search_subscription_by_id(
    session: SessionDep, principal: Reader, subscription_id: SubscriptionId
) -> dict[str, Any]:
    """searchSubscriptionByID."""
    row = load_owned(
        session=session, principal=principal, object_type=SUBSCRIPTION, object_id=subscription_id
    )
    return dict(row.body)


@router.put("/{subscriptionID}")
def update_subscription(
    session: SessionDep,
    principal: Writer,
    notifier: NotifierDep,
    subscription_id: SubscriptionId,
    body: Body,
) -> dict[str, Any]:
    """updateSubscription: replace it, keeping id, createdDateTime and clientID."""
    row = load_owned(
        session=session, principal=principal, object_type=SUBSCRIPTION, object_id=subscription_id
    )
    now = utc_now()
    subscription = from_wire(Subscription, row.body).replaced(body, now=now)
    _verify_callbacks(notifier, subscription)
    wire = to_wire(subscription)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=SUBSCRIPTION,
        body=wire,
        modified=now,
        index=_index(session, principal, subscription),
        what="subscription",
    )


@router.delete("/{subscriptionID}")
async def delete_subscription(
    session: SessionDep, principal: Writer, notifier: NotifierDep, subscription_id: SubscriptionId
) -> dict[str, Any]:
    """deleteSubscription: answers the deleted subscription."""
    row = load_owned(
        session=session, principal=principal, object_type=SUBSCRIPTION, object_id=subscription_id
    )
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=SUBSCRIPTION, what="subscription"
    )
