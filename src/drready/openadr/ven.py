"""An asynchronous OpenADR 3.1 VEN client over HTTPS, and the polling VEN around it (C1, S1, D6).

:class:`VenClient` is what a maker cloud (route ii) or a home gateway (route i) uses to talk
to the DR servicer's VTN; its base :class:`OpenAdrClient` (TLS, token, paging, errors, reading
programs, events and reports) is shared with the servicer's BL client. Both speak only the
wire models of :mod:`drready.openadr.models` (bodies built with
:func:`~drready.openadr.models.to_wire`, answers parsed with
:func:`~drready.openadr.models.from_wire`) and know nothing of the drready profile; the
profile mapping is :mod:`drready.openadr.profile`.

:class:`PollingVen` is the I/O half both drready VENs share: it reads the program, the VEN's
own reports (once) and the events, hands them to a :class:`~drready.openadr.ven_core.VenCore`
(the I/O-free half, where every decision is made), posts the reports the core asks for, and
leaves the work on the units (fleet arrays or ECHONET Lite calls) to its subclass
(:class:`drready.cloud.service.MakerCloud`, :class:`drready.gateway.ven.GatewayVen`).
:func:`poll_loop` runs it.

Security (S1)
-------------
* TLS only: the base URL (and the token URL) must be ``https://``. ``http://`` is accepted
  only with ``allow_insecure_http=True``, which emits a
  :class:`~drready.security.tls.PlainHttpWarning` (local experiments).
* The VTN's certificate is verified against the given CA (``verify`` = a CA file path or an
  :class:`ssl.SSLContext` from :func:`drready.security.tls.client_ssl_context`); ``verify=False``
  (no authentication of the server) is refused unless ``allow_insecure_http=True`` too.
* OAuth 2.0 client credentials (RFC 6749 section 4.4): the token is fetched from the token
  endpoint with a form-encoded ``grant_type=client_credentials`` request (section 4.4.2, the
  ``application/x-www-form-urlencoded`` body of ``POST /auth/token`` in openadr3.yaml), kept in
  memory only, refreshed when :data:`REFRESH_AT` of its ``expires_in`` has passed, and once more
  when the VTN answers 401 (a VTN restart or a clock difference may void it early).

Errors
------
One tree, rooted at :class:`VenError`: :class:`VenConfigError` for local misuse (a plain-HTTP
URL, ``ensure_resource`` before ``ensure_ven``); :class:`VtnError` for the VTN's answers, with
the status and the RFC 7807 :class:`~drready.openadr.models.Problem` (its ``detail`` in the
message), :class:`VtnAuthError` for a refused token request; :class:`VtnUnavailableError` for
network failures and 5xx answers (worth retrying); :class:`VtnProtocolError` when the VTN's
body does not match the spec.

Busy VTN: a ``429 Too Many Requests`` or ``503 Service Unavailable`` — from ``/auth/token`` (its
throttle, its full secret verifier) or from any other call — means "retry after", not refused
credentials (RFC 9110 §10.2.3, RFC 6585 §4). The client waits ``Retry-After`` (seconds or an
HTTP date; :data:`RETRY_AFTER_DEFAULT_S` without one; bounded to [1, :data:`RETRY_AFTER_MAX_S`])
and sends again, at most :data:`BUSY_RETRIES` times and :data:`BUSY_WAIT_S` in all per call;
past that it raises :class:`VtnBusyError` (a :class:`VtnUnavailableError`) carrying the wait,
and :func:`poll_loop` waits at least that long before its next poll: never a tight loop.

Paging: list operations follow ``skip``/``limit`` with :data:`PAGE_LIMIT` = 50, the largest
``limit`` openadr3.yaml allows, until a short page.

References
----------
OpenADR Alliance, "OpenADR 3.1.0 Specification" (``openadr3.yaml``, ``Definition.md``
"Pagination", "Object Privacy", "Targeting"). RFC 6749 (OAuth 2.0) sections 4.4 and 5.1-5.2;
RFC 7807 (problem details).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ValidationError

from drready.domain import DEFAULT_TZ
from drready.openadr import ven_core as vc
from drready.openadr.models import (
    AuthError,
    ClientCredentialResponse,
    Event,
    NotifierTopicsResponse,
    ObjectOperation,
    ObjectType,
    Operation,
    Problem,
    Program,
    Report,
    ReportCreate,
    Resource,
    Subscription,
    SubscriptionCreate,
    ValuesMap,
    Ven,
    VenResourceCreate,
    VenVenCreate,
    from_wire,
    to_wire,
)
from drready.security.tls import client_ssl_context, warn_insecure_http

__all__ = [
    "EVENT_QUERIES_IN_FLIGHT",
    "PAGE_LIMIT",
    "REFRESH_AT",
    "TARGET_CHUNK",
    "OpenAdrClient",
    "PollingVen",
    "VenClient",
    "VenConfigError",
    "VenError",
    "VtnAuthError",
    "VtnBusyError",
    "VtnError",
    "VtnProtocolError",
    "VtnUnavailableError",
    "poll_loop",
]

M = TypeVar("M", bound=BaseModel)
_log = logging.getLogger("drready.openadr.ven")

PAGE_LIMIT = 50
"""``limit`` of every list request: the maximum openadr3.yaml allows (``maximum: 50``)."""
REFRESH_AT = 0.8
"""Share of a token's ``expires_in`` after which a new token is fetched before the next call."""
RETRY_AFTER_DEFAULT_S = 5.0
"""Wait [s] after a 429/503 that names no ``Retry-After``."""
RETRY_AFTER_MAX_S = 300.0
"""Longest ``Retry-After`` honoured [s]: a broken or hostile VTN cannot park a VEN for days."""
BUSY_RETRIES = 2
"""Retries of one call after 429/503 before :class:`VtnBusyError`."""
BUSY_WAIT_S = 10.0
"""Longest total wait [s] of one call for a busy VTN before :class:`VtnBusyError`."""
MAX_PAGES = 10_000
"""Guard against a VTN that ignores ``skip`` (the same page forever)."""
TARGET_CHUNK = 50
"""Resource names per events query of a :class:`PollingVen` (keeps the query string short for
large fleets)."""
EVENT_QUERIES_IN_FLIGHT = 8
"""Events queries of one poll in flight at once: a maker cloud of 100 000 units asks 2 000 of
them, and one after another they made each poll ~10 s long (and registration, which polls
between its batches, quadratic in the fleet)."""

Clock = Callable[[], float]


class VenError(Exception):
    """Base of every error of the VEN client."""


class VenConfigError(VenError, ValueError):
    """Local misuse: a plain-HTTP URL without ``allow_insecure_http``, a call out of order."""


class VtnError(VenError):
    """The VTN answered with an error status (4xx, or 5xx as :class:`VtnUnavailableError`).

    Attributes
    ----------
    status : int
        HTTP status code.
    problem : Problem or None
        The RFC 7807 body, if the VTN sent one.
    method, path : str
        The request that failed.
    """

    def __init__(
        self, message: str, *, status: int, problem: Problem | None, method: str, path: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem
        self.method = method
        self.path = path


class VtnAuthError(VtnError):
    """The token endpoint refused the client credentials (RFC 6749 section 5.2)."""


class VtnUnavailableError(VenError):
    """The VTN could not be reached, timed out, or answered 5xx: retry later."""


class VtnBusyError(VtnUnavailableError):
    """The VTN answered 429 or 503: retry after :attr:`retry_after_s` [s] (bounded)."""

    def __init__(self, message: str, *, status: int, retry_after_s: float) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float:
    """The wait a 429/503 asks for [s]: ``Retry-After`` as delay-seconds or an HTTP date (RFC
    9110 §10.2.3), :data:`RETRY_AFTER_DEFAULT_S` when absent or unreadable, within [1,
    :data:`RETRY_AFTER_MAX_S`]."""
    value = response.headers.get("retry-after", "").strip()
    wait = RETRY_AFTER_DEFAULT_S
    if value.isdigit():
        wait = float(int(value[:12]))
    elif value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(wait, 1.0), RETRY_AFTER_MAX_S)


class VtnProtocolError(VenError):
    """The VTN's answer does not follow openadr3.yaml (names the path and the bad field)."""


def _problem_of(response: httpx.Response) -> Problem | None:
    try:
        return from_wire(Problem, response.content)
    except (ValidationError, ValueError):
        return None


def _vtn_error(response: httpx.Response, method: str, path: str) -> VtnError:
    problem = _problem_of(response)
    reason = response.reason_phrase or "error"
    text = f"{method} {path}: VTN answered {response.status_code} {reason}"
    if problem is not None:
        said = problem.detail or problem.title
        if said:
            text += f": {said}"
    else:
        body = response.text.strip()
        if body:
            text += f": {body[:200]}"
    return VtnError(text, status=response.status_code, problem=problem, method=method, path=path)


def _check_url(url: str, what: str, allow_insecure_http: bool) -> httpx.URL:
    parsed = httpx.URL(url)
    if parsed.scheme == "https":
        return parsed
    if parsed.scheme == "http" and allow_insecure_http:
        warn_insecure_http(stacklevel=3)
        return parsed
    if parsed.scheme == "http":
        raise VenConfigError(
            f"{what}: {url!r} is plain HTTP; the VTN must be reached over https:// (S1), "
            "or pass allow_insecure_http=True for a local experiment"
        )
    raise VenConfigError(f"{what}: {url!r} must be an https:// URL")


class OpenAdrClient:
    """An OpenADR 3.1 client of a VTN (async, httpx): TLS, token, paging, errors.

    The common part of :class:`VenClient` and the DR servicer's BL client
    (:mod:`drready.servicer.bl`): what every client of a VTN does, whatever its role.

    Parameters
    ----------
    base_url : str
        The VTN's base URL, e.g. ``https://vtn.example:8443`` (paths such as ``/programs`` are
        appended; a base path is kept).
    client_id, client_secret : str
        OAuth 2.0 client credentials issued by the DR servicer.
    verify : ssl.SSLContext, str or bool
        The trust anchor for the VTN's certificate: a context
        (:func:`~drready.security.tls.client_ssl_context`), a PEM CA file path, ``True`` for
        the system store, or ``False`` (no verification; needs ``allow_insecure_http``).
    timeout_s : float
        Per-request timeout [s].
    allow_insecure_http : bool
        Accept an ``http://`` URL and ``verify=False`` (local experiments only; warns).
    token_url : str, optional
        The token endpoint; ``<base_url>/auth/token`` by default.
    clock : callable
        Monotonic time [s] used for token expiry; tests pass a fake.
    transport : httpx.AsyncBaseTransport, optional
        For tests (e.g. ``httpx.ASGITransport``).
    busy_wait_s : float
        Longest total wait of one call for a busy VTN (429/503) before :class:`VtnBusyError`.
    sleep : callable
        How to wait (``asyncio.sleep``; tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        verify: ssl.SSLContext | str | bool,
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
        token_url: str | None = None,
        clock: Clock = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        busy_wait_s: float = BUSY_WAIT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not client_id or not client_secret:
            raise VenConfigError("client_id and client_secret: must not be empty")
        if timeout_s <= 0:
            raise VenConfigError(f"timeout_s: must be > 0, got {timeout_s}")
        base = _check_url(base_url, "base_url", allow_insecure_http)
        self.token_url = str(
            _check_url(token_url, "token_url", allow_insecure_http)
            if token_url is not None
            else base.join(base.path.rstrip("/") + "/auth/token")
        )
        if verify is False and not allow_insecure_http:
            raise VenConfigError(
                "verify: False would accept any server certificate; give the VTN's CA file "
                "(S1), or pass allow_insecure_http=True for a local experiment"
            )
        tls: ssl.SSLContext | bool = (
            client_ssl_context(verify) if isinstance(verify, str) else verify
        )
        self.base_url = str(base)
        self.client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._busy_wait_s = busy_wait_s
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base,
            verify=tls,
            timeout=timeout_s,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._token: str | None = None
        self._refresh_after: float | None = None
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0
        """How many tokens were fetched so far (observability, tests)."""

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        """Close the HTTP connections; the token is forgotten."""
        self._token = None
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ token
    async def fetch_token(self) -> str:
        """Fetch a new access token (RFC 6749 section 4.4.2, form-encoded) and keep it."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
        }

        async def post() -> httpx.Response:
            try:
                return await self._http.post(self.token_url, data=form)
            except httpx.TransportError as err:
                raise VtnUnavailableError(f"POST {self.token_url}: {err!r}") from err

        response = await self._unless_busy(post, f"POST {self.token_url}")
        if response.status_code >= 500:
            raise VtnUnavailableError(f"POST {self.token_url}: VTN answered {response.status_code}")
        if response.status_code >= 400:
            raise self._auth_error(response)
        try:
            body = from_wire(ClientCredentialResponse, response.content)
        except (ValidationError, ValueError) as err:
            raise VtnProtocolError(f"POST {self.token_url}: not a token response: {err}") from err
        self._token = body.access_token
        self._refresh_after = (
            None
            if body.expires_in is None
            else self._clock() + REFRESH_AT * max(body.expires_in, 0)
        )
        self.token_fetches += 1
        return body.access_token

    def _auth_error(self, response: httpx.Response) -> VtnAuthError:
        detail = ""
        problem = _problem_of(response)
        try:
            auth = from_wire(AuthError, response.content)
            detail = auth.error.value + (
                f" ({auth.error_description})" if auth.error_description else ""
            )
        except (ValidationError, ValueError):
            if problem is not None:
                detail = problem.detail or problem.title or ""
        text = f"POST {self.token_url}: token refused, {response.status_code}"
        return VtnAuthError(
            text + (f": {detail}" if detail else ""),
            status=response.status_code,
            problem=problem,
            method="POST",
            path=self.token_url,
        )

    async def _valid_token(self, stale: str | None = None) -> str:
        async with self._token_lock:
            if self._token is not None and self._token != stale:
                expired = self._refresh_after is not None and self._clock() >= self._refresh_after
                if not expired:
                    return self._token
            return await self.fetch_token()

    async def _unless_busy(
        self, send: Callable[[], Awaitable[httpx.Response]], what: str
    ) -> httpx.Response:
        """``send()``, sent again after ``Retry-After`` while the VTN answers 429/503, within
        :data:`BUSY_RETRIES` and ``busy_wait_s``; then :class:`VtnBusyError`."""
        waited_s = 0.0
        for attempt in range(BUSY_RETRIES + 1):
            response = await send()
            if response.status_code not in (429, 503):
                return response
            wait_s = retry_after_s(response)
            if attempt == BUSY_RETRIES or waited_s + wait_s > self._busy_wait_s:
                raise VtnBusyError(
                    f"{what}: VTN answered {response.status_code} (busy); retry after {wait_s:g} s",
                    status=response.status_code,
                    retry_after_s=wait_s,
                )
            _log.info("%s: VTN busy (%d), retrying in %g s", what, response.status_code, wait_s)
            await self._sleep(wait_s)
            waited_s += wait_s
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ requests
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: BaseModel | None = None,
    ) -> httpx.Response:
        content = None if body is None else to_wire(body)
        token = await self._valid_token()
        what = f"{method} {path}"
        response = await self._unless_busy(
            lambda: self._send(method, path, params, content, token), what
        )
        if response.status_code == 401:  # voided early: one new token, one retry
            token = await self._valid_token(stale=token)
            response = await self._unless_busy(
                lambda: self._send(method, path, params, content, token), what
            )
        if response.status_code >= 500:
            error = _vtn_error(response, method, path)
            raise VtnUnavailableError(str(error))
        if response.status_code >= 400:
            raise _vtn_error(response, method, path)
        return response

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        content: dict[str, Any] | None,
        token: str,
    ) -> httpx.Response:
        try:
            return await self._http.request(
                method,
                path,
                params=_query(params),
                json=content,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as err:
            raise VtnUnavailableError(f"{method} {path}: {err!r}") from err

    def _parse(self, model: type[M], data: Any, method: str, path: str) -> M:
        try:
            return from_wire(model, data)
        except (ValidationError, ValueError) as err:
            raise VtnProtocolError(
                f"{method} {path}: answer is not a valid {model.__name__}: {err}"
            ) from err

    async def _one(
        self, model: type[M], method: str, path: str, body: BaseModel | None = None
    ) -> M:
        response = await self._request(method, path, body=body)
        return self._parse(model, response.content, method, path)

    async def _all(
        self, model: type[M], path: str, params: Mapping[str, Any] | None = None
    ) -> list[M]:
        """Every object of a list operation, page by page (skip/limit)."""
        out: list[M] = []
        seen: set[str] = set()
        skip = 0
        for _ in range(MAX_PAGES):
            query = {**(params or {}), "skip": skip, "limit": PAGE_LIMIT}
            response = await self._request("GET", path, params=query)
            try:
                items = response.json()
            except ValueError as err:
                raise VtnProtocolError(f"GET {path}: answer is not JSON") from err
            if not isinstance(items, list):
                raise VtnProtocolError(f"GET {path}: expected a JSON array")
            page = [self._parse(model, item, "GET", path) for item in items]
            fresh = [p for p in page if getattr(p, "id", None) not in seen]
            if page and not fresh:  # the VTN ignored skip: stop rather than loop
                break
            seen.update(str(getattr(p, "id", "")) for p in fresh)
            out += fresh
            if len(items) < PAGE_LIMIT:
                break
            skip += len(items)
        return out

    # ------------------------------------------------------------------ programs, events
    async def programs(self, targets: Sequence[str] | None = None) -> list[Program]:
        """Programs this VEN may read (those with ``targets`` only if granted and asked)."""
        params = {"targets": list(targets)} if targets else None
        return await self._all(Program, "/programs", params)

    async def program_by_name(self, name: str) -> Program | None:
        """The program called ``name``, or None."""
        for program in await self.programs():
            if program.program_name == name:
                return program
        return None

    async def events(
        self,
        program_id: str | None = None,
        active: bool | None = None,
        targets: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events this VEN may read, all pages.

        ``targets``: the VTN returns a targeted event only if the request names one of its
        targets and BL has granted it to this VEN (Definition.md "Targeting").
        """
        params: dict[str, Any] = {}
        if program_id is not None:
            params["programID"] = program_id
        if active is not None:
            params["active"] = "true" if active else "false"
        if targets:
            params["targets"] = list(targets)
        return await self._all(Event, "/events", params)

    # ------------------------------------------------------------------ reports
    async def post_report(self, report: ReportCreate) -> Report:
        """Create a report; returns the VTN's representation."""
        return await self._one(Report, "POST", "/reports", report)

    async def put_report(self, report_id: str, report: ReportCreate) -> Report:
        """Replace report ``report_id``."""
        return await self._one(Report, "PUT", f"/reports/{report_id}", report)

    async def reports(
        self,
        event_id: str | None = None,
        *,
        program_id: str | None = None,
        client_name: str | None = None,
    ) -> list[Report]:
        """Reports this VEN's client made (object privacy), optionally filtered."""
        params: dict[str, Any] = {}
        if event_id is not None:
            params["eventID"] = event_id
        if program_id is not None:
            params["programID"] = program_id
        if client_name is not None:
            params["clientName"] = client_name
        return await self._all(Report, "/reports", params)


class VenClient(OpenAdrClient):
    """OpenADR 3.1 VEN client (async, httpx).

    Parameters are those of :class:`OpenAdrClient`, plus

    ven_name : str
        The ``venName`` of this VEN's ven object (:meth:`ensure_ven`).
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        verify: ssl.SSLContext | str | bool,
        ven_name: str,
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
        token_url: str | None = None,
        clock: Clock = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not ven_name:
            raise VenConfigError("ven_name: must not be empty")
        super().__init__(
            base_url,
            client_id,
            client_secret,
            verify=verify,
            timeout_s=timeout_s,
            allow_insecure_http=allow_insecure_http,
            token_url=token_url,
            clock=clock,
            transport=transport,
        )
        self.ven_name = ven_name
        self.ven: Ven | None = None
        """This VEN's ven object, once :meth:`ensure_ven` has run."""

    # ------------------------------------------------------------------ vens, resources
    async def ensure_ven(self, attributes: Sequence[ValuesMap] | None = None) -> Ven:
        """This VEN's ven object: found by ``venName``, or created (``VEN_VEN_REQUEST``)."""
        found = await self._all(Ven, "/vens", {"venName": self.ven_name})
        mine = [v for v in found if v.ven_name == self.ven_name]
        if mine:
            self.ven = mine[0]
            return self.ven
        create = VenVenCreate(
            ven_name=self.ven_name, attributes=tuple(attributes) if attributes else None
        )
        self.ven = await self._one(Ven, "POST", "/vens", create)
        return self.ven

    def _ven_id(self) -> str:
        if self.ven is None:
            raise VenConfigError("call ensure_ven() before working with resources")
        return self.ven.id

    async def resources(self, name: str | None = None) -> list[Resource]:
        """This VEN's resources (all, or the one named ``name``)."""
        params: dict[str, Any] = {"venID": self._ven_id()}
        if name is not None:
            params["resourceName"] = name
        found = await self._all(Resource, "/resources", params)
        return [r for r in found if name is None or r.resource_name == name]

    async def ensure_resource(
        self, name: str, attributes: Sequence[ValuesMap] | None = None
    ) -> Resource:
        """This VEN's resource ``name``: found, or created (``VEN_RESOURCE_REQUEST``)."""
        found = await self.resources(name)
        if found:
            return found[0]
        return await self._create_resource(name, attributes)

    async def _create_resource(self, name: str, attributes: Sequence[ValuesMap] | None) -> Resource:
        create = VenResourceCreate(
            resource_name=name,
            ven_id=self._ven_id(),
            attributes=tuple(attributes) if attributes else None,
        )
        return await self._one(Resource, "POST", "/resources", create)

    async def create_resource(
        self, name: str, attributes: Sequence[ValuesMap] | None = None
    ) -> Resource:
        """This VEN's resource ``name``, created (``VEN_RESOURCE_REQUEST``) without asking first:
        for a name the caller believes missing (one request instead of :meth:`ensure_resource`'s
        two). ``409`` (the name is taken: created meanwhile, e.g. by a retried request whose
        answer was lost) is answered by finding it among this VEN's resources; a name another
        VEN holds raises the 409 (:class:`VtnError`)."""
        try:
            return await self._create_resource(name, attributes)
        except VtnError as err:
            if err.status != 409:
                raise
            found = await self.resources(name)
            if not found:
                raise
            return found[0]

    async def ensure_resources(
        self,
        names: Iterable[str],
        attributes: Mapping[str, Sequence[ValuesMap]] | None = None,
    ) -> list[Resource]:
        """Many resources at once: one paged listing, then a POST per missing name
        (``attributes``: per name, for the ones created)."""
        existing = {r.resource_name: r for r in await self.resources()}
        out = []
        for name in names:
            if name not in existing:
                attrs = None if attributes is None else attributes.get(name)
                existing[name] = await self.create_resource(name, attrs)
            out.append(existing[name])
        return out

    # ------------------------------------------------------------------ subscriptions
    async def subscribe(
        self,
        program_id: str | None,
        objects: Sequence[ObjectType],
        operations: Sequence[Operation],
        callback_url: str,
        bearer_token: str | None = None,
        *,
        client_name: str | None = None,
    ) -> Subscription:
        """Subscribe a webhook (``callback_url`` must be https) to ``objects``/``operations``."""
        _check_url(callback_url, "callback_url", allow_insecure_http=False)
        create = SubscriptionCreate(
            client_name=client_name or self.ven_name,
            program_id=program_id,
            object_operations=(
                ObjectOperation(
                    objects=tuple(objects),
                    operations=tuple(operations),
                    callback_url=callback_url,
                    bearer_token=bearer_token,
                ),
            ),
        )
        return await self._one(Subscription, "POST", "/subscriptions", create)

    async def subscriptions(self, client_name: str | None = None) -> list[Subscription]:
        """This client's subscriptions (a VEN sees only its own), by ``clientName``."""
        params = {"clientName": client_name} if client_name else None
        return await self._all(Subscription, "/subscriptions", params)

    async def delete_subscription(self, subscription_id: str) -> Subscription:
        """Delete one of this client's subscriptions."""
        return await self._one(Subscription, "DELETE", f"/subscriptions/{subscription_id}")

    async def notifiers(self) -> dict[str, Any]:
        """``GET /notifiers``: the notification bindings the VTN offers (``WEBHOOK``, ``MQTT``)."""
        response = await self._request("GET", "/notifiers")
        try:
            body = response.json()
        except ValueError as err:
            raise VtnProtocolError("GET /notifiers: answer is not JSON") from err
        if not isinstance(body, dict):
            raise VtnProtocolError("GET /notifiers: expected a JSON object")
        return body

    async def notifier_topics(self, path: str) -> dict[str, str]:
        """The MQTT topic names of ``GET /notifiers/mqtt/topics/<path>`` (operation → topic),
        e.g. ``path = f"vens/{ven_id}/events"``."""
        answer = await self._one(NotifierTopicsResponse, "GET", f"/notifiers/mqtt/topics/{path}")
        return {k: v for k, v in to_wire(answer.topics).items() if isinstance(v, str)}


def _query(
    params: Mapping[str, Any] | None,
) -> list[tuple[str, str | int | float | bool | None]] | None:
    """Query pairs; a list value repeats its key (openadr3.yaml: ``style: form``,
    ``explode: true``, e.g. ``targets=a&targets=b``)."""
    if not params:
        return None
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            pairs += [(key, str(v)) for v in value]
        else:
            pairs.append((key, value))
    return pairs


async def poll_loop(
    poll_once: Callable[[datetime], Awaitable[list[str]]],
    stop: asyncio.Event,
    log: logging.Logger,
    interval_s: float = 10.0,
    *,
    now: Callable[[], datetime] | None = None,
    max_backoff_s: float = 300.0,
    max_polls: int | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """A VEN's polling loop: ``poll_once(now())`` every ``interval_s`` until ``stop`` is set
    (or ``max_polls`` polls), each returned line logged; at once when ``wake`` is set (a
    pushed notification, :meth:`PollingVen.push`).

    ``now`` gives the current instant on the events' clock (wall time in
    :data:`~drready.domain.DEFAULT_TZ` by default; a simulated clock in a simulation). A VTN
    outage doubles the wait, up to ``max_backoff_s``; the first successful poll resets it.
    A busy VTN (:class:`VtnBusyError`) is waited for at least its ``Retry-After``. Other VEN
    errors (e.g. refused credentials) are logged and retried at the same backed-off pace;
    nothing ends the loop but ``stop``.
    """
    clock = now or (lambda: datetime.now(ZoneInfo(DEFAULT_TZ)))
    delay = interval_s
    polls = 0
    stop.clear()
    while not stop.is_set() and (max_polls is None or polls < max_polls):
        polls += 1
        try:
            for line in await poll_once(clock()):
                log.info("%s", line)
            delay = interval_s
        except VenError as err:
            delay = min(max(delay * 2, interval_s), max_backoff_s)
            if isinstance(err, VtnBusyError):  # the VTN said how long: at least that
                delay = max(delay, err.retry_after_s)
            log.warning("poll failed (%s); next attempt in %.0f s", err, delay)
        await _wait_either(stop, wake, delay)


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event | None, timeout_s: float) -> None:
    """Wait until ``stop`` or ``wake`` is set, at most ``timeout_s``."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=timeout_s)
        return
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class PollingVen(ABC):
    """A VEN that polls its VTN and lets a :class:`~drready.openadr.ven_core.VenCore` decide.

    One poll (:meth:`poll_once`): register when needed (the subclass's F6), find the program,
    read the VEN's own reports once (restart safety), read the events (asking with the
    resource names as ``targets``, :data:`TARGET_CHUNK` at a time, Definition.md
    "Targeting"), then run the core: each piece of work it asks for is done here (posting a
    report) or by the subclass (:meth:`_work`: potential, DR requests, power samples on its
    units), and the result fed back, until the core has nothing more to do. A VTN outage
    (:class:`VtnUnavailableError`) mid-poll is told to the core (it keeps what its units
    answered for the next poll) and propagates, so that :func:`poll_loop` backs off.

    Parameters
    ----------
    ven : VenClient
        The client towards the servicer's VTN.
    core : VenCore
        The VEN's protocol state (its ``client_name`` names the reports).
    program_name : str
        The servicer's DR-ready program.
    log : logging.Logger
        Where :meth:`run` logs.
    """

    def __init__(
        self, ven: VenClient, core: vc.VenCore, *, program_name: str, log: logging.Logger
    ) -> None:
        self.ven = ven
        self.core = core
        self.program_name = program_name
        self.program_id: str | None = None
        self.registered = False
        self._log = log
        self._stop = asyncio.Event()
        self.full_poll_every_s: float | None = None
        """With push (:meth:`push`): read the events from the VTN only this often [wall s] (the
        safety net); between, a poll answers the pushed events and sends due power reports
        without reading any. None (default): every poll reads the events."""
        self._pushed: dict[str, Event] = {}
        self._wake = asyncio.Event()
        self._last_full_poll = -math.inf

    @property
    def client_name(self) -> str:
        """``clientName`` of the VEN's reports."""
        return self.core.client_name

    @property
    @abstractmethod
    def resource_names(self) -> list[str]:
        """The resources this VEN offers now."""

    @abstractmethod
    async def register(self) -> list[str]:
        """F6: ensure the ven object and the resources (idempotent); returns log lines."""

    def _needs_register(self) -> bool:
        """Whether :meth:`register` runs before this poll."""
        return not self.registered

    @abstractmethod
    async def _work(self, action: vc.UnitWork) -> vc.Input:
        """Do ``action`` on the VEN's units; its result, as the core's next input."""

    # ------------------------------------------------------------------ polling
    async def _program_id(self) -> str | None:
        if self.program_id is None:
            program = await self.ven.program_by_name(self.program_name)
            self.program_id = None if program is None else program.id
        return self.program_id

    async def _events(self, program_id: str) -> list[Event]:
        names = self.resource_names
        chunks = [
            names[i : i + TARGET_CHUNK] or None for i in range(0, max(len(names), 1), TARGET_CHUNK)
        ]
        gate = asyncio.Semaphore(EVENT_QUERIES_IN_FLIGHT)

        async def one(chunk: list[str] | None) -> list[Event]:
            async with gate:
                return await self.ven.events(program_id, targets=chunk)

        found: dict[str, Event] = {}  # in the order of the chunks, as one query after another
        for events in await asyncio.gather(*(one(chunk) for chunk in chunks)):
            for event in events:
                found.setdefault(event.id, event)
        return list(found.values())

    def push(self, event: Event) -> None:
        """A pushed event (webhook or MQTT notification, :mod:`drready.openadr.push`): the
        loop polls at once and hands it to the core with the others pushed since (call from
        the loop's thread)."""
        self._pushed[event.id] = event
        self._wake.set()

    def _full_poll_due(self) -> bool:
        every = self.full_poll_every_s
        return every is None or time.monotonic() - self._last_full_poll >= every

    async def poll_once(self, now: datetime) -> list[str]:
        """Read the program's events, answer the new ones, send due power reports.

        With push (:attr:`full_poll_every_s` set) the events are read from the VTN only when
        the safety-net poll is due; otherwise the events pushed since the last poll are
        answered, through the same :meth:`VenCore.handle` (``Polled``).

        ``now`` is the current instant on the events' clock. Returns a log of what was done
        (one line per action or skipped event).

        Raises
        ------
        VtnUnavailableError
            The VTN could not be reached (nothing is lost: unanswered events are answered on
            the next poll, with the answers the units already gave).
        """
        log: list[str] = []
        if self._needs_register():
            log += await self.register()
        program_id = await self._program_id()
        if program_id is None:
            return [*log, f"program {self.program_name!r} not found on the VTN"]
        if not self.core.recovered:
            reports = await self.ven.reports(program_id=program_id, client_name=self.client_name)
            log += await self._drive(vc.Recovered(tuple(reports), now))
        pushed = list(self._pushed.values())
        self._pushed.clear()
        self._wake.clear()
        if self._full_poll_due():
            events = await self._events(program_id)
            self._last_full_poll = time.monotonic()
        else:
            events = [e for e in pushed if e.program_id == program_id]
        try:
            log += await self._drive(vc.Polled(now, tuple(events), tuple(self.resource_names)))
        except BaseException:
            for event in pushed:  # not answered: handed to the core again on the next poll
                self._pushed.setdefault(event.id, event)
            raise
        return log

    async def _drive(self, first: vc.Input) -> list[str]:
        """Feed ``first`` to the core, do the work it asks for and feed back each result,
        until it asks for nothing more; the log lines it gave."""
        log: list[str] = []
        actions = self.core.handle(first)
        while True:
            work: vc.UnitWork | vc.PostReport | None = None
            for action in actions:
                if isinstance(action, vc.Log):
                    log.append(action.line)
                else:
                    work = action
            if work is None:
                return log
            try:
                result = await (
                    self._post(work) if isinstance(work, vc.PostReport) else self._work(work)
                )
            except BaseException as err:  # an outage, or a bug: the core must know
                self.core.handle(vc.Interrupted(str(err) or type(err).__name__))
                raise
            actions = self.core.handle(result)

    async def _post(self, action: vc.PostReport) -> vc.Posted | vc.PostRefused:
        try:
            report = await self.ven.post_report(action.body)
        except VtnUnavailableError:
            raise
        except (ValueError, VtnError) as err:  # a refusal, or a body the VTN cannot take
            return vc.PostRefused(str(err))
        return vc.Posted(report.id)

    # ------------------------------------------------------------------ loop
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current poll."""
        self._stop.set()

    async def run(
        self,
        interval_s: float = 10.0,
        *,
        now: Callable[[], datetime] | None = None,
        max_backoff_s: float = 300.0,
        max_polls: int | None = None,
    ) -> None:
        """Poll every ``interval_s`` until :meth:`stop` (or ``max_polls`` polls).

        ``now`` gives the current instant on the events' clock (wall time in
        :data:`~drready.domain.DEFAULT_TZ` by default; a simulated clock in the demo). A VTN
        outage doubles the wait, up to ``max_backoff_s``; the first successful poll resets it.
        Other VEN errors (e.g. refused credentials) are logged and retried at the same
        backed-off pace; nothing here ends the loop but :meth:`stop`.
        """
        await poll_loop(
            self.poll_once,
            self._stop,
            self._log,
            interval_s,
            now=now,
            max_backoff_s=max_backoff_s,
            max_polls=max_polls,
            wake=self._wake,
        )
