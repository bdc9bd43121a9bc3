"""The storage battery object 0x027D: MRA coverage, Set/Get semantics, over UDP with our
controller (BatteryLink) and with pychonet, alone and next to a water heater (U1, C1)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from pychonet.echonetapiclient import ECHONETAPIClient
from pychonet.lib.udpserver import UDPServer
from pychonet.StorageBattery import StorageBattery

from drready.device.battery import BatterySpec, BatteryState, SimulatedBattery
from drready.device.clock import SimClock
from drready.domain import DeviceId, PowerSource
from drready.echonet.battery import battery_node
from drready.echonet.controller import EchonetController
from drready.echonet.errors import EchonetRefusedError
from drready.echonet.frame import EOJ, ESV, NODE_PROFILE, decode_frame
from drready.echonet.mra import Access, class_spec
from drready.echonet.propmap import decode_property_map
from drready.echonet.values import decode_value
from drready.gateway.battery import discover_batteries
from drready.gateway.home import HomeGateway
from tests.echonet_helpers import TZ, make_heater, request

BATTERY = EOJ(0x02, 0x7D, 0x01)
SPEC = BatterySpec(
    capacity_kwh=12.0,
    max_charge_kw=5.0,
    max_discharge_kw=4.0,
    charge_efficiency=0.95,
    discharge_efficiency=0.95,
    soc_min_share=0.1,
    soc_max_share=0.9,
)
START = datetime(2026, 5, 12, 13, 0, tzinfo=TZ)
PROPS = class_spec(0x027D).properties


def make_battery(soc: float = 6.0) -> tuple[SimulatedBattery, SimClock]:
    clock = SimClock(START, speed=0.0)
    bat = SimulatedBattery(
        SPEC, clock, device_id=DeviceId(maker_code="000005", serial="BAT1"), initial_soc_kwh=soc
    )
    return bat, clock


def answer(node, data: bytes):
    out = node.core.handle(data)
    assert len(out) == 1, out
    return decode_frame(out[0])


def get(node, *epcs: int) -> dict[int, object]:
    res = answer(node, request(ESV.GET, [(e, b"") for e in epcs], deoj=BATTERY))
    assert res.esv == ESV.GET_RES, res
    return {p.epc: decode_value(PROPS[p.epc], p.edt) for p in res.properties}


def setc(node, props: list[tuple[int, bytes]]) -> int:
    return answer(node, request(ESV.SETC, props, deoj=BATTERY)).esv


def test_maps_cover_every_required_property_and_everything_advertised_answers():
    bat, _ = make_battery()
    node = battery_node("127.0.0.70", bat)
    res = answer(node, request(ESV.GET, [(0x9D, b""), (0x9E, b""), (0x9F, b"")], deoj=BATTERY))
    maps = {p.epc: set(decode_property_map(p.edt)) for p in res.properties}
    required = {
        0x9F: {e for e, s in PROPS.items() if s.get is Access.REQUIRED},
        0x9E: {e for e, s in PROPS.items() if s.set is Access.REQUIRED},
        0x9D: {e for e, s in PROPS.items() if s.inf is Access.REQUIRED},
    }
    for epc, need in required.items():
        assert not need - maps[epc], (hex(epc), sorted(hex(e) for e in need - maps[epc]))
    assert maps[0x9F] & {0xE2, 0xE3, 0xE4}  # "either 0xE2, 0xE3 or 0xE4 is required"
    for epc in maps[0x9F]:  # every advertised EPC answers and decodes through the MRA
        value = get(node, epc)[epc]
        assert value is not None, hex(epc)
    for epc in maps[0x9E]:
        assert PROPS[epc].set is not Access.NOT_APPLICABLE, hex(epc)


def test_values_are_the_batterys_own():
    bat, clock = make_battery(soc=6.0)
    node = battery_node("127.0.0.70", bat)
    v = get(node, 0xD0, 0xE2, 0xE4, 0xA0, 0xA1, 0xA4, 0xA5, 0xC8, 0xC9, 0xCF, 0xDA, 0x83, 0x97)
    assert v[0xD0] == 12_000 and v[0xE2] == 6_000 and v[0xE4] == 50
    assert v[0xA0] == round(9.6 / 0.95 * 1000) and v[0xA1] == round(9.6 * 0.95 * 1000)
    assert v[0xA4] == round((10.8 - 6.0) / 0.95 * 1000)
    assert v[0xA5] == round((6.0 - 1.2) * 0.95 * 1000)
    assert v[0xC8] == {"minValue": 0, "maxValue": 5000}
    assert v[0xC9] == {"minValue": 0, "maxValue": 4000}
    assert v[0xCF] == "standby" and v[0xDA] == "standby"
    assert v[0x83] == bat.device_id.to_echonet_id()
    assert v[0x97] == "13:00"
    clock.advance(timedelta(minutes=5))
    assert get(node, 0x97)[0x97] == "13:05"


def test_setting_mode_and_power_drives_the_battery():
    bat, clock = make_battery(soc=6.0)
    node = battery_node("127.0.0.70", bat)
    # designated charging power 3 kW, then charging mode
    assert setc(node, [(0xEB, (3000).to_bytes(4, "big")), (0xDA, b"\x42")]) == ESV.SET_RES
    assert bat.setpoint_kw == 3.0
    v = get(node, 0xCF, 0xDA, 0xD3, 0xEB)
    assert v == {0xCF: "charging", 0xDA: "charging", 0xD3: 3000, 0xEB: 3000}
    clock.advance(timedelta(minutes=30))
    v = get(node, 0xE2, 0xD8, 0xA8)
    assert v[0xE2] == round((6.0 + 3.0 * 0.5 * 0.95) * 1000)
    assert v[0xD8] == v[0xA8] == pytest.approx(1.5)
    # discharging at the rated power with method "maximum"
    assert setc(node, [(0xC2, b"\x01"), (0xDA, b"\x43")]) == ESV.SET_RES
    assert bat.setpoint_kw == -4.0 and get(node, 0xD3)[0xD3] == -4000
    # rapid charging is the rated charging power; standby is zero
    assert setc(node, [(0xDA, b"\x41")]) == ESV.SET_RES and bat.setpoint_kw == 5.0
    assert setc(node, [(0xDA, b"\x44")]) == ESV.SET_RES and bat.power_kw == 0.0
    # an energy target is stored and read back (not acted on)
    assert setc(node, [(0xAA, (2500).to_bytes(4, "big"))]) == ESV.SET_RES
    assert get(node, 0xAA)[0xAA] == 2500


def test_refused_sets_leave_the_battery_as_it_was():
    bat, _ = make_battery()
    node = battery_node("127.0.0.70", bat)
    assert setc(node, [(0xEC, (2000).to_bytes(4, "big")), (0xDA, b"\x43")]) == ESV.SET_RES
    assert bat.setpoint_kw == -2.0
    before = get(node, 0xEB, 0xEC, 0xDA, 0xC1)
    for props in (
        [(0xEB, (5001).to_bytes(4, "big"))],  # above the rated charging power (0xC8)
        [(0xEC, (4001).to_bytes(4, "big"))],
        [(0xDA, b"\x46")],  # auto: not offered by this object
        [(0xDA, b"\x99")],  # not a state of the MRA
        [(0xC1, b"\x02")],  # surplus charging: not supported
        [(0xE2, (100).to_bytes(4, "big"))],  # read-only
    ):
        assert setc(node, props) == ESV.SETC_SNA, props
    assert get(node, 0xEB, 0xEC, 0xDA, 0xC1) == before
    assert bat.setpoint_kw == -2.0


def test_working_status_is_announced_when_the_floor_stops_the_battery():
    bat, clock = make_battery(soc=1.5)
    node = battery_node("127.0.0.70", bat)
    sent: list[bytes] = []
    node._send_multicast = sent.extend  # type: ignore[method-assign]
    assert setc(node, [(0xEC, (4000).to_bytes(4, "big")), (0xDA, b"\x43")]) == ESV.SET_RES
    frames = [decode_frame(f) for f in sent]
    assert any(p.epc == 0xDA and p.edt == b"\x43" for f in frames for p in f.properties)
    assert any(p.epc == 0xCF and p.edt == b"\x43" for f in frames for p in f.properties)
    sent.clear()
    clock.advance(timedelta(minutes=10))  # 0.3 kWh above the floor at 4.2 kWh/h: ~4.3 min
    bat.advance()
    frames = [decode_frame(f) for f in sent]
    assert [(f.esv, f.seoj) for f in frames] == [(ESV.INF, BATTERY)]
    assert [(p.epc, p.edt) for p in frames[0].properties] == [(0xCF, b"\x44")]
    assert bat.state is BatteryState.STANDBY and bat.soc_kwh == pytest.approx(1.2)


def test_battery_link_over_udp_reads_spec_and_state_and_commands_power():
    async def run() -> None:
        bat, clock = make_battery(soc=6.0)
        node = battery_node("127.0.0.71", bat)
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                links = await discover_batteries(
                    ctl, window_s=0.3, host="127.0.0.71", clock=clock.now
                )
                assert [(li.address, li.eoj) for li in links] == [("127.0.0.71", BATTERY)]
                link = links[0]
                assert await link.device_id() == bat.device_id
                got = await link.spec()
                assert got.capacity_kwh == SPEC.capacity_kwh
                assert (got.max_charge_kw, got.max_discharge_kw) == (5.0, 4.0)
                # symmetric efficiencies are recovered up to whole-Wh rounding
                assert got.charge_efficiency == pytest.approx(0.95, abs=2e-4)
                assert got.soc_min_share == pytest.approx(0.1, abs=2e-4)
                assert got.soc_max_share == pytest.approx(0.9, abs=2e-4)
                assert await link.soc_kwh() == pytest.approx(6.0)

                await link.set_power_kw(2.5)
                assert bat.setpoint_kw == 2.5
                sample = await link.power_sample()
                assert sample.power_w == 2500 and sample.source is PowerSource.MEASURED
                clock.advance(timedelta(minutes=12))
                sample = await link.power_sample()
                assert sample.timestamp == START + timedelta(minutes=12)  # the gateway's clock
                assert sample.cumulative_charged_kwh == pytest.approx(0.5, abs=1e-3)
                assert sample.soc_kwh == pytest.approx(6.0 + 0.5 * 0.95, abs=1e-3)

                await link.set_power_kw(-3.2)
                assert bat.setpoint_kw == -3.2
                assert (await link.power_sample()).power_w == -3200
                await link.set_power_kw(0.0)
                assert bat.setpoint_kw == 0.0 and bat.state is BatteryState.STANDBY
                with pytest.raises(ValueError, match="finite"):
                    await link.set_power_kw(float("nan"))
                with pytest.raises(EchonetRefusedError, match="0xEB"):
                    await link.set_power_kw(6.0)  # above the rated charging power
        finally:
            await node.close()

    asyncio.run(run())


def test_one_node_hosts_a_water_heater_and_a_battery():
    async def run() -> None:
        bat, _ = make_battery()
        heater = make_heater(serial="HW0000070")
        node = battery_node("127.0.0.72", bat, heater=heater)
        profile = answer(node, request(ESV.GET, [(0xD6, b""), (0x83, b"")], deoj=NODE_PROFILE))
        got = {p.epc: p.edt for p in profile.properties}
        assert got[0xD6] == b"\x02\x02\x6b\x01\x02\x7d\x01"
        assert got[0x83] == heater.device_id.to_echonet_id()
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                heaters = await HomeGateway(ctl).discover(window_s=0.3, host="127.0.0.72")
                batteries = await discover_batteries(ctl, window_s=0.3, host="127.0.0.72")
                assert len(heaters) == 1 and len(batteries) == 1
                sample = await heaters[0].power_sample()
                assert sample.power_w == heater.instantaneous_power_w
                await batteries[0].set_power_kw(-1.0)
                assert bat.power_kw == -1.0
                assert (await batteries[0].power_sample()).power_w == -1000
        finally:
            await node.close()

    asyncio.run(run())


def test_pychonet_discovers_reads_and_commands_the_battery():
    async def run() -> None:
        bat, clock = make_battery(soc=6.0)
        host = "127.0.0.73"
        node = battery_node(host, bat)
        await node.start()
        udp = UDPServer(local_ip="127.0.0.1")
        udp.run("127.0.0.1", 3610, loop=asyncio.get_running_loop())
        api = ECHONETAPIClient(udp)
        api._logger = lambda *a, **k: None
        try:
            await api.discover(host)
            for _ in range(100):
                if api._state.get(host, {}).get("discovered"):
                    break
                await asyncio.sleep(0.05)
            state = api._state[host]
            assert state.get("discovered"), state
            assert 0x7D in state["instances"][0x02]
            assert await api.getAllPropertyMaps(host, 0x02, 0x7D, 0x01)
            sb = StorageBattery(host, api)
            assert {0xDA, 0xEB, 0xEC} <= set(sb.getSetProperties())
            assert {0xD3, 0xE2, 0xE4, 0xCF, 0xD0} <= set(sb.getGetProperties())
            values = await sb.update([0xD0, 0xE2, 0xE4, 0xD3, 0xCF])
            assert values[0xD0] == 12_000 and values[0xE2] == 6_000 and values[0xE4] == 50
            assert values[0xD3] == 0 and values[0xCF] == "standby"
            # charging power 2 kW (pychonet's setter assumes 1 byte: give the 4-byte PDC),
            # then charging mode with pychonet's own setter
            assert await sb.setMessage(0xEB, 2000, 4)
            assert await sb.setOperationMode(0x42)
            assert bat.setpoint_kw == 2.0
            values = await sb.update([0xD3, 0xCF, 0xDA])
            assert values[0xD3] == 2000 and values[0xCF] == "charging"
            clock.advance(timedelta(minutes=30))
            assert await sb.update(0xE2) == round((6.0 + 0.95) * 1000)  # one EPC: the value
            # discharging power and mode; out-of-range values are refused
            assert await sb.setMessage(0xEC, 1500, 4)
            assert await sb.setOperationMode(0x43)
            assert await sb.update(0xD3) == -1500
            assert not await sb.setMessage(0xEC, 9000, 4)
            assert bat.setpoint_kw == -1.5
        finally:
            udp.close()
            await node.close()

    asyncio.run(run())
