"""The home gateway's F1–F6 over ECHONET Lite against running device nodes (C1, D1)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from drready.domain import Direction, DrRequest, PowerSource, ResponseStatus
from drready.echonet.controller import EchonetController
from drready.echonet.frame import EOJ
from drready.gateway.home import HomeGateway, WaterHeaterLink
from tests.echonet_helpers import TZ, make_node


def test_gateway_discovers_and_performs_f1_to_f6():
    async def run() -> None:
        node, heater = make_node("127.0.0.2")
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                links = await HomeGateway(ctl).discover(window_s=0.3)
                link = next(li for li in links if li.address == "127.0.0.2")
                # F6
                assert await link.device_id() == heater.device_id
                # F5: measured, the node's own meter
                sample = await link.power_sample()
                assert sample.source is PowerSource.MEASURED
                assert sample.power_w == heater.instantaneous_power_w
                assert sample.cumulative_energy_kwh == pytest.approx(
                    heater.cumulative_energy_kwh, abs=1e-3
                )
                # F1: the envelope carried over the proposed EPCs equals the unit's own
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
                end = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
                env = await link.flexibility_envelope(start, end)
                own = heater.flexibility_envelope(start, end)
                assert env.device_id == heater.device_id
                assert env.up_kwh == pytest.approx(own.up_kwh, abs=1e-3)
                assert env.down_kwh == pytest.approx(own.down_kwh, abs=1e-3)
                assert len(env.slots) == 8
                for a, b in zip(env.slots, own.slots, strict=True):
                    assert a.max_kw == pytest.approx(b.max_kw, abs=1e-3)
                    assert a.cum_max_kwh == pytest.approx(b.cum_max_kwh, abs=1e-3)
                # F2 → F3: a request beyond the potential is partial, with the accepted amount
                req = DrRequest(
                    request_id="gw-1",
                    direction=Direction.UP,
                    start=start,
                    end=end,
                    amount_kwh=own.up_kwh + 5.0,
                    issuer="test",
                    issued_at=datetime.now(TZ),
                )
                resp = await link.request(req)
                assert resp.status is ResponseStatus.PARTIAL
                assert resp.accepted_kwh == pytest.approx(own.up_kwh, abs=2e-3)
                assert resp.device_id == heater.device_id
                # F4: the plan read over ECHONET Lite carries the accepted energy
                plan = await link.heating_plan()
                mine = heater.heating_plan()
                assert plan.window_energy_kwh(start, end) == pytest.approx(
                    mine.window_energy_kwh(start, end), abs=0.01
                )
                assert plan.cost_yen is None  # not carried by ECHONET Lite
        finally:
            await node.close()

    asyncio.run(run())


def test_request_the_unit_cannot_plan_is_rejected_with_a_reason():
    async def run() -> None:
        node, heater = make_node("127.0.0.3")
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                link = WaterHeaterLink(ctl, "127.0.0.3", EOJ(0x02, 0x6B, 0x01))
                # a window that has already passed on the unit's clock: rejected with the reason
                req = DrRequest(
                    request_id="gw-2",
                    direction=Direction.DOWN,
                    start=datetime(2026, 5, 10, 10, 0, tzinfo=TZ),
                    end=datetime(2026, 5, 10, 12, 0, tzinfo=TZ),
                    amount_kwh=1.0,
                    issued_at=datetime.now(TZ),
                )
                resp = await link.request(req)
                assert resp.status is ResponseStatus.REJECTED
                assert resp.reason
                assert heater.active_requests() == []
        finally:
            await node.close()

    asyncio.run(run())
