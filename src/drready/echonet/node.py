"""ECHONET Lite device node: answers requests for its objects and announces changes (C1, F1–F6).

Two layers, as the style guide asks:

* :class:`NodeCore` is sans-IO. ``handle(data)`` turns one received datagram into the datagrams
  to send back (empty for anything that must not be answered), following the ECHONET Lite
  service rules: Get/SetC/SetI/SetGet/INF_REQ/INFC, the ``*_SNA`` error responses (a Get of an
  unknown or unreadable EPC answers that EPC with PDC 0; a refused Set echoes the rejected EDT;
  SetI is answered only when something failed), instance code 0x00 addressing every instance
  of a class, frames for objects the node does not hold dropped silently, OPC = 0 tolerated,
  and malformed frames dropped (never an exception). **Bounded answers**: every answer
  datagram fits :data:`MAX_FRAME_BYTES` (one Ethernet frame, never IP-fragmented), and
  ``handle(data, limit_bytes)`` keeps all the datagrams of one request within ``limit_bytes``;
  a property whose value does not fit is answered as an unreadable one is (PDC 0 in the
  ``*_SNA`` response, every requested EPC listed in order), a Set whose answer could not fit
  is not applied and not answered (docs/profile-echonet-lite.md, "Bounded answers").
  **Status-change announcements** (EL-M3): every EPC an object lists in its status-change
  announcement map (0x9D) is announced by INF when its value changes, whatever changed it — a
  controller's Set, the device itself, time. :meth:`NodeCore.changed_announcements` compares
  the value of each of them with the value last announced (or seen at start) and builds the
  INF frames of those that differ; the adapter calls it after every Set-type request and
  whenever its device reports a change. ``announcements`` builds INF frames for named EPCs
  (and counts them as announced).
* :class:`EchonetNode` is the asyncio UDP adapter on ``address:3610`` (never every interface,
  in any spelling, unless ``allow_any_address``: :mod:`drready.security.listen`), through the
  process's shared endpoint of that address (:mod:`drready.echonet.transport`), joined to
  224.0.23.0 on that interface; a per-source token-bucket rate limit and a per-source
  :class:`AnswerBudget` (bytes answered per second, and at most :data:`AMPLIFICATION_FACTOR` ×
  the request's bytes plus a small per-source allowance: the node is no reflector for a forged
  source address, S1); INF announcements sent to the multicast group. **Answers go to port
  3610 of the requester**, whatever port the request came from: ECHONET Lite sends every frame
  to destination port 3610 (the source port is free). ``answer_delay_s`` makes the node answer
  each request after a random delay of up to that many seconds (at most
  :data:`MAX_ANSWER_DELAY_S`), as installed units behind a slow adapter do. Hand-written because
  no maintained Python library implements the *device* side of ECHONET Lite (pychonet and
  others are controllers).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from drready.echonet.errors import FrameError
from drready.echonet.frame import (
    ECHONET_PORT,
    EOJ,
    ESV,
    MULTICAST_GROUP,
    NODE_PROFILE,
    Frame,
    Property,
    decode_frame,
    encode_frame,
)
from drready.echonet.objects import EchonetObject
from drready.echonet.transport import Endpoint, open_endpoint
from drready.security.listen import check_listen_address

log = logging.getLogger(__name__)

MAX_ANSWER_DELAY_S = 20.0
"""Longest answer delay a node may be given [s]: installed units' adapters are documented to
answer within 20 s."""

MAX_FRAME_BYTES = 1472
"""Largest answer datagram [bytes of UDP payload]: an Ethernet MTU of 1 500 less the IPv4 (20)
and UDP (8) headers, so no answer is IP-fragmented. ECHONET Lite leaves the frame length to the
lower layer; the largest answer a controller of drready asks for (0xF4, 248 bytes, with the
status EPCs) is far below it."""

AMPLIFICATION_FACTOR = 2
"""Bytes a node answers per byte of request from the same source [bytes/bytes], beyond the
per-source allowance (:class:`AnswerBudget`)."""

DEFAULT_BYTES_PER_S = 524_288.0
"""Bytes answered per second to one source [B/s] (512 KiB/s ≈ 4 Mbit/s): above what the
request-rate limit lets one controller draw with ordinary Gets (20 000/s × 15–16 B ≈ 320 kB/s,
the benchmark's load), far below a home LAN's capacity."""
DEFAULT_BYTES_BURST = 65_536.0
"""Bytes one source may be answered at once [B]."""
DEFAULT_ALLOWANCE_BURST = 4_096.0
"""Bytes an answer may take beyond :data:`AMPLIFICATION_FACTOR` × its request, per source, at
once [B]: a standard controller's first contact answers more than twice its request (the
discovery Get of 0xD6/0x83/0x8A: 18 B in, 42 B out; 0x83, the property maps, 0xCB: 14 B in,
30–31 B out; 0xF3/0xF4: 14 B in, up to 264 B out), and ECHONET Lite has no padding nor any
way to prove a source address. 4 KiB cover a conformance run of every EPC."""
DEFAULT_ALLOWANCE_PER_S = 1_024.0
"""Refill of that allowance [B/s]: four 0xF3/0xF4 reads a second, sustained."""

_SET_ESVS = {ESV.SETI, ESV.SETC}
_REQUEST_ESVS = frozenset(
    {ESV.SETI, ESV.SETC, ESV.GET, ESV.INF_REQ, ESV.SETGET, ESV.INFC}
)  # what a node answers; responses, announcements and unknown services are passed over
_CHANGING_ESVS = frozenset({ESV.SETI, ESV.SETC, ESV.SETGET})
"""Requests that may change a property: the node compares its announced EPCs after them."""
_ESV_OFFSET = 10  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3), then ESV
_HEADER_BYTES = 12  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC
_PROPERTY_BYTES = 2  # EPC PDC, before the EDT


@dataclass
class NodeStats:
    """Counters for observability and tests."""

    received: int = 0
    answered: int = 0
    malformed: int = 0
    ignored: int = 0
    rate_limited: int = 0
    announcements: int = 0
    bounded: int = 0
    """Answers in which properties were cut to PDC 0 because their values did not fit."""
    unanswered_budget: int = 0
    """Answers not sent at all: not even EPC and PDC of every property would fit (a Set of
    such a request is not applied)."""


def _block_bytes(props: Iterable[Property]) -> int:
    """Bytes of ``(EPC PDC EDT)*`` for ``props``."""
    return sum(_PROPERTY_BYTES + len(p.edt) for p in props)


def _fit(props: list[Property], room: int) -> tuple[list[Property], bool] | None:
    """``props`` within ``room`` bytes of ``(EPC PDC EDT)*``: in order, a value that does not
    fit in what is left becomes PDC 0 (as an unreadable one), later smaller ones still go in.
    With whether a value was cut; None when not even every EPC with PDC 0 fits."""
    if _PROPERTY_BYTES * len(props) > room:
        return None
    if _block_bytes(props) <= room:
        return props, False
    spare = room - _PROPERTY_BYTES * len(props)
    out = []
    for p in props:
        if len(p.edt) <= spare:
            spare -= len(p.edt)
            out.append(p)
        else:
            out.append(Property(p.epc, b""))
    return out, True


@dataclass
class NodeCore:
    """The protocol logic of a node holding ``objects`` (node profile included)."""

    objects: list[EchonetObject]
    stats: NodeStats = field(default_factory=NodeStats)
    _tid: int = 0

    def __post_init__(self) -> None:
        self._by_eoj = {o.eoj: o for o in self.objects}
        self._announced: dict[EOJ, dict[int, bytes]] = {}
        self._comparing = False
        for obj in self.objects:  # what the announced EPCs are at start: no INF for them
            self._announced[obj.eoj] = self._announced_values(obj)

    def _announced_values(self, obj: EchonetObject) -> dict[int, bytes]:
        props, _ = self._read(obj, [Property(e) for e in obj.announce_map()])
        return {p.epc: p.edt for p in props if p.edt}

    def changed_announcements(self, obj: EchonetObject | None = None) -> list[bytes]:
        """INF frames (one per object) for every EPC of 0x9D of ``obj`` (None: of every
        object) whose value differs from the one last announced; those values become the
        announced ones. A call made while one is comparing (a getter's device reporting a
        change) returns nothing: the outer call reads the values after it."""
        if self._comparing:
            return []
        self._comparing = True
        try:
            out: list[bytes] = []
            for o in self.objects if obj is None else [obj]:
                last = self._announced.setdefault(o.eoj, {})
                now = self._announced_values(o)
                changed = [e for e, edt in now.items() if last.get(e) != edt]
                last.update(now)
                if changed:
                    out += self._inf(o, [Property(e, now[e]) for e in changed])
            return out
        finally:
            self._comparing = False

    def targets(self, deoj: EOJ) -> list[EchonetObject]:
        """Objects addressed by ``deoj`` (instance 0x00 = every instance of the class)."""
        if deoj.instance == 0:
            return [
                o
                for o in self.objects
                if (o.eoj.class_group, o.eoj.class_code) == (deoj.class_group, deoj.class_code)
            ]
        obj = self._by_eoj.get(deoj)
        return [] if obj is None else [obj]

    def handle(self, data: bytes, limit_bytes: int | None = None) -> list[bytes]:
        """Responses to one received datagram (possibly none).

        Each is at most :data:`MAX_FRAME_BYTES`; together they are at most ``limit_bytes``
        (None: no limit but the frame's). What does not fit is cut as the module docstring says.
        """
        self.stats.received += 1
        try:
            frame = decode_frame(data)
        except FrameError:
            self.stats.malformed += 1
            return []
        if frame.esv not in _REQUEST_ESVS:
            self.stats.ignored += 1  # responses, announcements, unknown services
            return []
        out = []
        left = limit_bytes
        for obj in self.targets(frame.deoj):
            room = MAX_FRAME_BYTES if left is None else min(MAX_FRAME_BYTES, left)
            response = self._respond(obj, frame, room)
            if response is not None:
                encoded = encode_frame(response)
                out.append(encoded)
                if left is not None:
                    left -= len(encoded)
        if out:
            self.stats.answered += 1
        else:
            self.stats.ignored += 1
        return out

    def _read(self, obj: EchonetObject, epcs: Iterable[Property]) -> tuple[list[Property], bool]:
        props = []
        ok = True
        read: dict[int, bytes | None] = {}  # an EPC asked again in one request is read once
        for p in epcs:
            if p.epc in read:
                edt = read[p.epc]
            else:
                try:
                    edt = obj.read(p.epc)
                except Exception:  # a failing getter must not take the node down
                    log.exception("getter of EPC 0x%02X failed", p.epc)
                    edt = None
                read[p.epc] = edt
            if edt is None:
                ok = False
                props.append(Property(p.epc, b""))
            else:
                props.append(Property(p.epc, edt))
        return props, ok

    def _write(self, obj: EchonetObject, props: Iterable[Property]) -> tuple[list[Property], bool]:
        out = []
        ok = True
        for p in props:
            try:
                accepted = obj.write(p.epc, p.edt)
            except Exception:
                log.exception("setter of EPC 0x%02X failed", p.epc)
                accepted = False
            if accepted:
                out.append(Property(p.epc, b""))
            else:
                ok = False
                out.append(Property(p.epc, p.edt))
        return out, ok

    def _respond(self, obj: EchonetObject, frame: Frame, room: int) -> Frame | None:
        """The answer of ``obj`` to ``frame`` within ``room`` bytes (None: no answer)."""
        esv = frame.esv
        get_props: tuple[Property, ...] = ()
        if esv in (ESV.GET, ESV.INF_REQ):
            if _HEADER_BYTES + _PROPERTY_BYTES * len(frame.properties) > room:
                self.stats.unanswered_budget += 1  # checked before reading anything
                return None
            read, ok = self._read(obj, frame.properties)
            fitted = _fit(read, room - _HEADER_BYTES)
            assert fitted is not None  # the EPCs were counted above
            props, cut = fitted
            self.stats.bounded += cut
            ok = ok and not cut
            if esv == ESV.GET:
                res = ESV.GET_RES if ok else ESV.GET_SNA
            else:
                res = ESV.INF if ok else ESV.INF_SNA
        elif esv in _SET_ESVS:
            # the answer echoes at most the request's block: apply only what can be answered
            if _HEADER_BYTES + _block_bytes(frame.properties) > room:
                self.stats.unanswered_budget += 1
                return None
            props, ok = self._write(obj, frame.properties)
            if esv == ESV.SETI and ok:
                return None  # SetI: no answer when everything was accepted
            res = ESV.SETI_SNA if esv == ESV.SETI else (ESV.SET_RES if ok else ESV.SETC_SNA)
        elif esv == ESV.SETGET:
            fixed = _HEADER_BYTES + 1 + _block_bytes(frame.properties)  # + OPCGet
            if fixed + _PROPERTY_BYTES * len(frame.get_properties) > room:
                self.stats.unanswered_budget += 1
                return None
            props, ok_set = self._write(obj, frame.properties)
            gets, ok_get = self._read(obj, frame.get_properties)
            fitted = _fit(gets, room - (_HEADER_BYTES + 1 + _block_bytes(props)))
            assert fitted is not None  # the set block only shrinks: the EPCs were counted
            get_list, cut = fitted
            get_props = tuple(get_list)
            self.stats.bounded += cut
            ok_get = ok_get and not cut
            res = ESV.SETGET_RES if ok_set and ok_get else ESV.SETGET_SNA
        else:  # INFC: acknowledge the notification
            if _HEADER_BYTES + _PROPERTY_BYTES * len(frame.properties) > room:
                self.stats.unanswered_budget += 1
                return None
            props = [Property(p.epc, b"") for p in frame.properties]
            res = ESV.INFC_RES
        return Frame(
            tid=frame.tid,
            seoj=obj.eoj,
            deoj=frame.seoj,
            esv=int(res),
            properties=tuple(props),
            get_properties=get_props,
        )

    def announcements(self, obj: EchonetObject, epcs: Iterable[int]) -> list[bytes]:
        """INF frames (to the node profiles of the network) for announced EPCs of ``obj``."""
        announced = set(obj.announce_map())
        props, _ = self._read(obj, [Property(e) for e in sorted(set(epcs) & announced)])
        props = [p for p in props if p.edt]
        self._announced.setdefault(obj.eoj, {}).update((p.epc, p.edt) for p in props)
        return self._inf(obj, props)

    def _inf(self, obj: EchonetObject, props: list[Property]) -> list[bytes]:
        if not props:
            return []
        self._tid = (self._tid + 1) & 0xFFFF
        self.stats.announcements += 1
        frame = Frame(
            tid=self._tid,
            seoj=obj.eoj,
            deoj=NODE_PROFILE,
            esv=int(ESV.INF),
            properties=tuple(props),
        )
        return [encode_frame(frame)]


class RateLimiter:
    """Per-source token buckets: ``rate_per_s`` sustained, ``burst`` at once; at most
    ``max_sources`` buckets are kept (least recently seen dropped)."""

    def __init__(self, rate_per_s: float, burst: float, max_sources: int = 4096) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst ≥ 1")
        self.rate = rate_per_s
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(source, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[source] = (tokens, t)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return allowed


class AnswerBudget:
    """What a node may answer one source, in bytes of UDP payload (S1; issue 12 item 4).

    Two token buckets per source (at most ``max_sources`` kept, least recently seen dropped):

    * **bytes**: every answer byte draws from it; refilled at ``bytes_per_s`` up to
      ``bytes_burst``;
    * **allowance**: the bytes an answer takes beyond ``factor`` × its request draw from it;
      refilled at ``allowance_per_s`` up to ``allowance_burst``.

    :meth:`limit` is what one request may be answered, ``min(bytes, factor × request +
    allowance)``; :meth:`spend` books what was sent. Hence, over any interval of *T* seconds,
    a node answers a source at most ``factor`` × the bytes that source sent
    ``+ allowance_burst + allowance_per_s × T``, and at most ``bytes_burst + bytes_per_s × T``:
    a forged source address gains at most twice the attacker's own traffic, plus a few
    kilobytes. The caller passes the time (sans-IO).
    """

    def __init__(
        self,
        bytes_per_s: float = DEFAULT_BYTES_PER_S,
        bytes_burst: float = DEFAULT_BYTES_BURST,
        allowance_per_s: float = DEFAULT_ALLOWANCE_PER_S,
        allowance_burst: float = DEFAULT_ALLOWANCE_BURST,
        factor: float = AMPLIFICATION_FACTOR,
        max_sources: int = 4096,
    ) -> None:
        if bytes_per_s <= 0 or bytes_burst < MAX_FRAME_BYTES:
            raise ValueError(f"bytes_per_s must be > 0 and bytes_burst ≥ {MAX_FRAME_BYTES}")
        if allowance_per_s < 0 or allowance_burst < 0 or factor < 1:
            raise ValueError("allowance_per_s and allowance_burst must be ≥ 0, factor ≥ 1")
        self.bytes_per_s = bytes_per_s
        self.bytes_burst = bytes_burst
        self.allowance_per_s = allowance_per_s
        self.allowance_burst = allowance_burst
        self.factor = factor
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()

    def _refilled(self, source: str, now: float) -> tuple[float, float]:
        volume, allowance, last = self._buckets.pop(
            source, (self.bytes_burst, self.allowance_burst, now)
        )
        elapsed = max(0.0, now - last)
        return (
            min(self.bytes_burst, volume + elapsed * self.bytes_per_s),
            min(self.allowance_burst, allowance + elapsed * self.allowance_per_s),
        )

    def _store(self, source: str, volume: float, allowance: float, now: float) -> None:
        self._buckets[source] = (volume, allowance, now)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)

    def limit(self, source: str, request_bytes: int, now: float) -> int:
        """Bytes the answer to a request of ``request_bytes`` from ``source`` may take."""
        volume, allowance = self._refilled(source, now)
        self._store(source, volume, allowance, now)
        return max(0, int(min(volume, self.factor * request_bytes + allowance)))

    def spend(self, source: str, request_bytes: int, answer_bytes: int, now: float) -> None:
        """Book ``answer_bytes`` sent to ``source`` for a request of ``request_bytes``."""
        volume, allowance = self._refilled(source, now)
        beyond = max(0.0, answer_bytes - self.factor * request_bytes)
        self._store(source, volume - answer_bytes, allowance - beyond, now)


class EchonetNode:
    """A device node on ``address`` serving ``objects`` (the node profile must be among them).

    ``answer_delay_s`` (0–:data:`MAX_ANSWER_DELAY_S`): each request is handled and answered
    after a uniformly random delay in ``[0, answer_delay_s]`` (seeded by ``delay_seed``).
    ``rate_per_s``/``burst``: requests per source (:attr:`limiter`); ``bytes_per_s``: bytes
    answered per source, within the amplification bound (:attr:`budget`, an
    :class:`AnswerBudget` that tests may replace).
    """

    def __init__(
        self,
        address: str,
        objects: list[EchonetObject],
        *,
        port: int = ECHONET_PORT,
        multicast: bool = True,
        allow_any_address: bool = False,
        rate_per_s: float = 20_000.0,
        burst: float = 2_000.0,
        bytes_per_s: float = DEFAULT_BYTES_PER_S,
        answer_delay_s: float = 0.0,
        delay_seed: int = 0,
    ) -> None:
        # every spelling of the unspecified address ("0", "0.0.0.0", "", "0x0" …), resolved
        # as the socket layer will (ListenAddressError is a ValueError)
        check_listen_address(address, allow_any_address=allow_any_address, field="address")
        if not any(o.eoj == NODE_PROFILE for o in objects):
            raise ValueError("objects must include the node profile 0x0EF001")
        if not 0.0 <= answer_delay_s <= MAX_ANSWER_DELAY_S:
            raise ValueError(
                f"answer_delay_s must be within 0–{MAX_ANSWER_DELAY_S:g} s, got {answer_delay_s}"
            )
        self.address = address
        self.port = port
        self.multicast = multicast
        self.answer_delay_s = answer_delay_s
        self.core = NodeCore(objects)
        self.limiter = RateLimiter(rate_per_s, burst)
        self.budget = AnswerBudget(bytes_per_s)
        self._rng = random.Random(delay_seed)
        self._endpoint: Endpoint | None = None
        self._pending: set[asyncio.TimerHandle] = set()

    @property
    def stats(self) -> NodeStats:
        return self.core.stats

    @property
    def endpoint(self) -> Endpoint | None:
        """The shared UDP endpoint of ``address:port`` while started."""
        return self._endpoint

    async def start(self) -> None:
        """Bind (or share) ``address:3610``, join the multicast group, announce the instances."""
        endpoint = await open_endpoint(self.address, self.port)
        endpoint.attach_node(self._received)
        self._endpoint = endpoint
        if self.multicast:
            try:
                await endpoint.join_multicast()
            except OSError:
                await self.close()
                raise
            profile = next(o for o in self.core.objects if o.eoj == NODE_PROFILE)
            self._send_multicast(self.core.announcements(profile, [0xD5]))

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.limiter.allow(addr[0], time.monotonic()):
            self.core.stats.rate_limited += 1
            return
        if self.answer_delay_s > 0.0:
            loop = asyncio.get_running_loop()
            delay = self._rng.uniform(0.0, self.answer_delay_s)
            handle: asyncio.TimerHandle | None = None

            def later() -> None:
                assert handle is not None
                self._pending.discard(handle)
                self._answer(data, addr[0])

            handle = loop.call_later(delay, later)
            self._pending.add(handle)
            return
        self._answer(data, addr[0])

    def _answer(self, data: bytes, host: str) -> None:
        endpoint = self._endpoint
        if endpoint is None or endpoint.closed:
            return
        now = time.monotonic()
        answers = self.core.handle(data, self.budget.limit(host, len(data), now))
        for out in answers:
            endpoint.sendto(out, (host, self.port))  # to port 3610, not the source port
        if answers:
            self.budget.spend(host, len(data), sum(map(len, answers)), now)
        if len(data) > _ESV_OFFSET and data[_ESV_OFFSET] in _CHANGING_ESVS:
            self.announce_changes()  # what a Set changed (EL-M3), after its answer

    def _send_multicast(self, frames: list[bytes]) -> None:
        endpoint = self._endpoint
        if endpoint is None or endpoint.closed or not self.multicast:
            return
        for f in frames:
            endpoint.sendto(f, (MULTICAST_GROUP, self.port))

    def announce(self, obj: EchonetObject, epcs: Iterable[int]) -> None:
        """Send INF for the announced properties among ``epcs`` of ``obj``."""
        self._send_multicast(self.core.announcements(obj, epcs))

    def announce_changes(self, obj: EchonetObject | None = None) -> None:
        """Send INF for every EPC of 0x9D of ``obj`` (None: every object) whose value changed
        since it was last announced (:meth:`NodeCore.changed_announcements`)."""
        self._send_multicast(self.core.changed_announcements(obj))

    async def close(self) -> None:
        """Leave the endpoint (closing it if no one else uses it); idempotent."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self._endpoint is not None:
            self._endpoint.detach(self._received)
        self._endpoint = None
