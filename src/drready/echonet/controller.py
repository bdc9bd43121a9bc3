"""ECHONET Lite controller: discovery, Get/Set with timeouts and retries, INF subscription (C1).

The client side of route (i), used by the home gateway and the CLI. It decodes everything
through the same sans-IO codec as the device node. Requests are matched to responses by TID
and source address; a request is retried ``retries`` times after ``timeout_s`` without answer,
then :class:`EchonetTimeoutError` is raised. Discovery sends a Get of the node profile's instance
list (0xD6) to the multicast group — or to one address — and collects every answer within the
discovery window; it then reads each node's identification number (0x83) and maker code (0x8A).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
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
)
from drready.echonet.mra import class_spec
from drready.echonet.propmap import decode_property_map
from drready.echonet.values import decode_value


class EchonetTimeoutError(EchonetError, TimeoutError):
    """No answer after all retries."""


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


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: EchonetController) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.owner._received(data, str(addr[0]))


@dataclass
class EchonetController:
    """A controller bound to ``interface`` (port 0 = any free port; 3610 to receive INF)."""

    interface: str = "127.0.0.1"
    port: int = 0
    timeout_s: float = 0.5
    retries: int = 2
    seoj: EOJ = CONTROLLER
    listen_multicast: bool = False
    _transport: asyncio.DatagramTransport | None = None
    _mtransport: asyncio.DatagramTransport | None = None
    _tid: int = 0
    _waiting: dict[tuple[int, str], asyncio.Future[Frame]] = field(default_factory=dict)
    _collectors: dict[int, list[tuple[str, Frame]]] = field(default_factory=dict)
    _subscribers: list[Callable[[str, Frame], None]] = field(default_factory=list)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.interface, self.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setblocking(False)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        if self.listen_multicast:
            msock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            msock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            msock.bind((MULTICAST_GROUP, ECHONET_PORT))
            mreq = struct.pack(
                "=4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton(self.interface)
            )
            msock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            msock.setblocking(False)
            self._mtransport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=msock
            )

    async def close(self) -> None:
        for t in (self._transport, self._mtransport):
            if t is not None:
                t.close()
        self._transport = self._mtransport = None

    async def __aenter__(self) -> EchonetController:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self, callback: Callable[[str, Frame], None]) -> None:
        """Call ``callback(address, frame)`` for every INF/INFC received."""
        self._subscribers.append(callback)

    def _next_tid(self) -> int:
        self._tid = (self._tid + 1) & 0xFFFF
        return self._tid

    def _received(self, data: bytes, host: str) -> None:
        try:
            frame = decode_frame(data)
        except FrameError:
            return
        if frame.esv in (ESV.INF, ESV.INFC) and (frame.tid, host) not in self._waiting:
            for cb in self._subscribers:
                cb(host, frame)
            return
        collector = self._collectors.get(frame.tid)
        if collector is not None:
            collector.append((host, frame))
            return
        fut = self._waiting.get((frame.tid, host))
        if fut is not None and not fut.done():
            fut.set_result(frame)

    def _send(self, frame: Frame, host: str) -> None:
        if self._transport is None:
            raise EchonetError("controller not started")
        self._transport.sendto(encode_frame(frame), (host, ECHONET_PORT))

    async def request(
        self,
        host: str,
        deoj: EOJ,
        esv: ESV,
        properties: tuple[Property, ...],
        get_properties: tuple[Property, ...] = (),
    ) -> Frame:
        """Send one request and return the matching response (retried on timeout)."""
        loop = asyncio.get_running_loop()
        for _attempt in range(self.retries + 1):
            tid = self._next_tid()
            fut: asyncio.Future[Frame] = loop.create_future()
            self._waiting[(tid, host)] = fut
            try:
                self._send(Frame(tid, self.seoj, deoj, int(esv), properties, get_properties), host)
                return await asyncio.wait_for(fut, self.timeout_s)
            except TimeoutError:
                continue
            finally:
                self._waiting.pop((tid, host), None)
        raise EchonetTimeoutError(f"no answer from {host} {deoj} after {self.retries + 1} tries")

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

    async def discover(self, host: str = MULTICAST_GROUP, window_s: float = 0.5) -> list[NodeInfo]:
        """Nodes answering a Get of 0xD6 (multicast by default) within ``window_s``."""
        if self._transport is None:
            raise EchonetError("controller not started")
        tid = self._next_tid()
        self._collectors[tid] = []
        try:
            frame = Frame(tid, self.seoj, NODE_PROFILE, int(ESV.GET), (Property(0xD6),))
            self._transport.sendto(encode_frame(frame), (host, ECHONET_PORT))
            await asyncio.sleep(window_s)
            answers = self._collectors[tid]
        finally:
            self._collectors.pop(tid, None)
        found: dict[str, tuple[EOJ, ...]] = {}
        for addr, res in answers:
            for p in res.properties:
                if p.epc == 0xD6 and p.edt:
                    try:
                        found[addr] = parse_instance_list(p.edt)
                    except (FrameError, ValueError):
                        continue
        nodes = await asyncio.gather(*(self._describe_node(a, i) for a, i in found.items()))
        return sorted((n for n in nodes if n is not None), key=lambda n: _ip_key(n.address))

    async def _describe_node(self, addr: str, instances: tuple[EOJ, ...]) -> NodeInfo | None:
        try:
            got = await self.get(addr, NODE_PROFILE, [0x83, 0x8A])
        except EchonetTimeoutError:
            return None
        return NodeInfo(addr, got[0x83] or b"", got[0x8A] or b"", instances)

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
