"""ECHONET Lite controller: discovery, Get/Set with timeouts and retries, INF subscription (C1).

The client side of route (i), used by the home gateway, the CLI and the conformance checker. It
decodes everything through the same sans-IO codec as the device node, and it **receives on port
3610 of its interface** (the shared endpoint of :mod:`drready.echonet.transport`, which explains
the port rule and how a node and controllers on one address share the port); it sends from the
same socket.

Behaviour on a real home LAN (lossy Wi-Fi, slow adapters, units that come and go):

* **Requests** are matched to responses by TID and source address. A request is sent again
  ``retries`` times when no answer came; each wait doubles, up to ``max_timeout_s`` (20 s:
  installed units' adapters may take that long). An answer to *any* of a request's sends counts,
  so a slow node's late answer to the first send is not thrown away. The first wait for a node
  is ``timeout_s``, or three times the node's smoothed answer time once it has answered
  (:class:`AnswerTimes`, capped at ``max_timeout_s``): a slow node gets a long wait, a fast one
  a short one, and requests to different nodes run concurrently, so one slow node never holds
  up the others. After all sends, :class:`EchonetTimeoutError`.
* **Discovery** (:meth:`EchonetController.discover`) asks the node profile for its instance
  list, identification number and maker code in one Get (0xD6, 0x83, 0x8A), to the multicast
  group *and* by unicast to every known address, and asks again every ``interval_s`` within
  the window (:func:`discovery_sends`) — only the known addresses that have not answered yet,
  and the group while the window lasts — so a lost datagram costs one interval, not the node.
  Unicast probing alone (no multicast) ends as soon as every address answered. A node whose
  answer lacked 0x83 or 0x8A is asked for them by unicast.
* **INF** (0x73) and INFC (0x74) that answer no request go to the subscribers
  (:meth:`EchonetController.subscribe`); with ``listen_multicast`` the controller also receives
  what is announced to the group (a node joining announces its instance list 0xD5; a water
  heater announces 0x80, 0xB2, 0xC7 …). INFC is acknowledged with INFC_Res.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drready.echonet.errors import EchonetError, FrameError
from drready.echonet.frame import (
    CONTROLLER,
    ECHONET_PORT,
    EOJ,
    ESV,
    MULTICAST_GROUP,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
    response_for,
    sna_for,
)
from drready.echonet.mra import class_spec
from drready.echonet.propmap import decode_property_map
from drready.echonet.transport import Endpoint, open_endpoint
from drready.echonet.values import decode_value

__all__ = [
    "DISCOVERY_INTERVAL_S",
    "MAX_TIMEOUT_S",
    "AnswerTimes",
    "EchonetController",
    "EchonetTimeoutError",
    "NodeInfo",
    "SetGetAnswer",
    "discovery_sends",
    "parse_instance_list",
    "retry_waits",
]

log = logging.getLogger(__name__)

MAX_TIMEOUT_S = 20.0
"""Longest wait for one answer [s]: installed units' adapters are documented to answer within
20 s."""
DISCOVERY_INTERVAL_S = 0.25
"""Time between two discovery rounds [s]: on a LAN with 10 % loss each way, 8 rounds in 2 s
miss a node with probability 0.19⁸ ≈ 2·10⁻⁶."""
_RTT_GAIN = 0.25  # weight of a new answer time in the smoothed one (TCP's SRTT uses 1/8)
_RTT_FACTOR = 3.0  # first wait = this × the smoothed answer time


class EchonetTimeoutError(EchonetError, TimeoutError):
    """No answer after all retries."""


def retry_waits(first_s: float, retries: int, max_s: float = MAX_TIMEOUT_S) -> tuple[float, ...]:
    """The waits after each of the ``retries + 1`` sends of a request [s]: doubling from
    ``first_s``, each at most ``max_s``.

    >>> retry_waits(0.5, 3)
    (0.5, 1.0, 2.0, 4.0)
    >>> retry_waits(8.0, 2)
    (8.0, 16.0, 20.0)
    """
    return tuple(min(first_s * 2.0**k, max_s) for k in range(retries + 1))


@dataclass
class AnswerTimes:
    """Smoothed answer time per node [s] and the first wait it implies (pure, no I/O)."""

    base_s: float
    max_s: float = MAX_TIMEOUT_S
    smoothed: dict[str, float] = field(default_factory=dict)

    def observe(self, host: str, seconds: float) -> None:
        """An answer from ``host`` came ``seconds`` after its send."""
        old = self.smoothed.get(host)
        self.smoothed[host] = seconds if old is None else old + _RTT_GAIN * (seconds - old)

    def first_wait(self, host: str) -> float:
        """``base_s`` for a node not heard yet, else 3 × its smoothed answer time, within
        ``[base_s, max_s]``.

        >>> t = AnswerTimes(0.5)
        >>> t.first_wait("a"), (t.observe("a", 4.0), t.first_wait("a"))[1]
        (0.5, 12.0)
        """
        rtt = self.smoothed.get(host)
        if rtt is None:
            return self.base_s
        # clip: never below the configured wait, never above the longest an adapter may take
        return min(max(_RTT_FACTOR * rtt, self.base_s), self.max_s)


def discovery_sends(window_s: float, interval_s: float) -> tuple[float, ...]:
    """When discovery rounds are sent, from the call [s]: at 0 and every ``interval_s`` while
    at least half an interval of the window is left to hear the answers.

    >>> discovery_sends(1.0, 0.25)
    (0.0, 0.25, 0.5, 0.75)
    >>> discovery_sends(0.1, 0.25)
    (0.0,)
    """
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    n = max(1, math.floor((window_s - 0.5 * interval_s) / interval_s) + 1)
    return tuple(k * interval_s for k in range(n))


@dataclass(frozen=True)
class SetGetAnswer:
    """The answer to a SetGet: ``complete`` (SetGet_Res: every Set applied, every Get read;
    SetGet_SNA otherwise), per set EPC whether the node applied it, per got EPC its EDT (None:
    PDC 0, not read)."""

    complete: bool
    accepted: dict[int, bool]
    got: dict[int, bytes | None]


@dataclass(frozen=True)
class NodeInfo:
    """A discovered node: address, identification number (0x83), maker code, instances."""

    address: str
    identification: bytes
    maker_code: bytes
    instances: tuple[EOJ, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "identification": self.identification.hex(),
            "maker_code": self.maker_code.hex().upper(),
            "instances": [str(e) for e in self.instances],
        }


def parse_instance_list(edt: bytes) -> tuple[EOJ, ...]:
    """EOJs of a 0xD5/0xD6 EDT (count, then 3 bytes each)."""
    if not edt or len(edt) < 1 + 3 * edt[0]:
        raise FrameError("instance list shorter than its count")
    return tuple(EOJ.from_bytes(edt[1 + 3 * i : 4 + 3 * i]) for i in range(edt[0]))


@dataclass
class _Pending:
    """A request in flight: its future, the send time of each TID it used, and the services
    that answer it (so that an INF of the node that happens to carry one of those TIDs is not
    taken for the answer)."""

    future: asyncio.Future[Frame]
    sent_at: dict[int, float]
    answers: frozenset[int]


@dataclass
class EchonetController:
    """A controller on ``interface``, receiving on port 3610 (``port`` 0: a private ephemeral
    port instead, hearing only nodes that answer to the source port)."""

    interface: str = "127.0.0.1"
    port: int = ECHONET_PORT
    timeout_s: float = 0.5
    retries: int = 2
    seoj: EOJ = CONTROLLER
    listen_multicast: bool = False
    max_timeout_s: float = MAX_TIMEOUT_S
    _endpoint: Endpoint | None = None
    _answer_times: AnswerTimes | None = None
    _waiting: dict[tuple[int, str], _Pending] = field(default_factory=dict)
    _collectors: dict[int, list[tuple[str, Frame]]] = field(default_factory=dict)
    _subscribers: list[Callable[[str, Frame], None]] = field(default_factory=list)

    async def start(self) -> None:
        """Bind (or share) ``interface:3610`` and, with ``listen_multicast``, join the group."""
        if not 0 < self.timeout_s <= self.max_timeout_s or self.retries < 0:
            raise ValueError(
                f"timeout_s must be in (0, {self.max_timeout_s}] and retries ≥ 0, got "
                f"{self.timeout_s}, {self.retries}"
            )
        endpoint = await open_endpoint(self.interface, self.port)
        endpoint.attach_controller(self._datagram)
        self._endpoint = endpoint
        self._answer_times = AnswerTimes(self.timeout_s, self.max_timeout_s)
        if self.listen_multicast:
            try:
                await endpoint.join_multicast()
            except OSError:
                await self.close()
                raise

    @property
    def receive_port(self) -> int | None:
        """The local port answers reach (3610 unless asked otherwise), None when closed."""
        return None if self._endpoint is None else self._endpoint.port

    async def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.detach(self._datagram)
        self._endpoint = None

    async def __aenter__(self) -> EchonetController:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self, callback: Callable[[str, Frame], None]) -> None:
        """Call ``callback(address, frame)`` for every INF/INFC received that answers no
        request."""
        self._subscribers.append(callback)

    def answer_time_s(self, host: str) -> float | None:
        """The smoothed answer time of ``host`` [s], None before its first answer."""
        return None if self._answer_times is None else self._answer_times.smoothed.get(host)

    def _next_tid(self) -> int:
        if self._endpoint is None:
            raise EchonetError("controller not started")
        return self._endpoint.next_tid()

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        self._received(data, addr[0])

    def _received(self, data: bytes, host: str) -> None:
        try:
            frame = decode_frame(data)
        except FrameError:
            return
        pending = self._waiting.get((frame.tid, host))
        if pending is not None and frame.esv not in pending.answers:
            pending = None  # not an answer to that request: the node's own TID space
        if frame.esv in (ESV.INF, ESV.INFC) and pending is None:
            if frame.esv == ESV.INFC:
                self._acknowledge(frame, host)
            for cb in self._subscribers:
                cb(host, frame)
            return
        collector = self._collectors.get(frame.tid)
        if collector is not None:
            collector.append((host, frame))
            return
        if pending is not None and not pending.future.done():
            if self._answer_times is not None:
                loop = asyncio.get_running_loop()
                self._answer_times.observe(host, loop.time() - pending.sent_at[frame.tid])
            pending.future.set_result(frame)

    def _acknowledge(self, frame: Frame, host: str) -> None:
        ack = Frame(
            frame.tid,
            self.seoj,
            frame.seoj,
            int(ESV.INFC_RES),
            tuple(Property(p.epc) for p in frame.properties),
        )
        self._send(ack, host)

    def _send(self, frame: Frame, host: str) -> None:
        if self._endpoint is None:
            raise EchonetError("controller not started")
        self._endpoint.sendto(encode_frame(frame), (host, ECHONET_PORT))

    async def request(
        self,
        host: str,
        deoj: EOJ,
        esv: ESV,
        properties: tuple[Property, ...],
        get_properties: tuple[Property, ...] = (),
        *,
        retries: int | None = None,
    ) -> Frame:
        """Send one request and return the matching response (sent again on silence; an
        answer to any of the sends counts)."""
        if self._answer_times is None:
            raise EchonetError("controller not started")
        loop = asyncio.get_running_loop()
        tries = self.retries if retries is None else retries
        waits = retry_waits(self._answer_times.first_wait(host), tries, self.max_timeout_s)
        pending = _Pending(
            loop.create_future(), {}, frozenset({int(response_for(esv)), int(sna_for(esv))})
        )
        try:
            for wait in waits:
                tid = self._next_tid()
                pending.sent_at[tid] = loop.time()
                self._waiting[(tid, host)] = pending
                self._send(Frame(tid, self.seoj, deoj, int(esv), properties, get_properties), host)
                try:
                    return await asyncio.wait_for(asyncio.shield(pending.future), wait)
                except TimeoutError:
                    continue
        finally:
            for tid in pending.sent_at:
                self._waiting.pop((tid, host), None)
            if not pending.future.done():
                pending.future.cancel()
        raise EchonetTimeoutError(
            f"no answer from {host} {deoj} after {len(waits)} tries ({sum(waits):.3g} s of waiting)"
        )

    async def get(self, host: str, deoj: EOJ, epcs: list[int]) -> dict[int, bytes | None]:
        """EDT per EPC (None for what the node refused, PDC 0)."""
        res = await self.request(host, deoj, ESV.GET, tuple(Property(e) for e in epcs))
        out: dict[int, bytes | None] = {e: None for e in epcs}
        for p in res.properties:
            out[p.epc] = p.edt if p.edt else None
        return out

    async def set(self, host: str, deoj: EOJ, values: dict[int, bytes]) -> dict[int, bool]:
        """SetC; per EPC whether the node accepted it."""
        props = tuple(Property(e, v) for e, v in values.items())
        res = await self.request(host, deoj, ESV.SETC, props)
        return {p.epc: p.pdc == 0 for p in res.properties}

    async def set_get(
        self, host: str, deoj: EOJ, values: dict[int, bytes], epcs: list[int]
    ) -> SetGetAnswer:
        """SetGet (ESV 0x6E): set ``values`` and read ``epcs`` in one request, which the node
        processes as one (the Sets first, then the Gets)."""
        res = await self.request(
            host,
            deoj,
            ESV.SETGET,
            tuple(Property(e, v) for e, v in values.items()),
            tuple(Property(e) for e in epcs),
        )
        got: dict[int, bytes | None] = {e: None for e in epcs}
        for p in res.get_properties:
            got[p.epc] = p.edt if p.edt else None
        return SetGetAnswer(
            complete=res.esv == ESV.SETGET_RES,
            accepted={p.epc: p.pdc == 0 for p in res.properties},
            got=got,
        )

    async def discover(
        self,
        host: str | None = MULTICAST_GROUP,
        window_s: float = 0.5,
        *,
        known: Iterable[str] = (),
        interval_s: float = DISCOVERY_INTERVAL_S,
    ) -> list[NodeInfo]:
        """Nodes answering within ``window_s``: asked at ``host`` (the multicast group by
        default; an address; None for none) and by unicast at every ``known`` address, again
        every ``interval_s`` (see the module). Without multicast it returns as soon as every
        address answered."""
        if self._endpoint is None:
            raise EchonetError("controller not started")
        loop = asyncio.get_running_loop()
        unicast = list(dict.fromkeys([*([] if host is None else [host]), *known]))
        group = MULTICAST_GROUP in unicast
        unicast = [a for a in unicast if a != MULTICAST_GROUP]
        answers: dict[str, dict[int, bytes]] = {}
        tids: list[int] = []
        t0 = loop.time()
        try:
            for at in discovery_sends(window_s, interval_s):
                await asyncio.sleep(max(0.0, t0 + at - loop.time()))
                self._collect(tids, answers)
                missing = [a for a in unicast if a not in answers]
                if not group and not missing:
                    break
                tid = self._next_tid()
                tids.append(tid)
                self._collectors[tid] = []
                frame = Frame(
                    tid,
                    self.seoj,
                    NODE_PROFILE,
                    int(ESV.GET),
                    (Property(0xD6), Property(0x83), Property(0x8A)),
                )
                for target in ([MULTICAST_GROUP] if group else []) + missing:
                    self._endpoint.sendto(encode_frame(frame), (target, ECHONET_PORT))
            while True:  # the rest of the window (unicast only: until everyone answered)
                self._collect(tids, answers)
                left = t0 + window_s - loop.time()
                if left <= 0 or (not group and all(a in answers for a in unicast)):
                    break
                await asyncio.sleep(min(left, 0.02))
        finally:
            for tid in tids:
                self._collectors.pop(tid, None)
        nodes = await asyncio.gather(*(self._describe_node(a, p) for a, p in answers.items()))
        return sorted((n for n in nodes if n is not None), key=lambda n: _ip_key(n.address))

    def _collect(self, tids: list[int], answers: dict[str, dict[int, bytes]]) -> None:
        for tid in tids:
            got = self._collectors.get(tid)
            if not got:
                continue
            for addr, res in got:
                if res.esv not in (ESV.GET_RES, ESV.GET_SNA):
                    continue
                props = {p.epc: p.edt for p in res.properties if p.edt}
                if 0xD6 in props:
                    answers[addr] = {**answers.get(addr, {}), **props}
            got.clear()

    async def _describe_node(self, addr: str, props: dict[int, bytes]) -> NodeInfo | None:
        try:
            instances = parse_instance_list(props[0xD6])
        except (FrameError, ValueError):
            return None
        ident, maker = props.get(0x83), props.get(0x8A)
        if ident is None or maker is None:
            try:
                got = await self.get(addr, NODE_PROFILE, [0x83, 0x8A])
            except EchonetTimeoutError:
                return None
            ident, maker = ident or got[0x83], maker or got[0x8A]
        return NodeInfo(addr, ident or b"", maker or b"", instances)

    async def read_all(self, host: str, eoj: EOJ) -> dict[int, object]:
        """Every readable property of ``eoj`` decoded through the MRA (raw hex where unknown)."""
        maps = await self.get(host, eoj, [0x9F])
        epcs = list(decode_property_map(maps[0x9F] or b"\x00"))
        values: dict[int, object] = {}
        try:
            props = class_spec(eoj.class_id).properties
        except KeyError:
            props = {}
        for i in range(0, len(epcs), 8):  # several small requests keep frames short
            got = await self.get(host, eoj, epcs[i : i + 8])
            for epc, edt in got.items():
                if edt is None:
                    values[epc] = None
                    continue
                spec = props.get(epc)
                try:
                    values[epc] = decode_value(spec, edt) if spec is not None else edt.hex()
                except (EchonetError, ValueError):
                    values[epc] = edt.hex()
        return values


def _ip_key(address: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in address.split("."))
    except ValueError:
        return (0,)
