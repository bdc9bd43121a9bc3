"""The ECHONET Lite node is no reflector: bounded answers and per-source byte budgets (S1, C1;
issue 12 item 4).

* Hand-computed cases of ``NodeCore.handle(data, limit_bytes)``: what fits, what is cut to PDC 0
  and answered ``*_SNA``, what is not answered (and, for a Set, not applied).
* A property over requests (random ESV, OPC up to 255, random and large EPCs, random EDTs,
  every unit profile and a home with a battery): every answer is a well-formed frame of at most
  ``MAX_FRAME_BYTES`` listing every requested EPC in order, and all answers to one request
  together take at most twice its bytes — on ``NodeCore`` (sans-IO) and through
  ``EchonetNode._answer`` with its :class:`AnswerBudget` on a fake clock.
* A property over request sequences: what :class:`AnswerBudget` lets a node answer one source
  is at most 2 × what the source sent + the allowance, and at most the byte budget.
* The issue's probe over loopback UDP: Get with OPC = 255 × 0xF4 (522 B), 63 762 B out before.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from functools import cache
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drready.device.battery import BatterySpec, SimulatedBattery
from drready.device.clock import SimClock
from drready.domain import DeviceId
from drready.echonet.battery import battery_node
from drready.echonet.frame import (
    CONTROLLER,
    EOJ,
    ESV,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
)
from drready.echonet.node import (
    AMPLIFICATION_FACTOR,
    DEFAULT_ALLOWANCE_BURST,
    DEFAULT_ALLOWANCE_PER_S,
    MAX_FRAME_BYTES,
    AnswerBudget,
    EchonetNode,
)
from tests.echonet_helpers import HEATER, START, make_heater, make_node, request

BATTERY = EOJ(0x02, 0x7D, 0x01)
PLAN_EDT_BYTES = 248  # 0xF4 with 60 slots: 8 + 4 × 60 (docs/profile-echonet-lite.md)
PROBE = request(ESV.GET, [(0xF4, b"")] * 255)  # the issue's probe: 12 + 2 × 255 = 522 B
LARGE_EPCS = (0xF4, 0xF3, 0xF0, 0xF1, 0xE1, 0xC2, 0xCB, 0xCC, 0xCE, 0xCF, 0x83, 0x9D, 0x9E, 0x9F)
LARGE_EPCS += (0xD5, 0xD6, 0xD7)
REQUEST_ESVS = (ESV.SETI, ESV.SETC, ESV.GET, ESV.INF_REQ, ESV.SETGET, ESV.INFC)


def epcs_of(props: tuple[Property, ...]) -> list[int]:
    return [p.epc for p in props]


# --- hand-computed cases ----------------------------------------------------------------------


def test_the_probe_is_cut_to_twice_its_size_and_answered_get_sna():
    node, _ = make_node()
    assert len(PROBE) == 522
    out = node.core.handle(PROBE, limit_bytes=2 * 522)
    (res,) = (decode_frame(o) for o in out)
    # 12 B header + 255 × (EPC, PDC) = 522 B; the 522 B left hold two 248-byte plans (496)
    assert sum(map(len, out)) == 522 + 2 * PLAN_EDT_BYTES == 1018
    assert res.esv == ESV.GET_SNA and epcs_of(res.properties) == [0xF4] * 255
    assert [len(p.edt) for p in res.properties[:3]] == [PLAN_EDT_BYTES, PLAN_EDT_BYTES, 0]
    assert node.stats.bounded == 1


def test_without_a_limit_an_answer_still_fits_one_ethernet_frame():
    node, _ = make_node()
    (out,) = node.core.handle(PROBE)
    # 522 B of header and EPCs + 3 plans (744 B) = 1 266 B ≤ 1 472 B; a 4th would need 1 514 B
    assert len(out) == 522 + 3 * PLAN_EDT_BYTES == 1266 <= MAX_FRAME_BYTES
    assert decode_frame(out).esv == ESV.GET_SNA


@pytest.mark.parametrize(
    ("props", "limit", "size", "esv", "edt_lengths"),
    [
        # one Get of 0xF4 (14 B): 28 B hold header and EPC, not the 248-byte plan
        ([0xF4], 28, 14, ESV.GET_SNA, [0]),
        # with room the plan goes in whole: 14 + 248
        ([0xF4], 262, 262, ESV.GET_RES, [PLAN_EDT_BYTES]),
        # a value that does not fit is cut, a later one that fits still goes in (0x80: 1 B)
        ([0xF4, 0x80], 30, 17, ESV.GET_SNA, [0, 1]),
        # OPC = 0 needs the header only
        ([], 12, 12, ESV.GET_RES, []),
    ],
)
def test_bounded_get_table(props, limit, size, esv, edt_lengths):
    node, _ = make_node()
    out = node.core.handle(request(ESV.GET, [(e, b"") for e in props]), limit_bytes=limit)
    (res,) = (decode_frame(o) for o in out)
    assert (len(out[0]), res.esv) == (size, esv)
    assert [len(p.edt) for p in res.properties] == edt_lengths
    assert epcs_of(res.properties) == props


def test_no_room_for_every_epc_means_no_answer_and_a_set_is_not_applied():
    node, heater = make_node()
    # a Get of two EPCs needs 16 B for header and EPCs
    assert node.core.handle(request(ESV.GET, [(0x80, b""), (0xE1, b"")]), limit_bytes=15) == []
    setc = request(ESV.SETC, [(0xC7, b"\x01")])  # 15 B; its answer at most as long
    assert heater.energy_shift_participation is False
    assert node.core.handle(setc, limit_bytes=len(setc) - 1) == []
    assert heater.energy_shift_participation is False  # not applied: it could not be answered
    assert node.stats.unanswered_budget == 2
    (ok,) = node.core.handle(setc, limit_bytes=len(setc))
    assert decode_frame(ok).esv == ESV.SET_RES and heater.energy_shift_participation is True


def test_setget_cuts_the_get_part_only():
    node, heater = make_node()
    data = request(ESV.SETGET, [(0xC7, b"\x01")], get_props=[(0xF4, b""), (0xE1, b"")])
    # in: 12 B header + set (C7 01 01) 3 + OPCGet 1 + get EPCs 4 = 20 B; the answer's skeleton:
    # 12 + set (C7, PDC 0) 2 + 1 + 4 = 19 B, so 40 − 19 = 21 B hold 0xE1 (2 B), not 0xF4 (248 B)
    assert len(data) == 20
    (out,) = node.core.handle(data, limit_bytes=2 * len(data))
    res = decode_frame(out)
    assert res.esv == ESV.SETGET_SNA and len(out) == 21
    assert [len(p.edt) for p in res.get_properties] == [0, 2]
    assert heater.energy_shift_participation is True


def test_repeated_epcs_are_read_once_per_request():
    node, heater = make_node()
    calls = 0
    plan = heater.heating_plan

    def counted():
        nonlocal calls
        calls += 1
        return plan()

    with mock.patch.object(heater, "heating_plan", counted):
        node.core.handle(PROBE)
    assert calls == 1


# --- property over requests -------------------------------------------------------------------


@cache
def _nodes() -> dict[str, EchonetNode]:
    nodes = {
        name: make_node(profile=name)[0] for name in ("dr-ready", "standard", "standard-single")
    }
    battery = SimulatedBattery(
        BatterySpec(
            capacity_kwh=12.0,
            max_charge_kw=5.0,
            max_discharge_kw=4.0,
            charge_efficiency=0.95,
            discharge_efficiency=0.95,
            soc_min_share=0.1,
            soc_max_share=0.9,
        ),
        SimClock(START, speed=0.0),
        device_id=DeviceId(maker_code="000005", serial="BAT1"),
        initial_soc_kwh=6.0,
    )
    nodes["home"] = battery_node("127.0.0.2", battery, heater=make_heater(serial="HW0000009"))
    return nodes


_epc = st.one_of(st.sampled_from(LARGE_EPCS), st.integers(0, 255))
_edt = st.one_of(st.just(b""), st.binary(max_size=24))
_props = st.one_of(
    st.lists(st.tuples(_epc, _edt), max_size=255),
    # many copies of one large EPC, OPC up to 255 (what random lists seldom reach)
    st.builds(lambda e, n: [(e, b"")] * n, st.sampled_from(LARGE_EPCS), st.integers(100, 255)),
)
_KNOWN_DEOJ = [HEATER, EOJ(2, 0x6B, 0), NODE_PROFILE, EOJ(0x0E, 0xF0, 0), BATTERY, EOJ(2, 0x7D, 0)]
_ANY_DEOJ = st.builds(EOJ, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    # mostly requests to objects the nodes hold (anything else is passed over, unanswered)
    known = draw(st.integers(0, 9)) < 9
    esv = draw(st.sampled_from(REQUEST_ESVS) if known else st.integers(0, 255))
    deoj = draw(st.sampled_from(_KNOWN_DEOJ) if draw(st.integers(0, 9)) < 9 else _ANY_DEOJ)
    props = draw(_props)
    get_props = draw(_props) if esv in (ESV.SETGET, 0x7E, 0x5E) else []
    frame = Frame(
        tid=draw(st.integers(0, 0xFFFF)),
        seoj=CONTROLLER,
        deoj=deoj,
        esv=esv,
        properties=tuple(Property(e, d) for e, d in props),
        get_properties=tuple(Property(e, d) for e, d in get_props),
    )
    return encode_frame(frame)


def _check_answers(data: bytes, out: list[bytes], limit: int | None) -> None:
    req = decode_frame(data)
    assert all(len(o) <= MAX_FRAME_BYTES for o in out)
    if limit is not None:
        assert sum(map(len, out)) <= limit
    for o in out:
        res = decode_frame(o)  # well-formed
        assert res.tid == req.tid
        assert epcs_of(res.properties) == epcs_of(req.properties)
        assert epcs_of(res.get_properties) == epcs_of(req.get_properties)
        if res.esv in (ESV.GET_RES, ESV.INF):  # positive: every value is there
            assert all(p.edt for p in res.properties)
        if res.esv == ESV.SETGET_RES:
            assert all(p.edt for p in res.get_properties)


@given(st.sampled_from(["dr-ready", "standard", "standard-single", "home"]), requests())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_node_core_answers_at_most_twice_the_request(profile: str, data: bytes) -> None:
    node = _nodes()[profile]
    limit = AMPLIFICATION_FACTOR * len(data)
    _check_answers(data, node.core.handle(data, limit_bytes=limit), limit)


@given(st.sampled_from(["dr-ready", "home"]), requests())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_node_core_answers_fit_a_frame_without_a_limit(profile: str, data: bytes) -> None:
    node = _nodes()[profile]
    _check_answers(data, node.core.handle(data), None)


@dataclass
class _Sent:
    datagrams: list[tuple[bytes, tuple[str, int]]]
    closed: bool = False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((data, addr))


@given(
    st.lists(st.tuples(st.floats(0.0, 0.01), requests()), min_size=1, max_size=30),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_node_answers_a_source_at_most_twice_its_bytes_plus_the_allowance(steps) -> None:
    """Through ``EchonetNode._answer`` with the default budget, on a fake clock: over any run
    of requests from one source, bytes out ≤ 2 × bytes in + allowance burst + refill."""
    node = make_node()[0]
    sent = _Sent([])
    node._endpoint = sent  # type: ignore[assignment]
    clock = 100.0
    bytes_in = 0
    with mock.patch("drready.echonet.node.time.monotonic", lambda: clock):
        for dt, data in steps:
            clock += dt
            node._answer(data, "192.0.2.7")
            bytes_in += len(data)
    bytes_out = sum(len(d) for d, _ in sent.datagrams)
    elapsed = clock - 100.0
    bound = 2 * bytes_in + DEFAULT_ALLOWANCE_BURST + DEFAULT_ALLOWANCE_PER_S * elapsed
    assert bytes_out <= bound
    assert all(addr == ("192.0.2.7", 3610) for _, addr in sent.datagrams)


# --- the budget alone ---------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.floats(0.0, 2.0),
            st.integers(0, 70_000),
            st.floats(0.0, 1.0),
        ),
        max_size=200,
    )
)
@settings(max_examples=300, deadline=None)
def test_answer_budget_bounds_amplification_and_volume(steps) -> None:
    budget = AnswerBudget(bytes_per_s=20_000.0, bytes_burst=4_000.0)
    now = 0.0
    sent = {"a": 0, "b": 0}
    received = {"a": 0, "b": 0}
    for source, dt, request_bytes, share in steps:
        now += dt
        limit = budget.limit(source, request_bytes, now)
        assert limit >= 0
        answer = int(limit * share)  # a node answers at most what the limit allows
        budget.spend(source, request_bytes, answer, now)
        sent[source] += answer
        received[source] += request_bytes
    for source in sent:
        assert sent[source] <= 2 * received[source] + 4_096 + 1_024 * now
        assert sent[source] <= 4_000 + 20_000 * now


def test_answer_budget_table():
    budget = AnswerBudget(bytes_per_s=10_000.0, bytes_burst=2_000.0)
    # fresh source: 2 × 100 B + the whole allowance (4 096 B), but the byte burst is 2 000 B
    assert budget.limit("x", 100, 0.0) == 2_000
    budget.spend("x", 100, 2_000, 0.0)  # 1 800 B beyond 2 × 100: allowance 2 296 B left
    assert budget.limit("x", 100, 0.0) == 0  # the byte budget is empty
    # 0.1 s later: 1 000 B of byte budget back; allowance 2 296 + 102.4 B
    assert budget.limit("x", 100, 0.1) == 1_000
    assert budget.limit("y", 10, 0.1) == 2_000  # another source has its own buckets
    with pytest.raises(ValueError, match="bytes_burst"):
        AnswerBudget(bytes_burst=100.0)


# --- over UDP -------------------------------------------------------------------------------------


def test_the_issue_probe_over_udp_is_answered_at_most_twice_its_size():
    """The issue's probe from a plain socket on 127.0.0.122:3610 (the node answers to port 3610)
    to a node on 127.0.0.121: 522 B in. Before: 63 762 B out per probe (122×). Now: the first
    answers take the allowance (one Ethernet frame at most), then each at most 2 × 522 B. The
    node's sends are counted at its endpoint (what it put on the wire, lost or not)."""
    count = 200
    sent: list[int] = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
            sent.append(len(data))
            self.inner.sendto(data, addr)

    async def run() -> tuple[list[int], float, EchonetNode]:
        node, _ = make_node("127.0.0.121")
        node.multicast = False  # no start-up INF: only answers leave the node
        await node.start()
        assert node.endpoint is not None
        node.endpoint.transport = Counting(node.endpoint.transport)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        rx.bind(("127.0.0.122", 3610))
        rx.setblocking(False)
        received: list[int] = []
        t0 = time.monotonic()
        try:
            for _ in range(count):
                rx.sendto(PROBE, ("127.0.0.121", 3610))
                await asyncio.sleep(0.001)  # let the node drain its socket
                while True:
                    try:
                        received.append(len(rx.recv(65_535)))
                    except BlockingIOError:
                        break
            await asyncio.sleep(0.2)
            while True:
                try:
                    received.append(len(rx.recv(65_535)))
                except BlockingIOError:
                    break
        finally:
            elapsed = time.monotonic() - t0
            rx.close()
            await node.close()
        return received, elapsed, node

    received, elapsed, node = asyncio.run(run())
    assert node.stats.received == node.stats.answered == len(sent) == count
    assert node.stats.bounded == count
    assert received and max(received) <= MAX_FRAME_BYTES
    allowance = DEFAULT_ALLOWANCE_BURST + DEFAULT_ALLOWANCE_PER_S * elapsed
    assert sum(sent) <= 2 * 522 * count + allowance  # 63 762 × 200 = 12.8 MB before
    # the first answer takes the allowance: 3 plans in one frame (1 266 B, see above); once
    # the allowance is spent, each answer holds 2 plans: 1 018 B ≤ 2 × 522 B
    assert sent[0] == 1266 and sent[-1] == 1018
