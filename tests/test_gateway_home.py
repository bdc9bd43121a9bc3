"""The home gateway's F1–F6 over ECHONET Lite against running device nodes (C1, D1), and the
DR request's id from the gateway to the unit and back (F2–F4)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from drready.domain import DeviceId, Direction, DrRequest, PowerSource, ResponseStatus
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController, SetGetAnswer
from drready.echonet.errors import EchonetError, EchonetRefusedError, ForeignAnswerError
from drready.echonet.frame import EOJ, ESV, Frame, Property, decode_frame, encode_frame
from drready.echonet.node import EchonetNode
from drready.echonet.propmap import encode_property_map
from drready.gateway.home import ANSWER_ATTEMPTS, HomeGateway, WaterHeaterLink
from tests.echonet_helpers import HEATER, TZ, make_node

WH_KWH = 1e-3  # the EPCs carry whole Wh (and W): a value read back is within one of the unit's


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
                    heater.cumulative_energy_kwh, abs=WH_KWH
                )
                # F1: the envelope carried over the proposed EPCs equals the unit's own
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
                end = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
                env = await link.flexibility_envelope(start, end)
                own = heater.flexibility_envelope(start, end)
                assert env.device_id == heater.device_id
                assert env.up_kwh == pytest.approx(own.up_kwh, abs=WH_KWH)
                assert env.down_kwh == pytest.approx(own.down_kwh, abs=WH_KWH)
                assert len(env.slots) == 8
                for a, b in zip(env.slots, own.slots, strict=True):
                    assert a.max_kw == pytest.approx(b.max_kw, abs=WH_KWH)
                    assert a.cum_max_kwh == pytest.approx(b.cum_max_kwh, abs=WH_KWH)
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


class _CountingController(EchonetController):
    """A real controller that counts the EPCs it reads."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.reads: list[int] = []

    async def get(self, host: str, deoj: EOJ, epcs: list[int]) -> dict[int, bytes | None]:
        self.reads += epcs
        return await super().get(host, deoj, epcs)


def test_the_servicers_request_id_travels_to_the_unit_and_back_in_the_plan():
    async def run() -> None:
        node, heater = make_node("127.0.0.5")
        await node.start()
        try:
            async with _CountingController(interface="127.0.0.1") as ctl:
                link = WaterHeaterLink(ctl, "127.0.0.5", EOJ(0x02, 0x6B, 0x01))
                assert await link.device_id() == heater.device_id  # identification: 0x83 once
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
                end = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
                env = await link.flexibility_envelope(start, end)
                req = DrRequest(
                    request_id="drready-assignment-17",  # an OpenADR event name of the servicer
                    direction=Direction.UP,
                    start=start,
                    end=end,
                    amount_kwh=round(0.5 * env.up_kwh, 3),
                    issued_at=datetime.now(TZ),
                )
                resp = await link.request(req)
                assert resp.status is ResponseStatus.ACCEPTED
                assert resp.request_id == "drready-assignment-17"
                # the unit planned the request under the servicer's id ...
                (active,) = heater.active_requests()
                assert active.request_id == "drready-assignment-17"
                assert active.amount_kwh == req.amount_kwh  # whole Wh: no loss on the way down
                assert "drready-assignment-17" in heater.heating_plan().honours
                # ... and the plan read over ECHONET Lite names it
                plan = await link.heating_plan()
                assert plan.honours == ("drready-assignment-17",)
                assert plan.device_id == heater.device_id
                # sent again (a retry), it is answered from memory, not planned twice
                again = await link.request(req)
                assert again == resp
                assert len(heater.active_requests()) == 1 and len(heater.responses()) == 1
                # a request the unit rejects is not honoured
                late = req.model_copy(
                    update={
                        "request_id": "drready-assignment-18",
                        "start": datetime(2026, 5, 10, 10, tzinfo=TZ),
                        "end": datetime(2026, 5, 10, 12, tzinfo=TZ),
                    }
                )
                assert (await link.request(late)).status is ResponseStatus.REJECTED
                assert (await link.heating_plan()).honours == ("drready-assignment-17",)
                await link.power_sample()
                assert ctl.reads.count(0x83) == 1  # F1, F2, F4, F5 named the unit from memory
                # the first layout (13 bytes, no id) still works: the unit names the request
                old = ext.DrRequestEdt(Direction.DOWN, start, end, 100).encode(TZ)
                assert (await ctl.set("127.0.0.5", EOJ(0x02, 0x6B, 0x01), {0xF0: old}))[0xF0]
                edt = (await ctl.get("127.0.0.5", EOJ(0x02, 0x6B, 0x01), [0xF1]))[0xF1]
                assert edt is not None and len(edt) == ext.DR_RESPONSE_SIZE
                minted = {r.request_id for r in heater.active_requests()} - {req.request_id}
                assert all(r.startswith("el-") for r in minted)
        finally:
            await node.close()

    asyncio.run(run())


class _FakeUnit:
    """A controller stand-in answering 0xF0/0xF1 as a unit would, with another controller's
    request slipping in between the Set and the Get ``foreign`` times."""

    def __init__(self, foreign: int) -> None:
        self.foreign = foreign
        self.sets = 0

    async def set(self, host: str, deoj: EOJ, values: dict[int, bytes]) -> dict[int, bool]:
        self.sets += 1
        self.last = ext.decode_dr_request(values[0xF0], TZ)
        return {0xF0: True}

    async def get(self, host: str, deoj: EOJ, epcs: list[int]) -> dict[int, bytes | None]:
        if epcs == [0x83]:
            return {0x83: DeviceId.parse("000005:HW0000009").to_echonet_id()}
        if 0x9F in epcs:  # the maps of a DR-ready unit of a maker known to implement 0xF0–0xF4
            maps = {
                0x9D: encode_property_map([0x80]),
                0x9E: encode_property_map([0xC7, 0xCA, 0xF0, 0xF2]),
                0x9F: encode_property_map([0x80, 0x8A, 0xCB, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4]),
                0x8A: b"\x00\x00\x05",
            }
            return {e: maps[e] for e in epcs}
        if epcs == [0xC9]:
            return {0xC9: None}
        rid = self.last.request_id
        if self.foreign > 0:
            self.foreign -= 1
            rid = "someone-else"
        answer = ext.DrResponseEdt(ResponseStatus.ACCEPTED, self.last.amount_wh, rid)
        return {0xF1: answer.encode()}


def _gw_request(request_id: str) -> DrRequest:
    return DrRequest(
        request_id=request_id,
        direction=Direction.UP,
        start=datetime(2026, 5, 12, 10, tzinfo=TZ),
        end=datetime(2026, 5, 12, 12, tzinfo=TZ),
        amount_kwh=1.0,
        issued_at=datetime(2026, 5, 11, 12, tzinfo=TZ),
    )


def test_an_answer_naming_another_request_is_read_again_then_refused():
    async def run() -> None:
        unit = _FakeUnit(foreign=2)
        link = WaterHeaterLink(unit, "192.0.2.1", EOJ(0x02, 0x6B, 0x01))  # type: ignore[arg-type]
        resp = await link.request(_gw_request("ev-1"))
        assert resp.status is ResponseStatus.ACCEPTED and unit.sets == 3
        unit = _FakeUnit(foreign=ANSWER_ATTEMPTS)
        link = WaterHeaterLink(unit, "192.0.2.1", EOJ(0x02, 0x6B, 0x01))  # type: ignore[arg-type]
        with pytest.raises(ForeignAnswerError, match="someone-else"):
            await link.request(_gw_request("ev-2"))
        assert unit.sets == ANSWER_ATTEMPTS
        assert issubclass(ForeignAnswerError, EchonetError)
        assert issubclass(EchonetRefusedError, EchonetError)

    asyncio.run(run())


def test_inf_announcements_reach_the_links_and_nodes_come_back() -> None:
    """INF over multicast: a user withdrawing participation (0xC7 = 0) drops the shift the
    gateway set; a node that leaves and comes back announces itself (0xD5) and its maps are
    read again; a node that joins later is found by the next discovery."""

    async def run() -> None:
        node, heater = make_node("127.0.3.90", profile="standard", serial="INF0000090")
        await node.start()
        late = None
        try:
            async with (
                _CountingController(interface="127.0.3.89", listen_multicast=True) as ctl,
                EchonetController(interface="127.0.3.88") as user,
            ):
                home = HomeGateway(ctl, clock=heater.clock.now)
                home.watch()
                (link,) = await home.discover(window_s=0.5)
                assert link.address == "127.0.3.90"
                day = heater.target_day()
                req = DrRequest(
                    request_id="inf-1",
                    direction=Direction.UP,
                    start=datetime(day.year, day.month, day.day, 13, tzinfo=TZ),
                    end=datetime(day.year, day.month, day.day, 17, tzinfo=TZ),
                    amount_kwh=3.0,
                    issued_at=heater.clock.now(),
                )
                assert (await link.request(req)).accepted_kwh > 0
                assert (await link.heating_plan()).honours == ("inf-1",)
                # the user switches participation off at the remote: the unit announces 0xC7
                assert (await user.set("127.0.3.90", HEATER, {0xC7: b"\x00"}))[0xC7]
                await asyncio.sleep(0.3)
                assert (await link.heating_plan()).honours == ()
                # the node leaves and comes back: it announces 0xD5, the maps are read again
                reads = ctl.reads.count(0x9F)
                await node.close()
                await node.start()
                await asyncio.sleep(0.3)
                await link.capability()
                assert ctl.reads.count(0x9F) == reads + 1
                # a node that joins later announces itself and is found by the next discovery
                late, _ = make_node("127.0.3.91", profile="dr-ready", serial="INF0000091")
                await late.start()
                await asyncio.sleep(0.3)
                assert "127.0.3.91" in home.known
                found = await home.discover(window_s=0.5, multicast=False)
                assert {li.address for li in found} == {"127.0.3.90", "127.0.3.91"}
                assert link in found  # the same link, with its state
        finally:
            await node.close()
            if late is not None:
                await late.close()

    asyncio.run(run())


def _record(node: EchonetNode, *, no_setget: bool = False) -> list[Frame]:
    """Keep every datagram ``node`` receives from its socket (decoded); ``no_setget``: answer
    a SetGet as a node without that service does, SetGet_SNA taking nothing (the Set list
    echoed, every Get with PDC 0)."""
    seen: list[Frame] = []
    handle = node.core.handle

    def recording(data: bytes, limit_bytes: int | None = None) -> list[bytes]:
        frame = decode_frame(data)
        seen.append(frame)
        if no_setget and frame.esv == ESV.SETGET:
            sna = Frame(
                frame.tid,
                frame.deoj,
                frame.seoj,
                int(ESV.SETGET_SNA),
                frame.properties,
                tuple(Property(p.epc) for p in frame.get_properties),
            )
            return [encode_frame(sna)]
        return handle(data, limit_bytes)

    node.core.handle = recording  # type: ignore[method-assign]
    return seen


def _potential_frames(seen: list[Frame]) -> list[tuple[str, list[int], list[int]]]:
    """The requests that carried 0xF2 or 0xF3: (service, Set or Get EPCs, SetGet's Get EPCs)."""
    out = []
    for f in seen:
        epcs = [p.epc for p in (*f.properties, *f.get_properties)]
        if {0xF2, 0xF3} & set(epcs):
            out.append(
                (ESV(f.esv).name, [p.epc for p in f.properties], [p.epc for p in f.get_properties])
            )
    return out


def test_f1_sets_the_window_and_reads_its_potential_in_one_setget_on_the_wire():
    """EL-F3-1: the gateway's F1 is one SetGet (ESV 0x6E) — Set 0xF2 = the window, Get 0xF3 —
    so the potential is the window's whatever another controller sets; with a window the unit
    cannot evaluate the SetGet_SNA takes 0xF2 and gives no 0xF3: refused, nothing sent again."""

    async def run() -> None:
        node, heater = make_node("127.0.4.2", serial="SETGET0002")
        seen = _record(node)
        await node.start()
        try:
            async with EchonetController(interface="127.0.4.1") as ctl:
                link = WaterHeaterLink(ctl, "127.0.4.2", HEATER, clock=heater.clock.now)
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
                end = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
                env = await link.flexibility_envelope(start, end)
                assert _potential_frames(seen) == [("SETGET", [0xF2], [0xF3])]
                (setget,) = [f for f in seen if f.esv == ESV.SETGET]
                assert setget.properties[0].edt == ext.encode_window(start, end, TZ)
                own = heater.flexibility_envelope(start, end)
                assert env.up_kwh == pytest.approx(own.up_kwh, abs=WH_KWH)
                assert len(env.slots) == 8
                seen.clear()
                far = datetime(2099, 1, 1, 10, tzinfo=TZ)
                with pytest.raises(EchonetRefusedError, match="no potential"):
                    await link.flexibility_envelope(far, far + timedelta(hours=2))
                assert _potential_frames(seen) == [("SETGET", [0xF2], [0xF3])]
        finally:
            await node.close()

    asyncio.run(run())


def test_f1_falls_back_to_setc_and_one_get_only_when_setget_is_not_taken():
    """A node answering SetGet_SNA without taking 0xF2 (no SetGet service): the gateway sets
    0xF2 by SetC and reads 0xF2 and 0xF3 in one Get, and gets the same envelope."""

    async def run() -> None:
        node, heater = make_node("127.0.4.3", serial="SETGET0003")
        seen = _record(node, no_setget=True)
        await node.start()
        try:
            async with EchonetController(interface="127.0.4.1") as ctl:
                link = WaterHeaterLink(ctl, "127.0.4.3", HEATER, clock=heater.clock.now)
                day = heater.target_day()
                start = datetime(day.year, day.month, day.day, 13, tzinfo=TZ)
                end = datetime(day.year, day.month, day.day, 15, tzinfo=TZ)
                env = await link.flexibility_envelope(start, end)
                assert _potential_frames(seen) == [
                    ("SETGET", [0xF2], [0xF3]),
                    ("SETC", [0xF2], []),
                    ("GET", [0xF2, 0xF3], []),
                ]
                own = heater.flexibility_envelope(start, end)
                assert env.up_kwh == pytest.approx(own.up_kwh, abs=WH_KWH)
                assert env.down_kwh == pytest.approx(own.down_kwh, abs=WH_KWH)
                assert len(env.slots) == 4
        finally:
            await node.close()

    asyncio.run(run())


class _NoSetGetUnit(_FakeUnit):
    """A DR-ready unit without the SetGet service whose 0xF2 another controller sets to its
    own window between the gateway's SetC and Get ``foreign`` times."""

    def __init__(self, foreign: int) -> None:
        super().__init__(foreign)
        self.window = b""

    async def set_get(
        self, host: str, deoj: EOJ, values: dict[int, bytes], epcs: list[int]
    ) -> SetGetAnswer:
        return SetGetAnswer(complete=False, accepted={0xF2: False}, got={e: None for e in epcs})

    async def set(self, host: str, deoj: EOJ, values: dict[int, bytes]) -> dict[int, bool]:
        self.sets += 1
        self.window = values[0xF2]
        return {0xF2: True}

    async def get(self, host: str, deoj: EOJ, epcs: list[int]) -> dict[int, bytes | None]:
        if epcs != [0xF2, 0xF3]:
            return await super().get(host, deoj, epcs)
        window = self.window
        if self.foreign > 0:
            self.foreign -= 1
            start = datetime(2026, 5, 12, 16, tzinfo=TZ)  # the other controller's window
            window = ext.encode_window(start, start + timedelta(hours=1), TZ)
        n = ext.decode_window(window, TZ)
        slots = int((n[1] - n[0]).total_seconds() // 1800)
        pot = ext.PotentialEdt(1000, 0, 0.95, *([(500,) * slots] * 3), *([(0,) * slots] * 2))
        return {0xF2: window, 0xF3: ext.encode_potential(pot)}


def test_the_fallback_reads_the_window_back_and_sets_it_again_when_another_took_it():
    """EL-F3-1 without SetGet: 0xF2 and 0xF3 in one Get, the 0xF3 taken only with our window
    in 0xF2; another controller's window read back makes the gateway set its own again (at most
    ANSWER_ATTEMPTS times), never return the other window's potential."""
    start = datetime(2026, 5, 12, 10, tzinfo=TZ)
    end = start + timedelta(hours=2)

    async def run() -> None:
        unit = _NoSetGetUnit(foreign=2)
        link = WaterHeaterLink(unit, "192.0.2.1", HEATER)  # type: ignore[arg-type]
        env = await link.flexibility_envelope(start, end)
        assert unit.sets == 3 and len(env.slots) == 4 and env.up_kwh == pytest.approx(1.0)
        unit = _NoSetGetUnit(foreign=ANSWER_ATTEMPTS)
        link = WaterHeaterLink(unit, "192.0.2.1", HEATER)  # type: ignore[arg-type]
        with pytest.raises(ForeignAnswerError, match="another window"):
            await link.flexibility_envelope(start, end)
        assert unit.sets == ANSWER_ATTEMPTS

    asyncio.run(run())
