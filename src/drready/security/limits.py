"""Request body size limit for the HTTP servers (S1: a VTN facing the internet must not buffer
arbitrarily large bodies).

:class:`BodySizeLimit` is pure ASGI, so it works around any app (``BodySizeLimit(app, n)``) or
inside FastAPI (``app.add_middleware(BodySizeLimit, max_body_bytes=n)``). It answers
``413 Payload Too Large`` with an RFC 9457 (formerly RFC 7807) problem document, the error format
OpenADR 3 prescribes for 4xx responses (Definition.md, "problem object"):

- at once, before the app runs, when ``Content-Length`` exceeds the limit;
- while streaming (chunked transfer, or a lying ``Content-Length``) as soon as the received bytes
  exceed the limit; no further ``http.request`` message is pulled from the server, so at most
  the message that crossed the limit is read beyond it. Anything the app tried to send after
  that point is discarded and replaced by the 413.

A malformed ``Content-Length`` gets ``400 Bad Request`` in the same format.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodySizeLimit", "problem_response_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TITLES = {400: "Bad Request", 413: "Payload Too Large"}


def problem_response_body(status: int, detail: str) -> bytes:
    """RFC 9457 problem JSON with ``type: about:blank``."""
    problem = {"type": "about:blank", "title": _TITLES[status], "status": status, "detail": detail}
    return json.dumps(problem).encode("utf-8")


class _BodyTooLargeError(Exception):
    """Raised into the app by the wrapped ``receive`` once the limit is exceeded."""


class BodySizeLimit:
    """ASGI middleware rejecting request bodies larger than ``max_body_bytes`` with 413.

    Parameters
    ----------
    app : ASGI app
    max_body_bytes : int
        Largest accepted body [B], ≥ 0. A body of exactly this size passes.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ValueError(f"max_body_bytes: must be an integer, got {max_body_bytes!r}")
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes: must be ≥ 0, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: list[bytes] = [v for k, v in scope["headers"] if k.lower() == b"content-length"]
        if declared:
            value = declared[0].strip()
            if len(set(declared)) > 1 or not value.isdigit():
                await self._problem(send, 400, "invalid Content-Length header")
                return
            if int(value) > self.max_body_bytes:
                await self._problem(send, 413, self._detail)
                return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLargeError
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's reaction to the error is replaced by our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
            # the app let our error (or one it raised in reaction) escape: answer 413 below
        if exceeded and not started:
            await self._problem(send, 413, self._detail)

    @property
    def _detail(self) -> str:
        return f"request body exceeds {self.max_body_bytes} bytes"

    @staticmethod
    async def _problem(send: Send, status: int, detail: str) -> None:
        body = problem_response_body(status, detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
