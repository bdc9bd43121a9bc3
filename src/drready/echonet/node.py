"""ECHONET Lite device node: answers requests for its objects and announces changes (C1, F1–F6).

Two layers, as the style guide asks:

* :class:`NodeCore` is sans-IO. ``handle(data)`` turns one received datagram into the datagrams
  to send back (empty for anything that must not be answered), following the ECHONET Lite
  service rules: Get/SetC/SetI/SetGet/INF_REQ/INFC, the ``*_SNA`` error responses (a Get of an
  unknown or unreadable EPC answers that EPC with PDC 0; a refused Set echoes the rejected EDT;
  SetI is answered only when something failed), instance code 0x00 addressing every instance
  of a class, frames for objects the node does not hold dropped silently, OPC = 0 tolerated,
  and malformed frames dropped (never an exception). ``announcements`` builds the INF frames
  for changed properties of the status-change announcement map (0x9D).
* :class:`EchonetNode` is the asyncio UDP adapter on ``address:3610`` (never 0.0.0.0 unless
  ``allow_any_address``), through the process's shared endpoint of that address
  (:mod:`drready.echonet.transport`), joined to 224.0.23.0 on that interface; a per-source
  token-bucket rate limit; INF announcements sent to the multicast group. **Answers go to port
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

log = logging.getLogger(__name__)

MAX_ANSWER_DELAY_S = 20.0
"""Longest answer delay a node may be given [s]: installed units' adapters are documented to
answer within 20 s."""

_SET_ESVS = {ESV.SETI, ESV.SETC}


@dataclass
class NodeStats:
    """Counters for observability and tests."""

    received: int = 0
    answered: int = 0
    malformed: int = 0
    ignored: int = 0
    rate_limited: int = 0
    announcements: int = 0


@dataclass
class NodeCore:
    """The protocol logic of a node holding ``objects`` (node profile included)."""

    objects: list[EchonetObject]
    stats: NodeStats = field(default_factory=NodeStats)
    _tid: int = 0

    def __post_init__(self) -> None:
        self._by_eoj = {o.eoj: o for o in self.objects}

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

    def handle(self, data: bytes) -> list[bytes]:
        """Responses to one received datagram (possibly none)."""
        self.stats.received += 1
        try:
            frame = decode_frame(data)
        except FrameError:
            self.stats.malformed += 1
            return []
        if frame.esv not in (ESV.SETI, ESV.SETC, ESV.GET, ESV.INF_REQ, ESV.SETGET, ESV.INFC):
            self.stats.ignored += 1  # responses, announcements, unknown services
            return []
        out = []
        for obj in self.targets(frame.deoj):
            response = self._respond(obj, frame)
            if response is not None:
                out.append(encode_frame(response))
        if out:
            self.stats.answered += 1
        else:
            self.stats.ignored += 1
        return out

    def _read(self, obj: EchonetObject, epcs: Iterable[Property]) -> tuple[list[Property], bool]:
        props = []
        ok = True
        for p in epcs:
            try:
                edt = obj.read(p.epc)
            except Exception:  # a failing getter must not take the node down
                log.exception("getter of EPC 0x%02X failed", p.epc)
                edt = None
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

    def _respond(self, obj: EchonetObject, frame: Frame) -> Frame | None:
        esv = frame.esv
        get_props: tuple[Property, ...] = ()
        if esv in (ESV.GET, ESV.INF_REQ):
            props, ok = self._read(obj, frame.properties)
            if esv == ESV.GET:
                res = ESV.GET_RES if ok else ESV.GET_SNA
            else:
                res = ESV.INF if ok else ESV.INF_SNA
        elif esv in _SET_ESVS:
            props, ok = self._write(obj, frame.properties)
            if esv == ESV.SETI and ok:
                return None  # SetI: no answer when everything was accepted
            res = ESV.SETI_SNA if esv == ESV.SETI else (ESV.SET_RES if ok else ESV.SETC_SNA)
        elif esv == ESV.SETGET:
            props, ok_set = self._write(obj, frame.properties)
            gets, ok_get = self._read(obj, frame.get_properties)
            get_props = tuple(gets)
            res = ESV.SETGET_RES if ok_set and ok_get else ESV.SETGET_SNA
        else:  # INFC: acknowledge the notification
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


class EchonetNode:
    """A device node on ``address`` serving ``objects`` (the node profile must be among them).

    ``answer_delay_s`` (0–:data:`MAX_ANSWER_DELAY_S`): each request is handled and answered
    after a uniformly random delay in ``[0, answer_delay_s]`` (seeded by ``delay_seed``).
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
        answer_delay_s: float = 0.0,
        delay_seed: int = 0,
    ) -> None:
        if address in ("0.0.0.0", "") and not allow_any_address:
            raise ValueError(
                "address: refusing to bind 0.0.0.0 (every interface); pass allow_any_address"
            )
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
        if not self.limiter.allow(addr[0]):
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
        for out in self.core.handle(data):
            if endpoint is not None and not endpoint.closed:
                endpoint.sendto(out, (host, self.port))  # to port 3610, not the source port

    def _send_multicast(self, frames: list[bytes]) -> None:
        endpoint = self._endpoint
        if endpoint is None or endpoint.closed or not self.multicast:
            return
        for f in frames:
            endpoint.sendto(f, (MULTICAST_GROUP, self.port))

    def announce(self, obj: EchonetObject, epcs: Iterable[int]) -> None:
        """Send INF for the announced properties among ``epcs`` of ``obj``."""
        self._send_multicast(self.core.announcements(obj, epcs))

    async def close(self) -> None:
        """Leave the endpoint (closing it if no one else uses it); idempotent."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self._endpoint is not None:
            self._endpoint.detach(self._received)
        self._endpoint = None
