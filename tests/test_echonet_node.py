"""The device node's protocol rules, sans-IO and over loopback UDP (C1, F1–F6)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DeviceId, Direction, ResponseStatus
from drready.echonet import extension as ext
from drready.echonet.controller import EchonetController
from drready.echonet.frame import ESV, NODE_PROFILE, decode_frame
from drready.echonet.mra import Access, class_spec
from drready.echonet.node import EchonetNode, NodeCore, RateLimiter
from drready.echonet.objects import node_profile, water_heater_object
from drready.echonet.propmap import decode_property_map
from drready.echonet.serve import water_heater_node
from drready.planning.unit import UnitConfig
from tests.echonet_helpers import HEATER, START, TZ, make_heater, make_node, request


def answer(node, data: bytes):
    out = node.core.handle(data)
    assert len(out) == 1, out
    return decode_frame(out[0])


def test_get_answers_live_values_and_echoes_tid():
    node, heater = make_node()
    res = answer(node, request(ESV.GET, [(0x80, b""), (0xE1, b""), (0xE2, b"")], tid=0x1234))
    assert res.esv == ESV.GET_RES and res.tid == 0x1234
    assert res.seoj == HEATER and res.deoj.class_group == 0x05
    got = {p.epc: p.edt for p in res.properties}
    assert got[0x80] == b"\x30"
    assert int.from_bytes(got[0xE1], "big") == heater.hot_water_in_tank_l
    assert int.from_bytes(got[0xE2], "big") == heater.tank_capacity_l == 460


def test_get_of_unknown_epc_is_get_sna_with_pdc_0():
    node, _ = make_node()
    res = answer(node, request(ESV.GET, [(0x99, b""), (0xB2, b"")]))
    assert res.esv == ESV.GET_SNA
    props = {p.epc: p.edt for p in res.properties}
    assert props[0x99] == b""  # unknown: PDC 0
    assert props[0xB2] in (b"\x41", b"\x42")  # the readable one is still answered


@pytest.mark.parametrize(
    ("epc", "edt", "why"),
    [
        (0xE1, b"\x01\x00", "read-only"),
        (0xCA, b"\x20", "outside 0x09–0x11 / 0x00"),
        (0xC7, b"\x05", "not a participation state"),
        (0xB0, b"\x41\x41", "wrong size"),
        (0x99, b"\x01", "unknown EPC"),
        (0xF0, b"\x03" + bytes(12), "bad direction in the proposed DR request EPC"),
    ],
)
def test_refused_set_is_setc_sna_echoing_the_edt_and_changes_nothing(epc, edt, why):
    node, heater = make_node()
    before = heater.heating_plan()
    res = answer(node, request(ESV.SETC, [(epc, edt)]))
    assert res.esv == ESV.SETC_SNA, why
    assert res.properties[0].epc == epc and res.properties[0].edt == edt
    assert heater.heating_plan() == before


def test_accepted_set_is_set_res_with_pdc_0_and_applies():
    node, heater = make_node()
    res = answer(node, request(ESV.SETC, [(0xC7, b"\x01")]))
    assert res.esv == ESV.SET_RES and res.properties[0].pdc == 0
    assert heater.energy_shift_participation is True


def test_seti_answers_only_failures():
    node, heater = make_node()
    assert node.core.handle(request(ESV.SETI, [(0xC7, b"\x01")])) == []
    assert heater.energy_shift_participation is True
    res = answer(node, request(ESV.SETI, [(0xC7, b"\x00"), (0xE2, b"\x00\x01")]))
    assert res.esv == ESV.SETI_SNA
    assert [(p.epc, p.edt) for p in res.properties] == [(0xC7, b""), (0xE2, b"\x00\x01")]


def test_setget_and_inf_req_and_opc_0():
    node, _ = make_node()
    res = answer(node, request(ESV.SETGET, [(0xC7, b"\x01")], get_props=[(0xC7, b"")]))
    assert res.esv == ESV.SETGET_RES
    assert res.properties[0].pdc == 0 and res.get_properties[0].edt == b"\x01"
    res = answer(node, request(ESV.INF_REQ, [(0xB2, b"")]))
    assert res.esv == ESV.INF
    res = answer(node, request(ESV.GET, []))
    assert res.esv == ESV.GET_RES and res.properties == ()


def test_addressing_instance_0_unknown_objects_and_garbage():
    node, _ = make_node()
    res = answer(node, request(ESV.GET, [(0x80, b"")], deoj=HEATER.__class__(0x02, 0x6B, 0x00)))
    assert res.seoj == HEATER
    assert (
        node.core.handle(request(ESV.GET, [(0x80, b"")], deoj=HEATER.__class__(2, 0x6B, 2))) == []
    )
    assert node.core.handle(b"\x10\x81\x00") == []
    assert node.core.handle(b"\x10\x82" + bytes(30)) == []  # format 2: passed over
    assert node.core.stats.malformed == 2


def test_property_maps_match_what_the_object_answers_and_cover_required_epcs():
    node, _ = make_node()
    res = answer(node, request(ESV.GET, [(0x9D, b""), (0x9E, b""), (0x9F, b"")]))
    maps = {p.epc: set(decode_property_map(p.edt)) for p in res.properties}
    obj = node.core.objects[1]
    assert maps[0x9F] == set(obj.get_map()) and maps[0x9E] == set(obj.set_map())
    spec = class_spec(0x026B).properties
    required_get = {e for e, s in spec.items() if s.get is Access.REQUIRED}
    missing = required_get - maps[0x9F]
    assert not missing, [hex(e) for e in missing]
    assert {0xC7, 0xCA, 0xB0, 0xC0} <= maps[0x9E]
    for epc in maps[0x9F]:  # every advertised property is really readable
        r = answer(node, request(ESV.GET, [(epc, b"")]))
        assert r.esv == ESV.GET_RES, hex(epc)


def test_node_profile_lists_the_instance():
    node, heater = make_node()
    res = answer(node, request(ESV.GET, [(0xD6, b""), (0x83, b""), (0xD3, b"")], deoj=NODE_PROFILE))
    got = {p.epc: p.edt for p in res.properties}
    assert got[0xD6] == b"\x01\x02\x6b\x01"
    assert got[0x83] == heater.device_id.to_echonet_id()
    assert got[0xD3] == b"\x00\x00\x01"


def test_shift_time_set_is_a_dr_request_that_replans_and_reports_potential():
    node, heater = make_node()
    expected = answer(node, request(ESV.GET, [(0xCB, b"")])).properties[0].edt
    at13 = int.from_bytes(expected[4:8], "big")
    assert at13 == heater.expected_energy_at_shift_wh(1)[13] > 0
    before = heater.heating_plan()
    assert answer(node, request(ESV.SETC, [(0xC7, b"\x01"), (0xCA, b"\x0d")])).esv == ESV.SET_RES
    assert heater.shift_time(1) == 13
    after = heater.heating_plan()
    day = heater.target_day()
    w0, w1 = (
        datetime(day.year, day.month, day.day, 13, tzinfo=TZ),
        datetime(day.year, day.month, day.day, 17, tzinfo=TZ),
    )
    gained = after.window_energy_kwh(w0, w1) - before.window_energy_kwh(w0, w1)
    assert gained == pytest.approx(at13 / 1000, rel=0.02, abs=0.01)


def test_maker_specific_dr_request_potential_and_plan():
    node, heater = make_node()
    day = heater.target_day()
    start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
    end = datetime(day.year, day.month, day.day, 13, tzinfo=TZ)
    assert (
        answer(node, request(ESV.SETC, [(0xF2, ext.encode_window(start, end, TZ))])).esv
        == ESV.SET_RES
    )
    pot = ext.decode_potential(answer(node, request(ESV.GET, [(0xF3, b"")])).properties[0].edt)
    env = heater.flexibility_envelope(start, end)
    assert pot.up_wh == round(env.up_kwh * 1000) and len(pot.baseline_w) == 6
    ask = min(pot.up_wh, 1500)
    before = _window_wh(answer(node, request(ESV.GET, [(0xF4, b"")])).properties[0].edt, start, end)
    edt = ext.DrRequestEdt(Direction.UP, start, end, ask).encode(TZ)
    assert answer(node, request(ESV.SETC, [(0xF0, edt)])).esv == ESV.SET_RES
    got = ext.decode_dr_response(answer(node, request(ESV.GET, [(0xF1, b"")])).properties[0].edt)
    assert got == ext.DrResponseEdt(ResponseStatus.ACCEPTED, ask)  # 13-byte 0xF0: no id echoed
    after = _window_wh(answer(node, request(ESV.GET, [(0xF4, b"")])).properties[0].edt, start, end)
    assert after - before == pytest.approx(ask, abs=max(20, 0.02 * ask))


def _window_wh(plan_edt: bytes, start: datetime, end: datetime) -> int:
    plan_start, minutes, wh, stored = ext.decode_plan(plan_edt, TZ)
    assert minutes == 30 and len(wh) == len(stored) > 16
    return sum(w for i, w in enumerate(wh) if start <= plan_start + timedelta(minutes=30 * i) < end)


@given(st.binary(max_size=80))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes_never_raise(data):
    node, _ = _shared_node()
    node.core.handle(data)


@given(st.integers(0, 13), st.integers(0, 255), st.integers(0, 30))
@settings(max_examples=300, deadline=None)
def test_fuzz_mutated_valid_frames_never_raise(pos, byte, cut):
    node, _ = _shared_node()
    frame = bytearray(
        request(
            ESV.SETGET, [(0xC7, b"\x01"), (0xCA, b"\x0d")], get_props=[(0xE1, b""), (0xF3, b"")]
        )
    )
    frame[pos % len(frame)] = byte
    node.core.handle(bytes(frame[: len(frame) - cut]))


_NODE: list[object] = []


def _shared_node():
    if not _NODE:
        _NODE.append(make_node())
    return _NODE[0]  # type: ignore[return-value]


def test_rate_limiter_token_bucket():
    lim = RateLimiter(rate_per_s=10, burst=5)
    assert all(lim.allow("a", now=0.0) for _ in range(5))
    assert not lim.allow("a", now=0.0)
    assert lim.allow("b", now=0.0)  # per source
    assert lim.allow("a", now=0.1)  # refilled 1 token after 0.1 s


@pytest.mark.parametrize("address", ["0", "0.0.0.0", "", "0x0", "000.000.000.000", "0.0"])
def test_every_spelling_of_every_interface_is_refused(address):
    with pytest.raises(ValueError, match="listens on every interface"):
        make_node(address)


def test_udp_get_set_refuses_any_address_and_rate_limits():
    async def run():
        with pytest.raises(ValueError, match=r"0\.0\.0\.0"):
            make_node("0.0.0.0")
        node, heater = make_node("127.0.0.2")
        node.limiter = RateLimiter(rate_per_s=1, burst=20)
        await node.start()
        try:
            async with EchonetController(interface="127.0.0.1", timeout_s=0.3, retries=0) as ctl:
                got = await ctl.get("127.0.0.2", HEATER, [0xE1])
                assert int.from_bytes(got[0xE1], "big") == heater.hot_water_in_tank_l
                ok = await ctl.set("127.0.0.2", HEATER, {0xC7: b"\x01", 0xE2: b"\x00\x01"})
                assert ok == {0xC7: True, 0xE2: False}
                # flood: beyond the burst the node drops, and keeps answering afterwards
                for _ in range(40):
                    ctl._send(decode_frame(request(ESV.GET, [(0x80, b"")])), "127.0.0.2")
                await asyncio.sleep(0.2)
                assert node.stats.rate_limited > 0
                await asyncio.sleep(1.5)
                got = await ctl.get("127.0.0.2", HEATER, [0x80])
                assert got[0x80] == b"\x30"
        finally:
            await node.close()

    asyncio.run(run())


def test_multicast_discovery_of_20_nodes():
    async def run():
        nodes = []
        for i in range(20):
            node, _ = make_node(f"127.0.0.{2 + i}", serial=f"HW{i:07d}")
            await node.start()
            nodes.append(node)
        try:
            async with EchonetController(interface="127.0.0.1") as ctl:
                found = await ctl.discover(window_s=0.5)
        finally:
            for n in nodes:
                await n.close()
        addresses = {n.address for n in found}
        assert {f"127.0.0.{2 + i}" for i in range(20)} <= addresses
        ids = {n.identification for n in found}
        assert len(ids) >= 20
        assert all(HEATER in n.instances for n in found if n.address in addresses)

    asyncio.run(run())


def test_changes_are_announced_by_multicast_inf():
    async def run():
        node, heater = make_node("127.0.0.40")
        seen: list[tuple[str, object]] = []
        async with EchonetController(interface="127.0.0.1", listen_multicast=True) as ctl:
            ctl.subscribe(lambda host, frame: seen.append((host, frame)))
            await node.start()  # announces its instance list (0xD5) at start-up
            try:
                await asyncio.sleep(0.2)
                ok = await ctl.set("127.0.0.40", HEATER, {0xC7: b"\x01", 0xCA: b"\x0d"})
                assert ok == {0xC7: True, 0xCA: True}
                await asyncio.sleep(0.3)
            finally:
                await node.close()
        from_node = [f for h, f in seen if h == "127.0.0.40"]
        assert any(
            f.esv == ESV.INF and f.seoj == NODE_PROFILE and f.properties[0].epc == 0xD5
            for f in from_node
        )
        shift = [f for f in from_node if f.esv == ESV.INF and f.seoj == HEATER]
        assert any(p.epc == 0xCA and p.edt == b"\x0d" for f in shift for p in f.properties)
        assert heater.shift_time(1) == 13

    asyncio.run(run())


C_KWH_PER_L_K = 0.9922 * 4.179 / 3600.0  # water at 40 °C: 992.2 kg/m³, 4.179 kJ/(kg·K)


def _full_tank_node() -> tuple[EchonetNode, SimulatedWaterHeater]:
    """A node whose unit starts with a full tank (the stored heat clipped to Q_max)."""
    cfg = UnitConfig(
        device_id=DeviceId(maker_code="000005", serial="TANK00001"), persons=4, tank_l=460.0
    )
    heater = SimulatedWaterHeater(
        cfg, SimClock(START, speed=0.0), seed=3, initial_heat_kwh=100.0, energy_shifts=2
    )
    return water_heater_node("127.0.0.2", heater), heater


def test_tank_epcs_are_the_mras_quantities_not_litres_at_40_c():
    """EL-S4: 0xE1 is the hot water in the tank (a full tank's hot layer fills 90 % of its
    460 L: 414 L, never more than 0xE2), 0xD8 the hot water it can still supply at the supply
    temperature 0xD1 (mixed with mains at the outlet: more litres than the tank, fewer at a
    higher setting). Mains follows from 0xD8 at two settings, and both EPCs give back the
    stored heat with it (heat above mains is conserved by mixing)."""
    node, heater = _full_tank_node()

    def get(*epcs: int) -> dict[int, int]:
        res = answer(node, request(ESV.GET, [(e, b"") for e in epcs]))
        assert res.esv == ESV.GET_RES
        return {p.epc: int.from_bytes(p.edt, "big") for p in res.properties}

    first = get(0xD1, 0xD8, 0xE1, 0xE2)
    assert first[0xE2] == 460 and first[0xE1] == 414  # 0.9 × 460 L
    assert first[0xD1] == 40
    assert first[0xD8] > 460  # a full tank of 65–80 °C water supplies more than 460 L at 40 °C
    assert answer(node, request(ESV.SETC, [(0xD1, b"\x32")])).esv == ESV.SET_RES  # 50 °C
    at50 = get(0xD1, 0xD8, 0xE1)
    assert at50[0xD1] == 50 and at50[0xE1] == 414  # the tank's water does not depend on it
    assert at50[0xD8] < first[0xD8]
    # d40·(40 − m) = d50·(50 − m): the mains temperature both are counted above
    mains = (50 * at50[0xD8] - 40 * first[0xD8]) / (at50[0xD8] - first[0xD8])
    assert 10.0 < mains < 25.0  # Tokyo's mains in May
    q = heater.stored_heat_kwh
    assert first[0xD8] * C_KWH_PER_L_K * (40 - mains) == pytest.approx(q, rel=0.01)
    boil = min(max(65.0 + (20.0 - mains) * 1.25, 65.0), 80.0)  # the seasonal automatic mode
    assert 414 * C_KWH_PER_L_K * (boil - mains) == pytest.approx(q, rel=0.01)
    for bad in (b"\x1e", b"\x64"):  # 30 °C and 100 °C: outside what the unit supplies
        res = answer(node, request(ESV.SETC, [(0xD1, bad)]))
        assert res.esv == ESV.SETC_SNA and res.properties[0].edt == bad
    assert get(0xD1)[0xD1] == 50


def test_announcements_are_every_epc_of_0x9d_whose_value_changed():
    """Sans-IO (EL-M3): after a Set, the node announces what changed, each EPC once."""
    heater = make_heater()  # not wired to a node: its own changes are compared below
    maker = bytes.fromhex(heater.device_id.maker_code)
    obj = water_heater_object(heater, maker)
    core = NodeCore([node_profile(maker, heater.device_id.to_echonet_id(), [obj.eoj]), obj])
    assert core.changed_announcements() == []  # nothing changed since start
    assert {0x80, 0x81, 0x88, 0xB0, 0xB2, 0xC3, 0xC7, 0xCA, 0xCD} == set(obj.announce_map())
    core.handle(request(ESV.SETC, [(0xB0, b"\x43"), (0x81, b"\x08"), (0xC0, b"\x42")]))
    (inf,) = core.changed_announcements()
    frame = decode_frame(inf)
    assert frame.esv == ESV.INF and frame.seoj == HEATER and frame.deoj == NODE_PROFILE
    # 0xC0 (daytime reheating) is not in 0x9D: not announced
    assert {p.epc: p.edt for p in frame.properties} == {0xB0: b"\x43", 0x81: b"\x08"}
    assert core.changed_announcements() == []  # announced once
    core.handle(request(ESV.SETC, [(0xB0, b"\x43")]))  # the same value again: no change
    assert core.changed_announcements() == []
    heater.automatic_heating = True  # at the unit's own panel
    (inf,) = core.changed_announcements()
    assert [(p.epc, p.edt) for p in decode_frame(inf).properties] == [(0xB0, b"\x41")]


def test_every_announced_epc_is_announced_on_the_wire_when_it_changes():
    """EL-M3 over UDP: every settable EPC of 0x9D set to a new value by a controller, and 0xB0
    and 0xB2 changed by the unit itself, each reach a multicast listener as INF from the node
    with the new value; a Set that changes nothing is not announced."""
    # 0xB0 last: with automatic heating off the unit plans no heating, and takes no shift
    news = {0x81: b"\x08", 0xC7: b"\x01", 0xCA: b"\x0d", 0xCD: b"\x0f", 0xB0: b"\x43"}

    async def run():
        node, heater = make_node("127.0.0.42", serial="INF0000042")
        infs: list[tuple[int, bytes]] = []

        def heard(host: str, frame) -> None:
            if host == "127.0.0.42" and frame.esv == ESV.INF and frame.seoj == HEATER:
                infs.extend((p.epc, p.edt) for p in frame.properties)

        async with EchonetController(interface="127.0.0.1", listen_multicast=True) as ctl:
            ctl.subscribe(heard)
            await node.start()
            try:
                announced = set(
                    decode_property_map((await ctl.get("127.0.0.42", HEATER, [0x9D]))[0x9D])
                )
                settable = set(
                    decode_property_map((await ctl.get("127.0.0.42", HEATER, [0x9E]))[0x9E])
                )
                assert announced & settable == set(news)
                for epc, edt in news.items():
                    assert (await ctl.set("127.0.0.42", HEATER, {epc: edt}))[epc], hex(epc)
                    assert (await ctl.get("127.0.0.42", HEATER, [epc]))[epc] == edt, hex(epc)
                    await asyncio.sleep(0.1)
                    assert (epc, edt) in infs, hex(epc)
                heard_before = len(infs)
                assert (await ctl.set("127.0.0.42", HEATER, {0xB0: b"\x43"}))[0xB0]
                await asyncio.sleep(0.2)
                assert len(infs) == heard_before  # nothing changed, nothing announced
                heater.automatic_heating = True  # the unit's own panel
                await asyncio.sleep(0.1)
                assert infs[-1] == (0xB0, b"\x41")
                # time: the unit switches its heat pump on or off (0xB2), announced by itself
                was = heater.heating
                for _ in range(48 * 6):
                    heater.clock.advance(timedelta(minutes=5))
                    heater.advance()
                    if heater.heating != was:
                        break
                assert heater.heating != was
                await asyncio.sleep(0.1)
                assert (0xB2, b"\x41" if heater.heating else b"\x42") in infs
            finally:
                await node.close()

    asyncio.run(run())
