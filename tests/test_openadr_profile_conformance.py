"""Every OpenADR object drready emits is valid against the whole 3.1.0 specification — the
OpenAPI schemas and the enumerations' value schemas — in up, down, start-time-only, group and
per-unit form, for F1–F6 and the servicer's resource update (issue 17 item 1; issue 13 item 4).

The oracle is the specification's own files (``openadr3.yaml``, ``enumerations/*.yaml``), read
by :mod:`tests.openadr_conformant`, independently of the profile's code.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from drready.domain import DEFAULT_TZ, DeviceId, Direction, DrRequest, PowerSample, PowerSource
from drready.domain.requests import MAX_AMOUNT_KWH
from drready.domain.time import zone
from drready.openadr import profile as pf
from drready.openadr.models import (
    BlResourceCreate,
    Event,
    EventCreate,
    Interval,
    IntervalPeriod,
    Report,
    ValuesMap,
    VenResourceCreate,
    VenVenCreate,
    to_wire,
)
from drready.planning.unit import UnitConfig, UnitPlanner
from tests.openadr_conformant import check

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 11, 22, 0, tzinfo=TZ)
START = datetime(2026, 5, 12, 10, tzinfo=TZ)
END = START + timedelta(hours=3)
UNIT = DeviceId(maker_code="000005", serial="HW0000001")


def _event(create: EventCreate) -> Event:
    return Event.from_create(create, object_id="ev-1", now=NOW)


def _request(direction: Direction, amount_kwh: float = 2.4) -> DrRequest:
    return DrRequest(
        request_id=f"r-{direction.value}",
        direction=direction,
        start=START,
        end=END,
        amount_kwh=amount_kwh,
        issuer="bl",
        issued_at=NOW,
    )


def _planner() -> UnitPlanner:
    return UnitPlanner.day_ahead(UnitConfig(UNIT, 4, 460.0), date(2026, 5, 12))


def _payload(body: dict[str, Any], kind: str) -> list[Any] | None:
    for vm in body["intervals"][0]["payloads"]:
        if vm["type"] == kind:
            return list(vm["values"])
    return None


def test_the_checker_refuses_what_the_old_profile_sent() -> None:
    """The oracle catches the two faults issue 17 names: a negative DISPATCH_SETPOINT_RELATIVE
    and a private type without the private prefix."""
    old = EventCreate(
        program_id="p",
        event_name="old-down",
        interval_period=IntervalPeriod(start=START, duration="PT3H"),
        intervals=(Interval(id=0, payloads=(ValuesMap(type=pf.DISPATCH, values=(-0.8,)),)),),
    )
    with pytest.raises(AssertionError, match="DISPATCH_SETPOINT_RELATIVE"):
        check("eventRequest", to_wire(old))
    bad = VenResourceCreate(
        resource_name="x",
        ven_id="v",
        attributes=(ValuesMap(type="RATED_KW", values=(1.0,)),),
    )
    with pytest.raises(AssertionError, match="RATED_KW"):
        check("VenResourceRequest", to_wire(bad))


def test_program_is_conformant() -> None:
    check("programRequest", to_wire(pf.program()))


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_dr_event_up_and_down_are_schema_valid_and_round_trip(direction: Direction) -> None:
    req = _request(direction)
    body = to_wire(pf.dr_event("prog-1", req, [str(UNIT)]))
    check("eventRequest", body)
    check("event", to_wire(_event(pf.dr_event("prog-1", req, [str(UNIT)]))))
    # the amount is a magnitude (2.4 kWh over 3 h = 0.8 kW), the direction the sign of the
    # standard CONTROL_LEVEL_OFFSET: > 0 sheds load
    assert _payload(body, "DISPATCH_SETPOINT_RELATIVE") == [pytest.approx(0.8)]
    assert _payload(body, "CONTROL_LEVEL_OFFSET") == [1 if direction is Direction.DOWN else -1]
    back = pf.request_from_event(_event(pf.dr_event("prog-1", req, [str(UNIT)])), NOW)
    assert back.direction is direction and back.amount_kwh == pytest.approx(2.4)
    assert not back.open_amount


def test_start_time_only_event_carries_no_amount_and_reads_back_open() -> None:
    req = DrRequest.at_start_time("s-1300", datetime(2026, 5, 12, 13, tzinfo=TZ), NOW)
    assert (req.end - req.start, req.open_amount) == (timedelta(hours=4), True)
    body = to_wire(pf.dr_event("prog-1", req, [str(UNIT)]))
    check("eventRequest", body)
    assert _payload(body, "DISPATCH_SETPOINT_RELATIVE") is None
    assert _payload(body, "CONTROL_LEVEL_OFFSET") == [-1]
    assert body["intervalPeriod"] == {"start": "2026-05-12T13:00:00+09:00", "duration": "PT4H"}
    back = pf.request_from_event(_event(pf.dr_event("prog-1", req, [str(UNIT)])), NOW)
    assert back.open_amount and back.direction is Direction.UP
    assert (back.start, back.end, back.request_id) == (req.start, req.end, "s-1300")


def test_start_time_only_answer_is_accepted_with_what_the_unit_heats() -> None:
    """The unit heats from 13:00 as much as its plan allows: its up-DR potential there."""
    planner = _planner()
    start = datetime(2026, 5, 12, 13, tzinfo=TZ)
    potential = planner.flexibility_envelope(start, start + timedelta(hours=4)).up_kwh
    req = DrRequest.at_start_time("s-1300", start, NOW)
    out = planner.respond_to_requests([req])
    (resp,) = out.responses
    assert resp.status.value == "accepted" and resp.accepted_kwh == resp.requested_kwh
    assert resp.accepted_kwh == pytest.approx(potential, rel=1e-3) and potential > 0.5
    assert resp.accepted_kwh < MAX_AMOUNT_KWH
    event = _event(pf.dr_event("prog-1", req, [str(UNIT)]))
    rep = pf.plan_report(event, [pf.PlanAnswer(resp, out.heating_plan)], "cloud")
    check("reportRequest", to_wire(rep))
    (ans,) = pf.answers_from_report(rep, req)
    assert ans.response.status.value == "accepted"
    assert ans.response.accepted_kwh == pytest.approx(resp.accepted_kwh, abs=1e-6)
    assert ans.plan.honours == ("s-1300",)


def test_a_down_event_without_amount_is_refused() -> None:
    ev = EventCreate(
        program_id="p",
        event_name="d",
        interval_period=IntervalPeriod(start=START, duration="PT3H"),
        intervals=(Interval(id=0, payloads=(ValuesMap(type=pf.DIRECTION, values=(1,)),)),),
    )
    with pytest.raises(pf.ProfileError, match="down-DR event needs"):
        pf.request_from_event(_event(ev))


def test_older_signed_dispatch_is_still_read() -> None:
    """Backward reading: an event of the older form (signed kW, no direction) still decodes."""
    ev = EventCreate(
        program_id="p",
        event_name="old",
        interval_period=IntervalPeriod(start=START, duration="PT3H"),
        intervals=(Interval(id=0, payloads=(ValuesMap(type=pf.DISPATCH, values=(-0.8,)),)),),
    )
    back = pf.request_from_event(_event(ev), NOW)
    assert back.direction is Direction.DOWN and back.amount_kwh == pytest.approx(2.4)


def test_dr_event_asks_for_its_answer_and_power_per_the_user_guide() -> None:
    body = to_wire(pf.dr_event("prog-1", _request(Direction.UP), [str(UNIT)]))
    by_type = {d["payloadType"]: d for d in body["reportDescriptors"]}
    assert by_type["DRREADY_RESPONSE"]["reportIntervals"] == "INTERVALS"
    for t in ("USAGE_FORECAST", "DRREADY_STORED_HEAT", "DEMAND", "READING"):
        assert by_type[t]["reportIntervals"] == "OPEN_INTERVALS"
        assert by_type[t]["frequency"] == 0  # ad hoc: the VEN reports when it has something


def test_potential_request_is_report_only_with_open_intervals() -> None:
    req = pf.potential_request("prog-1", START, END, targets=[str(UNIT)])
    body = to_wire(req)
    check("eventRequest", body)
    assert body["intervals"] == []
    assert {d["reportIntervals"] for d in body["reportDescriptors"]} == {"OPEN_INTERVALS"}


@pytest.mark.parametrize("group", [False, True])
def test_potential_report_per_unit_and_group_is_conformant(group: bool) -> None:
    event = _event(pf.potential_request("prog-1", START, END))
    env = _planner().flexibility_envelope(START, END)
    if group:
        env = env.model_copy(update={"device_id": pf.GROUP_DEVICE_ID})
    rep = pf.potential_report(event, [env], "cloud")
    if group:
        rep = pf.group_named(rep, pf.group_resource("000005"))
    body = to_wire(rep)
    check("reportRequest", body)
    assert [r["resourceName"] for r in body["resources"]] == [
        "FLEET-000005" if group else str(UNIT)
    ]
    (back,) = pf.envelopes_from_report(rep, NOW)
    assert str(back.device_id) == ("000005:FLEET" if group else str(UNIT))
    assert pf.resource_name_of(back.device_id) == body["resources"][0]["resourceName"]


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_plan_report_ids_answer_the_event_interval(direction: Direction) -> None:
    planner = _planner()
    req = _request(direction, amount_kwh=0.5)
    out = planner.respond_to_requests([req])
    event = _event(pf.dr_event("prog-1", req, [str(UNIT)]))
    rep = pf.plan_report(event, [pf.PlanAnswer(out.responses[0], out.heating_plan)], "cloud")
    body = to_wire(rep)
    check("reportRequest", body)
    (res,) = body["resources"]
    response = [iv for iv in res["intervals"] if iv["payloads"][0]["type"] == "DRREADY_RESPONSE"]
    plan = [iv for iv in res["intervals"] if iv["payloads"][0]["type"] == "USAGE_FORECAST"]
    assert [iv["id"] for iv in response] == [(event.intervals or ())[0].id]
    assert [iv["id"] for iv in plan] == list(range(1, out.heating_plan.grid.n_slots + 1))


def test_group_plan_report_names_the_makers_group() -> None:
    planner = _planner()
    req = _request(Direction.UP, amount_kwh=0.5)
    out = planner.respond_to_requests([req])
    resp = out.responses[0].model_copy(update={"device_id": pf.GROUP_DEVICE_ID})
    plan = out.heating_plan.model_copy(update={"device_id": pf.GROUP_DEVICE_ID})
    event = _event(pf.dr_event("prog-1", req, [pf.group_resource("000007")]))
    rep = pf.group_named(
        pf.plan_report(event, [pf.PlanAnswer(resp, plan)], "cloud"), pf.group_resource("000007")
    )
    body = to_wire(rep)
    check("reportRequest", body)
    assert [r["resourceName"] for r in body["resources"]] == ["FLEET-000007"]


@pytest.mark.parametrize("source", [PowerSource.MEASURED, PowerSource.ESTIMATED])
def test_power_report_gives_demand_per_interval(source: PowerSource) -> None:
    s = PowerSample(
        device_id=UNIT, timestamp=START, power_w=1234.0, cumulative_energy_kwh=9.5, source=source
    )
    body = to_wire(pf.power_report("ev-1", [s], "gw"))
    check("reportRequest", body)
    (iv,) = body["resources"][0]["intervals"]
    assert iv["intervalPeriod"] == {"start": "2026-05-12T09:59:00+09:00", "duration": "PT1M"}
    (back,) = pf.samples_from_report(pf.power_report("ev-1", [s], "gw"))
    assert back.timestamp == START and back.power_w == pytest.approx(1234.0)


def test_resources_and_ven_use_standard_attributes() -> None:
    attrs = pf.resource_attributes(4.5, 1)
    body = to_wire(VenResourceCreate(resource_name=str(UNIT), ven_id="v-1", attributes=attrs))
    check("VenResourceRequest", body)
    assert body["attributes"][0] == {"type": "MAX_POWER_CONSUMPTION", "values": [4.5]}
    group = to_wire(
        VenResourceCreate(
            resource_name=pf.group_resource("000005"),
            ven_id="v-1",
            attributes=pf.resource_attributes(450.0, 100),
        )
    )
    check("VenResourceRequest", group)
    shift = pf.resource_attributes(4.5, energy_shift_hours=[10, 13])
    check(
        "BlResourceRequest",
        to_wire(
            BlResourceCreate(
                client_id="c-1",
                resource_name=str(UNIT),
                ven_id="v-1",
                targets=(str(UNIT),),
                attributes=shift,
            )
        ),
    )
    check("VenVenRequest", to_wire(VenVenCreate(ven_name="maker-cloud-000005")))
    assert pf.rating_of(attrs) == (4.5, 1)
    legacy = (ValuesMap(type=pf.LEGACY_RATED_POWER, values=(3.0,)),)
    assert pf.rating_of(legacy) == (3.0, None)


def test_group_resources_are_per_maker() -> None:
    a, b = pf.group_resource("000005"), pf.group_resource("00000A")
    assert a != b and pf.is_group_resource(a) and pf.is_group_resource(b)
    assert pf.is_group_resource("FLEET")  # the older name is still read
    assert not pf.is_group_resource("FLEET-xyz") and not pf.is_group_resource(str(UNIT))


def test_report_read_back_from_the_vtn_is_conformant() -> None:
    rep = pf.power_report(
        "ev-1",
        [
            PowerSample(
                device_id=UNIT,
                timestamp=START,
                power_w=0.0,
                cumulative_energy_kwh=0.0,
                source=PowerSource.MEASURED,
            )
        ],
        "gw",
    )
    check("report", to_wire(Report.from_create(rep, object_id="r", now=NOW, client_id="c")))
