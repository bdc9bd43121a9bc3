"""OpenADR 3.1 wire models against the published spec (C1 route ii, D1, D6).

Every object type is built from a spec example (User Guide / Definition.md) or a realistic
drready one, serialised with ``to_wire``, validated against its ``components/schemas`` entry,
parsed back with ``from_wire`` and checked for camelCase keys. Bad inputs must fail naming the
field by its wire name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from drready.openadr import spec
from drready.openadr.models import (
    DURATION_INFINITY,
    START_NOW,
    AuthError,
    AuthErrorCode,
    AuthServerInfo,
    BlResourceCreate,
    BlVenCreate,
    ClientCredentialRequest,
    ClientCredentialResponse,
    Event,
    EventCreate,
    EventPayloadDescriptor,
    EventPayloadType,
    Interval,
    IntervalPeriod,
    MqttAuthenticationAnonymous,
    MqttAuthenticationCertificate,
    MqttAuthenticationOauth2BearerToken,
    MqttNotifierBinding,
    Notification,
    NotifierOperationsTopics,
    NotifiersResponse,
    NotifierTopicsResponse,
    OadrModel,
    ObjectOperation,
    ObjectType,
    Operation,
    Point,
    Problem,
    Program,
    ProgramCreate,
    ProgramDescription,
    ReadingType,
    Report,
    ReportCreate,
    ReportDescriptor,
    ReportPayloadDescriptor,
    ReportPayloadType,
    ReportResource,
    Resource,
    ResourceCreate,
    Subscription,
    SubscriptionCreate,
    Unit,
    ValuesMap,
    Ven,
    VenCreate,
    VenResourceCreate,
    VenVenCreate,
    format_duration,
    from_wire,
    is_infinite_duration,
    parse_duration,
    problem,
    to_wire,
)

JST = timezone(timedelta(hours=9), "JST")
T0 = datetime(2025, 7, 1, 13, 0, tzinfo=JST)  # a weekday afternoon PV-surplus window
NOW = datetime(2025, 6, 30, 18, 5, 12, tzinfo=JST)

# --- spec examples (JSON as printed, timestamps made RFC 3339 where the example has "17:15:16") --

UG_7_2_1_PROGRAM = {"programName": "minimalProgram"}
UG_7_2_3_EVENT = {
    "eventName": "simplePriceEvent",
    "programID": "0",
    "intervalPeriod": {"start": "2023-02-10T00:00:00.000Z", "duration": "PT1H"},
    "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": [0.17]}]}],
}
UG_7_2_5_REPORT = {
    "reportName": "minimalReport",
    "eventID": "0",
    "clientName": "myClient",
    "resources": [],
}
# Example 7.3-1 omits the descriptor's objectType, which the yaml requires: added.
UG_7_3_1_EVENT = {
    "eventName": "multiPriceEvent",
    "programID": "44",
    "payloadDescriptors": [
        {
            "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
            "payloadType": "PRICE",
            "units": "KWH",
            "currency": "USD",
        }
    ],
    "intervals": [
        {
            "id": 0,
            "intervalPeriod": {"start": "2025-06-25T00:00:00.000Z", "duration": "PT3H"},
            "payloads": [{"type": "PRICE", "values": [0.17, 0.03, 0.11]}],
        }
    ],
}
DEF_FIG_4_SUBSCRIPTION = {
    "clientName": "myClient",
    "programID": "44",
    "objectOperations": [
        {
            "callbackUrl": "https://myserver.com/callbacks",
            "operations": ["CREATE", "UPDATE"],
            "objects": ["EVENT", "PROGRAM"],
        }
    ],
}
UG_8_13_1_VEN = {
    "venName": "VENID_0999",
    "objectType": "BL_VEN_REQUEST",
    "clientID": "ven_client",
    "targets": ["ven_0999", "group1", "areaX"],
}
UG_8_13_2_RESOURCE = {
    "resourceName": "RESOURCE_0999",
    "objectType": "BL_RESOURCE_REQUEST",
    "clientID": "ven_client",
    "venID": "0",
    "targets": ["resource_0999"],
}
UG_8_13_7_RESOURCE = {
    "clientID": "ven_client",
    "createdDateTime": "2025-02-13T12:21:14Z",  # "12:21:14" in the guide
    "modificationDateTime": "2025-02-13T12:21:14Z",  # absent in the guide, required by the yaml
    "id": "0",
    "objectType": "RESOURCE",
    "resourceName": "RESOURCE_0999",
    "targets": ["resource_0999"],
    "venID": "0",
}
DEF_FIG_3_PROBLEM = {"title": "Not Found", "status": 404, "detail": "Unrecognized URL"}
DEF_GET_NOTIFIERS = {
    "MQTT": {
        "URIS": ["mqtts://broker.vtn.company.com"],
        "authentication": {"method": "ANONYMOUS"},
        "serialization": "JSON",
    },
    "WEBHOOK": True,
}
DEF_GET_TOPICS = {
    "topics": {
        "ALL": "programs/+",
        "CREATE": "programs/create",
        "DELETE": "programs/delete",
        "UPDATE": "programs/update",
    }
}

# --- realistic drready objects ---------------------------------------------------------------

SLOT = timedelta(minutes=30)

DISPATCH_DESCRIPTOR = EventPayloadDescriptor(
    payload_type=EventPayloadType.DISPATCH_SETPOINT_RELATIVE, units=Unit.KW
)
USAGE_DESCRIPTOR = ReportPayloadDescriptor(
    payload_type=ReportPayloadType.USAGE,
    reading_type=ReadingType.DIRECT_READ,
    units=Unit.KWH,
    accuracy=0.01,
    confidence=95,
)
USAGE_REQUEST = ReportDescriptor(
    payload_type=ReportPayloadType.USAGE,
    reading_type=ReadingType.DIRECT_READ,
    units=Unit.KWH,
    aggregate=False,
    start_interval=0,
    num_intervals=4,
    historical=True,
)
# Requested extra consumption per 30-minute slot [kW] (up-DR into a PV surplus).
DISPATCH_INTERVALS = tuple(
    Interval(
        id=i,
        payloads=(ValuesMap(type=EventPayloadType.DISPATCH_SETPOINT_RELATIVE, values=(kw,)),),
    )
    for i, kw in enumerate((1.2, 1.5, 1.5, 0.8))
)

PROGRAM_CREATE = ProgramCreate(
    program_name="DRREADY_UP_DR_2025",
    interval_period=IntervalPeriod(start=datetime(2025, 4, 1, tzinfo=JST), duration="P365D"),
    program_descriptions=(ProgramDescription(url="https://servicer.example.jp/programs/up-dr"),),
    payload_descriptors=(
        DISPATCH_DESCRIPTOR,
        EventPayloadDescriptor(payload_type=EventPayloadType.PRICE, units=Unit.KWH, currency="JPY"),
        USAGE_DESCRIPTOR,
    ),
    attributes=(
        ValuesMap(type="PROGRAM_LONG_NAME", values=("上げDR 家庭用ヒートポンプ給湯機",)),
        ValuesMap(type="COUNTRY", values=("JP",)),
        ValuesMap(type="BINDING_EVENTS", values=(False,)),
    ),
    targets=("hpwh", "area-tokyo"),
)

EVENT_CREATE = EventCreate(
    program_id="prog-1",
    event_name="up-dr 2025-07-01 13:00",
    priority=0,
    targets=("group-maker-a",),
    payload_descriptors=(DISPATCH_DESCRIPTOR,),
    report_descriptors=(USAGE_REQUEST,),
    interval_period=IntervalPeriod(start=T0, duration="PT30M", randomize_start="PT0S"),
    intervals=DISPATCH_INTERVALS,
)

REPORT_CREATE = ReportCreate(
    event_id="ev-20250701-1300",
    client_name="maker-a-cloud",
    report_name="usage 2025-07-01 13:00",
    payload_descriptors=(
        ReportPayloadDescriptor(
            payload_type=ReportPayloadType.USAGE,
            reading_type=ReadingType.ESTIMATED,
            units=Unit.KWH,
        ),
    ),
    resources=(
        ReportResource(
            resource_name="HPWH-000005-0001",
            interval_period=IntervalPeriod(start=T0, duration="PT30M"),
            intervals=tuple(
                Interval(id=i, payloads=(ValuesMap(type="USAGE", values=(kwh,)),))
                for i, kwh in enumerate((0.61, 0.74))
            ),
        ),
        ReportResource(
            resource_name="AGGREGATED_REPORT",
            intervals=(
                Interval(
                    id=0,
                    interval_period=IntervalPeriod(start=T0 + SLOT, duration="PT30M"),
                    payloads=(ValuesMap(type="USAGE", values=(812.5,)),),
                ),
            ),
        ),
    ),
)

SUBSCRIPTION_CREATE = SubscriptionCreate(
    client_name="maker-a-cloud",
    program_id="prog-1",
    object_operations=(
        ObjectOperation(
            objects=(ObjectType.EVENT, ObjectType.PROGRAM),
            operations=(Operation.CREATE, Operation.UPDATE, Operation.DELETE),
            callback_url="https://maker-a.example.jp/openadr/callbacks",
            bearer_token="NCEJGI9E8ER9802UT9HUG",
        ),
    ),
    targets=("group-maker-a",),
)

VEN_VEN_CREATE = VenVenCreate(
    ven_name="gateway-0001",
    attributes=(ValuesMap(type="DESCRIPTION", values=("home gateway, Setagaya",)),),
)
BL_VEN_CREATE = BlVenCreate(
    client_id="maker-a-cloud",
    ven_name="maker-a-cloud",
    targets=("group-maker-a", "area-tokyo"),
    attributes=(ValuesMap(type="MAX_POWER_CONSUMPTION", values=(4500.0,)),),
)
BL_RESOURCE_CREATE = BlResourceCreate(
    client_id="maker-a-cloud",
    resource_name="HPWH-000005-0001",
    ven_id="ven-1",
    targets=("unit-000005-0001",),
    attributes=(
        ValuesMap(type="LOCATION", values=(139.65, 35.64)),
        ValuesMap(type="MAX_POWER_CONSUMPTION", values=(1.5,)),
    ),
)
VEN_RESOURCE_CREATE = VenResourceCreate(resource_name="HPWH-000005-0002", ven_id="ven-1")

PROGRAM = Program.from_create(PROGRAM_CREATE, object_id="prog-1", now=NOW)
EVENT = Event.from_create(EVENT_CREATE, object_id="ev-20250701-1300", now=NOW)
REPORT = Report.from_create(REPORT_CREATE, object_id="rep-1", now=NOW, client_id="maker-a-cloud")
SUBSCRIPTION = Subscription.from_create(
    SUBSCRIPTION_CREATE, object_id="sub-1", now=NOW, client_id="maker-a-cloud"
)
VEN = Ven.from_create(BL_VEN_CREATE, object_id="ven-1", now=NOW)
RESOURCE = Resource.from_create(BL_RESOURCE_CREATE, object_id="res-1", now=NOW)

# (model, the camelCase key it must carry, the snake_case spelling that must not appear)
CASES: list[tuple[OadrModel, str, str]] = [
    (from_wire(ProgramCreate, UG_7_2_1_PROGRAM), "programName", "program_name"),
    (PROGRAM_CREATE, "programDescriptions", "program_descriptions"),
    (PROGRAM, "createdDateTime", "created_date_time"),
    (from_wire(EventCreate, UG_7_2_3_EVENT), "intervalPeriod", "interval_period"),
    (from_wire(EventCreate, UG_7_3_1_EVENT), "payloadDescriptors", "payload_descriptors"),
    (EVENT_CREATE, "reportDescriptors", "report_descriptors"),
    (EVENT, "modificationDateTime", "modification_date_time"),
    (from_wire(ReportCreate, UG_7_2_5_REPORT), "eventID", "event_id"),
    (REPORT_CREATE, "clientName", "client_name"),
    (REPORT, "clientID", "client_id"),
    (
        from_wire(SubscriptionCreate, DEF_FIG_4_SUBSCRIPTION),
        "objectOperations",
        "object_operations",
    ),
    (SUBSCRIPTION_CREATE, "objectOperations", "object_operations"),
    (SUBSCRIPTION, "objectType", "object_type"),
    (from_wire(VenCreate, UG_8_13_1_VEN), "venName", "ven_name"),
    (BL_VEN_CREATE, "clientID", "client_id"),
    (VEN_VEN_CREATE, "venName", "ven_name"),
    (VEN, "venName", "ven_name"),
    (from_wire(ResourceCreate, UG_8_13_2_RESOURCE), "resourceName", "resource_name"),
    (BL_RESOURCE_CREATE, "venID", "ven_id"),
    (VEN_RESOURCE_CREATE, "venID", "ven_id"),
    (RESOURCE, "resourceName", "resource_name"),
    (from_wire(Resource, UG_8_13_7_RESOURCE), "venID", "ven_id"),
    (
        Notification(object_type=ObjectType.EVENT, operation=Operation.CREATE, object=EVENT),
        "objectType",
        "object_type",
    ),
    (
        Notification(
            object_type=ObjectType.PROGRAM,
            operation=Operation.UPDATE,
            object=PROGRAM,
            targets=("hpwh",),
        ),
        "objectType",
        "object_type",
    ),
    (
        Notification(object_type=ObjectType.REPORT, operation=Operation.CREATE, object=REPORT),
        "objectType",
        "object_type",
    ),
    (
        Notification(object_type=ObjectType.VEN, operation=Operation.DELETE, object=VEN),
        "objectType",
        "object_type",
    ),
    (
        Notification(object_type=ObjectType.RESOURCE, operation=Operation.READ, object=RESOURCE),
        "objectType",
        "object_type",
    ),
    (
        Notification(
            object_type=ObjectType.SUBSCRIPTION, operation=Operation.CREATE, object=SUBSCRIPTION
        ),
        "objectType",
        "object_type",
    ),
    (from_wire(Problem, DEF_FIG_3_PROBLEM), "title", "no_such_key"),
    (
        Problem(
            type="https://servicer.example.jp/problems/constraint-violation",
            title="Bad Request",
            status=400,
            detail="programName: String should have at most 128 characters",
            instance="https://servicer.example.jp/programs",
        ),
        "detail",
        "no_such_key",
    ),
    (
        ClientCredentialRequest(
            grant_type="client_credentials",
            client_id="ven_client_99",
            client_secret="ven_secret_99",
            scope="read_all",
        ),
        "client_secret",
        "clientSecret",
    ),
    (
        ClientCredentialResponse(
            access_token="MTQ0NjJkZmQ5OTM2NDE1ZTZjNGZmZjI3",
            token_type="Bearer",
            expires_in=3600,
            refresh_token="IwOGYzYTlmM2YxOTQ5MGE3YmNmMDFkNTVk",
            scope="read_all",
        ),
        "access_token",
        "accessToken",
    ),
    (
        AuthError(
            error=AuthErrorCode.INVALID_REQUEST,
            error_description="Request was missing the 'client_id' parameter.",
            error_uri="https://servicer.example.jp/docs/auth",
        ),
        "error_description",
        "errorDescription",
    ),
    (AuthServerInfo(token_url="https://auth.servicer.example.jp/token"), "tokenURL", "token_url"),
    (from_wire(NotifiersResponse, DEF_GET_NOTIFIERS), "WEBHOOK", "webhook"),
    (
        NotifiersResponse(
            webhook=True,
            mqtt=MqttNotifierBinding(
                uris=("mqtts://broker.servicer.example.jp:8883",),
                serialization="JSON",
                authentication=MqttAuthenticationOauth2BearerToken(
                    method="OAUTH2_BEARER_TOKEN", username="{clientID}"
                ),
            ),
        ),
        "MQTT",
        "mqtt",
    ),
    (
        MqttNotifierBinding(
            uris=("mqtts://broker.servicer.example.jp:8883",),
            serialization="JSON",
            authentication=MqttAuthenticationCertificate(
                method="CERTIFICATE",
                ca_cert="-----BEGIN CERTIFICATE-----",
                client_cert="-----BEGIN CERTIFICATE-----",
                client_key="-----BEGIN PRIVATE KEY-----",
            ),
        ),
        "URIS",
        "uris",
    ),
    (from_wire(NotifierTopicsResponse, DEF_GET_TOPICS), "topics", "no_such_key"),
    (NotifierOperationsTopics(update="events/update", delete="events/delete"), "UPDATE", "update"),
    (IntervalPeriod(start=START_NOW, duration=DURATION_INFINITY), "start", "no_such_key"),
    (IntervalPeriod(start=T0, randomize_start="PT5M"), "randomizeStart", "randomize_start"),
    (DISPATCH_INTERVALS[0], "payloads", "no_such_key"),
    (
        ValuesMap(type="CURVE", values=(Point(x=0.0, y=1.0), Point(x=1, y=0.5))),
        "values",
        "no_such_key",
    ),
    (Point(x=1.0, y=2.0), "x", "no_such_key"),
    (DISPATCH_DESCRIPTOR, "payloadType", "payload_type"),
    (USAGE_DESCRIPTOR, "readingType", "reading_type"),
    (USAGE_REQUEST, "startInterval", "start_interval"),
    (MqttAuthenticationAnonymous(method="ANONYMOUS"), "method", "no_such_key"),
    (
        MqttAuthenticationOauth2BearerToken(method="OAUTH2_BEARER_TOKEN", username="{clientID}"),
        "username",
        "no_such_key",
    ),
    (
        MqttAuthenticationCertificate(
            method="CERTIFICATE", ca_cert="ca", client_cert="cert", client_key="key"
        ),
        "caCert",
        "ca_cert",
    ),
]


def _case_id(case: tuple[OadrModel, str, str]) -> str:
    return f"{type(case[0]).__name__}-{case[1]}"


def _keys(node: Any) -> Iterator[str]:
    """Every object key in a JSON document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


SNAKE_CASE_MODELS = (ClientCredentialRequest, ClientCredentialResponse, AuthError)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_wire_round_trip_validates_against_spec(case: tuple[OadrModel, str, str]) -> None:
    model, camel, snake = case
    assert isinstance(model, OadrModel)
    wire = to_wire(model)
    spec.validate(model.SPEC_SCHEMA, wire)
    assert from_wire(type(model), wire) == model
    keys = set(_keys(wire))
    assert camel in keys
    assert snake not in keys
    if not isinstance(model, SNAKE_CASE_MODELS):
        assert not [k for k in keys if "_" in k]  # camelCase everywhere on the wire


def test_every_spec_object_schema_has_a_model() -> None:
    modelled = {model.SPEC_SCHEMA for model, _, _ in CASES}
    # Primitive schemas become field types; the oneOf unions are VenCreate and ResourceCreate;
    # objectMetadata is the mixin of every full object; authError etc. are covered above.
    unmodelled = {
        "objectID",
        "clientID",
        "venName",
        "clientName",
        "target",
        "resourceName",
        "units",
        "readingType",
        "objectTypes",
        "dateTime",
        "duration",
        "venRequest",
        "resourceRequest",
        "objectMetadata",
    }
    assert set(spec.schema_names()) - modelled == unmodelled


@pytest.mark.parametrize(
    ("cls", "example"),
    [
        (ProgramCreate, UG_7_2_1_PROGRAM),
        (ReportCreate, UG_7_2_5_REPORT),
        (SubscriptionCreate, DEF_FIG_4_SUBSCRIPTION),
        (VenCreate, UG_8_13_1_VEN),
        (ResourceCreate, UG_8_13_2_RESOURCE),
        (Resource, UG_8_13_7_RESOURCE),
        (Problem, DEF_FIG_3_PROBLEM | {"type": "about:blank"}),
        (NotifiersResponse, DEF_GET_NOTIFIERS),
        (NotifierTopicsResponse, DEF_GET_TOPICS),
    ],
)
def test_spec_examples_come_back_unchanged(cls: Any, example: dict[str, Any]) -> None:
    assert to_wire(from_wire(cls, example)) == example


def test_timestamps_keep_their_offset_on_the_wire() -> None:
    wire = to_wire(EVENT)
    assert wire["createdDateTime"] == "2025-06-30T18:05:12+09:00"
    assert wire["intervalPeriod"]["start"] == "2025-07-01T13:00:00+09:00"
    assert to_wire(from_wire(EventCreate, UG_7_2_3_EVENT))["intervalPeriod"]["start"] == (
        "2023-02-10T00:00:00Z"
    )


def test_uneven_instants_compare_equal_across_offsets() -> None:
    utc = IntervalPeriod(start=T0.astimezone(UTC))
    assert utc == IntervalPeriod(start=T0)
    assert to_wire(utc)["start"] == "2025-07-01T04:00:00Z"


def test_vens_and_resources_choose_their_request_type_by_object_type() -> None:
    assert isinstance(from_wire(VenCreate, UG_8_13_1_VEN), BlVenCreate)
    assert isinstance(from_wire(VenCreate, to_wire(VEN_VEN_CREATE)), VenVenCreate)
    assert isinstance(from_wire(ResourceCreate, to_wire(VEN_RESOURCE_CREATE)), VenResourceCreate)
    with pytest.raises(ValidationError, match="objectType"):
        from_wire(VenCreate, UG_8_13_1_VEN | {"objectType": "VEN"})


# --- lifecycle -------------------------------------------------------------------------------


def test_create_ignores_vtn_provisioned_properties() -> None:
    """Definition.md "POST and PUT": the VTN SHALL ignore id, timestamps and objectType."""
    assert from_wire(ProgramCreate, to_wire(PROGRAM)) == PROGRAM_CREATE
    assert from_wire(EventCreate, to_wire(EVENT)) == EVENT_CREATE
    assert from_wire(ReportCreate, to_wire(REPORT)) == REPORT_CREATE  # clientID dropped too
    assert from_wire(SubscriptionCreate, to_wire(SUBSCRIPTION)) == SUBSCRIPTION_CREATE


def test_from_create_and_replaced() -> None:
    later = NOW + timedelta(hours=1)
    renamed = PROGRAM_CREATE.model_copy(update={"program_name": "DRREADY_UP_DR_2025b"})
    updated = PROGRAM.replaced(renamed, now=later)
    assert (updated.id, updated.created_date_time) == (PROGRAM.id, PROGRAM.created_date_time)
    assert updated.modification_date_time == later
    assert updated.program_name == "DRREADY_UP_DR_2025b"
    assert updated.object_type is ObjectType.PROGRAM
    assert PROGRAM.program_name == "DRREADY_UP_DR_2025"  # frozen: the old object is untouched
    assert REPORT.replaced(REPORT_CREATE, now=later).client_id == "maker-a-cloud"
    self_made = Ven.from_create(VEN_VEN_CREATE, object_id="ven-2", now=NOW, client_id="gw-1")
    assert self_made.client_id == "gw-1"
    assert self_made.targets is None
    with pytest.raises(ValidationError):
        PROGRAM.program_name = "x"  # type: ignore[misc]


def test_private_strings_are_kept() -> None:
    """Definition.md "Private Strings": non-standard payload types, units, reading types."""
    desc = from_wire(
        ReportPayloadDescriptor,
        {
            "objectType": "REPORT_PAYLOAD_DESCRIPTOR",
            "payloadType": "DRREADY_STORED_HEAT",
            "readingType": "SIMULATED",
            "units": "MJ",
        },
    )
    assert desc.payload_type == "DRREADY_STORED_HEAT"
    assert desc.units == "MJ"
    assert desc.reading_type == "SIMULATED"
    assert EventPayloadType("PRIVATE_ALGORITHM") == "PRIVATE_ALGORITHM"
    assert to_wire(desc)["payloadType"] == "DRREADY_STORED_HEAT"
    with pytest.raises(ValidationError):
        from_wire(ReportPayloadDescriptor, to_wire(desc) | {"units": "X" * 129})


def test_problem_helper_and_extension_members() -> None:
    p = problem(404, "Not Found", "Unrecognized URL")
    assert to_wire(p) == DEF_FIG_3_PROBLEM | {"type": "about:blank"}
    spec.validate("problem", to_wire(p))
    extended = from_wire(Problem, DEF_FIG_3_PROBLEM | {"invalidParams": ["programName"]})
    assert to_wire(extended)["invalidParams"] == ["programName"]
    with pytest.raises(ValidationError, match="status"):
        problem(600, "Nope")
    with pytest.raises(ValidationError, match="instance"):
        Problem(instance="not a uri")


# --- bad inputs ------------------------------------------------------------------------------


def _error_locs(err: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(e["loc"]) for e in err.errors()]


BAD_INPUTS = [
    pytest.param(ProgramCreate, "programRequest", {"programName": "x" * 129}, ("programName",),
                 id="programName-too-long"),
    pytest.param(ProgramCreate, "programRequest", {"programName": ""}, ("programName",),
                 id="programName-empty"),
    pytest.param(ReportCreate, "reportRequest", {"clientName": "c", "resources": []}, ("eventID",),
                 id="eventID-missing"),
    pytest.param(EventCreate, "eventRequest",
                 {"programID": "0", "intervalPeriod": {"start": "2023-02-10T00:00:00"}},
                 ("intervalPeriod", "start"), id="naive-timestamp"),
    pytest.param(EventCreate, "eventRequest",
                 {"programID": "0", "intervalPeriod": {"start": "2023-02-10 00:00Z"}},
                 ("intervalPeriod", "start"), id="timestamp-without-seconds"),
    pytest.param(EventCreate, "eventRequest", {"programID": "0", "duration": "1 hour"},
                 ("duration",), id="duration-1-hour"),
    pytest.param(EventCreate, "eventRequest",
                 {"programID": "0", "intervalPeriod": {"randomizeStart": "PT"}},
                 ("intervalPeriod", "randomizeStart"), id="duration-empty-time"),
    pytest.param(EventCreate, "eventRequest", {"programID": "bad id"}, ("programID",),
                 id="objectID-pattern"),
    pytest.param(EventCreate, "eventRequest", {"programID": "0", "priority": -1}, ("priority",),
                 id="priority-negative"),
    pytest.param(EventCreate, "eventRequest", {"programID": "0", "intervalPeriod": None},
                 ("intervalPeriod",), id="null-not-nullable"),
    pytest.param(EventCreate, "eventRequest",
                 {"programID": "0", "intervals": [{"id": "0", "payloads": []}]},
                 ("intervals", 0, "id"), id="interval-id-string"),
    pytest.param(EventCreate, "eventRequest",
                 {"programID": "0", "intervals": [{"id": 2**31, "payloads": []}]},
                 ("intervals", 0, "id"), id="interval-id-int32"),
    pytest.param(ProgramCreate, "programRequest",
                 {"programName": "p", "payloadDescriptors": [{"payloadType": "PRICE"}]},
                 ("payloadDescriptors", 0), id="descriptor-objectType-missing"),
    pytest.param(SubscriptionCreate, "subscriptionRequest",
                 DEF_FIG_4_SUBSCRIPTION | {"objectOperations": [
                     {"callbackUrl": "not a url", "operations": ["CREATE"], "objects": ["EVENT"]}
                 ]},
                 ("objectOperations", 0, "callbackUrl"), id="callbackUrl-not-uri"),
    pytest.param(SubscriptionCreate, "subscriptionRequest",
                 DEF_FIG_4_SUBSCRIPTION | {"objectOperations": [
                     {"callbackUrl": "https://x.jp", "operations": ["POST"], "objects": ["EVENT"]}
                 ]},
                 ("objectOperations", 0, "operations", 0), id="operation-POST"),
    pytest.param(ReportPayloadDescriptor, "reportPayloadDescriptor",
                 {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": "USAGE",
                  "confidence": 101},
                 ("confidence",), id="confidence-over-100"),
    pytest.param(Problem, "problem", {"status": 99}, ("status",), id="status-below-100"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "schema", "data", "loc"), BAD_INPUTS)
def test_bad_input_names_the_field(
    cls: type[BaseModel], schema: str, data: dict[str, Any], loc: tuple[int | str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        from_wire(cls, data)
    assert loc in _error_locs(caught.value)
    with pytest.raises(jsonschema.ValidationError):  # the spec refuses it too
        spec.validate(schema, data)


@pytest.mark.parametrize(
    ("cls", "data", "loc"),
    [
        (ProgramCreate, {"programName": "p", "programId": "0"}, ("programId",)),  # misspelt
        (ValuesMap, {"type": "SIMPLE", "values": [1], "value": 1}, ("value",)),
        (Interval, {"id": 0, "payloads": [{"type": "X", "values": [None]}]}, None),
        (ReportDescriptor, {"payloadType": "USAGE", "aggregate": 1}, ("aggregate",)),
    ],
)
def test_stricter_than_json_schema(
    cls: type[BaseModel], data: dict[str, Any], loc: tuple[int | str, ...] | None
) -> None:
    """Unknown keys (extra="forbid") and 1-for-true: refused here, allowed or not by the yaml."""
    with pytest.raises(ValidationError) as caught:
        from_wire(cls, data)
    if loc is not None:
        assert loc in _error_locs(caught.value)


@pytest.mark.parametrize(
    ("cls", "data", "loc"),
    [
        (Program, to_wire(PROGRAM) | {"objectType": "EVENT"}, ("objectType",)),
        (Event, to_wire(EVENT) | {"objectType": "PROGRAM"}, ("objectType",)),
        (Ven, to_wire(VEN) | {"objectType": "BL_VEN_REQUEST"}, ("objectType",)),
        (Program, {k: v for k, v in to_wire(PROGRAM).items() if k != "objectType"}, ()),
        (Program, {k: v for k, v in to_wire(PROGRAM).items() if k != "id"}, ("id",)),
    ],
)
def test_wrong_or_missing_object_type(
    cls: type[BaseModel], data: dict[str, Any], loc: tuple[int | str, ...]
) -> None:
    with pytest.raises(ValidationError, match=r"objectType|id") as caught:
        from_wire(cls, data)
    assert loc in _error_locs(caught.value)


def test_notification_object_type_must_match_its_object() -> None:
    wire = to_wire(Notification(object_type=ObjectType.EVENT, operation="CREATE", object=EVENT))
    with pytest.raises(ValidationError, match="objectType"):
        from_wire(Notification, wire | {"objectType": "PROGRAM"})
    with pytest.raises(ValidationError, match="objectType"):
        from_wire(Notification, wire | {"object": wire["object"] | {"objectType": "REPORT"}})


def test_python_none_means_absent() -> None:
    """In Python None leaves a non-nullable property out; only the wire refuses null."""
    period = IntervalPeriod(start=T0, duration=None)
    assert to_wire(period) == {"start": "2025-07-01T13:00:00+09:00"}


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("PT1H", timedelta(hours=1)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("PT30M", timedelta(minutes=30)),
        ("PT0S", timedelta(0)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("-PT15M", timedelta(minutes=-15)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT90M", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    spec.validate("duration", text)


@pytest.mark.parametrize("text", ["1 hour", "PT", "P", "P1DT", "PT1H\n", "P1.5D", "pt1h", ""])
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1Y", "P1M", DURATION_INFINITY])
def test_parse_duration_refuses_calendar_units(text: str) -> None:
    with pytest.raises(ValueError, match="years or months"):
        parse_duration(text)
    spec.validate("duration", text)


def test_infinity() -> None:
    assert is_infinite_duration("P9999Y")
    assert not is_infinite_duration("PT1H")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(hours=1), "PT1H"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=400, seconds=1), "P400DT1S"),
        (timedelta(minutes=-30), "-PT30M"),
        (timedelta(seconds=1, microseconds=250_000), "PT1.25S"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@given(st.integers(min_value=-400 * 86_400, max_value=400 * 86_400))
def test_duration_round_trip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert spec.schema_validator("duration").is_valid(text)


@given(st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)))
def test_duration_round_trip_with_microseconds(delta: timedelta) -> None:
    assert parse_duration(format_duration(delta)) == delta


# --- the spec itself -------------------------------------------------------------------------


def test_spec_document_loads() -> None:
    doc = spec.spec_document()
    assert doc["openapi"] == "3.0.0"
    assert "/programs" in doc["paths"]
    assert len(spec.schema_names()) == len(doc["components"]["schemas"]) >= 40


@pytest.mark.parametrize("name", spec.schema_names())
def test_every_schema_compiles(name: str) -> None:
    for errata in (True, False):
        validator = spec.schema_validator(name, errata=errata)
        type(validator).check_schema(validator.schema["components"]["schemas"][name])


def test_openapi_isms_are_converted() -> None:
    spec.validate("units", None)  # nullable: true
    spec.validate("eventRequest", {"programID": "0", "eventName": None, "targets": None})
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("problem", {"status": 600})  # exclusiveMaximum: true
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("dateTime", "2023-02-10T00:00:00")  # format: date-time, offset required
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("interval", {"id": 2**31, "payloads": []})  # format: int32
    with pytest.raises(KeyError):
        spec.schema_validator("noSuchSchema")


def test_notification_schema_needs_the_erratum() -> None:
    """Without the discriminator, a subscription with programID is also a valid event."""
    wire = to_wire(
        Notification(
            object_type=ObjectType.SUBSCRIPTION, operation=Operation.CREATE, object=SUBSCRIPTION
        )
    )
    spec.validate("notification", wire)
    with pytest.raises(jsonschema.ValidationError, match="valid under each of"):
        spec.validate("notification", wire, errata=False)


def test_ven_and_resource_schemas_need_the_erratum() -> None:
    """allOf [objectMetadata, BlVenRequest] wants objectType VEN and BL_VEN_REQUEST at once."""
    for full in (to_wire(VEN), to_wire(RESOURCE)):
        name = full["objectType"].lower()
        spec.validate(name, full)
        for object_type in (full["objectType"], f"BL_{full['objectType']}_REQUEST"):
            with pytest.raises(jsonschema.ValidationError, match=r"objectType|is not one of"):
                spec.validate(name, full | {"objectType": object_type}, errata=False)


@pytest.mark.parametrize(
    ("name", "enum"),
    [
        ("event-interval-payloads", EventPayloadType),
        ("report-payloads", ReportPayloadType),
        ("reading-types", ReadingType),
        ("units", Unit),
    ],
)
def test_enums_match_the_spec_enumerations(name: str, enum: Any) -> None:
    assert tuple(enum.__members__) == spec.enumeration(name)
    assert all(member.value == member.name for member in enum)


def test_enumeration_lists() -> None:
    assert "PROGRAM_LONG_NAME" in spec.enumeration("program-attributes")
    assert spec.enumeration("ven-resource-attributes")[0] == "LOCATION"
    assert set(spec.ENUMERATION_NAMES) == {
        "event-interval-payloads",
        "report-payloads",
        "reading-types",
        "units",
        "program-attributes",
        "ven-resource-attributes",
    }
    with pytest.raises(KeyError):
        spec.enumeration("target-types")  # named in the enumerations README, not shipped


@pytest.mark.parametrize(
    ("enumeration", "payload"),
    [("event-interval-payloads", vm) for interval in DISPATCH_INTERVALS for vm in interval.payloads]
    + [
        ("report-payloads", vm)
        for resource in REPORT_CREATE.resources
        for interval in resource.intervals
        for vm in interval.payloads
    ]
    + [("ven-resource-attributes", vm) for vm in BL_RESOURCE_CREATE.attributes or ()],
)
def test_example_payload_values_follow_the_enumeration_schemas(
    enumeration: str, payload: ValuesMap
) -> None:
    definition = dict(spec.enumeration_document(enumeration)["definitions"][payload.type])
    definition.pop("$id")
    jsonschema.Draft202012Validator(definition).validate(to_wire(payload)["values"])
