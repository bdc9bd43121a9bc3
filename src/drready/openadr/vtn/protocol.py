"""uvicorn's HTTP protocol with each response written to the socket in one piece (C1 under load,
issue 4; S1: every answer is a TLS record anyway, now one instead of two).

uvicorn's httptools protocol writes the status line and headers as soon as the app sends
``http.response.start`` and the body on ``http.response.body``: two writes per answer, and
over TLS two records encrypted and two ``send`` system calls. The VTN answers every request
with one small body (``GET /events``: one write of ~23 kB; ``POST /reports``: ~1 kB), so the
second record and system call are a fixed cost per request that the VTN's profile shows as a
large share of its CPU time (``send`` of uvicorn's protocol with the TLS write and the socket
write inside it). :class:`CoalescingTransport` keeps the writes of one turn of the event loop
and hands them to the real transport at the start of the next turn, joined; nothing waits for
more than that one turn, and ``close``/``write_eof`` flush first, so the bytes and their order
on the wire are unchanged. :class:`CoalescingHttpToolsProtocol` is uvicorn's own protocol
class on that transport (``uvicorn.Config(http=CoalescingHttpToolsProtocol)``, the documented
way to choose a protocol class). Flow control is untouched: the real transport still pauses and
resumes the protocol by its own buffer.

Graceful stop (issue 11: the VTN did not stop on SIGTERM while a client held an idle TLS
keep-alive connection). On shutdown uvicorn closes each idle connection and lets a busy one
finish its answer first, then waits until every connection is gone. Over TLS, closing sends
``close_notify`` and asyncio (and uvloop) then wait for the peer's ``close_notify`` — up to 30 s
(``ssl_shutdown_timeout``) — which an idle keep-alive client, not reading, never sends. So
:meth:`CoalescingHttpToolsProtocol.shutdown` gives a closing connection
:data:`CLOSE_NOTIFY_GRACE_S` to complete the TLS close and then aborts it (RFC 8446 §6.1 lets
the closing side not wait for the peer's close_notify); a connection still answering a request
is left alone until its answer is sent. The whole graceful phase is bounded by
:data:`GRACEFUL_SHUTDOWN_S` (``uvicorn.Config.timeout_graceful_shutdown``), so a service stops
within 10 s whatever its clients do.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "CLOSE_NOTIFY_GRACE_S",
    "GRACEFUL_SHUTDOWN_S",
    "CoalescingHttpToolsProtocol",
    "CoalescingTransport",
]

#: How long a connection closed by a server shutdown may take to finish its TLS close before it is
#: aborted [s]. A peer that answers close_notify does so within a round trip.
CLOSE_NOTIFY_GRACE_S = 1.0

#: Longest graceful phase of a shutdown [s]: requests in flight get this long to finish, then
#: they are cancelled (``uvicorn.Config.timeout_graceful_shutdown``); with the process's own
#: start-up of the stop this keeps every drready service's stop under 10 s.
GRACEFUL_SHUTDOWN_S = 7  # uvicorn takes whole seconds


class CoalescingTransport(asyncio.Transport):
    """A transport that joins the writes of one event-loop turn into one write of ``inner``."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is pending now (a no-op when nothing is, e.g. after :meth:`abort`)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._inner.is_closing():
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`."""

    _lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        inner = cast(asyncio.Transport, transport)
        super().connection_made(CoalescingTransport(inner, self.loop))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown, with a bounded TLS close (see the module docstring)."""
        super().shutdown()
        self.loop.call_later(CLOSE_NOTIFY_GRACE_S, self._abort_if_stuck_closing)

    def _abort_if_stuck_closing(self) -> None:
        if self._lost:
            return
        if self.transport.is_closing():  # closed, but the peer never completed the TLS close
            self.transport.abort()
        else:  # still answering a request in flight: look again after its answer
            self.loop.call_later(CLOSE_NOTIFY_GRACE_S, self._abort_if_stuck_closing)
