"""F2 by start time alone ("start heating at 13:00", the amount optional) on every route
(issue 13 item 4): the domain's open request, the command line, ECHONET Lite — the standard
daytime heating shift 0xCA, which carries a start time and no amount, and a DR-ready unit's 0xF0
through the home gateway — each answered by the unit with what its plan moves into the window.

The reference each time is the unit's own up-DR potential for the 4 hours from the start time
(:meth:`flexibility_envelope`), read before the request: an open request must be accepted with
exactly that, not with a cap or a partial status.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from drready.cli import app
from drready.cli.dr_spec import parse_dr_spec
from drready.domain import DeviceId, Direction, DrRequest, DrResponse, ResponseStatus
from drready.domain.requests import MAX_AMOUNT_KWH, START_TIME_WINDOW
from drready.echonet.controller import EchonetController
from drready.echonet.frame import EOJ
from drready.gateway.home import WaterHeaterLink
from drready.gateway.standard import ShiftOption, decide_shift
from tests.echonet_helpers import TZ, make_heater, make_node

DAY = date(2026, 5, 12)
UNIT = DeviceId(maker_code="000005", serial="HW0000001")


def test_an_open_request_is_up_dr_for_four_hours_capped_by_nothing() -> None:
    start = datetime(2026, 5, 12, 13, tzinfo=TZ)
    req = DrRequest.at_start_time("s", start, start)
    assert req.open_amount and req.direction is Direction.UP
    assert req.end - req.start == START_TIME_WINDOW == timedelta(hours=4)
    assert req.amount_kwh == MAX_AMOUNT_KWH
    with_amount = DrRequest.at_start_time("s", start, start, amount_kwh=1.5)
    assert not with_amount.open_amount and with_amount.amount_kwh == 1.5
    with pytest.raises(ValidationError, match="direction must be 'up' when open_amount"):
        DrRequest(
            request_id="s",
            direction=Direction.DOWN,
            start=start,
            end=start + START_TIME_WINDOW,
            amount_kwh=1.0,
            issued_at=start,
            open_amount=True,
        )


def test_an_open_request_is_accepted_with_what_the_unit_heats_or_rejected() -> None:
    start = datetime(2026, 5, 12, 13, tzinfo=TZ)
    req = DrRequest.at_start_time("s", start, start)
    r = DrResponse.from_amounts(req, UNIT, 2.345, "potential 2.345 kWh")
    assert (r.status, r.requested_kwh, r.accepted_kwh) == (ResponseStatus.ACCEPTED, 2.345, 2.345)
    r = DrResponse.from_amounts(req, UNIT, 0.0)
    assert r.status is ResponseStatus.REJECTED and r.reason


def test_cli_spells_a_start_time_with_or_without_amount() -> None:
    now = datetime(2026, 5, 11, 22, tzinfo=TZ)
    req = parse_dr_spec("start:13:00", DAY, issued_at=now)
    assert (req.request_id, req.open_amount, req.start.hour, req.end.hour) == (
        "start-1300",
        True,
        13,
        17,
    )
    req = parse_dr_spec("start:13:30:1.5", DAY, issued_at=now)
    assert (req.open_amount, req.amount_kwh, req.end.hour, req.end.minute) == (False, 1.5, 17, 30)
    with pytest.raises(ValueError, match="start time '25:00'"):
        parse_dr_spec("start:25:00", DAY)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        parse_dr_spec("start:13:00:-1", DAY)


def test_drready_plan_takes_a_start_time_alone() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["plan", "--request", "start:13:00", "--json"])
    assert out.exit_code == 0, out.output
    (resp,) = json.loads(out.output)["responses"]
    ref = runner.invoke(
        app, ["potential", "--window", "13:00-17:00", "--json"]
    )  # the same unit's potential there
    assert ref.exit_code == 0, ref.output
    up_kwh = json.loads(ref.output)["up_kwh"]
    assert resp["status"] == "accepted"
    assert resp["accepted_kwh"] == pytest.approx(up_kwh, abs=1e-3) and up_kwh > 0.5
    bad = runner.invoke(app, ["plan", "--request", "start:13:10"])
    assert bad.exit_code == 2 and "start must be aligned" in bad.output


def test_the_standard_shift_time_0xca_is_a_start_time_alone() -> None:
    """0xCA carries an hour and no amount: the unit answers with its potential there."""
    heater = make_heater()
    day = heater.target_day()
    start = datetime(day.year, day.month, day.day, 13, tzinfo=TZ)
    potential = heater.flexibility_envelope(start, start + START_TIME_WINDOW).up_kwh
    heater.energy_shift_participation = True
    resp = heater.set_shift_time(1, 13)
    assert resp is not None and resp.status is ResponseStatus.ACCEPTED
    assert resp.accepted_kwh == pytest.approx(potential, rel=1e-6) and potential > 0.5
    open_req = DrRequest.at_start_time("open-13", start, heater.now)
    heater.set_shift_time(1, None)  # withdraw it: the same unit, asked the open way
    (same,) = heater.submit_requests([open_req])
    assert same.status is ResponseStatus.ACCEPTED
    assert same.accepted_kwh == pytest.approx(resp.accepted_kwh, rel=1e-6)


def test_gateway_sends_an_open_request_to_a_dr_ready_unit_and_reports_it_accepted() -> None:
    async def run() -> None:
        node, heater = make_node("127.0.0.61")
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                link = WaterHeaterLink(ctl, "127.0.0.61", EOJ(0x02, 0x6B, 0x01))
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 13, tzinfo=TZ)
                env = await link.flexibility_envelope(start, start + START_TIME_WINDOW)
                req = DrRequest.at_start_time("drready-assignment-9", start, datetime.now(TZ))
                resp = await link.request(req)
                assert resp.status is ResponseStatus.ACCEPTED
                assert resp.accepted_kwh == pytest.approx(env.up_kwh, abs=2e-3)
                assert resp.accepted_kwh > 0.5
                assert resp.reason and "from the start time" in resp.reason
                plan = await link.heating_plan()
                assert "drready-assignment-9" in plan.honours
        finally:
            await node.close()

    asyncio.run(run())


def test_a_standard_only_unit_takes_a_start_time_as_the_shift_from_that_hour() -> None:
    """Through the gateway a standard-only unit is given the whole shift starting at the asked
    hour (0xCA), accepted with its expected energy — not the shift nearest a cap."""
    day = date(2026, 5, 12)
    at = {h: datetime(2026, 5, 12, h, tzinfo=TZ) for h in (10, 13)}
    options = [
        ShiftOption(1, 10, at[10], at[10] + START_TIME_WINDOW, 3.2, 1.0),
        ShiftOption(2, 13, at[13], at[13] + START_TIME_WINDOW, 2.1, 1.0),
    ]
    req = DrRequest.at_start_time("s", at[13], at[10], end=at[13] + START_TIME_WINDOW)
    decision = decide_shift(req, options, day)
    assert decision.option is options[1] and decision.accepted_kwh == 2.1
    resp = DrResponse.from_amounts(req, UNIT, decision.accepted_kwh, decision.reason)
    assert resp.status is ResponseStatus.ACCEPTED and resp.accepted_kwh == 2.1
    assert "less than asked" not in (decision.reason or "")
