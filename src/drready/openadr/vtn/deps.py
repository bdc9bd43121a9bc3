"""Request dependencies of the VTN routes: database session, authenticated principal, scope
checks, wire-body parsing and pagination (C1, S1).

* :data:`SessionDep`: one SQLAlchemy session per request, rolled back unless the route commits.
* :data:`PrincipalDep`: the verified bearer token (:class:`~drready.security.tokens.TokenClaims`);
  missing, forged or expired tokens answer 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
* :func:`require_scopes`: 403 unless the token holds one of the operation's scopes.
* :func:`wire_body`: the JSON body parsed by :func:`drready.openadr.vtn.wirebody.parse_body`
  (strict JSON, unknown properties ignored and logged unless ``strict_input``), 400 naming the
  wire field otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import jwt
from fastapi import Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_json
from sqlalchemy.orm import Session, sessionmaker

from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.notify import Notifier
from drready.openadr.vtn.settings import PAGE_LIMIT_MAX, VtnSettings
from drready.openadr.vtn.wirebody import BodyError, parse_body
from drready.security.tokens import TokenClaims, TokenError, TokenExpiredError, TokenService

__all__ = [
    "NotifierDep",
    "PageDep",
    "Principal",
    "PrincipalDep",
    "SessionDep",
    "SettingsDep",
    "VerifiedTokens",
    "get_principal",
    "get_session",
    "is_bl",
    "json_array_response",
    "json_response",
    "parse_wire_body",
    "request_session",
    "require_scopes",
    "scoped_principal",
    "verify_access_token",
    "wire_body",
]

Principal = TokenClaims
T = TypeVar("T")
_log = logging.getLogger("drready.openadr.vtn")
_IGNORED_LOGGED = 20  # unknown properties named in the log line at most


_bearer = HTTPBearer(auto_error=False, description="OAuth2 client-credentials access token")


@contextmanager
def request_session(request: Request) -> Iterator[Session]:
    """What :func:`get_session` yields, for routes that open their session themselves (one
    dependency level less on the hottest routes)."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
    finally:
        _end_session(session)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session from the app's sessionmaker; rolled back and closed after the request.

    The route handlers run on the event loop and do their (short, indexed) database work there,
    so the session is opened and ended there too: ending it only returns the connection to the
    pool. Handlers that must wait on something slow (the webhook echo check) are plain ``def``
    and run in the thread pool with their own session from this dependency.
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
    finally:
        _end_session(session)


def _end_session(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


# The small dependencies below are ``async def`` on purpose: FastAPI runs a plain ``def``
# dependency in the thread pool, and each such hop costs more than the work itself (they do not
# block: no I/O; token verification is one HMAC). Only the database work runs in threads.


async def _settings(request: Request) -> VtnSettings:
    settings: VtnSettings = request.app.state.settings
    return settings


async def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[VtnSettings, Depends(_settings)]
NotifierDep = Annotated[Notifier, Depends(_notifier)]


def _unauthorized(detail: str, error: str | None = None) -> ApiError:
    challenge = 'Bearer realm="openadr3"'
    if error is not None:
        challenge += f', error="{error}"'
    return ApiError(401, detail, headers={"WWW-Authenticate": challenge})


class VerifiedTokens:
    """A per-process cache of verified access tokens, keyed by the token string.

    A token is immutable and its signature, algorithm, issuer, audience and claim shapes were
    checked by :meth:`TokenService.verify` when it entered the cache, so a later request with
    the same string only needs the time checks again: expiry and "issued in the future", against
    the service's (injectable) clock, exactly as :meth:`TokenService.verify` does them. Expired
    tokens are dropped; the cache holds at most ``max_entries`` tokens (oldest evicted first).
    """

    def __init__(self, tokens: TokenService, max_entries: int = 4096) -> None:
        self.tokens = tokens
        self.max_entries = max_entries
        self._entries: dict[str, tuple[TokenClaims, int]] = {}

    def verify(self, token: str) -> TokenClaims:
        """The claims of ``token`` (see :meth:`TokenService.verify`, same exceptions)."""
        tokens = self.tokens
        entry = self._entries.get(token)
        if entry is not None:
            claims, iat = entry
            now = tokens.now()
            if now >= claims.expires_at + tokens.leeway_s:
                self._entries.pop(token, None)
                raise TokenExpiredError("token expired")
            if iat <= now + tokens.leeway_s:
                return claims
            # the clock went back before the token's issue time: full check (raises)
        claims = tokens.verify(token)
        iat = jwt.decode(token, options={"verify_signature": False})["iat"]
        entries = self._entries
        if len(entries) >= self.max_entries:
            entries.pop(next(iter(entries)), None)
        entries[token] = (claims, iat)
        return claims


def _verify_bearer(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token (Authorization: Bearer <access token>)")
    return verify_access_token(request.app.state, credentials.credentials)


def verify_access_token(state: Any, token: str) -> Principal:
    """The claims of an access token through the app's :class:`VerifiedTokens` cache (``state``:
    ``app.state``); 401 :class:`ApiError` when it is invalid or expired."""
    verified: VerifiedTokens | None = getattr(state, "verified_tokens", None)
    tokens: TokenService = state.tokens
    if verified is None or verified.tokens is not tokens:
        verified = state.verified_tokens = VerifiedTokens(tokens)
    try:
        return verified.verify(token)
    except TokenExpiredError:
        raise _unauthorized("access token expired", "invalid_token") from None
    except TokenError:
        raise _unauthorized("invalid access token", "invalid_token") from None


def scoped_principal(
    state: Any, authorization: str | None, any_of: frozenset[str]
) -> Principal | None:
    """The principal of an ``Authorization`` header value, if it is a valid bearer token holding
    one of the scopes ``any_of``; ``None`` in every other case (no header, another scheme, an
    invalid or expired token, a missing scope), for which :func:`require_scopes` answers the
    401 or 403. Parses the header as FastAPI's ``HTTPBearer`` does."""
    if not authorization:
        return None
    scheme, _, param = authorization.partition(" ")
    credentials = param.strip()
    if not scheme or not credentials or scheme.lower() != "bearer":
        return None
    try:
        principal = verify_access_token(state, credentials)
    except ApiError:
        return None
    return principal if principal.scopes & any_of else None


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Verify the bearer token; 401 Problem when missing, invalid or expired."""
    return _verify_bearer(request, credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def is_bl(principal: Principal) -> bool:
    """Business logic (sees and may change every object) rather than a VEN."""
    return principal.role == "bl"


class _ScopedBearer(HTTPBearer):
    """The bearer scheme of :data:`_bearer` (same OpenAPI security scheme) that also verifies the
    token and checks the operation's scopes: one dependency rather than a chain of three
    (credentials → principal → scopes), as FastAPI's solving costs more per level than the checks.
    """

    def __init__(self, any_of: tuple[str, ...]) -> None:
        super().__init__(
            auto_error=False, description=_bearer.model.description, scheme_name="HTTPBearer"
        )
        self.any_of = any_of
        self.wanted = frozenset(any_of)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = _verify_bearer(request, await super().__call__(request))
        if not principal.scopes & self.wanted:
            raise ApiError(
                403,
                f"the access token lacks the scope for this operation: one of {list(self.any_of)}",
            )
        return principal


def require_scopes(*any_of: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal, if its token holds at least one of ``any_of`` (else 403)."""
    return _ScopedBearer(any_of)


async def parse_wire_body(request: Request, cls: Any) -> Any:
    """The JSON request body parsed into ``cls`` with wire semantics
    (:func:`drready.openadr.vtn.wirebody.parse_body`: strict JSON, unknown properties dropped
    and logged unless ``settings.strict_input``); 400 Problem naming the wire field otherwise."""
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise ApiError(400, f"Content-Type: expected application/json, got {media!r}")
    settings: VtnSettings = request.app.state.settings
    try:
        parsed = parse_body(cls, raw, strict=settings.strict_input)
    except BodyError as err:
        raise ApiError(400, err.detail) from None
    if parsed.ignored:
        _log.info(
            "%s %s: ignored unknown properties %s",
            request.method,
            request.url.path,
            ", ".join(name[:80] for name in parsed.ignored[:_IGNORED_LOGGED]),
        )
    return parsed.model


def wire_body(cls: Any) -> Callable[[Request], Awaitable[Any]]:
    """A dependency parsing the JSON request body into ``cls`` with wire semantics."""

    async def parse(request: Request) -> Any:
        return await parse_wire_body(request, cls)

    return parse


class Page:
    """``skip`` and ``limit`` of a list request."""

    def __init__(self, skip: int, limit: int) -> None:
        self.skip = skip
        self.limit = limit


async def _page(
    request: Request,
    skip: Annotated[int, Query(ge=0, le=2**31 - 1, description="records to skip")] = 0,
    limit: Annotated[
        int | None, Query(ge=0, le=PAGE_LIMIT_MAX, description="maximum records to return")
    ] = None,
) -> Page:
    settings: VtnSettings = request.app.state.settings
    if limit is not None and limit > settings.page_limit_max:
        raise ApiError(400, f"query.limit: must be at most {settings.page_limit_max}")
    return Page(skip, settings.page_limit_max if limit is None else limit)


PageDep = Annotated[Page, Depends(_page)]


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` serialised to JSON once (pydantic-core), passed through by FastAPI as is.

    The routes keep declaring their response model (the OpenAPI document is unchanged); the
    answer is the same JSON FastAPI would render, without a second validation pass.
    """
    return Response(to_json(content), status_code=status_code, media_type="application/json")


def json_array_response(items: Iterable[str], status_code: int = 200) -> Response:
    """A JSON array of ``items``, each already JSON text in :func:`json_response`'s form (the
    stored wire bodies, :func:`drready.openadr.vtn.store.list_wire`): the same bytes
    :func:`json_response` sends for the decoded list, without decoding or encoding."""
    content = ("[" + ",".join(items) + "]").encode()
    return Response(content, status_code=status_code, media_type="application/json")
