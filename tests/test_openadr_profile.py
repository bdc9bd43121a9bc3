"""The drready OpenADR profile: every F1–F6 exchange is spec-valid and round-trips (C1, D1)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from drready.domain import (
    DEFAULT_TZ,
    DeviceId,
    Direction,
    DrRequest,
    PowerSource,
    ResponseStatus,
)
from drready.domain.time import zone
from drready.domain.tolerances import ENERGY_TOL_KWH, POWER_TOL_KW
from drready.openadr import profile as pf
from drready.openadr.models import Event, Report, to_wire
from drready.openadr.spec import validate
from drready.planning.unit import UnitConfig, UnitPlanner

TZ = zone(DEFAULT_TZ)
PLAN_WINDOW_TOL_KWH = 1e-5  # 6 slots of kWh, each rounded to 1e-6 on the wire
NOW = datetime(2026, 5, 11, 22, 0, tzinfo=TZ)


def _event(create, object_id: str = "ev-1") -> Event:
    return Event.from_create(create, object_id=object_id, now=NOW)


def _report(create, object_id: str = "rp-1") -> Report:
    return Report.from_create(create, object_id=object_id, now=NOW, client_id="cloud-1")


def unit(serial: str = "HW0000001") -> UnitPlanner:
    cfg = UnitConfig(DeviceId(maker_code="000005", serial=serial), 4, 460.0)
    return UnitPlanner.day_ahead(cfg, date(2026, 5, 12))


def test_program_is_spec_valid():
    validate("programRequest", to_wire(pf.program()))


def test_potential_request_and_report_round_trip():
    start = datetime(2026, 5, 12, 10, tzinfo=TZ)
    end = start + timedelta(hours=4)
    req = pf.potential_request("prog-1", start, end, targets=["000005:HW0000001"])
    validate("eventRequest", to_wire(req))
    event = _event(req)
    validate("event", to_wire(event))
    assert pf.is_potential_request(event)
    envs = [
        unit("HW0000001").flexibility_envelope(start, end),
        unit("HW0000002").flexibility_envelope(start, end),
    ]
    rep = pf.potential_report(event, envs, client_name="maker-cloud")
    validate("reportRequest", to_wire(rep))
    back = pf.envelopes_from_report(_report(rep), computed_at=NOW)
    assert [str(e.device_id) for e in back] == ["000005:HW0000001", "000005:HW0000002"]
    for a, b in zip(back, envs, strict=True):
        assert a.up_kwh == pytest.approx(b.up_kwh, abs=ENERGY_TOL_KWH)
        assert a.down_kwh == pytest.approx(b.down_kwh, abs=ENERGY_TOL_KWH)
        assert a.confidence == pytest.approx(b.confidence)
        assert a.window_start == b.window_start and a.window_end == b.window_end
        for x, y in zip(a.slots, b.slots, strict=True):
            assert x.max_kw == pytest.approx(y.max_kw, abs=POWER_TOL_KW)
            assert x.min_kw == pytest.approx(y.min_kw, abs=POWER_TOL_KW)
            assert x.cum_max_kwh == pytest.approx(y.cum_max_kwh, abs=ENERGY_TOL_KWH)


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_dr_event_carries_the_request(direction: Direction):
    req = DrRequest(
        request_id="r-42",
        direction=direction,
        start=datetime(2026, 5, 12, 10, tzinfo=TZ),
        end=datetime(2026, 5, 12, 13, tzinfo=TZ),
        amount_kwh=2.4,
        issuer="bl",
        issued_at=NOW,
    )
    ev = pf.dr_event("prog-1", req, targets=["000005:HW0000001"])
    validate("eventRequest", to_wire(ev))
    payloads = {p["type"]: p["values"] for p in to_wire(ev)["intervals"][0]["payloads"]}
    assert payloads["DISPATCH_SETPOINT_RELATIVE"] == [pytest.approx(0.8)]  # ≥ 0, the schema's
    assert payloads["CONTROL_LEVEL_OFFSET"] == [-1 if direction is Direction.UP else 1]
    back = pf.request_from_event(_event(ev), issued_at=NOW)
    assert back.direction is direction and back.amount_kwh == pytest.approx(2.4)
    assert (back.start, back.end, back.request_id) == (req.start, req.end, "r-42")


def test_plan_report_answers_with_response_and_plan():
    up = unit()
    req = DrRequest(
        request_id="r-7",
        direction=Direction.UP,
        start=datetime(2026, 5, 12, 10, tzinfo=TZ),
        end=datetime(2026, 5, 12, 13, tzinfo=TZ),
        amount_kwh=50.0,
        issuer="bl",
        issued_at=NOW,
    )
    out = up.respond_to_requests([req])
    event = _event(pf.dr_event("prog-1", req, targets=[str(up.config.device_id)]))
    rep = pf.plan_report(event, [pf.PlanAnswer(out.responses[0], out.heating_plan)], "cloud")
    validate("reportRequest", to_wire(rep))
    (ans,) = pf.answers_from_report(_report(rep), req)
    assert ans.response.status is ResponseStatus.PARTIAL
    assert ans.response.accepted_kwh == pytest.approx(
        out.responses[0].accepted_kwh, abs=ENERGY_TOL_KWH
    )
    assert ans.response.reason and "potential" in ans.response.reason
    assert ans.plan.window_energy_kwh(req.start, req.end) == pytest.approx(
        out.heating_plan.window_energy_kwh(req.start, req.end), abs=PLAN_WINDOW_TOL_KWH
    )


@pytest.mark.parametrize("source", [PowerSource.MEASURED, PowerSource.ESTIMATED])
def test_power_report_reading_type(source: PowerSource):
    from drready.domain import PowerSample

    s = PowerSample(
        device_id=DeviceId(maker_code="000005", serial="HW0000001"),
        timestamp=NOW,
        power_w=1234.0,
        cumulative_energy_kwh=456.789,
        source=source,
    )
    rep = pf.power_report("ev-1", [s], "gw")
    wire = to_wire(rep)
    validate("reportRequest", wire)
    expected = "DIRECT_READ" if source is PowerSource.MEASURED else "ESTIMATED"
    assert wire["payloadDescriptors"][0]["readingType"] == expected
    (back,) = pf.samples_from_report(_report(rep))
    assert back.power_w == pytest.approx(1234.0) and back.source is source
    assert back.cumulative_energy_kwh == pytest.approx(456.789)


def test_not_following_the_profile_is_a_clear_error():
    ev = _event(pf.potential_request("p", NOW, NOW + timedelta(hours=1)))
    with pytest.raises(pf.ProfileError, match="CONTROL_LEVEL_OFFSET"):
        pf.request_from_event(ev)
