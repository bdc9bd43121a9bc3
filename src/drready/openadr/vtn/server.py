"""Run the VTN under uvicorn with TLS (S1: TLS everywhere; C1).

Plain HTTP only with ``insecure_http=True`` (it prints
:func:`drready.security.tls.insecure_http_warning`); listening on every address (``0.0.0.0``,
``::``) only with ``allow_any_address=True``.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from drready.openadr.vtn.app import create_app
from drready.openadr.vtn.notify import Notifier
from drready.openadr.vtn.settings import VtnSettings
from drready.security.settings import SecuritySettings
from drready.security.tls import insecure_http_warning, uvicorn_ssl_kwargs, warn_insecure_http
from drready.security.tokens import ClientRegistry, TokenService

__all__ = ["run", "uvicorn_config"]

_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def uvicorn_config(
    settings: VtnSettings,
    registry: ClientRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: SecuritySettings | None = None,
    insecure_http: bool = False,
    allow_any_address: bool = False,
    tokens: TokenService | None = None,
    notifier: Notifier | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration :func:`run` serves (checked as described in the module)."""
    if host in _ANY_ADDRESS and not allow_any_address:
        raise ValueError(
            f"host: {host!r} listens on every interface; pass allow_any_address=True to do so"
        )
    ssl_kwargs: dict[str, Any] = {}
    if insecure_http:
        print(insecure_http_warning(), file=sys.stderr)
        warn_insecure_http()
    else:
        if tls is None or tls.cert_file is None or tls.key_file is None:
            raise ValueError(
                "tls: a VTN needs cert_file and key_file (see `drready certs`), "
                "or insecure_http=True for local experiments"
            )
        ssl_kwargs = dict(
            uvicorn_ssl_kwargs(
                tls.cert_file,
                tls.key_file,
                client_ca=tls.ca_file,
                require_client_cert=tls.require_client_cert,
            )
        )
    app = create_app(
        settings,
        registry,
        tokens if tokens is not None else settings.token_service(registry),
        notifier=notifier,
    )
    return uvicorn.Config(
        app, host=host, port=port, proxy_headers=False, server_header=False, **ssl_kwargs
    )


def run(
    settings: VtnSettings,
    registry: ClientRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: SecuritySettings | None = None,
    insecure_http: bool = False,
    allow_any_address: bool = False,
    notifier: Notifier | None = None,
) -> None:
    """Serve the VTN until interrupted."""
    config = uvicorn_config(
        settings,
        registry,
        host=host,
        port=port,
        tls=tls,
        insecure_http=insecure_http,
        allow_any_address=allow_any_address,
        notifier=notifier,
    )
    uvicorn.Server(config).run()
