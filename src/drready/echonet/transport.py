"""ECHONET Lite over UDP: one endpoint per interface address on port 3610, shared in a process (C1).

The port rule
-------------
ECHONET Lite sends every frame to **destination port 3610**; the source port is free (ECHONET
Lite Specification, Part II: UDP port 3610 for every ECHONET Lite frame, no rule on the sender's
port). Hence both directions here:

* a device node answers a request to port 3610 of the requester, whatever port the request came
  from (a controller may send from an ephemeral port, as the npm ``echonet-lite`` library does
  from 23610);
* a controller (the gateway, the CLI, the conformance checker) receives on port 3610 of its
  interface, so that it hears devices that answer to 3610 as the rule says. It sends from that
  same socket, so a device that answers to the request's source port reaches it too.

Sharing port 3610 on one address
--------------------------------
A device node and a controller can run on the same address in one process (the demo runs two
controllers on 127.0.0.1; a gateway may serve a battery node on its own address). They share
**one socket**: :func:`open_endpoint` hands every party on ``(address, port)`` the same
:class:`Endpoint`, bound once to ``address:3610`` (plus, when a party asks for multicast, one
socket bound to 224.0.23.0:3610 and joined to the group on that interface). A received datagram
is routed by its service code (ESV, byte 10): requests (0x60–0x6F) and what does not decode as a
frame go to the nodes; responses, ``*_SNA``, INF and INFC go to the controllers (INFC also to the
nodes, which acknowledge it). The endpoint hands out the TIDs, so two controllers on one address
never wait for the same TID.

Why one socket rather than ``SO_REUSEPORT``: with ``SO_REUSEPORT`` Linux spreads unicast
datagrams over the sockets by a hash of the addresses, so an answer would land at whichever party
the hash picks; one socket makes the routing ours and deterministic. ``SO_REUSEADDR`` stays set
on the 3610 sockets so that a peer bound to the wildcard ``0.0.0.0:3610`` (many HEMS controllers
are; the npm ``echonet-lite`` library always is) can run on the same host: Linux gives a unicast
datagram to the socket bound to its exact destination address and the wildcard socket gets the
rest. Two *processes* on the same exact address cannot both be reached on 3610 — the kernel
delivers to one of them — so give each process its own address (loopback 127.0.0.x in tests and
in the demo). A controller asked for port 0 gets a private socket on an ephemeral port instead
(it then hears only devices that answer to the source port).

Tests may replace :attr:`Endpoint.transport` by a wrapper with the same ``sendto`` to drop or
delay datagrams (``tests/test_echonet_lan.py``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import weakref
from collections.abc import Callable
from typing import Protocol

from drready.echonet.frame import ECHONET_PORT, ESV, MULTICAST_GROUP

__all__ = ["DatagramSender", "Endpoint", "Handler", "open_endpoint"]

log = logging.getLogger(__name__)

Handler = Callable[[bytes, tuple[str, int]], None]
"""Called with each datagram routed to a party and its source ``(host, port)``."""

_ESV_OFFSET = 10  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV
_REQUESTS = range(0x60, 0x70)  # SetI, SetC, Get, INF_REQ, SetGet (Part II, Table 3-9)
_INFC = int(ESV.INFC)


class DatagramSender(Protocol):
    """What an endpoint sends through: an :class:`asyncio.DatagramTransport` or a test's
    wrapper around one."""

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None: ...


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.endpoint._route(data, (str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error on %s: %s", self.endpoint.address, exc)


class Endpoint:
    """The UDP socket(s) of one local ``address:port``, shared by the parties on it."""

    def __init__(self, address: str, port: int, shared: bool) -> None:
        self.address = address
        self.port = port
        self.shared = shared
        self.transport: DatagramSender | None = None
        """Where datagrams are sent; tests may wrap it to inject loss and delay."""
        self._udp: asyncio.DatagramTransport | None = None
        self._mcast: asyncio.DatagramTransport | None = None
        self._nodes: list[Handler] = []
        self._controllers: list[Handler] = []
        self._tid = 0
        self._ready: asyncio.Future[None] | None = None
        self._joining: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if self.shared:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, self.port))
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.address)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        udp, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._udp = udp
        self.transport = udp

    async def join_multicast(self) -> None:
        """Also receive what is sent to 224.0.23.0 (joined on this endpoint's interface)."""
        if self._mcast is not None:
            return
        if self._joining is not None:
            await asyncio.shield(self._joining)
            return
        loop = asyncio.get_running_loop()
        self._joining = loop.create_future()
        try:
            msock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                msock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                msock.bind((MULTICAST_GROUP, self.port))
                mreq = struct.pack(
                    "=4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton(self.address)
                )
                msock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                msock.setblocking(False)
            except OSError:
                msock.close()
                raise
            self._mcast, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=msock
            )
        finally:
            self._joining.set_result(None)
            self._joining = None

    def _close(self) -> None:
        for t in (self._udp, self._mcast):
            if t is not None:
                t.close()
        self._udp = self._mcast = None
        self.transport = None

    @property
    def closed(self) -> bool:
        return self._udp is None

    # ------------------------------------------------------------------ parties
    def attach_node(self, handler: Handler) -> None:
        """Route requests (and what does not decode) to ``handler``."""
        self._nodes.append(handler)

    def attach_controller(self, handler: Handler) -> None:
        """Route responses, ``*_SNA``, INF and INFC to ``handler``."""
        self._controllers.append(handler)

    def detach(self, handler: Handler) -> None:
        """Remove ``handler``; the last party to leave closes the sockets. Idempotent."""
        for parties in (self._nodes, self._controllers):
            if handler in parties:
                parties.remove(handler)
        if not self._nodes and not self._controllers and not self.closed:
            self._close()
            _forget(self)

    def next_tid(self) -> int:
        """A transaction id no other controller of this endpoint is using (mod 2¹⁶)."""
        self._tid = (self._tid + 1) & 0xFFFF
        return self._tid

    # ------------------------------------------------------------------ datagrams
    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None:
            raise OSError(f"ECHONET Lite endpoint {self.address}:{self.port} is closed")
        self.transport.sendto(data, addr)

    def _route(self, data: bytes, addr: tuple[str, int]) -> None:
        is_frame = len(data) > _ESV_OFFSET + 1 and data[0] == 0x10 and data[1] == 0x81
        esv = data[_ESV_OFFSET] if is_frame else -1
        if not is_frame or esv in _REQUESTS or esv == _INFC:
            for h in tuple(self._nodes):
                h(data, addr)
        if is_frame and esv not in _REQUESTS:
            for h in tuple(self._controllers):
                h(data, addr)


_ENDPOINTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], Endpoint]]
_ENDPOINTS = weakref.WeakKeyDictionary()


def _forget(endpoint: Endpoint) -> None:
    for table in _ENDPOINTS.values():
        key = (endpoint.address, endpoint.port)
        if table.get(key) is endpoint:
            del table[key]


async def open_endpoint(
    address: str, port: int = ECHONET_PORT, *, multicast: bool = False
) -> Endpoint:
    """The endpoint of ``address:port`` in this event loop, bound on first use.

    ``port`` 0 gives a private endpoint on an ephemeral port (never shared). ``multicast``
    joins 224.0.23.0 on the interface (once, for every party of the endpoint). The caller
    attaches a handler and detaches it when done.

    Raises
    ------
    OSError
        The address cannot be bound (not local, or the port is taken without SO_REUSEADDR).
    """
    loop = asyncio.get_running_loop()
    table = _ENDPOINTS.setdefault(loop, {})
    key = (address, port)
    endpoint = table.get(key) if port != 0 else None
    if endpoint is None:
        endpoint = Endpoint(address, port, shared=port != 0)
        endpoint._ready = loop.create_future()
        if port != 0:
            table[key] = endpoint
        try:
            await endpoint._bind()
        except OSError as err:
            _forget(endpoint)
            endpoint._ready.set_exception(err)
            endpoint._ready.exception()  # retrieved: later openers re-raise their own
            raise
        endpoint._ready.set_result(None)
    elif endpoint._ready is not None and not endpoint._ready.done():
        await asyncio.shield(endpoint._ready)
    if endpoint.closed:  # a failed or closed one left in the table by a race: start afresh
        _forget(endpoint)
        return await open_endpoint(address, port, multicast=multicast)
    if multicast:
        await endpoint.join_multicast()
    return endpoint
