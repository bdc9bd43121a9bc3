"""drready.openadr.vtn.protocol: one write per event-loop turn, and over a real server (TLS,
uvicorn) answers identical to uvicorn's own protocol for small, large, streamed, pipelined and
closing responses."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from drready.openadr.vtn.protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from drready.security.certs import write_bundle
from tests.https_helpers import serve


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def write_eof(self) -> None:
        self.events.append("eof")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def _turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _one_turn_one_write() -> None:
    inner = RecordingTransport()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"")
    t.write(memoryview(b"body"))
    assert inner.writes == [] and t.get_write_buffer_size() == 23
    await _turn()
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    t.write(b"next")
    await _turn()
    assert inner.writes[1:] == [b"next"]


async def _close_eof_abort() -> None:
    inner = RecordingTransport()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"a")
    t.write_eof()
    t.write(b"b")
    t.close()
    assert inner.events == ["write", "eof", "write", "close"]
    assert inner.writes == [b"a", b"b"]
    await _turn()  # the scheduled flushes find nothing left
    assert inner.writes == [b"a", b"b"]

    inner2 = RecordingTransport()
    t2 = CoalescingTransport(inner2, asyncio.get_running_loop())
    t2.write(b"lost")
    t2.abort()
    await _turn()
    assert inner2.events == ["abort"] and inner2.writes == []


def test_writes_of_one_turn_leave_as_one_write_at_the_next() -> None:
    asyncio.run(_one_turn_one_write())


def test_close_and_eof_flush_first_abort_drops() -> None:
    asyncio.run(_close_eof_abort())


BIG = bytes(range(256)) * 8192  # 2 MiB: the transport's flow control pauses the writer


async def _small(request: Request) -> Response:
    return JSONResponse({"hello": "world", "n": request.query_params.get("n")})


async def _big(request: Request) -> Response:
    return Response(BIG, media_type="application/octet-stream")


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(200):
            yield b"chunk %d\n" % i
            if i % 50 == 0:
                await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def _close(request: Request) -> Response:
    return Response(b"bye", headers={"connection": "close"})


APP = Starlette(
    routes=[
        Route("/small", _small),
        Route("/big", _big),
        Route("/stream", _stream),
        Route("/close", _close),
    ]
)


def _answers(port: int, ca: Path) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    ctx = ssl.create_default_context(cafile=str(ca))
    out = []
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=10) as http:
        for path in ("/small?n=1", "/big", "/stream", "/small?n=2", "/close", "/small?n=3"):
            r = http.get(path)
            headers = [(k, v) for k, v in r.headers.multi_items() if k != "date"]
            out.append((r.status_code, headers, r.content))
    return out


def _pipelined(port: int, ca: Path) -> bytes:
    """Three requests written at once on one TLS connection; everything read until close."""
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = b"".join(
        b"GET /small?n=%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
        % (i, b"Connection: close\r\n" if i == 3 else b"")
        for i in (1, 2, 3)
    )
    with (
        socket.create_connection(("127.0.0.1", port)) as tcp,
        ctx.wrap_socket(tcp, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(raw)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date:"))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("certs")
    return write_bundle(out, server_ips=("127.0.0.1",), client_names=())


def test_answers_over_tls_equal_uvicorns_own_protocol(bundle: Any) -> None:
    tls = {"ssl_certfile": str(bundle.server_cert), "ssl_keyfile": str(bundle.server_key)}
    with serve(APP, http="httptools", **tls) as plain_port:
        expected = _answers(plain_port, bundle.ca_cert)
        expected_pipelined = _pipelined(plain_port, bundle.ca_cert)
    with serve(APP, http=CoalescingHttpToolsProtocol, **tls) as port:
        got = _answers(port, bundle.ca_cert)
        got_pipelined = _pipelined(port, bundle.ca_cert)
    assert got == expected
    assert got[1][2] == BIG and got[4][2] == b"bye"
    assert got_pipelined == expected_pipelined
    assert got_pipelined.count(b"HTTP/1.1 200 OK") == 3
