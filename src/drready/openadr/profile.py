"""The drready profile of OpenADR 3.1: F1–F6 as programs, events and reports (C1, D1, D6).

Pure functions between the unified data model (:mod:`drready.domain`) and the OpenADR wire
models (:mod:`drready.openadr.models`); the VEN client, the maker cloud, the home gateway's VEN
and the servicer all use them, so each route speaks exactly one profile. The profile is
written down with JSON examples in ``docs/profile-openadr3.md``:

* **F6** — a unit is a *resource* whose ``resourceName`` is the :class:`~drready.domain.DeviceId`
  string (``000005:HW0000001``); a maker cloud may also offer its whole fleet as one resource
  named after its maker, :func:`group_resource` (``FLEET-000005``, D6) — one per maker, so that
  an event for one maker's fleet is visible to that maker's VEN only. Ratings are resource
  attributes: the standard ``MAX_POWER_CONSUMPTION`` [kW] and the private ``DRREADY_UNITS``.
* **F1** — BL asks for potential with a *potential-request event*, a report-only event in the
  User Guide's sense: ``intervalPeriod`` = the window, no intervals, ``reportDescriptors`` with
  ``reportIntervals: OPEN_INTERVALS`` (the VEN chooses the report's intervals) for
  ``BASELINE``, ``UP_REGULATION_AVAILABLE`` and ``DOWN_REGULATION_AVAILABLE`` (kW per
  30-minute slot), and the private types ``DRREADY_UP_ENERGY`` / ``DRREADY_DOWN_ENERGY`` (kWh
  over the window) and ``DRREADY_CUMULATIVE_MIN`` / ``MAX`` (kWh from the window start: the
  energy coupling of the slots). The VEN answers with one report, one ``resources`` entry per
  unit, the descriptors' ``confidence`` carrying the confidence level.
* **F2** — a *DR event*: one interval (id 0) whose period is the DR window, carrying the
  direction as the standard ``CONTROL_LEVEL_OFFSET`` (−1 = consume more, up-DR; +1 = consume
  less, down-DR: the spec's sign) and the amount as ``DISPATCH_SETPOINT_RELATIVE`` in kW,
  always ≥ 0 as the 3.1.0 schema requires (the requested energy spread evenly over the
  window). **By start time alone** (the study group's wording, "start heating at 13:00"):
  ``CONTROL_LEVEL_OFFSET`` −1 and no ``DISPATCH_SETPOINT_RELATIVE`` — the window starts at
  the heating start time and the unit heats there as much as its plan allows
  (:meth:`~drready.domain.DrRequest.at_start_time`). ``targets`` are the resource names asked;
  the per-unit amounts of a split dispatch are separate events.
* **F3/F4** — the VEN answers a DR event with a report carrying, per resource, the private
  ``DRREADY_RESPONSE`` (status, accepted kWh, reason) on the event's interval (id 0), and the
  DR-aware plan as ``USAGE_FORECAST`` (kWh per slot, readingType FORECAST) plus
  ``DRREADY_STORED_HEAT`` on intervals the VEN chooses (``OPEN_INTERVALS``: the plan spans the
  unit's whole planning grid, not the window): id ``1 + k`` for slot ``k`` of the plan.
* **F5** — power reports, asked by the DR event's ``DEMAND`` and ``READING`` descriptors
  (``OPEN_INTERVALS``, ad hoc): per sample one interval of :data:`POWER_SAMPLE_PERIOD` ending
  at the sample time, ``DEMAND`` (kW, the power measured at the interval's end) and
  ``READING`` (cumulative kWh), readingType ``DIRECT_READ`` when measured, ``ESTIMATED``
  otherwise.

Readers stay tolerant of the forms drready emitted before (a signed
``DISPATCH_SETPOINT_RELATIVE`` without ``CONTROL_LEVEL_OFFSET``, the group resource ``FLEET``,
``DRREADY_RATED_POWER_KW``, zero-length power intervals); writers emit only the forms above.

Private payload types carry the ``DRREADY_`` prefix, as the spec allows custom strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from drready.domain import (
    MAX_AMOUNT_KWH,
    DeviceId,
    Direction,
    DrRequest,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    HeatingPlan,
    PlanSlot,
    PowerSample,
    PowerSource,
    ResponseStatus,
    SlotGrid,
)
from drready.openadr.models import (
    Event,
    EventCreate,
    EventPayloadDescriptor,
    Interval,
    IntervalPeriod,
    ProgramCreate,
    ReadingType,
    Report,
    ReportCreate,
    ReportDescriptor,
    ReportIntervals,
    ReportPayloadDescriptor,
    ReportResource,
    Unit,
    ValuesMap,
    format_duration,
    parse_duration,
)

PROGRAM_NAME = "DRREADY-HPWH"
GROUP_SERIAL = "FLEET"
"""The serial of a fleet group's DeviceId (D6): ``<maker code>:FLEET`` in domain terms."""
GROUP_PREFIX = "FLEET-"
"""A fleet group resource is named ``FLEET-<maker code>`` on the wire (:func:`group_resource`)."""
LEGACY_GROUP_RESOURCE = "FLEET"
"""The one group name every maker used before per-maker groups: read, never written."""
GROUP_DEVICE_ID = DeviceId(maker_code="000000", serial=GROUP_SERIAL)
"""The DeviceId a maker cloud gives its own fleet group inside (``cloud.fleet``); on the wire
the VEN names it :func:`group_resource` of its maker (:func:`group_named`)."""
SLOT = timedelta(minutes=30)
ZERO = timedelta(0)
POWER_SAMPLE_PERIOD = timedelta(minutes=1)
"""The interval an F5 sample reports ``DEMAND`` for: the minute ending at the sample time."""
WIRE_DECIMALS = 6
"""Decimals of every kW and kWh number the profile puts on the wire (1e-6 kW, 1e-6 kWh: far
below any meter's resolution; BL compares with :func:`event_amount_kwh` because of it)."""

POTENTIAL_REPORT = "potential"
"""``reportName`` of an F1 answer."""
PLAN_REPORT = "plan"
"""``reportName`` of an F3/F4 answer."""
POWER_REPORT = "power"
"""``reportName`` of an F5 report."""
ANSWER_REPORTS = (POTENTIAL_REPORT, PLAN_REPORT)
"""The reports that answer an event (a VEN that finds one of its own has answered it)."""

BASELINE = "BASELINE"
UP_AVAILABLE = "UP_REGULATION_AVAILABLE"
DOWN_AVAILABLE = "DOWN_REGULATION_AVAILABLE"
UP_ENERGY = "DRREADY_UP_ENERGY"
DOWN_ENERGY = "DRREADY_DOWN_ENERGY"
CUM_MIN = "DRREADY_CUMULATIVE_MIN"
CUM_MAX = "DRREADY_CUMULATIVE_MAX"
MAX_POWER = "MAX_POWER_CONSUMPTION"
"""Resource attribute (F6, standard): the rated electric input of the unit, or the group's sum
[kW]."""
LEGACY_RATED_POWER = "DRREADY_RATED_POWER_KW"
"""The private attribute :data:`MAX_POWER` replaced: read, never written."""
UNIT_COUNT = "DRREADY_UNITS"
"""Resource attribute (F6, D6, private): the water heaters behind the resource (1 for a unit)."""
DISPATCH = "DISPATCH_SETPOINT_RELATIVE"
"""F2 amount: kW over the window, ≥ 0 (the 3.1.0 schema's minimum)."""
DIRECTION = "CONTROL_LEVEL_OFFSET"
"""F2 direction, the standard type whose sign means it: > 0 less load (down-DR), < 0 more load
(up-DR)."""
UP_LEVEL = -1
"""``CONTROL_LEVEL_OFFSET`` of an up-DR event (consume more)."""
DOWN_LEVEL = 1
"""``CONTROL_LEVEL_OFFSET`` of a down-DR event (consume less)."""
RESPONSE = "DRREADY_RESPONSE"
USAGE_FORECAST = "USAGE_FORECAST"
STORED_HEAT = "DRREADY_STORED_HEAT"
DEMAND = "DEMAND"
READING = "READING"

POTENTIAL_TYPES = (BASELINE, UP_AVAILABLE, DOWN_AVAILABLE, UP_ENERGY, DOWN_ENERGY, CUM_MIN, CUM_MAX)
PLAN_TYPES = (RESPONSE, USAGE_FORECAST, STORED_HEAT)
POWER_TYPES = (DEMAND, READING)


ENERGY_SHIFT_ONLY = "DRREADY_ENERGY_SHIFT_ONLY"
"""Resource attribute (F6) of a standard-only unit behind a home gateway: up-DR only, as a whole
4-hour shift starting at one of the listed hours of the unit's target day; its values are those
hours. Absent for DR-ready units and fleets."""


def resource_attributes(
    rated_power_kw: float, n_units: int = 1, *, energy_shift_hours: Sequence[int] | None = None
) -> tuple[ValuesMap, ...]:
    """F6 ratings of a resource as OpenADR resource attributes; ``energy_shift_hours`` marks a
    standard-only unit (:data:`ENERGY_SHIFT_ONLY`, the shift hours it offers)."""
    if not rated_power_kw > 0 or n_units < 1:
        raise ProfileError(
            f"rated_power_kw must be > 0 and n_units ≥ 1, got {rated_power_kw!r}, {n_units!r}"
        )
    shift = (
        ()
        if energy_shift_hours is None
        else (ValuesMap(type=ENERGY_SHIFT_ONLY, values=tuple(int(h) for h in energy_shift_hours)),)
    )
    return (
        ValuesMap(type=MAX_POWER, values=(round(float(rated_power_kw), WIRE_DECIMALS),)),
        ValuesMap(type=UNIT_COUNT, values=(int(n_units),)),
        *shift,
    )


def rating_of(attributes: Iterable[ValuesMap] | None) -> tuple[float | None, int | None]:
    """``(rated_power_kw, n_units)`` from a resource's attributes (None where absent or not a
    positive number); ``MAX_POWER_CONSUMPTION``, or the older ``DRREADY_RATED_POWER_KW``."""
    rated: float | None = None
    units: int | None = None
    for a in attributes or ():
        v = a.values[0] if a.values else None
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            continue
        if a.type == MAX_POWER or (a.type == LEGACY_RATED_POWER and rated is None):
            rated = float(v)
        elif a.type == UNIT_COUNT and float(v).is_integer():
            units = int(v)
    return rated, units


def group_resource(maker_code: str) -> str:
    """The wire name of a maker's fleet group resource (D6): ``FLEET-<maker code>``.

    >>> group_resource("000005")
    'FLEET-000005'
    """
    return GROUP_PREFIX + DeviceId(maker_code=maker_code, serial=GROUP_SERIAL).maker_code


def is_group_resource(name: str) -> bool:
    """Whether ``name`` names a fleet group resource (``FLEET-<maker code>``, or the older
    ``FLEET``)."""
    return name == LEGACY_GROUP_RESOURCE or _group_maker(name) is not None


def _group_maker(name: str) -> str | None:
    if not name.startswith(GROUP_PREFIX):
        return None
    try:
        return DeviceId(maker_code=name[len(GROUP_PREFIX) :], serial=GROUP_SERIAL).maker_code
    except ValueError:
        return None


def resource_name_of(device: DeviceId) -> str:
    """The resource name of ``device`` as :func:`envelopes_from_report` and the other readers
    give it back: a unit's DeviceId string, its maker's :func:`group_resource` for a group
    (``<maker>:FLEET``), ``FLEET`` for the older group name."""
    if device == GROUP_DEVICE_ID:
        return LEGACY_GROUP_RESOURCE
    if device.serial == GROUP_SERIAL:
        return group_resource(device.maker_code)
    return str(device)


def group_named(report: ReportCreate, name: str) -> ReportCreate:
    """``report`` with the fleet group's resource (D6) under its wire name ``name``
    (:func:`group_resource`).

    A maker cloud names its group by :data:`GROUP_DEVICE_ID` (``000000:FLEET``) inside, so the
    report builders below name its resource that way; on the wire it is the maker's group.
    Other resources, and a report without the group, are returned unchanged.
    """
    group = str(GROUP_DEVICE_ID)
    if not any(r.resource_name == group for r in report.resources):
        return report
    resources = tuple(
        r.model_copy(update={"resource_name": name}) if r.resource_name == group else r
        for r in report.resources
    )
    return report.model_copy(update={"resources": resources})


class ProfileError(ValueError):
    """An OpenADR object does not follow the drready profile (names what is wrong)."""


def program(name: str = PROGRAM_NAME) -> ProgramCreate:
    """The DR-ready program: one per DR product of a servicer."""
    return ProgramCreate.model_validate(
        {
            "program_name": name,
            "attributes": [{"type": "DRREADY_PROFILE", "values": ["drready-openadr3-1"]}],
            "payload_descriptors": [
                {"object_type": "EVENT_PAYLOAD_DESCRIPTOR", "payload_type": DIRECTION},
                {
                    "object_type": "EVENT_PAYLOAD_DESCRIPTOR",
                    "payload_type": DISPATCH,
                    "units": "KW",
                },
            ],
        }
    )


def _window_of(event: Event | EventCreate) -> tuple[datetime, datetime]:
    period = event.interval_period
    if period is None or period.start is None or period.duration is None:
        raise ProfileError("event.intervalPeriod must give the window's start and duration")
    return period.start, period.start + parse_duration(period.duration)


# --- F1 -----------------------------------------------------------------------------------


def potential_request(
    program_id: str,
    start: datetime,
    end: datetime,
    targets: Sequence[str] | None = None,
    name: str = "potential",
) -> EventCreate:
    """F1: BL's request for the DR potential of ``[start, end)``."""
    descriptors = [
        ReportDescriptor(
            payload_type=t,
            reading_type=ReadingType.FORECAST,
            units=Unit.KWH if "ENERGY" in t or "CUMULATIVE" in t else Unit.KW,
            targets=tuple(targets) if targets else None,
            historical=False,
            report_intervals=ReportIntervals.OPEN_INTERVALS,
        )
        for t in POTENTIAL_TYPES
    ]
    return EventCreate(
        program_id=program_id,
        event_name=name,
        targets=tuple(targets) if targets else None,
        interval_period=IntervalPeriod(start=start, duration=format_duration(end - start)),
        report_descriptors=tuple(descriptors),
        intervals=(),
    )


def event_window(event: Event) -> tuple[datetime, datetime] | None:
    """``[start, end)`` of an event's ``intervalPeriod``, or None when it has none."""
    period = event.interval_period
    if period is None or period.start is None or period.duration is None:
        return None
    return period.start, period.start + parse_duration(period.duration)


def is_dr_event(event: Event) -> bool:
    """Whether ``event`` is an F2 DR event (an interval carries ``CONTROL_LEVEL_OFFSET`` or
    ``DISPATCH_SETPOINT_RELATIVE``)."""
    return any(p.type in (DIRECTION, DISPATCH) for iv in event.intervals or () for p in iv.payloads)


def is_potential_request(event: Event) -> bool:
    """Whether ``event`` asks for potential (reportDescriptors, no payload intervals)."""
    types = {d.payload_type for d in event.report_descriptors or ()}
    return UP_AVAILABLE in types and not event.intervals


def _slot_intervals(
    start: datetime, rows: Sequence[Sequence[tuple[str, float]]]
) -> tuple[Interval, ...]:
    return tuple(
        Interval(
            id=i,
            interval_period=IntervalPeriod(start=start + i * SLOT, duration="PT30M"),
            payloads=tuple(ValuesMap(type=t, values=(round(v, WIRE_DECIMALS),)) for t, v in row),
        )
        for i, row in enumerate(rows)
    )


def potential_report(
    event: Event, envelopes: Iterable[FlexibilityEnvelope], client_name: str
) -> ReportCreate:
    """F1: the VEN's answer to a potential request, one resource per envelope."""
    resources = []
    confidence = 95
    for env in envelopes:
        confidence = round(env.confidence * 100)
        rows = [
            [
                (BASELINE, s.baseline_kw),
                (UP_AVAILABLE, s.max_kw - s.baseline_kw),
                (DOWN_AVAILABLE, s.baseline_kw - s.min_kw),
                (CUM_MIN, s.cum_min_kwh),
                (CUM_MAX, s.cum_max_kwh),
            ]
            for s in env.slots
        ]
        intervals = list(_slot_intervals(env.window_start, rows))
        intervals.append(
            Interval(
                id=len(intervals),
                interval_period=IntervalPeriod(
                    start=env.window_start,
                    duration=format_duration(env.window_end - env.window_start),
                ),
                payloads=(
                    ValuesMap(type=UP_ENERGY, values=(round(env.up_kwh, WIRE_DECIMALS),)),
                    ValuesMap(type=DOWN_ENERGY, values=(round(env.down_kwh, WIRE_DECIMALS),)),
                ),
            )
        )
        resources.append(
            ReportResource(resource_name=str(env.device_id), intervals=tuple(intervals))
        )
    descriptors = tuple(
        ReportPayloadDescriptor(
            payload_type=t,
            reading_type=ReadingType.FORECAST,
            units=Unit.KWH if "ENERGY" in t or "CUMULATIVE" in t else Unit.KW,
            confidence=confidence,
        )
        for t in POTENTIAL_TYPES
    )
    return ReportCreate(
        event_id=event.id,
        client_name=client_name,
        report_name=POTENTIAL_REPORT,
        payload_descriptors=descriptors,
        resources=tuple(resources),
    )


def _payloads(interval: Interval) -> dict[str, tuple[object, ...]]:
    return {p.type: tuple(p.values) for p in interval.payloads}


def _number(values: tuple[object, ...], what: str) -> float:
    if not values or not isinstance(values[0], int | float) or isinstance(values[0], bool):
        raise ProfileError(f"{what}: expected a number, got {values!r}")
    return float(values[0])


def envelopes_from_report(
    report: Report | ReportCreate, computed_at: datetime
) -> list[FlexibilityEnvelope]:
    """F1 back to domain terms, one envelope per resource (a unit or the fleet group)."""
    confidence = 0.95
    for d in report.payload_descriptors or ():
        if d.payload_type == UP_AVAILABLE and d.confidence is not None:
            confidence = d.confidence / 100
    out = []
    for res in report.resources:
        slots = []
        up = down = None
        window: tuple[datetime, datetime] | None = None
        for iv in res.intervals:
            p = _payloads(iv)
            period = iv.interval_period
            if period is None or period.start is None or period.duration is None:
                raise ProfileError(f"resource {res.resource_name}: interval without a period")
            if UP_ENERGY in p:
                up = _number(p[UP_ENERGY], UP_ENERGY)
                down = _number(p.get(DOWN_ENERGY, (0.0,)), DOWN_ENERGY)
                window = (period.start, period.start + parse_duration(period.duration))
                continue
            base = _number(p[BASELINE], BASELINE)
            slots.append(
                EnvelopeSlot(
                    start=period.start,
                    baseline_kw=base,
                    min_kw=max(0.0, base - _number(p[DOWN_AVAILABLE], DOWN_AVAILABLE)),
                    max_kw=base + _number(p[UP_AVAILABLE], UP_AVAILABLE),
                    cum_min_kwh=_number(p[CUM_MIN], CUM_MIN),
                    cum_max_kwh=_number(p[CUM_MAX], CUM_MAX),
                )
            )
        if up is None or down is None or window is None:
            raise ProfileError(f"resource {res.resource_name}: no {UP_ENERGY} totals")
        out.append(
            FlexibilityEnvelope(
                device_id=_device_or_group(res.resource_name),
                computed_at=computed_at,
                window_start=window[0],
                window_end=window[1],
                confidence=confidence,
                up_kwh=up,
                down_kwh=down,
                slots=tuple(slots),
            )
        )
    return out


def _device_or_group(name: str) -> DeviceId:
    """The DeviceId of a resource name: a unit's own, ``<maker>:FLEET`` for a maker's group
    (:data:`GROUP_DEVICE_ID` for the older ``FLEET``)."""
    if name == LEGACY_GROUP_RESOURCE:
        return GROUP_DEVICE_ID
    maker = _group_maker(name)
    if maker is not None:
        return DeviceId(maker_code=maker, serial=GROUP_SERIAL)
    try:
        return DeviceId.parse(name)
    except ValueError as err:
        raise ProfileError(f"resourceName {name!r} is not a DeviceId") from err


# --- F2 -----------------------------------------------------------------------------------


def _event_kw(amount_kwh: float, start: datetime, end: datetime) -> float:
    """The kW an F2 event carries for ``amount_kwh`` over ``[start, end)`` (1e-6 kW steps)."""
    return round(amount_kwh / ((end - start).total_seconds() / 3600), WIRE_DECIMALS)


def event_amount_kwh(amount_kwh: float, start: datetime, end: datetime) -> float:
    """The amount a VEN reads back from the F2 event of ``amount_kwh``: the event carries kW
    rounded to 1e-6, so BL compares answers with this, not with the amount it meant."""
    return _event_kw(amount_kwh, start, end) * (end - start).total_seconds() / 3600


def dr_event(program_id: str, request: DrRequest, targets: Sequence[str]) -> EventCreate:
    """F2: a DR request as an event (the request id becomes the event name).

    Direction as ``CONTROL_LEVEL_OFFSET`` (:data:`UP_LEVEL` / :data:`DOWN_LEVEL`), amount as a
    non-negative ``DISPATCH_SETPOINT_RELATIVE`` [kW]; an open request (F2 by start time alone,
    ``request.open_amount``) carries no amount. The event asks for the answer (F3/F4) and,
    during the window, power reports (F5).
    """
    level = UP_LEVEL if request.direction is Direction.UP else DOWN_LEVEL
    payloads = [ValuesMap(type=DIRECTION, values=(level,))]
    descriptors = [EventPayloadDescriptor(payload_type=DIRECTION)]
    if not request.open_amount:
        kw = _event_kw(request.amount_kwh, request.start, request.end)
        payloads.append(ValuesMap(type=DISPATCH, values=(kw,)))
        descriptors.append(EventPayloadDescriptor(payload_type=DISPATCH, units=Unit.KW))
    return EventCreate(
        program_id=program_id,
        event_name=request.request_id,
        targets=tuple(targets),
        payload_descriptors=tuple(descriptors),
        interval_period=IntervalPeriod(
            start=request.start, duration=format_duration(request.end - request.start)
        ),
        intervals=(Interval(id=0, payloads=tuple(payloads)),),
        report_descriptors=dr_report_descriptors(),
    )


def dr_report_descriptors() -> tuple[ReportDescriptor, ...]:
    """What a DR event asks of the VEN: the answer (F3/F4) as soon as it has re-planned
    (``frequency`` 0: ad hoc) — ``DRREADY_RESPONSE`` on the event's interval, the plan on
    intervals of the VEN's choosing (``OPEN_INTERVALS``) — and, during the window, power (F5)
    in ad hoc reports on intervals of the VEN's choosing."""
    answer = (
        ReportDescriptor(
            payload_type=t,
            reading_type=ReadingType.FORECAST,
            units=Unit.KWH,
            historical=False,
            frequency=0,
            report_intervals=(
                ReportIntervals.INTERVALS if t == RESPONSE else ReportIntervals.OPEN_INTERVALS
            ),
        )
        for t in PLAN_TYPES
    )
    power = (
        ReportDescriptor(
            payload_type=t,
            units=Unit.KW if t == DEMAND else Unit.KWH,
            frequency=0,
            repeat=-1,
            report_intervals=ReportIntervals.OPEN_INTERVALS,
        )
        for t in POWER_TYPES
    )
    return (*answer, *power)


def request_from_event(event: Event, issued_at: datetime | None = None) -> DrRequest:
    """F2 back to domain terms: the one place a VEN converts the event's kW into kWh.

    The event name — the servicer's request id, set by :func:`dr_event` — becomes the
    request id unchanged (cut to the 64 characters a request id may have, which
    :func:`dr_event`'s names never exceed), so the units' plans name the event they honour;
    ``issuer`` names the event id. The direction is the sign of ``CONTROL_LEVEL_OFFSET``
    (without it, of ``DISPATCH_SETPOINT_RELATIVE``: the older form); an up-DR event without
    an amount is F2 by start time alone (an open request).
    """
    if not event.intervals:
        raise ProfileError(f"a DR event needs an interval with a {DIRECTION} or {DISPATCH} payload")
    start, end = _window_of(event)
    p = _payloads(event.intervals[0])
    if DIRECTION not in p and DISPATCH not in p:
        raise ProfileError(f"event {event.id}: no {DIRECTION} nor {DISPATCH} payload")
    kw = _number(p[DISPATCH], DISPATCH) if DISPATCH in p else None
    if DIRECTION in p:
        level = _number(p[DIRECTION], DIRECTION)
        if level == 0:
            raise ProfileError(f"event {event.id}: {DIRECTION} 0 asks for no change")
        direction = Direction.UP if level < 0 else Direction.DOWN
        if kw is not None and kw < 0:
            raise ProfileError(f"event {event.id}: {DISPATCH} must be ≥ 0 kW, got {kw!r}")
    else:
        assert kw is not None
        direction = Direction.UP if kw >= 0 else Direction.DOWN
    request_id = (event.event_name or event.id)[:64]
    issuer = f"event:{event.id}"[:64]
    when = issued_at or event.created_date_time
    if kw is None:
        if direction is Direction.DOWN:
            raise ProfileError(f"event {event.id}: a down-DR event needs a {DISPATCH} amount")
        return DrRequest.at_start_time(request_id, start, when, end=end, issuer=issuer)
    hours = (end - start).total_seconds() / 3600
    return DrRequest(
        request_id=request_id,
        direction=direction,
        start=start,
        end=end,
        amount_kwh=abs(kw) * hours,
        issuer=issuer,
        issued_at=when,
    )


# --- F3/F4 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanAnswer:
    """A unit's answer to a DR event: its response and its DR-aware plan."""

    response: DrResponse
    plan: HeatingPlan


def plan_report(event: Event, answers: Iterable[PlanAnswer], client_name: str) -> ReportCreate:
    """F3/F4: responses and plans of the units a DR event targeted."""
    resources = []
    for a in answers:
        status = ValuesMap(
            type=RESPONSE,
            values=(
                a.response.status.value,
                round(a.response.accepted_kwh, WIRE_DECIMALS),
                a.response.reason or "",
            ),
        )
        rows = [
            [(USAGE_FORECAST, s.energy_kwh), (STORED_HEAT, s.stored_heat_kwh)] for s in a.plan.slots
        ]
        answered = event.intervals[0].id if event.intervals else 0
        intervals = [Interval(id=answered, interval_period=_period(event), payloads=(status,))]
        intervals += [
            Interval(id=i + 1, interval_period=iv.interval_period, payloads=iv.payloads)
            for i, iv in enumerate(_slot_intervals(a.plan.grid.start, rows))
        ]
        resources.append(
            ReportResource(resource_name=str(a.response.device_id), intervals=tuple(intervals))
        )
    return ReportCreate(
        event_id=event.id,
        client_name=client_name,
        report_name=PLAN_REPORT,
        payload_descriptors=tuple(
            ReportPayloadDescriptor(
                payload_type=t, reading_type=ReadingType.FORECAST, units=Unit.KWH
            )
            for t in PLAN_TYPES
        ),
        resources=tuple(resources),
    )


def _period(event: Event) -> IntervalPeriod:
    start, end = _window_of(event)
    return IntervalPeriod(start=start, duration=format_duration(end - start))


def answers_from_report(report: Report | ReportCreate, request: DrRequest) -> list[PlanAnswer]:
    """F3/F4 back to domain terms, for the :class:`~drready.domain.DrRequest` answered."""
    return plan_answers(
        report,
        request_id=request.request_id,
        requested_kwh=None if request.open_amount else request.amount_kwh,
    )


def plan_answers(
    report: Report | ReportCreate, *, request_id: str, requested_kwh: float | None
) -> list[PlanAnswer]:
    """F3/F4 back to domain terms from what the answered event carried: its request id (the
    event name) and its amount [kWh] (the event's kW over its window,
    :func:`event_amount_kwh`), which caps what an answer may accept; None for an event by
    start time alone (no amount: what the unit accepted is what it was asked)."""
    out = []
    for res in report.resources:
        device = _device_or_group(res.resource_name)
        status_iv = [iv for iv in res.intervals if RESPONSE in _payloads(iv)]
        if not status_iv:
            raise ProfileError(f"resource {res.resource_name}: no {RESPONSE}")
        values = _payloads(status_iv[0])[RESPONSE]
        if len(values) != 3:
            raise ProfileError(f"{RESPONSE}: expected [status, accepted kWh, reason], got {values}")
        status, _, reason = values
        try:
            status_ = ResponseStatus(str(status))
        except ValueError as err:
            raise ProfileError(f"{RESPONSE}: unknown status {status!r}") from err
        accepted = _number(values[1:2], RESPONSE)
        if requested_kwh is None:  # by start time alone: asked what it accepts
            asked = accepted if status_ is not ResponseStatus.REJECTED else MAX_AMOUNT_KWH
        else:
            asked, accepted = requested_kwh, min(accepted, requested_kwh)
        response = DrResponse(
            request_id=request_id,
            device_id=device,
            status=status_,
            requested_kwh=asked,
            accepted_kwh=accepted,
            reason=str(reason) or None,
        )
        slots_iv = [iv for iv in res.intervals if USAGE_FORECAST in _payloads(iv)]
        starts = [iv.interval_period.start for iv in slots_iv if iv.interval_period]
        if not slots_iv or starts[0] is None:
            raise ProfileError(f"resource {res.resource_name}: no {USAGE_FORECAST} slots")
        grid = SlotGrid(start=starts[0], n_slots=len(slots_iv))
        slots = tuple(
            PlanSlot.from_power(
                s,
                _number(_payloads(iv)[USAGE_FORECAST], USAGE_FORECAST) / grid.slot_hours,
                _number(_payloads(iv).get(STORED_HEAT, (0.0,)), STORED_HEAT),
            )
            for s, iv in zip(grid.starts(), slots_iv, strict=True)
        )
        plan = HeatingPlan(
            device_id=device,
            created_at=report.created_date_time if isinstance(report, Report) else grid.start,
            grid=grid,
            slots=slots,
            honours=(request_id,) if response.accepted_kwh > 0 else (),
        )
        out.append(PlanAnswer(response, plan))
    return out


def accepted_window(
    report: Report | ReportCreate,
) -> tuple[datetime, datetime, tuple[str, ...]] | None:
    """The DR window a plan report (F3/F4) answers and the resources that accepted something.

    What a VEN needs from its own plan report after a restart, to resume power reports (F5) in
    a window still running: ``(start, end, resource names)``, or None when no resource accepted
    anything (or the report carries no ``DRREADY_RESPONSE`` with a window).
    """
    window: tuple[datetime, datetime] | None = None
    names = []
    for res in report.resources:
        for iv in res.intervals:
            status = [p for p in iv.payloads if p.type == RESPONSE]
            period = iv.interval_period
            if not status or period is None or period.start is None or period.duration is None:
                continue
            window = (period.start, period.start + parse_duration(period.duration))
            values = status[0].values
            accepted = values[1] if len(values) == 3 else 0
            if isinstance(accepted, int | float) and not isinstance(accepted, bool) and accepted:
                names.append(res.resource_name)
    if window is None or not names:
        return None
    return window[0], window[1], tuple(names)


# --- F5 -----------------------------------------------------------------------------------


def power_report(event_id: str, samples: Iterable[PowerSample], client_name: str) -> ReportCreate:
    """F5: current power and cumulative energy of each unit, each on the interval of
    :data:`POWER_SAMPLE_PERIOD` that ends at its sample time."""
    resources = []
    measured = True
    for s in samples:
        measured &= s.source is PowerSource.MEASURED
        resources.append(
            ReportResource(
                resource_name=str(s.device_id),
                intervals=(
                    Interval(
                        id=0,
                        interval_period=IntervalPeriod(
                            start=s.timestamp - POWER_SAMPLE_PERIOD,
                            duration=format_duration(POWER_SAMPLE_PERIOD),
                        ),
                        payloads=(
                            ValuesMap(
                                type=DEMAND, values=(round(s.power_w / 1000, WIRE_DECIMALS),)
                            ),
                            ValuesMap(
                                type=READING,
                                values=(round(s.cumulative_energy_kwh, WIRE_DECIMALS),),
                            ),
                        ),
                    ),
                ),
            )
        )
    reading = ReadingType.DIRECT_READ if measured else ReadingType.ESTIMATED
    return ReportCreate(
        event_id=event_id,
        client_name=client_name,
        report_name=POWER_REPORT,
        payload_descriptors=(
            ReportPayloadDescriptor(payload_type=DEMAND, reading_type=reading, units=Unit.KW),
            ReportPayloadDescriptor(payload_type=READING, reading_type=reading, units=Unit.KWH),
        ),
        resources=tuple(resources),
    )


def samples_from_report(report: Report | ReportCreate) -> list[PowerSample]:
    """F5 back to domain terms: each sample at its interval's end (a zero-length interval of
    the older form: at its start)."""
    source = PowerSource.MEASURED
    for d in report.payload_descriptors or ():
        if d.payload_type == DEMAND and d.reading_type == ReadingType.ESTIMATED:
            source = PowerSource.ESTIMATED
    out = []
    for res in report.resources:
        for iv in res.intervals:
            p = _payloads(iv)
            period = iv.interval_period
            if DEMAND not in p or period is None or period.start is None:
                continue
            at = period.start + (parse_duration(period.duration) if period.duration else ZERO)
            out.append(
                PowerSample(
                    device_id=_device_or_group(res.resource_name),
                    timestamp=at,
                    power_w=_number(p[DEMAND], DEMAND) * 1000,
                    cumulative_energy_kwh=_number(p.get(READING, (0.0,)), READING),
                    source=source,
                )
            )
    return out
