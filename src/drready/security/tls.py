"""TLS settings for every drready interconnection (S1: encrypt and authenticate).

One policy for servers (VTN, maker cloud, webhook receivers) and clients (VENs, BL):

- TLS 1.2 or newer (:data:`MIN_TLS_VERSION`); TLS 1.3 suites are OpenSSL's fixed AEAD set.
- TLS 1.2 suites restricted to forward-secret AEAD: :data:`TLS12_CIPHERS` (ECDHE with
  AES-GCM or ChaCha20-Poly1305; Mozilla "intermediate" minus DHE), no compression, no
  renegotiation.
- Clients always verify the server's chain against a given CA file and its hostname (SAN).
- Mutual TLS is optional (``require_client_cert``); OAuth2 bearer tokens authenticate clients
  in any case (:mod:`drready.security.tokens`).

:func:`uvicorn_ssl_kwargs` expresses the same policy as uvicorn ``Config`` arguments. uvicorn
builds its own context and offers no minimum-version knob; the cipher string above only offers
TLS 1.2 suites, so TLS 1.0/1.1 cannot be negotiated through it either.

Plain HTTP is possible only when a server is started with ``--insecure-http``; it then prints
:func:`insecure_http_warning` and emits a :class:`PlainHttpWarning`.
"""

from __future__ import annotations

import ssl
import warnings
from os import PathLike
from typing import TypedDict

__all__ = [
    "INSECURE_HTTP_MESSAGE",
    "MIN_TLS_VERSION",
    "TLS12_CIPHERS",
    "PlainHttpWarning",
    "UvicornSslKwargs",
    "client_ssl_context",
    "insecure_http_warning",
    "server_ssl_context",
    "uvicorn_ssl_kwargs",
    "warn_insecure_http",
]

StrPath = str | PathLike[str]

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS"
"""OpenSSL cipher string for TLS 1.2: forward secrecy (ECDHE) and AEAD only."""

INSECURE_HTTP_MESSAGE = (
    "plain HTTP: credentials and DR data travel unencrypted; for local experiments only"
)


class PlainHttpWarning(UserWarning):
    """Emitted when a server or client runs without TLS (``--insecure-http``)."""


def insecure_http_warning() -> str:
    """The line a server prints when started with ``--insecure-http``."""
    return INSECURE_HTTP_MESSAGE


def warn_insecure_http(stacklevel: int = 2) -> None:
    """Emit :class:`PlainHttpWarning` with :func:`insecure_http_warning`."""
    warnings.warn(INSECURE_HTTP_MESSAGE, PlainHttpWarning, stacklevel=stacklevel + 1)


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = MIN_TLS_VERSION
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return ctx


def _check_client_auth(client_ca: StrPath | None, require_client_cert: bool) -> None:
    if require_client_cert and client_ca is None:
        raise ValueError("client_ca: required when require_client_cert=True")


def server_ssl_context(
    cert: StrPath,
    key: StrPath,
    *,
    client_ca: StrPath | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context: our certificate chain, TLS ≥ 1.2, optional client certificates.

    Parameters
    ----------
    cert, key : path
        PEM certificate (chain) and private key of the server.
    client_ca : path, optional
        PEM CA bundle that client certificates must chain to. Given alone, client certificates
        are requested and verified if presented (``CERT_OPTIONAL``).
    require_client_cert : bool
        Mutual TLS: the handshake fails without a client certificate from ``client_ca``.
    """
    _check_client_auth(client_ca, require_client_cert)
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(
    ca_file: StrPath, *, cert: StrPath | None = None, key: StrPath | None = None
) -> ssl.SSLContext:
    """A client-side context trusting ``ca_file`` only, verifying chain and hostname.

    Parameters
    ----------
    ca_file : path
        PEM CA bundle the server certificate must chain to (the system store is not used, so a
        VEN only talks to the VTN its operator configured).
    cert, key : path, optional
        Client certificate and key for mutual TLS. ``key`` may be omitted when ``cert`` holds
        both.
    """
    if key is not None and cert is None:
        raise ValueError("cert: required when key is given")
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # CERT_REQUIRED + check_hostname
    ctx.load_verify_locations(cafile=ca_file)
    if cert is not None:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    return ctx


class UvicornSslKwargs(TypedDict):
    """The TLS keyword arguments of ``uvicorn.Config`` / ``uvicorn.run``."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ca_certs: str | None
    ssl_cert_reqs: int
    ssl_ciphers: str


def uvicorn_ssl_kwargs(
    cert: StrPath,
    key: StrPath,
    *,
    client_ca: StrPath | None = None,
    require_client_cert: bool = False,
) -> UvicornSslKwargs:
    """The :func:`server_ssl_context` policy as ``uvicorn.Config(**kwargs)`` arguments.

    Examples
    --------
    >>> kw = uvicorn_ssl_kwargs("server.pem", "server-key.pem", client_ca="ca.pem",
    ...                         require_client_cert=True)
    >>> kw["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    True
    """
    _check_client_auth(client_ca, require_client_cert)
    if client_ca is None:
        reqs = ssl.CERT_NONE
    else:
        reqs = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return UvicornSslKwargs(
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_ca_certs=None if client_ca is None else str(client_ca),
        ssl_cert_reqs=int(reqs),
        ssl_ciphers=TLS12_CIPHERS,
    )
