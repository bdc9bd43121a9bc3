"""Fast paths for the VTN's hottest requests: VENs polling ``GET /events`` and posting
``POST /reports`` (C1 under load, issue 4: ≥ 1 000 req/s, p99 < 50 ms; S1 unchanged), and a
VEN's client posting ``POST /resources`` (a maker's cloud registering 100 000 units, issue 11
item 3).

:class:`FastPaths` is ASGI middleware inside the app's own stack (behind the server-error
handler and :class:`~drready.security.limits.BodySizeLimit`). For a well-formed request to one
of the two routes it does what FastAPI's routing and dependency solving would do — bearer token
through the same verified-token cache, the same scope check, the query parameters — and calls
the very same endpoint function (:func:`drready.openadr.vtn.routes.events.search_all_events`,
:func:`drready.openadr.vtn.routes.reports.create_report`), so the answer is the same, byte for
byte. That skips a per-request cost that was as large as the endpoint's own work: FastAPI
matches the path against the included routers twice and solves a dependency tree of six
parameters on each request (measured in-process: 0.16 ms of CPU per ``GET /events``, a third
of it, and 0.11 ms per ``POST /reports``).

Anything else passes through unchanged: another path, method or ``root_path``; no, another
or an invalid bearer token, or one without the operation's scope (FastAPI answers the 401 or
403); a query parameter the fast path does not know, given twice, blank, or not in the plain
form it accepts (``skip``/``limit`` decimal digits within range, ``active`` ``true`` or
``false``, ``programID`` matching objectID, each ``targets`` value 1–128 characters without
U+0000), so every error answer and every lenient parse stays FastAPI's. Errors the endpoint
raises itself (:class:`~drready.openadr.vtn.errors.ApiError`: a bad report body, an
``eventID`` the VEN cannot see) are answered with the app's own problem response. The body of
``POST /reports`` goes through the same parser on both paths
(:func:`drready.openadr.vtn.deps.parse_wire_body`: strict JSON, unknown properties).

``POST /resources``: only a token holding ``write_vens`` of a VEN's client (BL's resources
carry targets: FastAPI's route); the body through the route's own dependency
(:data:`drready.openadr.vtn.routes.resources.checked_body`: the role rules, then the same
parser), then :func:`drready.openadr.vtn.routes.resources.create_ven_resource`, which the route
calls for a VEN's client too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from drready.openadr.vtn.deps import Page, is_bl, scoped_principal
from drready.openadr.vtn.errors import ApiError, api_error_response
from drready.openadr.vtn.routes import events, reports, resources
from drready.openadr.vtn.settings import VtnSettings
from drready.security.tokens import READ_ALL, READ_TARGETS, WRITE_REPORTS, WRITE_VENS

__all__ = ["EventQuery", "FastPaths", "parse_event_query"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_EVENT_READERS = frozenset({READ_ALL, READ_TARGETS})
_REPORT_WRITERS = frozenset({WRITE_REPORTS})
_RESOURCE_WRITERS = frozenset({WRITE_VENS})
_OBJECT_ID = re.compile(r"[a-zA-Z0-9_-]{1,128}")  # schemas/objectID, as ``object_id_path``
_COUNT = re.compile(r"[0-9]{1,10}")
_SKIP_MAX = 2**31 - 1  # deps._page: skip ≤ 2³¹ − 1
_ACTIVE = {"true": True, "false": False}


class EventQuery:
    """The parameters of ``GET /events`` as the route receives them."""

    __slots__ = ("active", "page", "program_id", "targets")

    def __init__(
        self,
        page: Page,
        targets: tuple[str, ...] | None,
        program_id: str | None,
        active: bool | None,
    ) -> None:
        self.page = page
        self.targets = targets
        self.program_id = program_id
        self.active = active


def parse_event_query(query_string: bytes, page_limit_max: int) -> EventQuery | None:
    """``GET /events`` parameters from a raw query string, or ``None`` unless every parameter
    is known, given once (``targets`` any number of times) and in its plain valid form.

    Decoded as Starlette decodes ``request.query_params`` (latin-1, then ``parse_qsl`` with
    blank values kept); ``None`` sends the request to FastAPI, which parses (or refuses) it.
    """
    skip = 0
    limit: int | None = None
    targets: list[str] | None = None
    program_id: str | None = None
    active: bool | None = None
    seen: set[str] = set()
    if query_string:
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if key == "targets":
                if not 1 <= len(value) <= 128 or "\x00" in value:
                    return None
                if targets is None:
                    targets = []
                targets.append(value)
                continue
            if key in seen:
                return None
            seen.add(key)
            if key == "skip":
                if not _COUNT.fullmatch(value) or int(value) > _SKIP_MAX:
                    return None
                skip = int(value)
            elif key == "limit":
                if not _COUNT.fullmatch(value) or int(value) > page_limit_max:
                    return None
                limit = int(value)
            elif key == "programID":
                if not _OBJECT_ID.fullmatch(value):
                    return None
                program_id = value
            elif key == "active":
                if value not in _ACTIVE:
                    return None
                active = _ACTIVE[value]
            else:
                return None
    page = Page(skip, page_limit_max if limit is None else limit)
    return EventQuery(page, None if targets is None else tuple(targets), program_id, active)


def _authorization(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":  # the first, as Starlette's Headers.get
            text: str = value.decode("latin-1")
            return text
    return None


class FastPaths:
    """ASGI middleware answering well-formed ``GET /events`` and ``POST /reports`` requests
    without FastAPI's routing and dependency solving (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = (scope["method"], scope["path"])
            if route == ("GET", "/events"):
                answered = await self._search_events(scope, receive, send)
            elif route == ("POST", "/reports"):
                answered = await self._create_report(scope, receive, send)
            elif route == ("POST", "/resources"):
                answered = await self._create_resource(scope, receive, send)
            else:
                answered = False
            if answered:
                return
        await self.app(scope, receive, send)

    async def _search_events(self, scope: Scope, receive: Receive, send: Send) -> bool:
        state = scope["app"].state
        principal = scoped_principal(state, _authorization(scope), _EVENT_READERS)
        if principal is None:
            return False
        settings: VtnSettings = state.settings
        query = parse_event_query(scope["query_string"], settings.page_limit_max)
        if query is None:
            return False
        request = Request(scope, receive, send)
        try:
            response = await events.search_all_events(
                request,
                principal,
                query.page,
                query.targets,
                program_id=query.program_id,
                active=query.active,
            )
        except ApiError as exc:
            response = api_error_response(exc)
        await response(scope, receive, send)
        return True

    async def _create_report(self, scope: Scope, receive: Receive, send: Send) -> bool:
        state = scope["app"].state
        principal = scoped_principal(state, _authorization(scope), _REPORT_WRITERS)
        if principal is None:
            return False
        request = Request(scope, receive, send)
        try:
            response = await reports.create_report(request, principal)
        except ApiError as exc:
            response = api_error_response(exc)
        await response(scope, receive, send)
        return True

    async def _create_resource(self, scope: Scope, receive: Receive, send: Send) -> bool:
        state = scope["app"].state
        principal = scoped_principal(state, _authorization(scope), _RESOURCE_WRITERS)
        if principal is None or is_bl(principal):  # BL's resources carry targets: FastAPI
            return False
        request = Request(scope, receive, send)
        try:
            body = await resources.checked_body(request, principal)
            response = await resources.create_ven_resource(request, principal, body)
        except ApiError as exc:
            response = api_error_response(exc)
        await response(scope, receive, send)
        return True
