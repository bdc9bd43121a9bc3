"""``/auth/server`` and ``/auth/token``: token endpoint discovery and the OAuth 2.0
client-credentials grant (RFC 6749 §4.4) of the VTN (S1: authenticate; C1).

``POST /auth/token`` takes the client credentials as an ``application/x-www-form-urlencoded``
body (RFC 6749 §2.3.1, the spec's media type), as a JSON body (``clientCredentialRequest``), or
in HTTP Basic (RFC 6749 §2.3.1, then without ``client_secret`` in the body). ``scope``
(space-separated) is tolerated as RFC 6749 §3.3 lets the server "fully or partially ignore"
it: the token carries the requested scopes the client holds, or all its scopes when it holds
none of them (a 3.0 VEN asks ``read_all``, a BL scope in 3.1), and the answer's ``scope`` says
what was granted (§3.3: MUST when it differs). 400 ``invalid_scope`` is kept for a scope that
is malformed (not a §3.3 ``scope-token``) or that no OpenADR client can hold (a typo is
reported, not silently dropped); without ``scope`` the client gets all its scopes. Errors
carry an RFC 6749 §5.2 body that is at the same time an RFC 7807 problem
(``error``/``error_description`` plus ``type``/``title``/``status``/``detail``), so it
satisfies both ``authError`` and the ``problem`` the yaml names for 400 and 401.

Each attempt with credentials costs a scrypt run. Before it, the endpoint asks the app's
:class:`~drready.security.throttle.TokenThrottle` (per address and per client id: rate limits,
a growing lockout after repeated failures): a refused attempt gets 429 with ``Retry-After``,
answered after at most ``refused_delay_s`` (a tarpit, 1 s), and costs no scrypt. The run
itself happens in the app's :class:`~drready.security.verify_pool.BoundedVerifier` (its own
low-priority thread, never the event loop or the shared thread pool); when that is full, 503
with ``Retry-After`` (after the same delay). A JSON body is parsed as strict JSON
(:mod:`drready.security.strict_json`); no field may hold U+0000.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from drready.openadr.models import AuthErrorCode
from drready.openadr.vtn.deps import SettingsDep
from drready.openadr.vtn.errors import problem_response
from drready.security.strict_json import JsonRefusedError
from drready.security.strict_json import loads as strict_loads
from drready.security.throttle import TokenThrottle, address_key
from drready.security.tokens import ClientRegistry, TokenInvalidError, TokenService
from drready.security.verify_pool import BoundedVerifier, VerifierBusyError

router = APIRouter(prefix="/auth", tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FIELDS = ("grant_type", "client_id", "client_secret", "scope")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token


def _granted_scopes(scope: str, held: frozenset[str], known: frozenset[str]) -> frozenset[str]:
    """The scopes a token gets for the requested ``scope`` (see the module docstring)."""
    requested = frozenset(scope.split())
    malformed = sorted(s for s in requested if not _SCOPE_TOKEN.match(s))
    unknown = sorted(requested - known)
    if malformed or unknown:
        raise _TokenRequestError(
            400,
            AuthErrorCode.INVALID_SCOPE,
            f"scope: unknown {' '.join(malformed + unknown)!r}; known: {' '.join(sorted(known))}",
        )
    return (requested & held) or held


class _TokenRequestError(Exception):
    def __init__(self, status: int, error: AuthErrorCode, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _auth_error(exc: _TokenRequestError) -> JSONResponse:
    body = {
        "error": exc.error.value,
        "error_description": exc.description,
        "type": "about:blank",
        "title": HTTPStatus(exc.status).phrase,
        "status": exc.status,
        "detail": exc.description,
    }
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="openadr3"'
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _bad(description: str) -> _TokenRequestError:
    return _TokenRequestError(400, AuthErrorCode.INVALID_REQUEST, description)


def _parse_body(raw: bytes, media: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body: not UTF-8") from None
    if media == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise _bad("body: malformed form encoding") from None
        repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
        if repeated:
            raise _bad(f"{repeated[0]}: parameter repeated")
        fields = {k: v[0] for k, v in parsed.items()}
        for key in _FIELDS:
            if "\x00" in fields.get(key, ""):
                raise _bad(f"{key}: U+0000 (NUL) is not allowed")
        return fields
    if media == "application/json":
        try:
            data: Any = strict_loads(raw)
        except JsonRefusedError as err:
            raise _bad(str(err)) from None
        if not isinstance(data, dict):
            raise _bad("body: must be a JSON object")
        for key in _FIELDS:
            if key in data and not isinstance(data[key], str):
                raise _bad(f"{key}: must be a string")
        return {k: v for k, v in data.items() if k in _FIELDS}
    raise _bad(
        f"Content-Type: expected application/x-www-form-urlencoded or application/json, "
        f"got {media or 'none'!r}"
    )


def _basic(header: str | None) -> tuple[str, str] | None:
    if header is None or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _TokenRequestError(
            401, AuthErrorCode.INVALID_CLIENT, "Authorization: malformed Basic credentials"
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or "\x00" in decoded:
        raise _TokenRequestError(
            401, AuthErrorCode.INVALID_CLIENT, "Authorization: malformed Basic credentials"
        )
    return unquote_plus(client_id), unquote_plus(secret)


def _credentials(fields: dict[str, str], basic: tuple[str, str] | None) -> tuple[str, str]:
    if basic is not None:
        if "client_secret" in fields:
            raise _bad("client_secret: use either HTTP Basic or the body, not both")
        if fields.get("client_id", basic[0]) != basic[0]:
            raise _bad("client_id: differs from the HTTP Basic user name")
        return basic
    client_id, secret = fields.get("client_id"), fields.get("client_secret")
    if not client_id or not secret:
        raise _TokenRequestError(
            401,
            AuthErrorCode.INVALID_CLIENT,
            "client_id and client_secret are required (body or HTTP Basic)",
        )
    return client_id, secret


def _retry_later(status: int, wait_s: float, detail: str) -> JSONResponse:
    headers = {**_NO_STORE, "Retry-After": str(max(1, math.ceil(wait_s)))}
    return problem_response(status, detail, headers=headers)


@router.get("/server")
def get_auth_server_info(settings: SettingsDep) -> dict[str, str]:
    """getAuthServerInfo: where to fetch tokens."""
    return {"tokenURL": settings.token_url}


@router.post("/token")
async def fetch_token(request: Request) -> JSONResponse:
    """fetchToken: client credentials → access token (clientCredentialResponse)."""
    registry: ClientRegistry = request.app.state.registry
    tokens: TokenService = request.app.state.tokens
    throttle: TokenThrottle = request.app.state.token_throttle
    verifier: BoundedVerifier = request.app.state.secret_verifier
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        fields = _parse_body(await request.body(), media)
        basic = _basic(request.headers.get("authorization"))
        grant_type = fields.get("grant_type")
        if grant_type is None:
            raise _bad("grant_type: required (client_credentials)")
        if grant_type != "client_credentials":
            raise _TokenRequestError(
                400,
                AuthErrorCode.UNSUPPORTED_GRANT_TYPE,
                f"grant_type: only client_credentials is supported, got {grant_type!r}",
            )
        client_id, secret = _credentials(fields, basic)
        if len(client_id) > 4096 or len(secret) > 4096:
            raise _bad("client_id/client_secret: at most 4096 characters")
        address = address_key(request.client.host if request.client is not None else "")
        wait_s = throttle.admit(client_id, address, time.monotonic())
        if wait_s > 0.0:
            await asyncio.sleep(min(wait_s, throttle.settings.refused_delay_s))  # tarpit
            return _retry_later(
                429, wait_s, "too many token requests from this address or for this client"
            )
        try:
            record = await verifier.run(registry.authenticate, client_id, secret)
        except VerifierBusyError:
            throttle.release(client_id)  # admitted, but no outcome: no longer in flight
            await asyncio.sleep(throttle.settings.refused_delay_s)  # tarpit
            return _retry_later(503, 1.0, "too many token requests in progress")
        except TokenInvalidError:
            throttle.record(client_id, address, success=False, now=time.monotonic())
            raise _TokenRequestError(
                401, AuthErrorCode.INVALID_CLIENT, "invalid client credentials"
            ) from None
        except BaseException:
            throttle.release(client_id)
            raise
        throttle.record(client_id, address, success=True, now=time.monotonic())
        granted = _granted_scopes(fields.get("scope", ""), record.scopes, tokens.policy.scopes)
    except _TokenRequestError as exc:
        return _auth_error(exc)
    token, expires_in = tokens.issue(
        record.client_id, granted, role=record.role, ven_id=record.ven_id
    )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": " ".join(sorted(granted)),
    }
    return JSONResponse(body, headers=_NO_STORE)
