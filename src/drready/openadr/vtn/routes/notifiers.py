"""``/notifiers``: the notification protocols the VTN offers (C1). Webhooks only: the MQTT
topic endpoints answer 404 with a problem saying MQTT is not offered (their responses in
openadr3.yaml list 404 but not 501)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from drready.openadr.vtn.deps import Principal, require_scopes
from drready.openadr.vtn.errors import ApiError
from drready.security.tokens import READ_ALL, READ_BL, READ_TARGETS, READ_VEN_OBJECTS

router = APIRouter(prefix="/notifiers", tags=["notifiers"])

# openadr3.yaml asks read_all for GET /notifiers, which VENs do not hold by default; every
# client needs to discover the notifiers, so any read scope is accepted.
Reader = Annotated[
    Principal, Depends(require_scopes(READ_ALL, READ_BL, READ_TARGETS, READ_VEN_OBJECTS))
]

_NO_MQTT = "MQTT notifier not offered by this VTN: GET /notifiers lists WEBHOOK only"

_MQTT_PATHS = (
    "/mqtt/topics/programs",
    "/mqtt/topics/programs/{programID}",
    "/mqtt/topics/programs/{programID}/events",
    "/mqtt/topics/events",
    "/mqtt/topics/reports",
    "/mqtt/topics/subscriptions",
    "/mqtt/topics/vens",
    "/mqtt/topics/vens/{venID}",
    "/mqtt/topics/vens/{venID}/events",
    "/mqtt/topics/vens/{venID}/programs",
    "/mqtt/topics/vens/{venID}/resources",
    "/mqtt/topics/resources",
)


@router.get("")
async def list_all_notifiers(principal: Reader) -> dict[str, bool]:
    """listAllNotifiers: ``{"WEBHOOK": true}``."""
    return {"WEBHOOK": True}


def _mqtt_not_offered(principal: Reader) -> None:
    raise ApiError(404, _NO_MQTT)


for _path in _MQTT_PATHS:
    router.add_api_route(
        _path,
        _mqtt_not_offered,
        methods=["GET"],
        summary="MQTT topics (not offered: 404)",
        responses={404: {"description": _NO_MQTT}},
        include_in_schema=False,  # not offered, so not in this VTN's own OpenAPI document
    )
