"""``/notifiers``: the notification protocols the VTN offers (C1), and the MQTT topic names
(``/notifiers/mqtt/topics/…``, Definition.md "Notifications via Additional Protocols").

Webhooks always; MQTT when ``VtnSettings.mqtt_broker_url`` is set: ``GET /notifiers`` then adds
the ``mqttNotifierBindingObject`` (``ANONYMOUS``, or ``CERTIFICATE`` with the asking client's own
certificate and key when the VTN holds the broker CA's key) and the topic endpoints answer
``notifierTopicsResponse`` (the names are built by :mod:`drready.openadr.vtn.mqtt`). Without a
broker the topic endpoints answer 404 with a problem saying MQTT is not offered (their responses
in openadr3.yaml list 404 but not 501).

Scopes are openadr3.yaml's; the ven-object endpoints also accept ``read_all`` (BL's scope, as
the ``/vens`` routes do). Privacy: a VEN asking for the topics of a ven object it does not own
gets 404, as for ``GET /vens/{venID}``; an unknown program or ven is 404 too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from drready.openadr.models import (
    MqttNotifierBinding,
    NotifiersResponse,
    NotifierTopicsResponse,
    ObjectType,
    Problem,
    from_wire,
    to_wire,
)
from drready.openadr.vtn.deps import Principal, SessionDep, json_response, require_scopes
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.mqtt import collection_topics, object_topics, ven_prefix
from drready.openadr.vtn.mqtt_certs import MqttCertIssuer
from drready.openadr.vtn.routes._params import object_id_path
from drready.openadr.vtn.service import load_owned, load_targeted
from drready.openadr.vtn.settings import VtnSettings
from drready.security.tokens import READ_ALL, READ_BL, READ_TARGETS, READ_VEN_OBJECTS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/notifiers", tags=["notifiers"])

# openadr3.yaml asks read_all for GET /notifiers, which VENs do not hold by default; every
# client needs to discover the notifiers, so any read scope is accepted.
Reader = Annotated[
    Principal, Depends(require_scopes(READ_ALL, READ_BL, READ_TARGETS, READ_VEN_OBJECTS))
]
ReadAll = Annotated[Principal, Depends(require_scopes(READ_ALL))]
ReadVenObjects = Annotated[Principal, Depends(require_scopes(READ_VEN_OBJECTS, READ_ALL))]
ProgramId = Annotated[str, object_id_path("programID")]
VenId = Annotated[str, object_id_path("venID")]

_NO_MQTT = "MQTT notifier not offered by this VTN: GET /notifiers lists WEBHOOK only"


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem}


_TOPIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("The request is malformed or invalid"),
    401: _problem("Unauthorized"),
    403: _problem("Forbidden"),
    404: _problem("Not found, or MQTT not offered by this VTN"),
}


def _broker_url(request: Request) -> str:
    settings: VtnSettings = request.app.state.settings
    if settings.mqtt_broker_url is None:
        raise ApiError(404, _NO_MQTT)
    return settings.mqtt_broker_url


def _topics(topics: dict[str, str]) -> Response:
    return json_response(to_wire(from_wire(NotifierTopicsResponse, {"topics": topics})))


def _authentication(request: Request, principal: Principal) -> dict[str, str] | None:
    """``ANONYMOUS`` for a development broker; with the broker CA's key (``vtn serve
    --mqtt-ca-key``, the broker of ``drready vtn mqtt-config``) ``CERTIFICATE``: the CA and this
    client's own certificate (CN = its client id, the broker's user name) and key
    (:mod:`drready.openadr.vtn.mqtt_certs`). None for a client whose id cannot be a broker
    user name (no MQTT for it)."""
    issuer: MqttCertIssuer | None = getattr(request.app.state, "mqtt_certs", None)
    if issuer is None:
        return {"method": "ANONYMOUS"}
    try:
        material = issuer.material(principal.client_id)
    except ValueError:
        log.warning("client %r: no MQTT certificate (not a broker user name)", principal.client_id)
        return None
    return {
        "method": "CERTIFICATE",
        "caCert": material.ca_cert,
        "clientCert": material.client_cert,
        "clientKey": material.client_key,
    }


@router.get("", response_model=NotifiersResponse, response_model_exclude_none=True)
async def list_all_notifiers(request: Request, principal: Reader) -> Response:
    """listAllNotifiers: ``{"WEBHOOK": true}``, plus ``"MQTT"`` when a broker is configured
    (with certificate authentication, this client's own key: never cached)."""
    body: dict[str, Any] = {"WEBHOOK": True}
    settings: VtnSettings = request.app.state.settings
    authentication = None
    if settings.mqtt_broker_url is not None:
        authentication = await run_in_threadpool(_authentication, request, principal)
    if settings.mqtt_broker_url is not None and authentication is not None:
        binding = from_wire(
            MqttNotifierBinding,
            {
                "URIS": [settings.mqtt_broker_url],
                "serialization": "JSON",
                "authentication": authentication,
            },
        )
        body["MQTT"] = to_wire(binding)
    response = json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _collection(operation_id: str, prefix: str, scope: str, what: str) -> None:
    async def endpoint(request: Request) -> Response:
        _broker_url(request)
        return _topics(collection_topics(prefix))

    _add(f"/mqtt/topics/{prefix}", operation_id, what, endpoint, [Depends(require_scopes(scope))])


def _add(
    path: str,
    operation_id: str,
    what: str,
    endpoint: Callable[..., Any],
    dependencies: list[Any] | None = None,
) -> None:
    router.add_api_route(
        path,
        endpoint,
        methods=["GET"],
        operation_id=operation_id,
        summary=f"List all MQTT binding topic names for operations on {what}",
        tags=["MQTT_notifier"],
        dependencies=dependencies,
        response_model=NotifierTopicsResponse,
        response_model_exclude_none=True,
        responses=_TOPIC_RESPONSES,
    )


_collection("listAllMqttNotifierTopicsPrograms", "programs", READ_ALL, "programs")
_collection("listAllMqttNotifierTopicsEvents", "events", READ_BL, "all events")
_collection("listAllMqttNotifierTopicsReports", "reports", READ_BL, "all reports")
_collection("listAllMqttNotifierTopicsSubscriptions", "subscriptions", READ_BL, "subscriptions")
_collection("listAllMqttNotifierTopicsVens", "vens", READ_BL, "vens")
_collection("listAllMqttNotifierTopicsResources", "resources", READ_BL, "resources")


@router.get(
    "/mqtt/topics/programs/{programID}",
    operation_id="listAllMqttNotifierTopicsProgram",
    summary="List all MQTT binding topic names for operations on a program",
    tags=["MQTT_notifier"],
    response_model=NotifierTopicsResponse,
    response_model_exclude_none=True,
    responses=_TOPIC_RESPONSES,
)
async def program_topics(
    request: Request, session: SessionDep, principal: ReadAll, program_id: ProgramId
) -> Response:
    """Topics of one program's updates and deletion (no CREATE: it exists)."""
    _broker_url(request)
    load_targeted(
        session=session,
        principal=principal,
        object_type=ObjectType.PROGRAM,
        object_id=program_id,
        requested=None,
    )
    return _topics(object_topics(f"programs/{program_id}"))


@router.get(
    "/mqtt/topics/programs/{programID}/events",
    operation_id="listAllMqttNotifierTopicsProgramEvents",
    summary="List all MQTT binding topic names for operations on events for a program",
    tags=["MQTT_notifier"],
    response_model=NotifierTopicsResponse,
    response_model_exclude_none=True,
    responses=_TOPIC_RESPONSES,
)
async def program_events_topics(
    request: Request, session: SessionDep, principal: ReadAll, program_id: ProgramId
) -> Response:
    """Topics of the events of one program."""
    _broker_url(request)
    load_targeted(
        session=session,
        principal=principal,
        object_type=ObjectType.PROGRAM,
        object_id=program_id,
        requested=None,
    )
    return _topics(collection_topics(f"programs/{program_id}/events"))


def _ven_route(suffix: str, operation_id: str, what: str) -> None:
    async def endpoint(
        request: Request, session: SessionDep, principal: ReadVenObjects, ven_id: VenId
    ) -> Response:
        _broker_url(request)
        row = load_owned(
            session=session, principal=principal, object_type=ObjectType.VEN, object_id=ven_id
        )
        prefix = ven_prefix(ven_id, row.client_id)
        if prefix is None:  # an owner whose client id cannot name a topic: nothing published
            raise ApiError(404, f"no MQTT topics for ven {ven_id!r}")
        if suffix:
            return _topics(collection_topics(f"{prefix}/{suffix}"))
        return _topics(object_topics(prefix))

    _add(
        "/mqtt/topics/vens/{venID}" + (f"/{suffix}" if suffix else ""),
        operation_id,
        what,
        endpoint,
    )


_ven_route("", "listAllMqttNotifierTopicsVen", "a ven")
_ven_route("events", "listAllMqttNotifierTopicsVenEvents", "events targeted for a ven")
_ven_route("programs", "listAllMqttNotifierTopicsVenPrograms", "programs targeted for a ven")
_ven_route("resources", "listAllMqttNotifierTopicsVenResources", "resources for a ven")
