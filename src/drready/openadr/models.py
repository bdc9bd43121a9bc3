"""OpenADR 3.1.0 wire models: pydantic v2 types for every object of ``openadr3.yaml``.

Serves C1 (the machine-readable server-to-server route ii: the DR servicer's VTN and the maker
clouds' / home gateways' VENs exchange exactly these JSON bodies), D1 (one typed data model, the
published one, mapped to :mod:`drready.domain` elsewhere) and D6 (ven and resource objects carry
the servicer's or the maker's grouping: ``targets``, one VEN per gateway or per maker cloud).

Conventions
-----------
* One base, :class:`OadrModel`: immutable (``frozen=True``), camelCase on the wire through
  ``alias_generator=to_camel`` (``programName``, ``createdDateTime``), with explicit aliases where
  the spec spells IDs in capitals (``programID``, ``eventID``, ``venID``, ``clientID``,
  ``tokenURL``, ``URL``, ``URIS``, ``WEBHOOK``, ``MQTT``). Arrays are tuples.
* ``extra="forbid"``: the yaml never sets ``additionalProperties``, so JSON Schema would let
  anything through, but the spec only *permits* a VTN to accept and drop unknown content
  (Definition.md "Required and optional properties", "Model Extension"); rejecting it turns a
  misspelt property (``programId``) into a 400 instead of a silent loss. Open on purpose:
  :class:`Problem` (RFC 7807 section 3.2 lets problem types add members) and
  :class:`ClientCredentialResponse` (RFC 6749 section 5.1: "The client MUST ignore unrecognized
  value names in the response").
* Lifecycle as types (openadr3-client): ``XxxCreate`` is what a client POSTs or PUTs; ``Xxx`` is
  what the VTN returns, adding ``id``, ``createdDateTime``, ``modificationDateTime`` and
  ``objectType``. Create types drop those four keys (and ``clientID`` of reports and
  subscriptions) when present, because "A VTN SHALL ignore objectID, createdDateTime,
  modificationDateTime, and objectType values included in representations used in POST and PUT
  requests" (Definition.md "POST and PUT"); ven and resource requests keep ``objectType``, their
  ``BL_…_REQUEST``/``VEN_…_REQUEST`` discriminator. :meth:`Program.from_create` and
  :meth:`Program.replaced` (on every full type) build the VTN's representation.
* Timestamps are :class:`~pydantic.AwareDatetime` in RFC 3339 ``date-time`` form (a ``T``,
  seconds, an offset); they serialise with their offset (``Z`` for UTC, ``+09:00`` for JST).
* Durations stay ISO 8601 strings on the model (``"PT1H"``; ``"P9999Y"`` means infinity, User
  Guide 7.3), matched by :data:`DURATION_PATTERN`; :func:`parse_duration` and
  :func:`format_duration` convert to and from :class:`~datetime.timedelta`.
* Optional properties that the yaml does not mark ``nullable`` (``intervalPeriod``, ``duration``,
  ``intervals``, …) are ``None`` in Python when absent, are left out by :func:`to_wire`, and a JSON
  ``null`` for them is rejected by :func:`from_wire`.
* Scalars are strict (``StrictInt``, ``StrictStr``, …): no ``"5"`` for an integer, no ``1.0``
  for an interval id, no ``1`` for a boolean, and timestamps only as RFC 3339 strings (never a
  Unix number). :func:`from_wire` also requires the ``objectType`` discriminators that have a
  Python default, as the yaml does.

References
----------
OpenADR Alliance, "OpenADR 3.1.0 Specification", ``openadr3.yaml`` (components/schemas),
``Definition.md``, ``User_Guide.md``. RFC 3339 (timestamps), ISO 8601-1:2019 clause 5.5.2
(durations), RFC 3986 (URIs), RFC 6749 (OAuth 2.0), RFC 7807 (problem details).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, overload

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "DURATION_INFINITY",
    "DURATION_PATTERN",
    "SPEC_DURATION_PATTERN",
    "START_NOW",
    "AnyObject",
    "AuthError",
    "AuthErrorCode",
    "AuthServerInfo",
    "BlResourceCreate",
    "BlVenCreate",
    "ClientCredentialRequest",
    "ClientCredentialResponse",
    "ClientId",
    "Duration",
    "Event",
    "EventCreate",
    "EventPayloadDescriptor",
    "EventPayloadType",
    "Interval",
    "IntervalPeriod",
    "MqttAuthentication",
    "MqttAuthenticationAnonymous",
    "MqttAuthenticationCertificate",
    "MqttAuthenticationOauth2BearerToken",
    "MqttNotifierBinding",
    "Notification",
    "NotifierOperationsTopics",
    "NotifierTopicsResponse",
    "NotifiersResponse",
    "OadrModel",
    "ObjectId",
    "ObjectOperation",
    "ObjectType",
    "Omittable",
    "Operation",
    "PayloadDescriptor",
    "PayloadValue",
    "Point",
    "Problem",
    "Program",
    "ProgramCreate",
    "ProgramDescription",
    "ReadingType",
    "Report",
    "ReportCreate",
    "ReportDescriptor",
    "ReportIntervals",
    "ReportPayloadDescriptor",
    "ReportPayloadType",
    "ReportResource",
    "Resource",
    "ResourceCreate",
    "Subscription",
    "SubscriptionCreate",
    "Target",
    "Timestamp",
    "Unit",
    "ValuesMap",
    "Ven",
    "VenCreate",
    "VenResourceCreate",
    "VenVenCreate",
    "format_duration",
    "from_wire",
    "is_infinite_duration",
    "is_rfc3339_date_time",
    "is_uri",
    "parse_duration",
    "problem",
    "to_wire",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# --- formats ---------------------------------------------------------------------------------

# RFC 3339 section 5.6 ``date-time``: full-date "T" full-time, offset mandatory.
_RFC3339_RE = re.compile(
    r"\A\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z"
)
# RFC 3986 section 4.3 absolute URI, loosely: a scheme, then no white space.
_URI_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*:\S*\Z")


def is_rfc3339_date_time(text: str) -> bool:
    """True if ``text`` is an RFC 3339 ``date-time`` (``2023-06-15T09:30:00Z``, offset required)."""
    if not _RFC3339_RE.match(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13, Feb 30, second 60 (leap seconds are not supported)
        return False
    return True


def is_uri(text: str) -> bool:
    """True if ``text`` has a URI scheme and no white space (``https://…``, ``about:blank``)."""
    return bool(_URI_RE.match(text))


# --- durations -------------------------------------------------------------------------------

#: The ``duration`` pattern of openadr3.yaml, verbatim.
SPEC_DURATION_PATTERN = (
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
#: What the models accept: the spec pattern, plus ISO 8601's rule that a ``T`` is followed by a
#: time component (the spec lets ``"P1DT"`` through) and ``\Z`` instead of ``$`` (Python's ``$``
#: also matches before a trailing newline, ECMA-262's does not).
DURATION_PATTERN = (
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z"
)
_DURATION_RE = re.compile(DURATION_PATTERN)

#: "P9999Y" represents infinity (User Guide 7.3 "intervalPeriod.duration").
DURATION_INFINITY = "P9999Y"


def is_infinite_duration(text: str) -> bool:
    """True for the spec's infinity, ``"P9999Y"``."""
    return text == DURATION_INFINITY


def parse_duration(text: str) -> timedelta:
    """An OpenADR duration (ISO 8601, e.g. ``"PT1H"``, ``"P1D"``, ``"-PT15M"``) as a timedelta.

    Parameters
    ----------
    text : str
        A string matching :data:`DURATION_PATTERN`. Fractional seconds are rounded to the
        microsecond.

    Returns
    -------
    datetime.timedelta

    Raises
    ------
    ValueError
        ``text`` is not a duration, or has years or months, which have no fixed length (the User
        Guide advises against months; test :func:`is_infinite_duration` for ``"P9999Y"``).

    Examples
    --------
    >>> parse_duration("P1DT2H30M")
    datetime.timedelta(days=1, seconds=9000)
    """
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    sign, years, months, day_count, day_unit, hours, minutes, seconds = match.groups()
    if years is not None or months is not None:
        raise ValueError(f"duration {text!r} has years or months, which have no fixed length")
    days = int(day_count or 0) * (7 if day_unit == "W" else 1)
    micros = round(Decimal(seconds or "0") * 1_000_000)
    delta = timedelta(
        days=days, hours=int(hours or 0), minutes=int(minutes or 0), microseconds=micros
    )
    return -delta if sign == "-" else delta


def format_duration(delta: timedelta) -> str:
    """A timedelta as an ISO 8601 duration: days, hours, minutes, seconds; ``"PT0S"`` for zero.

    Inverse of :func:`parse_duration` (``parse_duration(format_duration(d)) == d``).

    Examples
    --------
    >>> format_duration(timedelta(hours=1))
    'PT1H'
    >>> format_duration(timedelta(days=-1, seconds=86399, microseconds=500000))
    '-PT0.5S'
    """
    sign = "-" if delta < timedelta(0) else ""
    delta = abs(delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{delta.days}D" if delta.days else ""
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if delta.microseconds:
        time_part += f"{seconds}.{delta.microseconds:06d}".rstrip("0") + "S"
    elif seconds or not (date_part or time_part):
        time_part += f"{seconds}S"
    return f"{sign}P{date_part}" + (f"T{time_part}" if time_part else "")


#: An intervalPeriod.start of '0001-01-01' means 'now' (User Guide 7.3 "intervalPeriod.start").
START_NOW = datetime.fromisoformat("0001-01-01T00:00:00+00:00")

# --- reusable field types --------------------------------------------------------------------


def _on_wire(info: ValidationInfo) -> bool:
    context = info.context
    if type(context) is dict:  # the usual case, without the slower ABC check
        return bool(context.get("wire"))
    return isinstance(context, Mapping) and bool(context.get("wire"))


def _reject_null_on_wire(value: Any, info: ValidationInfo) -> Any:
    if value is None:  # runs for every optional field of every wire body: cheap when not None
        lenient = isinstance(info.context, Mapping) and bool(info.context.get("nulls_as_absent"))
        if _on_wire(info) and not lenient:
            raise ValueError(
                "may be omitted but must not be null (the spec does not make it nullable)"
            )
    return value


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and is_rfc3339_date_time(value):
        return value
    raise ValueError(f"not an RFC 3339 date-time with offset: {value!r}")


def _uri(value: Any) -> Any:
    if isinstance(value, str) and not is_uri(value):
        raise ValueError(f"not an absolute URI: {value!r}")
    return value


#: Optional, not nullable: ``None`` in Python means absent; ``null`` is refused by from_wire.
Omittable = Annotated[T | None, BeforeValidator(_reject_null_on_wire)]

_String128 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]
#: schemas/objectID: URL safe VTN assigned object ID.
ObjectId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]*\Z")
]
ClientId = _String128  # schemas/clientID
VenName = _String128  # schemas/venName
ClientName = _String128  # schemas/clientName
Target = _String128  # schemas/target
ResourceName = _String128  # schemas/resourceName
#: schemas/dateTime: RFC 3339, offset required.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
#: schemas/duration: ISO 8601 duration string.
Duration = Annotated[StrictStr, StringConstraints(pattern=DURATION_PATTERN)]
#: ``format: uri``, ``minLength: 2``, ``maxLength: 8000`` (callbackUrl, URL, tokenURL, …).
Uri = Annotated[StrictStr, StringConstraints(min_length=2, max_length=8000), BeforeValidator(_uri)]
#: ``format: int32``.
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]

# --- enumerations ----------------------------------------------------------------------------


class ObjectType(StrEnum):
    """schemas/objectTypes: types of objects addressable through the API."""

    PROGRAM = "PROGRAM"
    EVENT = "EVENT"
    REPORT = "REPORT"
    SUBSCRIPTION = "SUBSCRIPTION"
    VEN = "VEN"
    RESOURCE = "RESOURCE"


class Operation(StrEnum):
    """Operations of subscription objectOperations and of notifications."""

    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class ReportIntervals(StrEnum):
    """reportDescriptor.reportIntervals: VEN report interval options (User Guide)."""

    INTERVALS = "INTERVALS"
    SUB_INTERVALS = "SUB_INTERVALS"
    OPEN_INTERVALS = "OPEN_INTERVALS"


class AuthErrorCode(StrEnum):
    """authError.error, RFC 6749 section 5.2."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    INVALID_SCOPE = "invalid_scope"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"


class _OpenStrEnum(StrEnum):
    """A StrEnum that also takes private strings (Definition.md "Private Strings").

    A value outside the members becomes a pseudo-member (not cached, equal to its string) if it is
    1-128 characters long, the spec's bounds on payloadType, units and readingType.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str) or not 1 <= len(value) <= 128:
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member


class Unit(_OpenStrEnum):
    """Payload descriptor ``units`` (enumerations/units.schema.yaml) plus private strings."""

    KWH = "KWH"
    THERMS = "THERMS"
    GHG = "GHG"  # g/kWh
    VOLTS = "VOLTS"
    AMPS = "AMPS"
    CELSIUS = "CELSIUS"
    FAHRENHEIT = "FAHRENHEIT"
    PERCENT = "PERCENT"  # -1.0 … 1.0
    KW = "KW"
    KVAH = "KVAH"
    KVARH = "KVARH"
    KVA = "KVA"
    KVAR = "KVAR"


class ReadingType(_OpenStrEnum):
    """reportPayloadDescriptor ``readingType`` (enumerations/reading-types.schema.yaml)."""

    DIRECT_READ = "DIRECT_READ"
    ESTIMATED = "ESTIMATED"
    SUMMED = "SUMMED"
    MEAN = "MEAN"
    PEAK = "PEAK"
    FORECAST = "FORECAST"
    AVERAGE = "AVERAGE"
    NORMAL = "NORMAL"
    ERROR = "ERROR"


class EventPayloadType(_OpenStrEnum):
    """Event interval payload types (enumerations/event-interval-payloads.schema.yaml)."""

    SIMPLE = "SIMPLE"
    PRICE = "PRICE"
    PRICE_ALTERNATE = "PRICE_ALTERNATE"
    CHARGE_STATE_SETPOINT = "CHARGE_STATE_SETPOINT"
    DISPATCH_SETPOINT = "DISPATCH_SETPOINT"
    DISPATCH_SETPOINT_RELATIVE = "DISPATCH_SETPOINT_RELATIVE"
    DISPATCH_INSTRUCTION = "DISPATCH_INSTRUCTION"
    CONTROL_SETPOINT = "CONTROL_SETPOINT"
    CONTROL_LEVEL_OFFSET = "CONTROL_LEVEL_OFFSET"
    CONTROL_LEVEL_OFFSET_PERCENT = "CONTROL_LEVEL_OFFSET_PERCENT"
    EXPORT_PRICE = "EXPORT_PRICE"
    GHG = "GHG"
    CURVE = "CURVE"
    OLS = "OLS"
    IMPORT_CAPACITY_SUBSCRIPTION = "IMPORT_CAPACITY_SUBSCRIPTION"
    IMPORT_CAPACITY_RESERVATION = "IMPORT_CAPACITY_RESERVATION"
    IMPORT_CAPACITY_RESERVATION_FEE = "IMPORT_CAPACITY_RESERVATION_FEE"
    IMPORT_CAPACITY_AVAILABLE = "IMPORT_CAPACITY_AVAILABLE"
    IMPORT_CAPACITY_AVAILABLE_PRICE = "IMPORT_CAPACITY_AVAILABLE_PRICE"
    EXPORT_CAPACITY_SUBSCRIPTION = "EXPORT_CAPACITY_SUBSCRIPTION"
    EXPORT_CAPACITY_RESERVATION = "EXPORT_CAPACITY_RESERVATION"
    EXPORT_CAPACITY_RESERVATION_FEE = "EXPORT_CAPACITY_RESERVATION_FEE"
    EXPORT_CAPACITY_AVAILABLE = "EXPORT_CAPACITY_AVAILABLE"
    EXPORT_CAPACITY_AVAILABLE_PRICE = "EXPORT_CAPACITY_AVAILABLE_PRICE"
    IMPORT_CAPACITY_LIMIT = "IMPORT_CAPACITY_LIMIT"
    EXPORT_CAPACITY_LIMIT = "EXPORT_CAPACITY_LIMIT"
    ALERT_GRID_EMERGENCY = "ALERT_GRID_EMERGENCY"
    ALERT_BLACK_START = "ALERT_BLACK_START"
    ALERT_POSSIBLE_OUTAGE = "ALERT_POSSIBLE_OUTAGE"
    ALERT_FLEX_ALERT = "ALERT_FLEX_ALERT"
    ALERT_FIRE = "ALERT_FIRE"
    ALERT_FREEZING = "ALERT_FREEZING"
    ALERT_WIND = "ALERT_WIND"
    ALERT_TSUNAMI = "ALERT_TSUNAMI"
    ALERT_AIR_QUALITY = "ALERT_AIR_QUALITY"
    ALERT_OTHER = "ALERT_OTHER"
    CTA2045_REBOOT = "CTA2045_REBOOT"
    CTA2045_SET_OVERRIDE_STATUS = "CTA2045_SET_OVERRIDE_STATUS"


class ReportPayloadType(_OpenStrEnum):
    """Report payload types (enumerations/report-payloads.schema.yaml)."""

    READING = "READING"
    USAGE = "USAGE"
    DEMAND = "DEMAND"
    SETPOINT = "SETPOINT"
    DELTA_USAGE = "DELTA_USAGE"
    BASELINE = "BASELINE"
    OPERATING_STATE = "OPERATING_STATE"
    UP_REGULATION_AVAILABLE = "UP_REGULATION_AVAILABLE"
    DOWN_REGULATION_AVAILABLE = "DOWN_REGULATION_AVAILABLE"
    REGULATION_SETPOINT = "REGULATION_SETPOINT"
    STORAGE_USABLE_CAPACITY = "STORAGE_USABLE_CAPACITY"
    STORAGE_CHARGE_LEVEL = "STORAGE_CHARGE_LEVEL"
    STORAGE_MAX_DISCHARGE_POWER = "STORAGE_MAX_DISCHARGE_POWER"
    STORAGE_MAX_CHARGE_POWER = "STORAGE_MAX_CHARGE_POWER"
    SIMPLE_LEVEL = "SIMPLE_LEVEL"
    USAGE_FORECAST = "USAGE_FORECAST"
    STORAGE_DISPATCH_FORECAST = "STORAGE_DISPATCH_FORECAST"
    LOAD_SHED_DELTA_AVAILABLE = "LOAD_SHED_DELTA_AVAILABLE"
    GENERATION_DELTA_AVAILABLE = "GENERATION_DELTA_AVAILABLE"
    DATA_QUALITY = "DATA_QUALITY"
    IMPORT_RESERVATION_CAPACITY = "IMPORT_RESERVATION_CAPACITY"
    IMPORT_RESERVATION_FEE = "IMPORT_RESERVATION_FEE"
    EXPORT_RESERVATION_CAPACITY = "EXPORT_RESERVATION_CAPACITY"
    EXPORT_RESERVATION_FEE = "EXPORT_RESERVATION_FEE"


# --- base ------------------------------------------------------------------------------------


class OadrModel(BaseModel):
    """Base of every OpenADR wire model: immutable, camelCase aliases, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,  # wire objects are values; the VTN builds a new one per change
        extra="forbid",
        regex_engine="python-re",  # the spec's duration pattern needs look-ahead
    )

    #: The ``components/schemas`` entry this model implements.
    SPEC_SCHEMA: ClassVar[str] = ""
    #: Wire names the yaml requires but that have a Python default (discriminators).
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _check_wire_required(cls, data: Any, info: ValidationInfo) -> Any:
        required = cls._WIRE_REQUIRED  # empty for most models: nothing to check
        if required and _on_wire(info) and isinstance(data, Mapping):
            missing = [name for name in required if name not in data]
            if missing:
                raise ValueError(f"required property missing: {', '.join(missing)}")
        return data


class _CreateModel(OadrModel):
    """A client's POST/PUT body: VTN-provisioned keys are dropped, as the spec demands."""

    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "createdDateTime",
            "created_date_time",
            "modificationDateTime",
            "modification_date_time",
            "objectType",
            "object_type",
        }
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_vtn_provisioned(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if k not in cls._IGNORED_ON_WRITE}
        return data


_DISCRIMINATED_CREATE_IGNORED = frozenset(
    {"id", "createdDateTime", "created_date_time", "modificationDateTime", "modification_date_time"}
)
_CLIENT_ID_KEYS = frozenset({"clientID", "client_id"})

# --- parts -----------------------------------------------------------------------------------


class IntervalPeriod(OadrModel):
    """schemas/intervalPeriod: start, duration and start randomisation of intervals.

    ``start`` of :data:`START_NOW` (0001-01-01) means 'now'; ``duration`` of ``"P9999Y"`` means
    infinity (User Guide 7.3). Absent ``duration``/``randomizeStart`` take the schema default
    ``"PT0S"``; they are kept absent here so that per-interval inheritance stays visible.
    """

    SPEC_SCHEMA: ClassVar[str] = "intervalPeriod"

    start: Omittable[Timestamp] = None
    duration: Omittable[Duration] = None
    randomize_start: Omittable[Duration] = None


class Point(OadrModel):
    """schemas/point: a pair of floats, e.g. a point of a CURVE payload."""

    SPEC_SCHEMA: ClassVar[str] = "point"

    x: StrictFloat
    y: StrictFloat


#: One entry of valuesMap.values: number, integer, string, boolean or point.
PayloadValue = StrictBool | StrictInt | StrictFloat | StrictStr | Point


class ValuesMap(OadrModel):
    """schemas/valuesMap: values of one type (payloads, attributes).

    ``type`` is a plain string because the same object carries event payload types, report
    payload types, program attributes and VEN/resource attributes (see
    :func:`drready.openadr.spec.enumeration`), plus private strings.
    """

    SPEC_SCHEMA: ClassVar[str] = "valuesMap"

    type: _String128
    values: tuple[PayloadValue, ...]


class Interval(OadrModel):
    """schemas/interval: a temporal window and its payloads. ``id`` is not a sequence number."""

    SPEC_SCHEMA: ClassVar[str] = "interval"

    id: Int32
    interval_period: Omittable[IntervalPeriod] = None
    payloads: tuple[ValuesMap, ...]


class EventPayloadDescriptor(OadrModel):
    """schemas/eventPayloadDescriptor: units and currency of an event payload type."""

    SPEC_SCHEMA: ClassVar[str] = "eventPayloadDescriptor"
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["EVENT_PAYLOAD_DESCRIPTOR"] = "EVENT_PAYLOAD_DESCRIPTOR"
    payload_type: EventPayloadType
    units: Unit | None = None
    currency: StrictStr | None = None


class ReportPayloadDescriptor(OadrModel):
    """schemas/reportPayloadDescriptor: reading type, units, accuracy of a report payload type."""

    SPEC_SCHEMA: ClassVar[str] = "reportPayloadDescriptor"
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["REPORT_PAYLOAD_DESCRIPTOR"] = "REPORT_PAYLOAD_DESCRIPTOR"
    payload_type: ReportPayloadType
    reading_type: ReadingType | None = None
    units: Unit | None = None
    accuracy: StrictFloat | None = None
    confidence: Annotated[StrictInt, Field(ge=0, le=100)] | None = None


#: programRequest.payloadDescriptors items: either descriptor, told apart by objectType.
PayloadDescriptor = Annotated[
    EventPayloadDescriptor | ReportPayloadDescriptor, Field(discriminator="object_type")
]


class ReportDescriptor(OadrModel):
    """schemas/reportDescriptor: an event's request for reports; defaults as in the yaml."""

    SPEC_SCHEMA: ClassVar[str] = "reportDescriptor"

    payload_type: ReportPayloadType
    reading_type: ReadingType | None = None
    units: Unit | None = None
    targets: tuple[Target, ...] | None = None
    aggregate: StrictBool = False
    start_interval: Int32 = -1  # -1: at the end of the last interval
    num_intervals: Int32 = -1  # -1: all intervals
    historical: StrictBool = True
    frequency: Int32 = -1  # -1: same as numIntervals
    repeat: Int32 = 1  # -1: indefinitely
    report_intervals: ReportIntervals = ReportIntervals.INTERVALS


class ProgramDescription(OadrModel):
    """programRequest.programDescriptions item: a human or machine readable description URL."""

    url: Uri = Field(alias="URL")


class ObjectOperation(OadrModel):
    """subscriptionRequest.objectOperations item: objects, operations and the callback."""

    objects: tuple[ObjectType, ...]
    operations: tuple[Operation, ...]
    callback_url: Uri
    bearer_token: StrictStr | None = None


class ReportResource(OadrModel):
    """reportRequest.resources item: report data of one resource (or AGGREGATED_REPORT)."""

    resource_name: ResourceName
    interval_period: Omittable[IntervalPeriod] = None
    intervals: tuple[Interval, ...]


# --- top-level objects -----------------------------------------------------------------------


class _Existing(OadrModel):
    """schemas/objectMetadata: what the VTN provisions on creation."""

    _OBJECT_TYPE: ClassVar[ObjectType]
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)
    #: Fields the VTN sets from the requester, kept by :meth:`replaced`.
    _VTN_HELD: ClassVar[tuple[str, ...]] = ()

    id: ObjectId
    created_date_time: Timestamp
    modification_date_time: Timestamp

    @classmethod
    def from_create(
        cls, create: OadrModel, *, object_id: str, now: datetime, **vtn_fields: Any
    ) -> Self:
        """The VTN's new object for a POSTed ``create`` (``vtn_fields``: e.g. ``client_id``)."""
        body = {k: v for k, v in create if v is not None and k != "object_type"}
        return cls.model_validate(
            {
                **body,
                **vtn_fields,
                "id": object_id,
                "created_date_time": now,
                "modification_date_time": now,
                "object_type": cls._OBJECT_TYPE,
            }
        )

    def replaced(self, create: OadrModel, *, now: datetime) -> Self:
        """A new object for a PUT of ``create``: same id, creation time and VTN-held fields."""
        kept = {name: getattr(self, name) for name in ("id", "created_date_time", *self._VTN_HELD)}
        body = {k: v for k, v in create if v is not None and k != "object_type"}
        return type(self).model_validate(
            {**kept, **body, "modification_date_time": now, "object_type": self._OBJECT_TYPE}
        )


class _ProgramBody(OadrModel):
    program_name: _String128
    interval_period: Omittable[IntervalPeriod] = None
    program_descriptions: tuple[ProgramDescription, ...] | None = None
    payload_descriptors: tuple[PayloadDescriptor, ...] | None = None
    attributes: tuple[ValuesMap, ...] | None = None
    targets: tuple[Target, ...] | None = None


class ProgramCreate(_ProgramBody, _CreateModel):
    """schemas/programRequest: a program as the business logic (BL) POSTs or PUTs it."""

    SPEC_SCHEMA: ClassVar[str] = "programRequest"


class Program(_ProgramBody, _Existing):
    """schemas/program: a program as the VTN returns it."""

    SPEC_SCHEMA: ClassVar[str] = "program"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.PROGRAM

    object_type: Literal[ObjectType.PROGRAM] = ObjectType.PROGRAM


class _EventBody(OadrModel):
    program_id: ObjectId = Field(alias="programID")
    event_name: StrictStr | None = None
    duration: Omittable[Duration] = None  # may be used to loop intervals (User Guide)
    priority: Annotated[StrictInt, Field(ge=0)] | None = None  # lower number = higher priority
    targets: tuple[Target, ...] | None = None
    report_descriptors: tuple[ReportDescriptor, ...] | None = None
    payload_descriptors: tuple[EventPayloadDescriptor, ...] | None = None
    interval_period: Omittable[IntervalPeriod] = None
    intervals: Omittable[tuple[Interval, ...]] = None


class EventCreate(_EventBody, _CreateModel):
    """schemas/eventRequest: an event (a DR request to VENs) as BL POSTs or PUTs it."""

    SPEC_SCHEMA: ClassVar[str] = "eventRequest"


class Event(_EventBody, _Existing):
    """schemas/event: an event as the VTN returns it."""

    SPEC_SCHEMA: ClassVar[str] = "event"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.EVENT

    object_type: Literal[ObjectType.EVENT] = ObjectType.EVENT


class _ReportBody(OadrModel):
    event_id: ObjectId = Field(alias="eventID")
    client_name: ClientName
    report_name: StrictStr | None = None
    payload_descriptors: tuple[ReportPayloadDescriptor, ...] | None = None
    resources: tuple[ReportResource, ...]


class ReportCreate(_ReportBody, _CreateModel):
    """schemas/reportRequest: a report as a VEN POSTs or PUTs it (``clientID`` is dropped)."""

    SPEC_SCHEMA: ClassVar[str] = "reportRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _CreateModel._IGNORED_ON_WRITE | _CLIENT_ID_KEYS


class Report(_ReportBody, _Existing):
    """schemas/report: a report as the VTN returns it, with the reporting client's ``clientID``."""

    SPEC_SCHEMA: ClassVar[str] = "report"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.REPORT
    _VTN_HELD: ClassVar[tuple[str, ...]] = ("client_id",)

    object_type: Literal[ObjectType.REPORT] = ObjectType.REPORT
    client_id: ClientId = Field(alias="clientID")


class _SubscriptionBody(OadrModel):
    client_name: ClientName
    program_id: Omittable[ObjectId] = Field(default=None, alias="programID")
    object_operations: tuple[ObjectOperation, ...]
    targets: tuple[Target, ...] | None = None


class SubscriptionCreate(_SubscriptionBody, _CreateModel):
    """schemas/subscriptionRequest: a webhook subscription as a client POSTs or PUTs it."""

    SPEC_SCHEMA: ClassVar[str] = "subscriptionRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _CreateModel._IGNORED_ON_WRITE | _CLIENT_ID_KEYS


class Subscription(_SubscriptionBody, _Existing):
    """schemas/subscription: a subscription as the VTN returns it."""

    SPEC_SCHEMA: ClassVar[str] = "subscription"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.SUBSCRIPTION
    _VTN_HELD: ClassVar[tuple[str, ...]] = ("client_id",)

    object_type: Literal[ObjectType.SUBSCRIPTION] = ObjectType.SUBSCRIPTION
    client_id: ClientId = Field(alias="clientID")


class BlVenCreate(_CreateModel):
    """schemas/BlVenRequest: a ven as BL creates it, granting ``targets`` to ``clientID`` (D6)."""

    SPEC_SCHEMA: ClassVar[str] = "BlVenRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _DISCRIMINATED_CREATE_IGNORED
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["BL_VEN_REQUEST"] = "BL_VEN_REQUEST"
    client_id: ClientId = Field(alias="clientID")
    targets: tuple[Target, ...] | None = None
    ven_name: VenName
    attributes: tuple[ValuesMap, ...] | None = None


class VenVenCreate(_CreateModel):
    """schemas/VenVenRequest: a ven as a VEN creates it (no clientID or targets)."""

    SPEC_SCHEMA: ClassVar[str] = "VenVenRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _DISCRIMINATED_CREATE_IGNORED
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["VEN_VEN_REQUEST"] = "VEN_VEN_REQUEST"
    ven_name: VenName
    attributes: tuple[ValuesMap, ...] | None = None


#: schemas/venRequest: oneOf VenVenRequest, BlVenRequest (told apart by objectType).
VenCreate = Annotated[BlVenCreate | VenVenCreate, Field(discriminator="object_type")]


class Ven(_Existing):
    """schemas/ven: a ven as the VTN returns it (``objectType`` ``VEN``, see spec errata)."""

    SPEC_SCHEMA: ClassVar[str] = "ven"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.VEN
    _VTN_HELD: ClassVar[tuple[str, ...]] = ("client_id",)

    object_type: Literal[ObjectType.VEN] = ObjectType.VEN
    client_id: ClientId = Field(alias="clientID")
    targets: tuple[Target, ...] | None = None
    ven_name: VenName
    attributes: tuple[ValuesMap, ...] | None = None


class BlResourceCreate(_CreateModel):
    """schemas/BlResourceRequest: a VEN's resource as BL creates it, with granted targets."""

    SPEC_SCHEMA: ClassVar[str] = "BlResourceRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _DISCRIMINATED_CREATE_IGNORED
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["BL_RESOURCE_REQUEST"] = "BL_RESOURCE_REQUEST"
    client_id: ClientId = Field(alias="clientID")
    targets: tuple[Target, ...] | None = None
    resource_name: ResourceName
    ven_id: ObjectId = Field(alias="venID")
    attributes: tuple[ValuesMap, ...] | None = None


class VenResourceCreate(_CreateModel):
    """schemas/VenResourceRequest: a resource as its VEN creates it (no clientID or targets)."""

    SPEC_SCHEMA: ClassVar[str] = "VenResourceRequest"
    _IGNORED_ON_WRITE: ClassVar[frozenset[str]] = _DISCRIMINATED_CREATE_IGNORED
    _WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("objectType",)

    object_type: Literal["VEN_RESOURCE_REQUEST"] = "VEN_RESOURCE_REQUEST"
    resource_name: ResourceName
    ven_id: ObjectId = Field(alias="venID")
    attributes: tuple[ValuesMap, ...] | None = None


#: schemas/resourceRequest: oneOf BlResourceRequest, VenResourceRequest.
ResourceCreate = Annotated[BlResourceCreate | VenResourceCreate, Field(discriminator="object_type")]


class Resource(_Existing):
    """schemas/resource: a resource (a water heater, or a group of them) as the VTN returns it."""

    SPEC_SCHEMA: ClassVar[str] = "resource"
    _OBJECT_TYPE: ClassVar[ObjectType] = ObjectType.RESOURCE
    _VTN_HELD: ClassVar[tuple[str, ...]] = ("client_id",)

    object_type: Literal[ObjectType.RESOURCE] = ObjectType.RESOURCE
    client_id: ClientId = Field(alias="clientID")
    targets: tuple[Target, ...] | None = None
    resource_name: ResourceName
    ven_id: ObjectId = Field(alias="venID")
    attributes: tuple[ValuesMap, ...] | None = None


#: Any object a notification can carry, told apart by objectType.
AnyObject = Annotated[
    Program | Report | Event | Subscription | Ven | Resource, Field(discriminator="object_type")
]


class Notification(OadrModel):
    """schemas/notification: the VTN's callback body for a subscribed operation."""

    SPEC_SCHEMA: ClassVar[str] = "notification"

    object_type: ObjectType
    operation: Operation
    object: AnyObject
    targets: tuple[Target, ...] | None = None

    @model_validator(mode="after")
    def _object_type_matches(self) -> Self:
        if self.object.object_type != self.object_type:
            raise ValueError(
                f"objectType {self.object_type} but the object is a {self.object.object_type}"
            )
        return self


# --- errors, auth, notifiers -----------------------------------------------------------------


class Problem(OadrModel):
    """schemas/problem (RFC 7807): the body of every 4xx/5xx answer of the VTN.

    Extension members are kept (``extra="allow"``, RFC 7807 section 3.2).
    """

    model_config = ConfigDict(extra="allow")
    SPEC_SCHEMA: ClassVar[str] = "problem"

    type: Uri = "about:blank"
    title: StrictStr | None = None
    status: Annotated[StrictInt, Field(ge=100, lt=600)] | None = None
    detail: StrictStr | None = None
    instance: Annotated[StrictStr, StringConstraints(min_length=3, max_length=8000)] | None = None

    @model_validator(mode="after")
    def _instance_is_uri(self) -> Self:
        if self.instance is not None and not is_uri(self.instance):
            raise ValueError(f"instance: not an absolute URI: {self.instance!r}")
        return self


def problem(status: int, title: str, detail: str | None = None) -> Problem:
    """A :class:`Problem` of type ``about:blank`` (RFC 7807 section 4.2).

    Examples
    --------
    >>> to_wire(problem(404, "Not Found", "Unrecognized URL"))
    {'type': 'about:blank', 'title': 'Not Found', 'status': 404, 'detail': 'Unrecognized URL'}
    """
    return Problem(title=title, status=status, detail=detail)


class _SnakeCaseModel(OadrModel):
    """OAuth 2.0 bodies keep RFC 6749's snake_case on the wire."""

    model_config = ConfigDict(alias_generator=None)


_String4096 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=4096)]
_Scope = Annotated[StrictStr, StringConstraints(min_length=0, max_length=4096)]


class ClientCredentialRequest(_SnakeCaseModel):
    """schemas/clientCredentialRequest: body of POST /auth/token (RFC 6749 section 4.4.2)."""

    SPEC_SCHEMA: ClassVar[str] = "clientCredentialRequest"

    grant_type: Literal["client_credentials"]
    client_id: _String4096
    client_secret: _String4096
    scope: Omittable[_Scope] = None


class ClientCredentialResponse(_SnakeCaseModel):
    """schemas/clientCredentialResponse: the token (RFC 6749 section 5.1); extra names kept."""

    model_config = ConfigDict(extra="allow")
    SPEC_SCHEMA: ClassVar[str] = "clientCredentialResponse"

    access_token: _String4096
    token_type: Literal["Bearer"]
    expires_in: Omittable[StrictInt] = None  # [s]
    refresh_token: Omittable[_String4096] = None
    scope: Omittable[_Scope] = None


class AuthError(_SnakeCaseModel):
    """schemas/authError: HTTP 400 body of /auth/token (RFC 6749 section 5.2)."""

    SPEC_SCHEMA: ClassVar[str] = "authError"

    error: AuthErrorCode
    error_description: Omittable[StrictStr] = None
    error_uri: Omittable[Uri] = None


class AuthServerInfo(OadrModel):
    """schemas/authServerInfo: GET /auth/server, where to get tokens."""

    SPEC_SCHEMA: ClassVar[str] = "authServerInfo"

    token_url: Uri = Field(alias="tokenURL")


class MqttAuthenticationAnonymous(OadrModel):
    """schemas/mqttNotifierAuthenticationAnonymous."""

    SPEC_SCHEMA: ClassVar[str] = "mqttNotifierAuthenticationAnonymous"

    method: Literal["ANONYMOUS"]


class MqttAuthenticationOauth2BearerToken(OadrModel):
    """schemas/mqttNotifierAuthenticationOauth2BearerToken; username may be ``"{clientID}"``."""

    SPEC_SCHEMA: ClassVar[str] = "mqttNotifierAuthenticationOauth2BearerToken"

    method: Literal["OAUTH2_BEARER_TOKEN"]
    username: StrictStr


class MqttAuthenticationCertificate(OadrModel):
    """schemas/mqttNotifierAuthenticationCertificate: mTLS material, as PEM strings."""

    SPEC_SCHEMA: ClassVar[str] = "mqttNotifierAuthenticationCertificate"

    method: Literal["CERTIFICATE"]
    ca_cert: StrictStr
    client_cert: StrictStr
    client_key: StrictStr


MqttAuthentication = Annotated[
    MqttAuthenticationAnonymous
    | MqttAuthenticationOauth2BearerToken
    | MqttAuthenticationCertificate,
    Field(discriminator="method"),
]


class MqttNotifierBinding(OadrModel):
    """schemas/mqttNotifierBindingObject: how to reach the VTN's MQTT broker."""

    SPEC_SCHEMA: ClassVar[str] = "mqttNotifierBindingObject"

    uris: tuple[Annotated[StrictStr, BeforeValidator(_uri)], ...] = Field(alias="URIS")
    serialization: Literal["JSON"]
    authentication: MqttAuthentication


class NotifiersResponse(OadrModel):
    """schemas/notifiersResponse: GET /notifiers. ``WEBHOOK`` "Currently MUST be true"."""

    SPEC_SCHEMA: ClassVar[str] = "notifiersResponse"

    webhook: StrictBool = Field(alias="WEBHOOK")
    mqtt: Omittable[MqttNotifierBinding] = Field(default=None, alias="MQTT")


class NotifierOperationsTopics(OadrModel):
    """schemas/notifierOperationsTopics: MQTT topic per operation."""

    SPEC_SCHEMA: ClassVar[str] = "notifierOperationsTopics"

    create: Omittable[StrictStr] = Field(default=None, alias="CREATE")
    update: StrictStr = Field(alias="UPDATE")
    delete: StrictStr = Field(alias="DELETE")
    all: Omittable[StrictStr] = Field(default=None, alias="ALL")


class NotifierTopicsResponse(OadrModel):
    """schemas/notifierTopicsResponse: GET /notifiers/mqtt/topics/…."""

    SPEC_SCHEMA: ClassVar[str] = "notifierTopicsResponse"

    topics: NotifierOperationsTopics


# --- wire ------------------------------------------------------------------------------------

_WIRE_CONTEXT = {"wire": True}


def to_wire(model: BaseModel) -> dict[str, Any]:
    """``model`` as a JSON-ready dict: camelCase keys, absent optionals left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


@overload
def from_wire(
    cls: type[M], data: Mapping[str, Any] | str | bytes, *, nulls_as_absent: bool = False
) -> M: ...
@overload
def from_wire(
    cls: Any, data: Mapping[str, Any] | str | bytes, *, nulls_as_absent: bool = False
) -> Any: ...
def from_wire(
    cls: Any, data: Mapping[str, Any] | str | bytes, *, nulls_as_absent: bool = False
) -> Any:
    """Parse a wire body into ``cls`` (a model, or ``VenCreate``/``ResourceCreate``).

    Parameters
    ----------
    cls : type
        The model class, or one of the discriminated unions :data:`VenCreate`,
        :data:`ResourceCreate`.
    data : Mapping, str or bytes
        Parsed JSON (a dict of JSON types) or the raw JSON text.
    nulls_as_absent : bool
        Read ``null`` of an optional, non-nullable property as absent instead of refusing it.
        The VTN accepts requests this way (be liberal in what you accept): widely used clients
        such as ``openadr3-client`` send ``"intervalPeriod": null`` for unset optionals.

    Raises
    ------
    pydantic.ValidationError
        Naming the offending field by its wire alias (``programName``, ``eventID``, …).
    """
    text = data if isinstance(data, str | bytes) else json.dumps(data)
    context = {**_WIRE_CONTEXT, "nulls_as_absent": True} if nulls_as_absent else _WIRE_CONTEXT
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return cls.model_validate_json(text, context=context)
    return _adapter(cls).validate_json(text, context=context)


@functools.lru_cache(maxsize=64)
def _adapter(cls: Any) -> TypeAdapter[Any]:
    # built once per union: building one generates its core schema (~0.3 ms per request on
    # POST /resources, issue 11 item 3)
    return TypeAdapter(cls)
