"""End to end, route i: the servicer's VTN, the home gateway's VEN and ECHONET Lite water heaters.

Real protocols only: the VTN over HTTPS on loopback (``tests.test_ven_client.serve_vtn``), the
servicer's business logic (BL) as plain httpx, the gateway's
:class:`~drready.gateway.ven.GatewayVen` with a real :class:`~drready.openadr.ven.VenClient`,
and the water heaters as ECHONET Lite device nodes on 127.0.0.7x:3610 wrapping
:class:`~drready.device.heater.SimulatedWaterHeater` on one shared :class:`SimClock` — the
same clock the gateway's ``now`` reads, so the unit and the events share one simulated time.
The reference each answer is checked against is the simulated unit itself, asked directly
in-process (its own F1, F4, F5), never the gateway's code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import (
    DeviceId,
    Direction,
    DrRequest,
    EnvelopeSlot,
    FlexibilityEnvelope,
    PowerSource,
    ResponseStatus,
)
from drready.echonet.controller import EchonetController
from drready.echonet.node import EchonetNode
from drready.echonet.serve import water_heater_node
from drready.gateway.ven import (
    GatewayVen,
    NoWaterHeaterError,
    discover_links,
    join_envelopes,
    run_gateway,
    serve_gateway,
)
from drready.openadr import profile
from drready.openadr.models import BlResourceCreate, Report, ReportCreate, from_wire
from drready.openadr.ven import VenConfigError, VtnUnavailableError
from drready.planning.unit import UnitConfig
from tests.echonet_helpers import TZ
from tests.test_ven_client import VEN_ID, Bl, Vtn, serve_vtn

T0 = datetime(2026, 5, 12, 8, 0, tzinfo=TZ)  # the simulated "now" when the gateway starts
START = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
END = datetime(2026, 5, 12, 14, 0, tzinfo=TZ)
GW_NAME = "home-gw-1"
WH_TOL = 1e-3  # 0xF3/0xF4/0x85 carry Wh and W as integers (±0.5 Wh), OpenADR rounds to 1e-6
PLAN_TOL_KWH = 0.01  # 8 slots of ±0.5 Wh plan energy, plus the baseline's 8 × ±0.5 Wh
CONFIDENCE_TOL = 0.005  # the confidence travels as a whole percent (OpenADR descriptor)


def _heater(serial: str, clock: SimClock, seed: int, persons: int = 4) -> SimulatedWaterHeater:
    cfg = UnitConfig(DeviceId(maker_code="000005", serial=serial), persons, 460.0)
    return SimulatedWaterHeater(cfg, clock, seed=seed, energy_shifts=2)


@asynccontextmanager
async def _nodes(pairs: list[tuple[str, SimulatedWaterHeater]]) -> AsyncIterator[list[EchonetNode]]:
    nodes = [water_heater_node(address, heater) for address, heater in pairs]
    for node in nodes:
        await node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.close()  # closing twice is harmless


def _reports(bl: Bl, event_id: str, name: str) -> list[Report]:
    found = [from_wire(Report, r) for r in bl.get("/reports", eventID=event_id)]
    return [r for r in found if r.report_name == name]


def _grant_names(bl: Bl) -> None:
    """BL grants every resource of the gateway's ven its own name as a target."""
    ven = bl.get("/vens", venName=GW_NAME)[0]
    for r in bl.get("/resources", venID=ven["id"]):
        bl.put(
            f"/resources/{r['id']}",
            BlResourceCreate(
                client_id=VEN_ID,
                resource_name=r["resourceName"],
                ven_id=ven["id"],
                targets=(r["resourceName"],),
            ),
        )


def _request(rid: str, amount_kwh: float, direction: Direction = Direction.UP) -> DrRequest:
    return DrRequest(
        request_id=rid,
        direction=direction,
        start=START,
        end=END,
        amount_kwh=amount_kwh,
        issuer="dr-servicer",
        issued_at=T0,
    )


def _assert_envelope(got: FlexibilityEnvelope, want: FlexibilityEnvelope) -> None:
    assert got.device_id == want.device_id
    assert (got.window_start, got.window_end) == (want.window_start, want.window_end)
    assert got.up_kwh == pytest.approx(want.up_kwh, abs=WH_TOL)
    assert got.down_kwh == pytest.approx(want.down_kwh, abs=WH_TOL)
    assert got.confidence == pytest.approx(want.confidence, abs=CONFIDENCE_TOL)
    for a, b in zip(got.slots, want.slots, strict=True):
        assert a.start == b.start
        assert a.baseline_kw == pytest.approx(b.baseline_kw, abs=WH_TOL)
        assert a.min_kw == pytest.approx(b.min_kw, abs=WH_TOL)
        assert a.max_kw == pytest.approx(b.max_kw, abs=WH_TOL)
        assert a.cum_min_kwh == pytest.approx(b.cum_min_kwh, abs=WH_TOL)
        assert a.cum_max_kwh == pytest.approx(b.cum_max_kwh, abs=WH_TOL)


# --------------------------------------------------------------------------- the whole route


def test_potential_dispatch_plan_power_and_restart(tmp_path: Path) -> None:
    clock = SimClock(T0, speed=0.0)
    units = {
        "127.0.0.71": _heater("HW0000071", clock, seed=3),
        "127.0.0.72": _heater("HW0000072", clock, seed=8, persons=3),
    }
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            asyncio.run(_whole_route(vtn, bl, clock, units))
        finally:
            bl.close()


async def _whole_route(
    vtn: Vtn, bl: Bl, clock: SimClock, units: dict[str, SimulatedWaterHeater]
) -> None:
    program_id = bl.post("/programs", profile.program())["id"]
    heater_a = next(iter(units.values()))
    async with (
        _nodes(list(units.items())),
        EchonetController(interface="127.0.0.1") as ctl,
    ):
        links = await discover_links(ctl, list(units), window_s=0.3)
        assert sorted(li.address for li in links) == sorted(units)

        async with vtn.ven(ven_name=GW_NAME) as ven:
            gw = GatewayVen(links, ven, power_interval_s=60)
            # F6: one resource per unit, named by the DeviceId read over ECHONET Lite 0x83
            await gw.register()
            names = {str(h.device_id) for h in units.values()}
            assert {r["resourceName"] for r in bl.get("/resources")} == names
            _grant_names(bl)

            # F1: potential of 10:00-14:00, asked of every unit (no targets)
            ask = bl.post("/events", profile.potential_request(program_id, START, END))
            log = await gw.poll_once(clock.now())
            assert any("potential report" in line for line in log), log
            (report,) = _reports(bl, ask["id"], "potential")
            envelopes = {
                str(e.device_id): e
                for e in profile.envelopes_from_report(report, computed_at=clock.now())
            }
            assert set(envelopes) == names
            for heater in units.values():  # what the unit computes itself
                _assert_envelope(
                    envelopes[str(heater.device_id)], heater.flexibility_envelope(START, END)
                )
            assert all(e.up_kwh > 0.3 for e in envelopes.values())  # something to dispatch
            assert await gw.poll_once(clock.now()) == []  # answered once only

            # F1 over 16 h, targeted at unit A: asked in 12 h + 4 h parts and joined
            long_end = START + timedelta(hours=16)
            ask_long = bl.post(
                "/events",
                profile.potential_request(
                    program_id, START, long_end, targets=[str(heater_a.device_id)]
                ),
            )
            await gw.poll_once(clock.now())
            (report,) = _reports(bl, ask_long["id"], "potential")
            (long_env,) = profile.envelopes_from_report(report, computed_at=clock.now())
            mid = START + timedelta(hours=12)
            parts = [
                heater_a.flexibility_envelope(START, mid),
                heater_a.flexibility_envelope(mid, long_end),
            ]
            _assert_envelope(long_env, join_envelopes(parts))
            whole = heater_a.flexibility_envelope(START, long_end)  # the exact figures
            assert long_env.up_kwh <= whole.up_kwh + WH_TOL  # inner bound: deliverable
            assert long_env.down_kwh <= whole.down_kwh + WH_TOL
            assert whole.up_kwh <= sum(p.up_kwh for p in parts) + WH_TOL
            for got, exact in zip(long_env.slots, whole.slots, strict=True):
                assert got.baseline_kw == pytest.approx(exact.baseline_kw, abs=WH_TOL)
                assert got.cum_min_kwh <= exact.cum_min_kwh + WH_TOL  # outer bounds
                assert got.cum_max_kwh >= exact.cum_max_kwh - WH_TOL

            # F2: up-DR to each unit, 80 % of its reported potential, one event per unit
            dispatched = []
            for k, heater in enumerate(units.values()):
                env = envelopes[str(heater.device_id)]
                req = _request(f"gw-up-{k}", 0.8 * env.up_kwh)
                ev = bl.post("/events", profile.dr_event(program_id, req, [str(heater.device_id)]))
                dispatched.append((ev["id"], req, env, heater))
            log = await gw.poll_once(clock.now())
            assert sum("plan report" in line for line in log) == 2, log

            # F3/F4: accepted, and the plan's energy in the window is the baseline + the amount
            for event_id, req, env, heater in dispatched:
                (plan_rep,) = _reports(bl, event_id, "plan")
                (answer,) = profile.answers_from_report(plan_rep, req)
                assert answer.response.device_id == heater.device_id
                assert answer.response.status is ResponseStatus.ACCEPTED
                extra = answer.plan.window_energy_kwh(START, END) - env.baseline_kwh
                assert extra == pytest.approx(answer.response.accepted_kwh, abs=PLAN_TOL_KWH)
                assert extra == pytest.approx(req.amount_kwh, abs=PLAN_TOL_KWH)
                own = heater.heating_plan().window_energy_kwh(START, END)
                assert answer.plan.window_energy_kwh(START, END) == pytest.approx(own, abs=WH_TOL)
                (active,) = heater.active_requests()  # the unit got it under the servicer's id
                assert active.request_id == req.request_id
                assert (active.direction, active.start, active.end) == (req.direction, START, END)
                assert active.amount_kwh == pytest.approx(req.amount_kwh, abs=WH_TOL)

            # F5: inside the window, measured power reports at most every power_interval_s
            during = clock.advance(timedelta(hours=5, minutes=10))  # 13:10: the units heat
            log = await gw.poll_once(during)
            assert sum("power report" in line for line in log) == 2, log
            heating = 0
            for event_id, _, _, heater in dispatched:
                (power,) = _reports(bl, event_id, "power")
                (sample,) = profile.samples_from_report(power)
                assert sample.device_id == heater.device_id
                assert sample.source is PowerSource.MEASURED
                assert sample.timestamp == during
                assert sample.power_w == heater.instantaneous_power_w
                heating += sample.power_w > 0
                assert sample.cumulative_energy_kwh == pytest.approx(
                    heater.cumulative_energy_kwh, abs=WH_TOL
                )
            assert heating > 0  # the accepted up-DR is being delivered, and measured
            assert await gw.poll_once(during + timedelta(seconds=30)) == []
            second = clock.advance(timedelta(seconds=61))
            log = await gw.poll_once(second)
            assert sum("power report" in line for line in log) == 2, log

        # restart: a new VEN client and gateway VEN on the same links
        async with vtn.ven(ven_name=GW_NAME) as ven:
            again = GatewayVen(links, ven, power_interval_s=60)
            log = await again.poll_once(second + timedelta(seconds=30))
            assert log[-1] == "recovered 4 answered event(s), 2 DR window(s) running", log
            assert not any("report" in line for line in log[:-1]), log  # and nothing else
            log = await again.poll_once(clock.advance(timedelta(seconds=61)))
            assert sum("power report" in line for line in log) == 2, log
            assert all("potential" not in line and "plan" not in line for line in log), log
            assert await again.poll_once(END) == []  # the window is over: no power reports

    assert len(_reports(bl, ask["id"], "potential")) == 1
    assert len(_reports(bl, ask_long["id"], "potential")) == 1
    moved = 0
    for event_id, _, _, _ in dispatched:
        assert len(_reports(bl, event_id, "plan")) == 1
        powers = _reports(bl, event_id, "power")
        stamps = sorted(s.timestamp for r in powers for s in profile.samples_from_report(r))
        assert stamps == [during, second, second + timedelta(seconds=61)]
        readings = [
            s.cumulative_energy_kwh
            for r in sorted(powers, key=lambda r: r.created_date_time)
            for s in profile.samples_from_report(r)
        ]
        assert readings == sorted(readings)  # the meter never runs back
        moved += readings[-1] > readings[0]
    assert moved > 0


# --------------------------------------------------------------------------- a silent unit


def test_a_unit_that_does_not_answer_is_rejected_and_never_blocks_the_other(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0, speed=0.0)
    heater_a = _heater("HW0000073", clock, seed=5)
    heater_b = _heater("HW0000074", clock, seed=6)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            asyncio.run(_silent_unit(vtn, bl, clock, heater_a, heater_b))
        finally:
            bl.close()


async def _silent_unit(
    vtn: Vtn,
    bl: Bl,
    clock: SimClock,
    heater_a: SimulatedWaterHeater,
    heater_b: SimulatedWaterHeater,
) -> None:
    program_id = bl.post("/programs", profile.program())["id"]
    a_name, b_name = str(heater_a.device_id), str(heater_b.device_id)
    pairs = [("127.0.0.73", heater_a), ("127.0.0.74", heater_b)]
    async with (
        _nodes(pairs) as (node_a, node_b),
        EchonetController(interface="127.0.0.1", timeout_s=0.2, retries=1) as ctl,
        vtn.ven(ven_name=GW_NAME) as ven,
    ):
        links = await discover_links(ctl, [a for a, _ in pairs], window_s=0.3)
        gw = GatewayVen(links, ven, unit_timeout_s=5)
        await gw.register()
        _grant_names(bl)
        await node_b.close()  # unit B leaves the LAN

        # F1: B is left out, A's potential goes through
        ask = bl.post("/events", profile.potential_request(program_id, START, END))
        log = await gw.poll_once(clock.now())
        (line,) = [x for x in log if "potential report" in x]
        assert "left out: 127.0.0.74" in line and "did not answer" in line
        (report,) = _reports(bl, ask["id"], "potential")
        (env,) = profile.envelopes_from_report(report, computed_at=clock.now())
        _assert_envelope(env, heater_a.flexibility_envelope(START, END))

        # F2: one event for both; A accepts, B is rejected with the reason
        req = _request("gw-both", 0.5)
        ev = bl.post("/events", profile.dr_event(program_id, req, [a_name, b_name]))
        await gw.poll_once(clock.now())
        (plan_rep,) = _reports(bl, ev["id"], "plan")
        answers = {str(a.response.device_id): a for a in profile.answers_from_report(plan_rep, req)}
        assert answers[a_name].response.status is ResponseStatus.ACCEPTED
        rejected = answers[b_name].response
        assert rejected.status is ResponseStatus.REJECTED and rejected.accepted_kwh == 0
        assert rejected.reason is not None and "did not answer over ECHONET Lite" in rejected.reason
        # with B's last plan known (read at registration), so that BL can parse the report
        assert answers[b_name].plan.grid.start == T0
        assert answers[b_name].plan.window_energy_kwh(START, END) == pytest.approx(
            heater_b.heating_plan().window_energy_kwh(START, END), abs=WH_TOL
        )
        (got,) = heater_a.active_requests()
        assert got.amount_kwh == pytest.approx(req.amount_kwh, abs=WH_TOL)
        assert heater_b.active_requests() == []  # B never heard of it

        # F5: power reports only for the unit that accepted
        during = clock.advance(timedelta(hours=3))
        await gw.poll_once(during)
        (power,) = _reports(bl, ev["id"], "power")
        assert [r.resource_name for r in power.resources] == [a_name]

        # no unit answers: the potential request is asked again on the next poll
        await node_a.close()
        again = bl.post(
            "/events", profile.potential_request(program_id, END, END + timedelta(hours=2))
        )
        log = await gw.poll_once(during + timedelta(seconds=1))
        assert any(x.startswith(f"event {again['id']}: not answered yet") for x in log), log
        assert _reports(bl, again["id"], "potential") == []
        back = water_heater_node("127.0.0.73", heater_a)  # A is back on the LAN
        await back.start()
        try:
            log = await gw.poll_once(during + timedelta(seconds=2))
            assert any(x.startswith(f"event {again['id']}: potential report") for x in log), log
            assert len(_reports(bl, again["id"], "potential")) == 1

            # the VTN fails while the plan report is posted: the unit is not asked twice
            later = DrRequest(
                request_id="gw-later",
                direction=Direction.UP,
                start=END,
                end=END + timedelta(hours=2),
                amount_kwh=0.2,
                issued_at=during,
            )
            ev2 = bl.post("/events", profile.dr_event(program_id, later, [a_name]))
            asked_before = len(heater_a.responses())
            post = gw.ven.post_report

            async def outage(report: ReportCreate) -> Report:
                raise VtnUnavailableError("POST /reports: VTN answered 503")

            gw.ven.post_report = outage  # type: ignore[method-assign]
            with pytest.raises(VtnUnavailableError):
                await gw.poll_once(clock.advance(timedelta(seconds=3)))
            gw.ven.post_report = post  # type: ignore[method-assign]
            # (the unit names a request by its clock's second: a second ask would be new)
            log = await gw.poll_once(clock.advance(timedelta(seconds=1)))
            assert any(x.startswith(f"event {ev2['id']}: plan report") for x in log), log
        finally:
            await back.close()
        assert len(heater_a.responses()) == asked_before + 1
        assert len(_reports(bl, ev2["id"], "plan")) == 1


# --------------------------------------------------------------------------- pure parts


def _env(
    start: datetime, base: list[float], lo: list[float], hi: list[float], up: float, down: float
) -> FlexibilityEnvelope:
    cmin = cmax = 0.0
    slots = []
    for k, (b, mn, mx) in enumerate(zip(base, lo, hi, strict=True)):
        cmin += mn * 0.5
        cmax += mx * 0.5
        slots.append(
            EnvelopeSlot(
                start=start + k * timedelta(minutes=30),
                baseline_kw=b,
                min_kw=mn,
                max_kw=mx,
                cum_min_kwh=cmin,
                cum_max_kwh=cmax,
            )
        )
    return FlexibilityEnvelope(
        device_id=DeviceId(maker_code="000005", serial="HW9"),
        computed_at=T0,
        window_start=start,
        window_end=start + len(base) * timedelta(minutes=30),
        confidence=0.95,
        up_kwh=up,
        down_kwh=down,
        slots=tuple(slots),
    )


def test_join_envelopes_hand_computed() -> None:
    # part 1: 2 slots, baseline 1 kW, 0–3 kW: least 0, most 3 kWh; up 2, down 1
    p1 = _env(START, [1, 1], [0, 0], [3, 3], up=2.0, down=1.0)
    # part 2: 1 slot, baseline 2 kW, 1–4 kW: least 0.5, most 2 kWh; up 1, down 0.5
    p2 = _env(START + timedelta(hours=1), [2], [1], [4], up=1.0, down=0.5)
    joined = join_envelopes([p1, p2])
    assert (joined.window_start, joined.window_end) == (START, START + timedelta(minutes=90))
    assert [s.baseline_kw for s in joined.slots] == [1, 1, 2]
    assert [s.cum_min_kwh for s in joined.slots] == [0.0, 0.0, 0.5]  # 0 + 0.5
    assert [s.cum_max_kwh for s in joined.slots] == [1.5, 3.0, 5.0]  # 3 + 2
    assert joined.up_kwh == pytest.approx(1.5)  # max(2 − 0.5, 1 − 1)
    assert joined.down_kwh == pytest.approx(0.0)  # max(1 − 1, 0.5 − 2) = 0
    assert join_envelopes([p1]) is p1
    with pytest.raises(ValueError, match=r"parts\[1\]\.window_start must be"):
        join_envelopes([p2, p1])
    other = p2.model_copy(update={"device_id": DeviceId(maker_code="000005", serial="HW8")})
    with pytest.raises(ValueError, match=r"parts\[1\]\.device_id must be"):
        join_envelopes([p1, other])
    with pytest.raises(ValueError, match="at least one"):
        join_envelopes([])


def test_outage_backs_off_and_the_entry_points_check_their_input(tmp_path: Path) -> None:
    clock = SimClock(T0, speed=0.0)
    heater = _heater("HW0000075", clock, seed=7)

    async def main() -> GatewayVen:
        async with _nodes([("127.0.0.75", heater)]):
            return await serve_gateway(
                "https://127.0.0.1:9",  # nobody listens: every poll fails, none raises
                ["127.0.0.75"],
                client_id=VEN_ID,
                client_secret="x" * 20,
                ca_file=None,
                interval_s=0.01,
                discovery_window_s=0.3,
                max_polls=3,
                now=clock.now,
            )

    gw = asyncio.run(main())
    assert not gw.registered
    assert gw.resource_names == [str(heater.device_id)]  # identified over ECHONET Lite
    with pytest.raises(NoWaterHeaterError, match=r"127\.0\.0\.76"):
        run_gateway(
            "https://127.0.0.1:9",
            ["127.0.0.76"],  # no node there
            client_id=VEN_ID,
            client_secret="x" * 20,
            ca_file=None,
            discovery_window_s=0.2,
            max_polls=1,
        )
    with pytest.raises(VenConfigError, match="plain HTTP"):
        run_gateway(
            "http://127.0.0.1:9",
            ["127.0.0.76"],
            client_id=VEN_ID,
            client_secret="x" * 20,
            ca_file=None,
            max_polls=1,
        )
    with pytest.raises(ValueError, match="at least one water heater"):
        GatewayVen([], None)  # type: ignore[arg-type]
