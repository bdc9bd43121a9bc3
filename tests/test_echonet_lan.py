"""ECHONET Lite on a real LAN (C1): port 3610 both ways against two small independent peers
written here with plain sockets, and discovery and requests through a lossy, slow LAN.

The peers are not drready code: one is a controller that sends from an ephemeral port and
listens on 3610 (as the npm ``echonet-lite`` library does), the other a node that answers only
to port 3610 (as the specification says). Loss and delay are injected by wrapping the
endpoints' transports (:class:`LossyTransport`). Addresses 127.0.3.x / 127.0.4.x keep these
tests off the 127.0.0.x addresses other tests and the demo use.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from drready.echonet.controller import (
    AnswerTimes,
    EchonetController,
    EchonetTimeoutError,
    discovery_sends,
    retry_waits,
)
from drready.echonet.frame import (
    ECHONET_PORT,
    ESV,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
)
from drready.echonet.node import EchonetNode
from drready.echonet.transport import DatagramSender, Endpoint
from tests.echonet_helpers import HEATER, make_node, request

PEER_CTL = "127.0.3.250"  # the independent controller
PEER_NODE = "127.0.3.251"  # the independent node
OUR_CTL = "127.0.3.1"
OUR_NODE = "127.0.3.2"


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("first", "retries", "cap", "expected"),
    [
        (0.5, 0, 20.0, (0.5,)),
        (0.5, 2, 20.0, (0.5, 1.0, 2.0)),
        (6.0, 3, 20.0, (6.0, 12.0, 20.0, 20.0)),
        (0.2, 4, 1.0, (0.2, 0.4, 0.8, 1.0, 1.0)),
    ],
)
def test_retry_waits_double_up_to_the_cap(first, retries, cap, expected):
    assert retry_waits(first, retries, cap) == expected


def test_answer_times_give_slow_nodes_long_and_fast_nodes_short_waits():
    t = AnswerTimes(base_s=0.5, max_s=20.0)
    assert t.first_wait("fast") == 0.5  # not heard yet
    t.observe("fast", 0.001)
    assert t.first_wait("fast") == 0.5  # never below the configured wait
    t.observe("slow", 4.0)
    assert t.first_wait("slow") == 12.0  # 3 × 4 s
    t.observe("slow", 8.0)  # smoothed: 4 + 0.25 × (8 − 4) = 5
    assert t.smoothed["slow"] == 5.0 and t.first_wait("slow") == 15.0
    t.observe("slower", 19.0)
    assert t.first_wait("slower") == 20.0  # capped


@pytest.mark.parametrize(
    ("window", "interval", "expected"),
    [
        (0.1, 0.25, (0.0,)),
        (0.3, 0.25, (0.0,)),
        (0.5, 0.25, (0.0, 0.25)),
        (2.0, 0.25, (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)),
    ],
)
def test_discovery_sends_every_interval_while_answers_can_still_come(window, interval, expected):
    assert discovery_sends(window, interval) == expected


# --------------------------------------------------------------------------- port 3610


def _udp(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.settimeout(0.05)
    return sock


def test_our_node_answers_to_port_3610_of_a_peer_sending_from_another_port():
    """The peer sends from an ephemeral port and listens on 3610 (the npm library's way)."""

    async def run() -> None:
        node, heater = make_node(OUR_NODE)
        await node.start()
        listen = _udp(PEER_CTL, ECHONET_PORT)
        send = _udp(PEER_CTL, 0)
        try:
            send.sendto(request(ESV.GET, [(0xE1, b"")], tid=0x0A0B), (OUR_NODE, ECHONET_PORT))
            got = await _receive(listen)
            assert got is not None, "no answer on port 3610"
            frame, (src, _) = got
            assert src == OUR_NODE and frame.tid == 0x0A0B and frame.esv == ESV.GET_RES
            assert int.from_bytes(frame.properties[0].edt, "big") == heater.hot_water_in_tank_l
            assert await _receive(send, 0.2) is None  # nothing to the source port
        finally:
            listen.close()
            send.close()
            await node.close()

    asyncio.run(run())


async def _receive(sock: socket.socket, within_s: float = 2.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            data, addr = sock.recvfrom(2048)
        except TimeoutError:
            await asyncio.sleep(0.01)
            continue
        return decode_frame(data), addr
    return None


@contextmanager
def _spec_node(address: str) -> Iterator[list[tuple[str, int]]]:
    """A minimal node (plain socket, own thread) that answers Get of 0x80 (0x30), 0xD6 (one
    water heater), 0x83 and 0x8A only to port 3610 of the sender; yields the sources seen."""
    sock = _udp(address, ECHONET_PORT)
    seen: list[tuple[str, int]] = []
    stop = threading.Event()
    values = {
        0x80: b"\x30",
        0xD6: b"\x01\x02\x6b\x01",
        0x83: b"\xfe" + bytes(range(16)),
        0x8A: b"\x00\x00\x77",
    }

    def serve() -> None:
        while not stop.is_set():
            try:
                data, src = sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            try:
                req = decode_frame(data)
            except ValueError:
                continue
            if req.esv != ESV.GET:
                continue
            seen.append(src)
            props = tuple(Property(p.epc, values.get(p.epc, b"")) for p in req.properties)
            ok = all(p.edt for p in props)
            res = Frame(
                req.tid,
                req.deoj,
                req.seoj,
                int(ESV.GET_RES if ok else ESV.GET_SNA),
                props,
            )
            sock.sendto(encode_frame(res), (src[0], ECHONET_PORT))  # the rule: port 3610

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def test_our_controller_hears_a_node_that_answers_only_to_port_3610():
    async def run() -> None:
        with _spec_node(PEER_NODE) as seen:
            async with EchonetController(interface=OUR_CTL, timeout_s=0.5) as ctl:
                assert ctl.receive_port == ECHONET_PORT
                got = await ctl.get(PEER_NODE, NODE_PROFILE, [0x80])
                assert got == {0x80: b"\x30"}
                (info,) = await ctl.discover(host=PEER_NODE, window_s=1.0)
                assert info.instances == (HEATER,) and info.maker_code == b"\x00\x00\x77"
            # a controller on a private ephemeral port (the old way) does not hear it
            async with EchonetController(interface=OUR_CTL, port=0, timeout_s=0.2) as old:
                assert old.receive_port not in (None, ECHONET_PORT)
                with pytest.raises(EchonetTimeoutError):
                    await old.get(PEER_NODE, NODE_PROFILE, [0x80])
        assert seen and all(src[0] == OUR_CTL for src in seen)

    asyncio.run(run())


def test_a_node_and_controllers_on_one_address_share_port_3610():
    """One process, one address: a node and two controllers; answers reach the controller that
    asked (TIDs come from the shared endpoint)."""

    async def run() -> None:
        here = "127.0.3.3"
        node, _ = make_node(here)
        other, _ = make_node("127.0.3.4", serial="HW0000002")
        await node.start()
        await other.start()
        try:
            async with (
                EchonetController(interface=here) as a,
                EchonetController(interface=here) as b,
            ):
                assert a._endpoint is b._endpoint is node.endpoint
                got_a, got_b = await asyncio.gather(
                    a.get("127.0.3.4", HEATER, [0xE2]), b.get(here, HEATER, [0xE2])
                )
                assert got_a[0xE2] == got_b[0xE2] == (460).to_bytes(2, "big")
                # the node on the shared address still answers requests from elsewhere
                async with EchonetController(interface="127.0.3.5") as c:
                    assert (await c.get(here, HEATER, [0x80]))[0x80] == b"\x30"
            assert node.endpoint is not None and not node.endpoint.closed
        finally:
            await node.close()
            await other.close()
        assert node.endpoint is None

    asyncio.run(run())


# --------------------------------------------------------------------------- a lossy, slow LAN


class LossyTransport:
    """Drops each datagram with probability ``drop`` and delays the rest by up to
    ``max_delay_s`` (uniform), seeded; wraps an endpoint's transport."""

    def __init__(self, inner: DatagramSender, drop: float, max_delay_s: float, seed: int) -> None:
        self.inner = inner
        self.drop = drop
        self.max_delay_s = max_delay_s
        self.rng = random.Random(seed)
        self.sent = self.dropped = 0

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent += 1
        if self.rng.random() < self.drop:
            self.dropped += 1
            return
        delay = self.rng.uniform(0.0, self.max_delay_s)
        asyncio.get_running_loop().call_later(delay, self.inner.sendto, data, addr)


def _lossy(endpoint: object, drop: float, max_delay_s: float, seed: int) -> LossyTransport:
    assert endpoint is not None
    inner = endpoint.transport  # type: ignore[attr-defined]
    wrapped = LossyTransport(inner, drop, max_delay_s, seed)
    endpoint.transport = wrapped  # type: ignore[attr-defined]
    return wrapped


def test_discovery_finds_all_50_nodes_of_a_lan_with_10_percent_loss_within_5_s():
    async def run() -> None:
        nodes: list[EchonetNode] = []
        expected: dict[str, bytes] = {}
        wrapped: list[LossyTransport] = []
        try:
            for i in range(50):
                address = f"127.0.4.{10 + i}"
                node, heater = make_node(address, serial=f"LAN{i:06d}")
                await node.start()
                wrapped.append(_lossy(node.endpoint, 0.10, 0.02, seed=i))
                nodes.append(node)
                expected[address] = heater.device_id.to_echonet_id()
            await asyncio.sleep(0.2)
            async with EchonetController(interface="127.0.4.1", timeout_s=0.3, retries=4) as ctl:
                wrapped.append(_lossy(ctl._endpoint, 0.10, 0.02, seed=99))
                t0 = time.monotonic()
                found = await ctl.discover(window_s=2.0)
                elapsed = time.monotonic() - t0
        finally:
            for node in nodes:
                await node.close()
        got = {n.address: n.identification for n in found if n.address in expected}
        assert got == expected, f"missing: {sorted(set(expected) - set(got))}"
        assert elapsed < 5.0
        dropped, sent = sum(w.dropped for w in wrapped), sum(w.sent for w in wrapped)
        assert sent > 400 and 0.05 < dropped / sent < 0.2  # the LAN really lost ≈ 10 %

    asyncio.run(run())


def test_slow_and_silent_nodes_do_not_hold_up_the_fast_ones():
    async def run() -> None:
        fast, _ = make_node("127.0.3.20", serial="FAST00001")
        slow, _ = make_node("127.0.3.21", serial="SLOW00001")
        slow.answer_delay_s = 1.5  # every answer after up to 1.5 s
        slow._rng = random.Random(1)
        await fast.start()
        await slow.start()
        try:
            async with EchonetController(interface="127.0.3.19", timeout_s=0.2, retries=4) as ctl:

                async def timed(host: str) -> float:
                    t = time.monotonic()
                    await ctl.get(host, HEATER, [0x80])
                    return time.monotonic() - t

                async def fast_gets() -> list[float]:
                    return [await timed("127.0.3.20") for _ in range(10)]

                async def silent() -> str:
                    try:
                        await ctl.get("127.0.3.29", HEATER, [0x80])  # nobody there
                    except EchonetTimeoutError as err:
                        return str(err)
                    return "answered?"

                fast_t, slow_t, why = await asyncio.gather(
                    fast_gets(), timed("127.0.3.21"), silent()
                )
                assert max(fast_t) < 0.15, fast_t  # never waited for the slow or silent one
                assert slow_t <= 1.5 + 0.1  # its answer to the first send counted
                assert "after 5 tries" in why
                learnt = ctl.answer_time_s("127.0.3.21")
                assert learnt is not None and learnt > 0.2
                # the next request to the slow node waits long enough at once (one send)
                sent_before = slow.stats.received
                await ctl.get("127.0.3.21", HEATER, [0x80])
                assert slow.stats.received - sent_before <= 2
        finally:
            await fast.close()
            await slow.close()

    asyncio.run(run())


def test_the_shared_endpoint_routes_by_service_code() -> None:
    """Requests (and junk) to the nodes, answers, SNA, INF to the controllers, INFC to both."""
    ep = Endpoint("127.0.3.99", 3610, shared=True)
    to_node: list[int] = []
    to_ctl: list[int] = []
    ep.attach_node(lambda data, addr: to_node.append(data[10] if len(data) > 10 else -1))
    ep.attach_controller(lambda data, addr: to_ctl.append(data[10]))
    frames = {esv: request(esv, [(0x80, b"")]) for esv in (0x60, 0x61, 0x62, 0x63, 0x6E)}
    frames.update({esv: request(esv, [(0x80, b"\x30")]) for esv in (0x71, 0x72, 0x73, 0x52)})
    frames[0x74] = request(0x74, [(0x80, b"\x30")])
    for data in frames.values():
        ep._route(data, ("127.0.3.98", 3610))
    ep._route(b"\x10\x81\x00", ("127.0.3.98", 3610))  # too short: the node counts it
    assert to_node == [0x60, 0x61, 0x62, 0x63, 0x6E, 0x74, -1]
    assert to_ctl == [0x71, 0x72, 0x73, 0x52, 0x74]
    ep.detach(ep._nodes[0])
    assert ep._nodes == [] and ep._controllers  # still open for the controller
