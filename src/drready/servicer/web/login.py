"""Login for humans: the dashboard and the servicer's operator pages behind a session (S1:
authenticate the operator ↔ dashboard interconnection; JC-STAR ★1 S1.1-01, -04; issue 12
item 6).

Three parts:

* :class:`OperatorAuthenticator` — the **one seam** between the pages and where an operator's
  identity comes from. :class:`PasswordFileAuthenticator` checks a name and password against
  the operators file (:mod:`drready.security.operators`: scrypt hashes, 0600, outside the
  repository). An OpenID Connect provider replaces it with a class of the same three methods:
  ``start`` answers ``GET /login`` with a redirect to the provider's authorization endpoint
  (``state`` = :attr:`LoginContext.token`), ``finish`` handles ``GET /login/callback`` (checks
  ``state`` with :meth:`LoginContext.check`, exchanges the code, verifies the ID token and maps
  its ``sub``/``email`` to an operator name) and ``credential_tag`` says whether the operator is
  still allowed. Sessions, CSRF, throttling and logout stay as they are (docs/security.md).
* :class:`OperatorGate` — pure ASGI middleware in front of everything but the machine
  interfaces (``/api/``, ``/auth/``: bearer tokens, no cookies; ``/healthz``, ``/metrics``,
  ``/openapi.json``, ``/docs``), ``/`` (a redirect) and the login page itself. Without a valid
  session a page request (``Accept: text/html``) is redirected (303) to ``/login?next=…`` and any
  other request answers 401. With one, a state-changing request (any method but GET, HEAD,
  OPTIONS) needs the session's CSRF token in the ``X-CSRF-Token`` header or the form field
  ``csrf_token`` — missing or wrong is 403 — and an ``Origin`` header, when sent, naming this
  server (403 otherwise).
* :func:`login_router` — ``GET /login`` (the form; a short-lived nonce cookie), ``POST /login``
  (the form's token must match the nonce: login CSRF; then the throttle of
  :mod:`drready.security.throttle` per address and per name — 429 with ``Retry-After`` after a
  1 s tarpit, a growing lockout after repeated failures — then scrypt in a bounded low-priority
  thread; a wrong name or password is 401 with the same answer for both), ``GET
  /login/callback`` (for an OIDC authenticator) and ``POST /logout`` (behind the gate, so it
  needs the CSRF token: the session is revoked and the cookie cleared).

Cookies: ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, ``Max-Age`` = the session's lifetime; over
TLS ``Secure`` and the ``__Host-`` name prefix (RFC 6265bis §4.1.3.2: no ``Domain``, so a sibling
host cannot plant one). The signing key lives in the service's state directory
(:mod:`drready.security.sessions`).
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from drready.security.operators import OperatorFile
from drready.security.sessions import Session, SessionSigner
from drready.security.throttle import TokenThrottle, TokenThrottleSettings, address_key
from drready.security.verify_pool import BoundedVerifier, VerifierBusyError

__all__ = [
    "PUBLIC_PREFIXES",
    "LoginAttempt",
    "LoginContext",
    "OperatorAuthenticator",
    "OperatorGate",
    "OperatorLogin",
    "PasswordFileAuthenticator",
    "install_operator_login",
    "login_router",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths that are not operator pages: machine interfaces (their own bearer tokens) and login.
PUBLIC_PREFIXES = (
    "/api/",
    "/auth/",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/login",
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Largest form the gate buffers to find its CSRF token, and the login form [B].
_MAX_FORM_BYTES = 64 * 1024
_LOGIN_NONCE_TTL_S = 600
_DEFAULT_NEXT = "/dashboard/"
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
#: Login throttle: a human types; 5 at once, then one every 5 s per name; 10 failures lock.
LOGIN_THROTTLE = TokenThrottleSettings(
    address_burst=20,
    address_per_s=1.0,
    client_burst=5,
    client_per_s=0.2,
    failures_max=10,
    failure_window_s=300.0,
    lockout_s=60.0,
    lockout_max_s=3600.0,
    verify_queue_max=4,
)


# ------------------------------------------------------------------------------- the seam
@dataclass(frozen=True)
class LoginAttempt:
    """What :meth:`OperatorAuthenticator.finish` found: the name tried (for the throttle) and the
    operator with its credential's fingerprint, or ``None`` when the attempt failed."""

    claimed: str
    operator: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class LoginContext:
    """What the login pages give an authenticator."""

    next_path: str
    """Where to go after login (a local path)."""
    token: str
    """The login form's anti-CSRF token (an OIDC authenticator sends it as ``state``)."""
    error: str | None
    status: int
    check: Callable[[str | None], bool]
    """Whether a returned token (the form's, or OIDC ``state``) belongs to this browser."""


class OperatorAuthenticator(Protocol):
    """Where an operator's identity comes from (see the module docstring)."""

    def start(self, request: Request, ctx: LoginContext) -> Response:
        """``GET /login``: the login form, or a redirect to an identity provider."""
        ...

    async def finish(self, request: Request, form: Mapping[str, str]) -> LoginAttempt:
        """``POST /login`` (``form``) or ``GET /login/callback`` (an empty ``form``)."""
        ...

    def credential_tag(self, name: str) -> str | None:
        """Asked on every request: the current fingerprint of ``name``'s credential, ``None``
        when the operator may no longer log in (a session with another tag ends)."""
        ...


def _login_page(ctx: LoginContext, note: str | None) -> HTMLResponse:
    error = (
        f'<p role="alert" data-testid="login-error">{html.escape(ctx.error)}</p>'
        if ctx.error
        else ""
    )
    extra = f"<p>{html.escape(note)}</p>" if note else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drready servicer — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>drready DR servicer</h1>{error}{extra}
<form method="post" action="/login" data-testid="login-form">
<input type="hidden" name="csrf_token" value="{html.escape(ctx.token)}">
<input type="hidden" name="next" value="{html.escape(ctx.next_path)}">
<p><label>Operator <input name="name" autocomplete="username" required maxlength="64"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"
 required maxlength="1024"></label></p>
<p><button type="submit">Log in</button></p>
</form></main></body></html>
"""
    return HTMLResponse(body, status_code=ctx.status, headers=_PAGE_HEADERS)


class PasswordFileAuthenticator:
    """Operators from the password file (``None``: none configured, every login fails).

    Parameters
    ----------
    operators : OperatorFile or None
    verifier : BoundedVerifier
        Where scrypt runs (never the event loop).
    """

    def __init__(self, operators: OperatorFile | None, verifier: BoundedVerifier) -> None:
        self.operators = operators
        self.verifier = verifier

    def start(self, request: Request, ctx: LoginContext) -> Response:
        note = None
        if self.operators is None:
            note = (
                "No operators are configured: add one with `drready servicer operator add NAME "
                "--operators-file FILE` and start the servicer with --operators-file FILE."
            )
        return _login_page(ctx, note)

    async def finish(self, request: Request, form: Mapping[str, str]) -> LoginAttempt:
        name, password = form.get("name", ""), form.get("password", "")
        if request.method != "POST" or self.operators is None:
            return LoginAttempt(name)
        if await self.verifier.run(self.operators.verify, name, password):
            return LoginAttempt(name, name, self.operators.credential_tag(name))
        return LoginAttempt(name)

    def credential_tag(self, name: str) -> str | None:
        return None if self.operators is None else self.operators.credential_tag(name)


# ------------------------------------------------------------------------------- sessions
@dataclass
class OperatorLogin:
    """The login's parts, shared by the gate and the routes."""

    authenticator: OperatorAuthenticator
    sessions: SessionSigner
    secure: bool
    """Served over TLS: cookies get ``Secure`` and the ``__Host-`` prefix."""
    throttle: TokenThrottle
    clock_s: Callable[[], float] = time.time

    @property
    def session_cookie(self) -> str:
        return "__Host-drready-session" if self.secure else "drready-session"

    @property
    def nonce_cookie(self) -> str:
        return "__Host-drready-login" if self.secure else "drready-login"

    def cookie_header(self, name: str, value: str, max_age_s: int) -> str:
        parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age_s}", "HttpOnly"]
        parts.append("SameSite=Strict")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def session_of(self, cookies: Mapping[str, str]) -> Session | None:
        """The valid session these cookies carry, if any (signature, expiry, logout, and the
        operator's credential unchanged)."""
        session = self.sessions.verify(cookies.get(self.session_cookie), self.clock_s())
        if session is None:
            return None
        if self.authenticator.credential_tag(session.operator) != session.tag:
            return None
        return session


def _cookies(headers: Mapping[str, str] | list[tuple[bytes, bytes]]) -> dict[str, str]:
    raw = (
        headers.get("cookie", "")
        if isinstance(headers, Mapping)
        else "; ".join(v.decode("latin-1") for k, v in headers if k.lower() == b"cookie")
    )
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # http.cookies raises CookieError on junk: treat as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


def _safe_next(value: str | None) -> str:
    """A local path to go to after login (never another host: no ``//``, no scheme, no ``\\``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return _DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in value) or len(value) > 512:
        return _DEFAULT_NEXT
    return value


def _public(path: str) -> bool:
    return path == "/" or any(path == p.rstrip("/") or path.startswith(p) for p in PUBLIC_PREFIXES)


def _problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    body = {"type": "about:blank", "title": _TITLES[status], "status": status, "detail": detail}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


_TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    413: "Payload Too Large",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


class OperatorGate:
    """ASGI middleware: operator pages need a session, state changes a CSRF token (see the
    module docstring)."""

    def __init__(self, app: ASGIApp, login: OperatorLogin) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        session = self.login.session_of(_cookies(headers))
        method = scope["method"]
        if session is None:
            accept = _header(headers, b"accept")
            if method in ("GET", "HEAD") and (not accept or "text/html" in accept):
                target = scope["path"] + (
                    "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
                )
                response: Response = RedirectResponse(
                    f"/login?next={quote(target, safe='/')}", status_code=303
                )
            else:
                response = _problem(401, "login required: open /login")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["operator_session"] = session
        if method in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        origin = _header(headers, b"origin")
        if origin and not _same_origin(origin, scope, headers, self.login.secure):
            refused = _problem(403, f"Origin: {origin[:100]!r} is not this server")
            await refused(scope, receive, send)
            return
        token = _header(headers, b"x-csrf-token") or None
        body = b""
        media = _header(headers, b"content-type").split(";")[0].strip().lower()
        if token is None and media == "application/x-www-form-urlencoded":
            chunks, size = [], 0
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > _MAX_FORM_BYTES:
                    await _problem(413, f"form: larger than {_MAX_FORM_BYTES} B")(
                        scope, receive, send
                    )
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            token = _form(body).get("csrf_token")
        if not self.login.sessions.check_csrf(session, token):
            detail = "csrf_token: missing" if token is None else "csrf_token: wrong"
            await _problem(403, f"{detail} (the form's token or the X-CSRF-Token header)")(
                scope, receive, send
            )
            return
        if body or media == "application/x-www-form-urlencoded":
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _same_origin(
    origin: str, scope: Scope, headers: list[tuple[bytes, bytes]], secure: bool
) -> bool:
    host = _header(headers, b"host")
    return origin in (f"{'https' if secure else 'http'}://{host}",)


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if len(v) == 1 and "\x00" not in v[0]}


# ------------------------------------------------------------------------------- routes
def login_router(login: OperatorLogin) -> APIRouter:
    """``GET/POST /login``, ``GET /login/callback``, ``POST /logout`` (see the module docstring)."""
    router = APIRouter(include_in_schema=False)

    def context(
        request: Request, next_path: str, error: str | None, status: int
    ) -> tuple[LoginContext, str]:
        nonce, token = login.sessions.login_nonce()
        cookie_nonce = _cookies(request.headers).get(login.nonce_cookie)

        def check(returned: str | None) -> bool:
            return login.sessions.check_login_token(cookie_nonce, returned)

        return LoginContext(_safe_next(next_path), token, error, status, check), nonce

    def page(request: Request, next_path: str, error: str | None, status: int) -> Response:
        ctx, nonce = context(request, next_path, error, status)
        response = login.authenticator.start(request, ctx)
        response.headers.append(
            "set-cookie", login.cookie_header(login.nonce_cookie, nonce, _LOGIN_NONCE_TTL_S)
        )
        return response

    @router.get("/login")
    async def login_form(request: Request, next: str = _DEFAULT_NEXT) -> Response:
        return page(request, next, None, 200)

    async def complete(request: Request, form: Mapping[str, str]) -> Response:
        next_path = _safe_next(form.get("next") or request.query_params.get("next"))
        claimed = form.get("name", "")[:256]
        address = address_key(request.client.host if request.client is not None else "")
        throttle = login.throttle
        wait_s = throttle.admit(claimed, address, time.monotonic())
        if wait_s > 0.0:
            await asyncio.sleep(min(wait_s, throttle.settings.refused_delay_s))  # tarpit
            response = page(request, next_path, "Too many attempts: try again later.", 429)
            response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
            return response
        try:
            attempt = await login.authenticator.finish(request, form)
        except VerifierBusyError:
            throttle.release(claimed)
            await asyncio.sleep(throttle.settings.refused_delay_s)
            response = page(request, next_path, "Too many logins in progress: try again.", 503)
            response.headers["Retry-After"] = "1"
            return response
        except BaseException:
            throttle.release(claimed)
            raise
        if attempt.operator is None or attempt.tag is None:
            throttle.record(claimed, address, success=False, now=time.monotonic())
            return page(request, next_path, "Wrong operator name or password.", 401)
        throttle.record(claimed, address, success=True, now=time.monotonic())
        value, _ = login.sessions.issue(attempt.operator, attempt.tag, login.clock_s())
        response = RedirectResponse(next_path, status_code=303)
        response.headers["Cache-Control"] = "no-store"
        response.headers.append(
            "set-cookie", login.cookie_header(login.session_cookie, value, login.sessions.ttl_s)
        )
        response.headers.append("set-cookie", login.cookie_header(login.nonce_cookie, "", 0))
        return response

    @router.post("/login")
    async def login_submit(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_FORM_BYTES:
            return _problem(413, f"form: larger than {_MAX_FORM_BYTES} B")
        form = _form(body)
        nonce = _cookies(request.headers).get(login.nonce_cookie)
        if not login.sessions.check_login_token(nonce, form.get("csrf_token")):
            detail = "csrf_token: missing" if not form.get("csrf_token") else "csrf_token: wrong"
            return _problem(403, f"{detail} (reload the login page)")
        return await complete(request, form)

    @router.get("/login/callback")
    async def login_callback(request: Request) -> Response:
        return await complete(request, {})

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session: Session | None = getattr(request.state, "operator_session", None)
        if session is not None:  # the gate let it through: a session and its CSRF token
            login.sessions.revoke(session, login.clock_s())
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", login.cookie_header(login.session_cookie, "", 0))
        return response

    return router


def operator_bar(login: OperatorLogin) -> Callable[[Request], str]:
    """The dashboard's "signed in as … / log out" form for the request's session."""

    def bar(request: Request) -> str:
        session: Session | None = getattr(request.state, "operator_session", None)
        if session is None:
            return ""
        token = login.sessions.csrf_token(session)
        return (
            '<form method="post" action="/logout" class="operator-bar" data-testid="operator-bar">'
            f'Signed in as <strong data-testid="operator-name">{html.escape(session.operator)}'
            f'</strong> <input type="hidden" name="csrf_token" value="{html.escape(token)}">'
            '<button type="submit" data-testid="logout">Log out</button></form>'
        )

    return bar


def install_operator_login(
    app: FastAPI,
    *,
    authenticator: OperatorAuthenticator,
    sessions: SessionSigner,
    secure: bool,
    throttle: TokenThrottleSettings = LOGIN_THROTTLE,
) -> OperatorLogin:
    """Put ``app``'s operator pages behind a login: the routes and the gate (add the gate
    before other middleware that must see every request, e.g. a body limit, so it runs inside
    them)."""
    login = OperatorLogin(authenticator, sessions, secure, TokenThrottle(throttle))
    app.include_router(login_router(login))
    app.add_middleware(OperatorGate, login=login)
    return login
