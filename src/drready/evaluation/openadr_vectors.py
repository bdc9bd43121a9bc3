"""OpenADR 3.1 test vectors of drready's profile and the JSON Schemas of its private payload
types (D1, D4; issue 17 item 3).

Every object here is built by :mod:`drready.openadr.profile`'s own builders from domain objects
of one simulated day (a 4-person, 460 L unit and a second one, 12 May 2026, planned from 23:00
the evening before), so the vectors follow the profile as the code emits it; each is written as
the JSON body a client POSTs (``schema`` names the 3.1.0 ``components/schemas`` entry it must
validate against; ``tests/test_profile_vectors.py`` checks every one against the official
specification, its enumerations included). File names say the message (F1–F6), the form (``up``,
``down``, ``start-time``, ``unit``, ``group``) and the object.

:func:`private_type_schemas` publishes
:data:`~drready.evaluation.private_types.PRIVATE_TYPE_SCHEMAS`, one file per private type.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from drready.domain import (
    DEFAULT_TZ,
    DeviceId,
    Direction,
    DrRequest,
    EnvelopeSlot,
    FlexibilityEnvelope,
    PowerSample,
    PowerSource,
)
from drready.domain.time import zone
from drready.evaluation.private_types import PRIVATE_TYPE_SCHEMAS, SCHEMA_BASE, SCHEMA_DRAFT
from drready.evaluation.vectors import Vector
from drready.openadr import profile as pf
from drready.openadr.models import (
    BlResourceCreate,
    Event,
    OadrModel,
    VenResourceCreate,
    VenVenCreate,
    to_wire,
)
from drready.planning.unit import UnitConfig, UnitPlanner

__all__ = ["openadr_vectors", "private_type_schemas"]

TZ = zone(DEFAULT_TZ)
DAY = date(2026, 5, 12)
NOW = datetime(2026, 5, 11, 22, 0, tzinfo=TZ)
MAKER = "000005"
PROGRAM_ID = "program-1"
VEN_ID = "ven-1"


def private_type_schemas() -> list[Vector]:
    """One schema file per private type, and all of them in one document."""
    out = []
    for name, schema in PRIVATE_TYPE_SCHEMAS.items():
        body = {"$schema": SCHEMA_DRAFT, "$id": f"{SCHEMA_BASE}{name}.schema.json", **schema}
        out.append(Vector(f"schemas/{name}.schema.json", f"JSON Schema of {name}'s values", body))
    whole = {
        "$schema": SCHEMA_DRAFT,
        "$id": f"{SCHEMA_BASE}drready-private-types.schema.json",
        "title": "drready private payload types",
        "description": "The values of each private valuesMap type of docs/profile-openadr3.md.",
        "definitions": PRIVATE_TYPE_SCHEMAS,
    }
    out.append(
        Vector("schemas/drready-private-types.schema.json", "every private type's schema", whole)
    )
    return out


def _vector(path: str, summary: str, schema: str, obj: OadrModel) -> Vector:
    return Vector(
        f"openadr/{path}",
        summary,
        {"summary": summary, "schema": schema, "object": to_wire(obj)},
    )


def _units() -> list[UnitPlanner]:
    return [
        UnitPlanner.day_ahead(UnitConfig(DeviceId(maker_code=MAKER, serial=s), p, v), DAY)
        for s, p, v in (("HW0000001", 4, 460.0), ("HW0000002", 2, 370.0))
    ]


def _group_envelope(envs: list[FlexibilityEnvelope]) -> FlexibilityEnvelope:
    """The fleet group's envelope: the units' summed (as a maker cloud offers its fleet)."""
    slots = tuple(
        EnvelopeSlot(
            start=parts[0].start,
            baseline_kw=sum(s.baseline_kw for s in parts),
            min_kw=sum(s.min_kw for s in parts),
            max_kw=sum(s.max_kw for s in parts),
            cum_min_kwh=sum(s.cum_min_kwh for s in parts),
            cum_max_kwh=sum(s.cum_max_kwh for s in parts),
        )
        for parts in zip(*(e.slots for e in envs), strict=True)
    )
    first = envs[0]
    return FlexibilityEnvelope(
        device_id=pf.GROUP_DEVICE_ID,
        computed_at=first.computed_at,
        window_start=first.window_start,
        window_end=first.window_end,
        confidence=min(e.confidence for e in envs),
        up_kwh=sum(e.up_kwh for e in envs),
        down_kwh=sum(e.down_kwh for e in envs),
        slots=slots,
    )


def _event(create: Any, object_id: str) -> Event:
    return Event.from_create(create, object_id=object_id, now=NOW)


def openadr_vectors() -> list[Vector]:
    """Every OpenADR vector: program, VEN and resources (F6), F1 request and report, F2 events,
    F3/F4 plan reports and F5 power reports, each in its forms."""
    units = _units()
    names = [str(u.config.device_id) for u in units]
    group = pf.group_resource(MAKER)
    out = [
        _vector("f0-program.json", "the DR-ready program", "programRequest", pf.program()),
        _vector(
            "f6-ven.json",
            "a maker cloud's VEN object (VEN_VEN_REQUEST)",
            "VenVenRequest",
            VenVenCreate(ven_name="maker-000005-cloud"),
        ),
        _vector(
            "f6-resource-unit.json",
            "a unit as a resource: its DeviceId, MAX_POWER_CONSUMPTION and DRREADY_UNITS 1",
            "VenResourceRequest",
            VenResourceCreate(
                resource_name=names[0], ven_id=VEN_ID, attributes=pf.resource_attributes(1.077)
            ),
        ),
        _vector(
            "f6-resource-group.json",
            "a maker's fleet as one resource FLEET-<maker> (D6): summed rating, unit count",
            "VenResourceRequest",
            VenResourceCreate(
                resource_name=group,
                ven_id=VEN_ID,
                attributes=pf.resource_attributes(2 * 1.077, 2),
            ),
        ),
        _vector(
            "f6-resource-standard-only.json",
            "a standard-only unit behind a gateway: DRREADY_ENERGY_SHIFT_ONLY [10, 13, 15, 17]",
            "VenResourceRequest",
            VenResourceCreate(
                resource_name="000005:HW0000009",
                ven_id=VEN_ID,
                attributes=pf.resource_attributes(1.077, energy_shift_hours=(10, 13, 15, 17)),
            ),
        ),
        _vector(
            "f6-resource-grant-group.json",
            "BL grants the group resource its own name as target (only its maker's VEN sees it)",
            "BlResourceRequest",
            BlResourceCreate(
                client_id="maker-000005",
                resource_name=group,
                ven_id=VEN_ID,
                targets=(group,),
                attributes=pf.resource_attributes(2 * 1.077, 2),
            ),
        ),
    ]
    start = datetime(2026, 5, 12, 10, tzinfo=TZ)
    end = start + timedelta(hours=4)
    envs = [u.flexibility_envelope(start, end) for u in units]
    for form, targets, answer in (
        ("unit", names, envs),
        ("group", [group], [_group_envelope(envs)]),
    ):
        ask = pf.potential_request(PROGRAM_ID, start, end, targets=targets)
        out.append(
            _vector(
                f"f1-potential-request-{form}.json",
                f"F1: potential request for 10:00-14:00 ({form} targets)",
                "eventRequest",
                ask,
            )
        )
        report = pf.potential_report(_event(ask, f"ev-f1-{form}"), answer, "maker-000005-cloud")
        if form == "group":
            report = pf.group_named(report, group)
        out.append(
            _vector(
                f"f1-potential-report-{form}.json",
                f"F1: the potential report answering it ({form})",
                "reportRequest",
                report,
            )
        )
    night = datetime(2026, 5, 12, 0, tzinfo=TZ)
    requests = {
        "up": DrRequest(
            request_id="drready-assignment-17",
            direction=Direction.UP,
            start=start,
            end=start + timedelta(hours=3),
            amount_kwh=2.0,
            issuer="servicer",
            issued_at=NOW,
        ),
        "down": DrRequest(
            request_id="drready-assignment-18",
            direction=Direction.DOWN,
            start=night,
            end=night + timedelta(hours=2),
            amount_kwh=1.0,
            issuer="servicer",
            issued_at=NOW,
        ),
        "start-time": DrRequest.at_start_time(
            "drready-assignment-19", start.replace(hour=13), NOW, issuer="servicer"
        ),
    }
    for form, req in requests.items():
        out += _dr_vectors(form, req, units[0], [names[0]])
    out += _dr_vectors("group-up", requests["up"], units[0], [group], group=group)
    return out


def _dr_vectors(
    form: str, request: DrRequest, unit: UnitPlanner, targets: list[str], group: str | None = None
) -> list[Vector]:
    """F2 event, F3/F4 plan report and F5 power report of one request in one form."""
    create = pf.dr_event(PROGRAM_ID, request, targets)
    event = _event(create, f"ev-{form}")
    outcome = unit.respond_to_requests([pf.request_from_event(event, NOW)])
    response, plan = outcome.responses[0], outcome.heating_plan
    if group is not None:  # the group answers as one resource (its cloud's GROUP_DEVICE_ID)
        response = response.model_copy(update={"device_id": pf.GROUP_DEVICE_ID})
        plan = plan.model_copy(update={"device_id": pf.GROUP_DEVICE_ID})
    report = pf.plan_report(event, [pf.PlanAnswer(response, plan)], "maker-000005-cloud")
    measured = PowerSample(
        device_id=pf.GROUP_DEVICE_ID if group else unit.config.device_id,
        timestamp=request.start + timedelta(minutes=31),
        power_w=1077.0 if request.direction is Direction.UP else 0.0,
        cumulative_energy_kwh=1234.567,
        source=PowerSource.MEASURED if form != "down" else PowerSource.ESTIMATED,
    )
    power = pf.power_report(event.id, [measured], "maker-000005-cloud")
    if group is not None:
        report = pf.group_named(report, group)
        power = pf.group_named(power, group)
    what = {
        "up": "up-DR 2 kWh 10:00-13:00",
        "down": "down-DR 1 kWh 00:00-02:00",
        "start-time": "start heating at 13:00 (no amount)",
        "group-up": "up-DR 2 kWh 10:00-13:00 for a maker's fleet group",
    }[form]
    reading = "estimated" if form == "down" else "measured"
    return [
        _vector(f"f2-event-{form}.json", f"F2: DR event, {what}", "eventRequest", create),
        _vector(
            f"f3f4-plan-report-{form}.json",
            f"F3/F4: the answer and the DR-aware plan, {what}",
            "reportRequest",
            report,
        ),
        _vector(
            f"f5-power-report-{form}.json",
            f"F5: a power report during the window ({reading}), {what}",
            "reportRequest",
            power,
        ),
    ]
