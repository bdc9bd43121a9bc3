"""Standard-only water heaters (the installed base) through the home gateway (F1–F6, C1, U2).

Pure parts against hand-computed tables (:mod:`drready.gateway.standard`,
:mod:`drready.gateway.capability`); the link against nodes playing ``--profile standard`` and
``standard-single``; and the issue's target: a home with 5 standard-only and 5 DR-ready units
delivers an up-DR order at ≥ 90 % of its accepted amount with no DR-caused shortage, through
the gateway's VEN and a real VTN (HTTPS on loopback), every unit checked against an identical
twin that got no DR.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import (
    DeviceId,
    Direction,
    DrRequest,
    PowerSource,
    ResponseStatus,
)
from drready.domain.tolerances import ENERGY_TOL_KWH
from drready.echonet.controller import EchonetController
from drready.echonet.serve import PROFILES, water_heater_node
from drready.gateway.capability import Capability, Level, classify, map_retry_delay_s
from drready.gateway.home import CapabilityUnknownError, WaterHeaterLink
from drready.gateway.standard import (
    STANDARD_CONFIDENCE,
    EnergyEstimator,
    ShiftOffer,
    decide_shift,
    decode_offer,
    inferred_plan,
    seasonal_rating_w,
    shift_options,
    standard_envelope,
)
from drready.gateway.ven import GatewayVen, discover_links
from drready.openadr import profile
from drready.planning.unit import UnitConfig
from tests.echonet_helpers import HEATER, TZ, make_node
from tests.test_gateway_ven import _grant_names, _reports
from tests.test_ven_client import Bl, Vtn, serve_vtn

WH_KWH = 1e-3  # the EPCs carry whole Wh
DAY = date(2026, 5, 12)  # the target day of units at START (2026-05-11 20:00, 0xC8 = 22)
DEV = DeviceId(maker_code="000005", serial="STD0000001")


def at(hour: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def _offer(
    cb: tuple[int, int, int, int] = (2000, 3000, 1000, 0),
    ce: tuple[int, int, int] = (2500, 0, 0),
    shifts: int = 2,
    set_hours: tuple[int | None, int | None] = (None, None),
) -> ShiftOffer:
    return ShiftOffer(
        standard_start_hour=22,
        energy_shifts=shifts,
        participation=False,
        set_hours={1: set_hours[0], 2: set_hours[1]},
        expected_wh={
            1: dict(zip((10, 13, 15, 17), cb, strict=True)),
            2: dict(zip((13, 15, 17), ce, strict=True)),
        },
        per_hour_wh={1: {10: 1000, 13: 1500, 15: 500, 17: 0}, 2: {13: 1250, 15: 0, 17: 0}},
    )


def _req(start: int, end: int, kwh: float, direction: Direction = Direction.UP) -> DrRequest:
    return DrRequest(
        request_id="r1",
        direction=direction,
        start=at(start),
        end=at(end),
        amount_kwh=kwh,
        issued_at=at(8, date(2026, 5, 11)),
    )


# --------------------------------------------------------------------------- pure parts


def test_decode_offer_reads_the_mra_layouts() -> None:
    values = {
        0xC7: b"\x01",
        0xC8: b"\x17",  # 23 h
        0xC9: b"\x02",
        0xCA: b"\x0d",
        0xCD: b"\x00",  # cleared
        0xCB: b"".join(v.to_bytes(4, "big") for v in (1, 2, 3, 0xFFFFFFFE)),  # overflow code
        0xCC: b"".join(v.to_bytes(2, "big") for v in (10, 20, 30, 40)),
        0xCE: b"".join(v.to_bytes(4, "big") for v in (4, 5, 6)),
        0xCF: bytes(5),  # wrong size: nothing known
    }
    o = decode_offer(values)
    assert (o.participation, o.standard_start_hour, o.energy_shifts) == (True, 23, 2)
    assert o.set_hours == {1: 13, 2: None}
    assert o.expected_wh == {1: {10: 1, 13: 2, 15: 3, 17: 0}, 2: {13: 4, 15: 5, 17: 6}}
    assert o.per_hour_wh == {1: {10: 10, 13: 20, 15: 30, 17: 40}, 2: {}}
    bare = decode_offer({}, energy_shifts=1)
    assert (bare.standard_start_hour, bare.energy_shifts, bare.participation) == (22, 1, False)
    assert bare.expected_wh == {1: {}, 2: {}}


def test_shift_options_are_the_offered_windows_inside_the_asked_one() -> None:
    o = _offer()
    now = at(20, date(2026, 5, 11))

    def pick(start: int, end: int, offer: ShiftOffer = o) -> list[tuple[int, int]]:
        return [(x.shift, x.hour) for x in shift_options(offer, DAY, TZ, at(start), at(end), now)]

    assert pick(10, 14) == [(1, 10)]
    assert pick(10, 18) == [(1, 10), (1, 13), (2, 13)]  # 15 h is 2 Wh·0? no: 15–19 is outside
    assert pick(9, 21) == [(1, 10), (1, 13), (1, 15), (2, 13)]  # 17 h reports 0 Wh: not offered
    assert pick(10, 13) == []  # no whole 4 h window
    assert pick(10, 18, _offer(set_hours=(10, None))) == [(2, 13)]  # shift 1 in use
    assert pick(10, 18, _offer(shifts=1)) == [(1, 10), (1, 13)]
    late = shift_options(o, DAY, TZ, at(10), at(18), at(11))  # 10 h has begun
    assert [(x.shift, x.hour) for x in late] == [(1, 13), (2, 13)]
    (ten,) = shift_options(o, DAY, TZ, at(10), at(14), now)
    assert (ten.expected_kwh, ten.power_kw, ten.end) == (2.0, 1.0, at(14))


def test_standard_envelope_hand_computed() -> None:
    o = _offer()
    opts = shift_options(o, DAY, TZ, at(10), at(18), at(8))
    env = standard_envelope(DEV, opts, at(10), at(18), computed_at=at(8))
    assert (env.up_kwh, env.down_kwh, env.confidence) == (3.0, 0.0, STANDARD_CONFIDENCE)
    # most power: 1.0 kW (10 h) in 10–13, max(1.0, 1.5, 1.25) in 13–14, 1.5 in 14–17, 0 after
    assert [s.max_kw for s in env.slots] == [1.0] * 6 + [1.5] * 8 + [0.0] * 2
    assert all(s.baseline_kw == s.min_kw == s.cum_min_kwh == 0.0 for s in env.slots)
    # accumulated at 0.5 h per slot, never above the one shift that can be had (3 kWh)
    assert [s.cum_max_kwh for s in env.slots] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0] + [3.0] * 10
    none = standard_envelope(DEV, [], at(10), at(12), computed_at=at(8))
    assert none.up_kwh == 0.0 and [s.max_kw for s in none.slots] == [0.0] * 4


@pytest.mark.parametrize(
    ("start", "end", "kwh", "direction", "hour", "accepted", "reason_has"),
    [
        (10, 14, 2.0, Direction.UP, 10, 2.0, "expected 2.000 kWh"),  # exactly a shift
        (10, 14, 1.5, Direction.UP, 10, 1.5, "0.500 kWh more than asked"),
        (10, 14, 2.5, Direction.UP, 10, 2.0, "0.500 kWh less than asked"),  # partial
        (10, 14, 0.9, Direction.UP, None, 0.0, "more than twice"),  # rounded to nothing
        (10, 18, 2.6, Direction.UP, 13, 2.5, "shift time 2"),  # 2.5 (shift 2) is nearest
        (10, 18, 2.8, Direction.UP, 13, 2.8, "shift time 1"),  # 3.0 (shift 1) is nearest
        (10, 13, 1.0, Direction.UP, None, 0.0, "no shift window of 2026-05-12"),
        (10, 14, 1.0, Direction.DOWN, None, 0.0, "no down-DR"),
    ],
)
def test_decide_shift_rounds_to_whole_shifts(
    start: int,
    end: int,
    kwh: float,
    direction: Direction,
    hour: int | None,
    accepted: float,
    reason_has: str,
) -> None:
    opts = shift_options(_offer(), DAY, TZ, at(start), at(end), at(8))
    d = decide_shift(_req(start, end, kwh, direction), opts, DAY)
    assert (None if d.option is None else d.option.hour) == hour
    assert d.accepted_kwh == pytest.approx(accepted)
    assert d.reason is not None and reason_has in d.reason


def test_inferred_plan_places_each_shift_at_its_rate_from_the_shift_time() -> None:
    opts = shift_options(_offer(), DAY, TZ, at(10), at(14), at(8))
    plan = inferred_plan(DEV, at(8), DAY, TZ, opts, ["r1", "r1"])
    assert plan.grid.start == at(9) and plan.grid.n_slots == 24
    energies = [round(s.energy_kwh, 6) for s in plan.slots]
    assert energies[:2] == [0.0, 0.0]  # 09:00–10:00
    assert energies[2:6] == [0.5] * 4  # 1 kW from 10:00 until the 2 kWh are in (12:00)
    assert sum(energies) == pytest.approx(2.0) and plan.honours == ("r1",)
    assert all(s.stored_heat_kwh == 0.0 for s in plan.slots)  # not available


def test_seasonal_rating_and_the_estimated_energy_counter() -> None:
    assert [seasonal_rating_w(m, 1500, 1200, 900) for m in range(1, 13)] == [
        1500, 1500, 1500, 1200, 1200, 900, 900, 900, 900, 1200, 1200, 1500
    ]  # fmt: skip
    assert seasonal_rating_w(7, 1500, 1200, None) == 1500  # the largest other season
    assert seasonal_rating_w(7, None, None, None) is None
    est = EnergyEstimator()
    t0 = at(10)
    assert est.update(t0, 1200) == 0.0
    assert est.update(t0 + timedelta(minutes=30), 0) == pytest.approx(0.6)  # 1.2 kW × 0.5 h
    assert est.update(t0 + timedelta(hours=2), 1200) == pytest.approx(0.6)  # off meanwhile
    assert est.update(t0 + timedelta(hours=1), 0) == pytest.approx(0.6)  # from the past: no-op
    assert est.update(t0 + timedelta(hours=3), 0) == pytest.approx(0.6 + 1.2 * 0.0)


def test_classify_confirms_maker_and_maps_before_the_maker_epcs() -> None:
    std_get = frozenset({0x80, 0xB2, 0xCB, 0xCC})
    std_set = frozenset({0xC7, 0xCA})
    ext_get = std_get | {0xF0, 0xF1, 0xF2, 0xF3, 0xF4}
    ext_set = std_set | {0xF0, 0xF2}
    cases = [
        ("000005", ext_get, ext_set, Level.DR_READY),
        ("00000b", ext_get, ext_set, Level.STANDARD),  # another maker's 0xF0–0xF4: untouched
        ("000005", ext_get, std_set | {0xF0}, Level.STANDARD),  # 0xF2 not settable
        ("000005", std_get, std_set, Level.STANDARD),
        ("000005", std_get - {0xCB}, std_set, Level.UNUSABLE),
        ("000005", std_get, frozenset({0xC7}), Level.UNUSABLE),
    ]
    for maker, get, set_, level in cases:
        assert classify(maker, get, set_).level is level, (maker, level)
    bad = classify("00000B", ext_get - {0xCB}, ext_set)
    assert bad.reason is not None and "0x9F lacks 0xCB" in bad.reason
    assert "maker 00000B is not known" in bad.reason
    assert classify("00000B", ext_get, ext_set, extension_makers=frozenset({"00000b"})).level is (
        Level.DR_READY
    )
    assert classify("000005", std_get, std_set | {0xCD}).energy_shifts == 2
    assert classify("000005", std_get, std_set, energy_shifts=2).energy_shifts == 2
    assert [map_retry_delay_s(k) for k in (1, 2, 5)] == [15.0, 60.0, 60.0]


# --------------------------------------------------------------------------- against nodes


def test_a_standard_only_unit_through_the_link() -> None:
    async def run() -> None:
        node, heater = make_node("127.0.3.40", profile="standard", serial="STD0000040")
        await node.start()
        try:
            async with EchonetController(interface="127.0.3.39") as ctl:
                link = WaterHeaterLink(ctl, "127.0.3.40", HEATER, clock=heater.clock.now)
                cap = await link.capability()
                assert isinstance(cap, Capability)
                assert (cap.level, cap.energy_shifts, cap.measured_power) == (
                    Level.STANDARD,
                    2,
                    False,
                )
                assert (await ctl.get("127.0.3.40", HEATER, [0xF3]))[0xF3] is None  # SNA
                # F1: the shift window at 10 h of the target day, the unit's 0xCB
                cb10 = heater.expected_energy_at_shift_wh(1)[10] / 1000
                env = await link.flexibility_envelope(at(10), at(14))
                assert env.up_kwh == pytest.approx(cb10, abs=WH_KWH) and cb10 > 0.3
                assert (env.down_kwh, env.confidence) == (0.0, STANDARD_CONFIDENCE)
                # F2: 80 % asked, the whole shift set, the difference said
                req = _req(10, 14, round(0.8 * env.up_kwh, 3)).model_copy(
                    update={"request_id": "drready-assignment-1"}
                )
                resp = await link.request(req)
                assert resp.status is ResponseStatus.ACCEPTED
                assert resp.accepted_kwh == req.amount_kwh
                assert resp.reason is not None and "more than asked" in resp.reason
                assert heater.shift_time(1) == 10 and heater.energy_shift_participation
                (active,) = heater.active_requests()
                assert active.request_id.startswith("shift1-20260512-10")
                assert active.amount_kwh == pytest.approx(cb10, abs=WH_KWH)
                assert await link.request(req) == resp  # a retry: from memory
                assert len(heater.responses()) == 1
                # a second request for the same window: shift 1 is in use, 0xCD offers 13–17
                other = req.model_copy(update={"request_id": "drready-assignment-2"})
                no = await link.request(other)
                assert no.status is ResponseStatus.REJECTED and "no shift window" in str(no.reason)
                down = req.model_copy(
                    update={"request_id": "drready-assignment-3", "direction": Direction.DOWN}
                )
                assert (await link.request(down)).status is ResponseStatus.REJECTED
                # F4: inferred, honouring the accepted request
                plan = await link.heating_plan()
                assert plan.honours == ("drready-assignment-1",)
                assert plan.window_energy_kwh(at(10), at(14)) == pytest.approx(cb10, abs=WH_KWH)
                # F5: estimated from 0xB2 × the May rating (0xDC), flagged
                sample = await link.power_sample()
                assert sample.source is PowerSource.ESTIMATED
                assert sample.power_w in (0, heater.rated_power_w[1])
                assert sample.power_w == (heater.rated_power_w[1] if heater.heating else 0)
        finally:
            await node.close()

    asyncio.run(run())


def test_another_makers_units_with_maker_epcs_are_served_by_the_standard_shift_only() -> None:
    async def run() -> None:
        node, heater = make_node("127.0.3.41", maker_code="00000B", serial="OTH0000041")
        await node.start()
        try:
            async with EchonetController(interface="127.0.3.39") as ctl:
                link = WaterHeaterLink(ctl, "127.0.3.41", HEATER, clock=heater.clock.now)
                assert (await link.capability()).level is Level.STANDARD
                env = await link.flexibility_envelope(at(13), at(17))
                resp = await link.request(_req(13, 17, env.up_kwh))
                assert resp.status is ResponseStatus.ACCEPTED
                assert [r.request_id for r in heater.active_requests()] == [
                    "shift1-20260512-13"
                ]  # set through 0xCA, never through 0xF0
                assert (await link.power_sample()).source is PowerSource.MEASURED  # has 0x84
        finally:
            await node.close()

    asyncio.run(run())


def test_a_slow_single_shift_unit_and_maps_that_cannot_be_read() -> None:
    async def run() -> None:
        node, heater = make_node(
            "127.0.3.42", profile="standard-single", answer_delay_s=0.4, serial="SGL0000042"
        )
        await node.start()
        try:
            async with EchonetController(interface="127.0.3.39", timeout_s=0.2, retries=4) as ctl:
                link = WaterHeaterLink(ctl, "127.0.3.42", HEATER, clock=heater.clock.now)
                cap = await link.capability()
                assert (cap.level, cap.energy_shifts) == (Level.STANDARD, 1)
                env = await link.flexibility_envelope(at(13), at(17))
                resp = await link.request(_req(13, 17, env.up_kwh))
                assert resp.status is ResponseStatus.ACCEPTED and heater.shift_time(1) == 13
                # nobody at .43: the maps are asked again only after 15 s, then 60 s
                clock = SimClock(at(8), speed=0.0)
                silent = WaterHeaterLink(ctl, "127.0.3.43", HEATER, clock=clock.now)
                with pytest.raises(CapabilityUnknownError, match="asked again in 15 s"):
                    await silent.capability()
                with pytest.raises(CapabilityUnknownError, match="next try at"):
                    await silent.capability()  # at once, without asking
                clock.advance(timedelta(seconds=15))
                with pytest.raises(CapabilityUnknownError, match="asked again in 60 s"):
                    await silent.capability()
        finally:
            await node.close()

    asyncio.run(run())


# --------------------------------------------------------------------------- the target

T0 = datetime(2026, 5, 12, 8, 0, tzinfo=TZ)  # the gateway's "now": day-ahead for 2026-05-13
D = date(2026, 5, 13)
W0, W1 = at(10, D), at(14, D)
GW_NAME = "home-gw-1"


def _unit(
    serial: str, clock: SimClock, seed: int, persons: int, shifts: int
) -> SimulatedWaterHeater:
    cfg = UnitConfig(DeviceId(maker_code="000005", serial=serial), persons, 460.0)
    return SimulatedWaterHeater(cfg, clock, seed=seed, energy_shifts=shifts)


def _window_kwh(heater: SimulatedWaterHeater) -> float:
    return sum(r.electric_kwh for r in heater.slot_history() if W0 <= r.start < W1)


def test_five_standard_and_five_dr_ready_units_deliver_an_up_dr_order(tmp_path: Path) -> None:
    clock = SimClock(T0, speed=0.0)
    kinds = ["dr-ready"] * 5 + ["standard"] * 3 + ["standard-single"] * 2
    units, twins = [], []
    for k, kind in enumerate(kinds):
        shifts = PROFILES[kind].energy_shifts
        args = (f"MIX{k:07d}", clock, 11 + k, 2 + k % 3, shifts)
        units.append((f"127.0.3.{60 + k}", kind, _unit(*args)))
        twins.append(_unit(*args))  # the same household, no DR: the baseline
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            accepted = asyncio.run(_mixed_home(vtn, bl, clock, units))
        finally:
            bl.close()
    # the day goes on to the end of the window: every unit and its twin live it
    while clock.now() < W1:
        clock.advance(timedelta(minutes=30))
        for (_, _, heater), twin in zip(units, twins, strict=True):
            heater.advance()
            twin.advance()
    delivered = {
        str(h.device_id): _window_kwh(h) - _window_kwh(t)
        for (_, _, h), t in zip(units, twins, strict=True)
    }
    total_accepted = sum(accepted.values())
    total_delivered = sum(delivered[n] for n in accepted)
    assert total_accepted > 5.0
    assert total_delivered >= 0.9 * total_accepted, (delivered, accepted)
    for (_, _, heater), twin in zip(units, twins, strict=True):  # zero DR-caused shortages
        assert heater.shortage_count <= twin.shortage_count


async def _mixed_home(
    vtn: Vtn, bl: Bl, clock: SimClock, units: list[tuple[str, str, SimulatedWaterHeater]]
) -> dict[str, float]:
    program_id = bl.post("/programs", profile.program())["id"]
    nodes = []
    for address, kind, heater in units:
        p = PROFILES[kind]
        nodes.append(
            water_heater_node(
                address,
                heater,
                extension=p.extension,
                power_meter=p.power_meter,
                answer_delay_s=0.05 if kind == "standard-single" else 0.0,
            )
        )
    for node in nodes:
        await node.start()
    try:
        async with EchonetController(interface="127.0.3.59", retries=4) as ctl:
            links = await discover_links(
                ctl, [a for a, _, _ in units], window_s=1.0, clock=clock.now
            )
            assert len(links) == 10
            async with vtn.ven(ven_name=GW_NAME) as ven:
                gw = GatewayVen(links, ven, power_interval_s=60)
                await gw.register()
                # the servicer sees which units are standard-only (resource attribute)
                flagged = {
                    r["resourceName"]
                    for r in bl.get("/resources")
                    if any(
                        a["type"] == profile.ENERGY_SHIFT_ONLY for a in r.get("attributes") or []
                    )
                }
                standard = {str(h.device_id) for _, k, h in units if k != "dr-ready"}
                assert flagged == standard
                _grant_names(bl)
                ask = bl.post("/events", profile.potential_request(program_id, W0, W1))
                await gw.poll_once(clock.now())
                (report,) = _reports(bl, ask["id"], "potential")
                envs = {
                    str(e.device_id): e
                    for e in profile.envelopes_from_report(report, computed_at=clock.now())
                }
                assert len(envs) == 10
                assert all(e.confidence == STANDARD_CONFIDENCE for e in envs.values())
                for name in standard:
                    assert envs[name].down_kwh == 0.0 and envs[name].up_kwh > 0.3
                # the order: 80 % of the potential, split in proportion (one event per unit)
                events = []
                for name, env in envs.items():
                    req = DrRequest(
                        request_id=f"mix-{name[-3:]}",
                        direction=Direction.UP,
                        start=W0,
                        end=W1,
                        amount_kwh=round(0.8 * env.up_kwh, 3),
                        issuer="dr-servicer",
                        issued_at=clock.now(),
                    )
                    ev = bl.post("/events", profile.dr_event(program_id, req, [name]))
                    events.append((ev["id"], req, name))
                await gw.poll_once(clock.now())
                accepted: dict[str, float] = {}
                for event_id, req, name in events:
                    (rep,) = _reports(bl, event_id, "plan")
                    (answer,) = profile.answers_from_report(rep, req)
                    assert answer.response.status is ResponseStatus.ACCEPTED, answer.response
                    accepted[name] = answer.response.accepted_kwh
                    if name in standard:
                        assert "more than asked" in str(answer.response.reason)
                        assert (
                            answer.plan.window_energy_kwh(W0, W1) >= req.amount_kwh - ENERGY_TOL_KWH
                        )
                # F5 inside the window: estimated for the standard-only units
                clock.advance(W0 + timedelta(minutes=90) - clock.now())
                log = await gw.poll_once(clock.now())
                assert sum("power report" in line for line in log) == 10, log
                some_std = next(e for e, _, n in events if n in standard)
                (power,) = _reports(bl, some_std, "power")
                (sample,) = profile.samples_from_report(power)
                assert sample.source is PowerSource.ESTIMATED
                return accepted
    finally:
        for node in nodes:
            await node.close()


def test_units_found_later_join_the_gateway_once() -> None:
    class _Ven:
        ven_name = GW_NAME

    ctl = EchonetController(interface="127.0.3.39")
    a = WaterHeaterLink(ctl, "127.0.3.70", HEATER)
    gw = GatewayVen([a], _Ven())  # type: ignore[arg-type]
    again = WaterHeaterLink(ctl, "127.0.3.70", HEATER)
    b = WaterHeaterLink(ctl, "127.0.3.71", HEATER)
    assert gw.add_links([again, b, b]) == ["127.0.3.71 026B01"]
    assert [u.link for u in gw.units] == [a, b]
    assert gw.add_links([b]) == []


def test_the_f5_estimate_follows_the_heating_announcements() -> None:
    """0xB2 INF switch the estimate on and off between samples: 1.2 kW (May: 0xDC) for 30 min."""

    class _Unit:
        async def get(self, host: str, deoj: object, epcs: list[int]) -> dict[int, bytes | None]:
            values = {
                0x83: DEV.to_echonet_id(),
                0xB2: b"\x42",  # not heating when sampled
                0xDB: (1500).to_bytes(2, "big"),
                0xDC: (1200).to_bytes(2, "big"),
                0xDD: (900).to_bytes(2, "big"),
            }
            return {e: values.get(e) for e in epcs}

    clock = SimClock(at(10), speed=0.0)
    link = WaterHeaterLink(_Unit(), "192.0.2.9", HEATER, clock=clock.now)  # type: ignore[arg-type]

    async def run() -> tuple[float, float, int]:
        first = await link.power_sample()
        link.announced(0xB2, b"\x41", at(10) + timedelta(minutes=10))
        link.announced(0xB2, b"\x42", at(10) + timedelta(minutes=40))
        link.announced(0x80, b"\x31")
        clock.advance(timedelta(hours=1))
        last = await link.power_sample()
        assert first.source is last.source is PowerSource.ESTIMATED
        return first.cumulative_energy_kwh, last.cumulative_energy_kwh, int(last.power_w)

    assert asyncio.run(run()) == (0.0, pytest.approx(0.6), 0)
    assert link.operating is False
