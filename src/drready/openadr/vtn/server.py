"""Run the VTN under uvicorn with TLS (S1: TLS everywhere; C1).

Plain HTTP only with ``insecure_http=True`` (it prints
:func:`drready.security.tls.insecure_http_warning`); listening on every address (``0.0.0.0``,
``::`` and every other spelling of them: :mod:`drready.security.listen`) only with
``allow_any_address=True``.

Several worker processes (``workers > 1``): :func:`drready.openadr.vtn.workers.serve` starts
them and deals the accepted connections to them in turn (uvicorn's own ``--workers`` lets them
race for the socket, which loads them unevenly). Each worker starts from an import string, so
the workers build their app with :func:`app_from_env` from the settings (JSON in
``DRREADY_VTN_SETTINGS_JSON``) and the client registry and signing key (``DRREADY_CLIENTS_JSON``,
``DRREADY_TOKEN_KEY``), which :func:`run` puts in its own environment for them to inherit (the
registry holds only secret hashes; the environment of a process is readable by its user only).
The database schema is created once before the workers start. All state lives in the database,
so any worker answers any request; each worker runs its own notifier (webhooks, MQTT).

Push (issue 16): every served app gets the webhook notifier (:func:`attach_push`): callbacks
are echo-verified before a subscription is created, notifications are signed with the
subscriber's key derived from ``DRREADY_WEBHOOK_KEY`` (:func:`~drready.openadr.vtn.webhooks.
webhook_key_for`) and retried with backoff. A change is published by the one process that
committed it — the worker that served the request, from inside that request — so with
``workers > 1`` each object operation is notified exactly once, not once per worker (no
worker watches the database for changes). Without ``DRREADY_WEBHOOK_KEY`` a random key is made
once (in the supervisor, inherited by every worker) and a warning says that no VEN can check
the signatures.

Each serving process calls :func:`freeze_startup_heap` once its app is built: the objects of
the imported libraries and the app (hundreds of thousands: FastAPI, pydantic, SQLAlchemy) then
stay out of the cyclic garbage collector, whose full collections otherwise walked them all,
stopping the event loop ~60 ms every second or two under load (the p99 of ``POST /reports``).

Every server speaks uvicorn's httptools protocol through
:class:`drready.openadr.vtn.protocol.CoalescingHttpToolsProtocol`: an answer's headers and body
leave as one write (one TLS record, one system call) instead of two.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from drready.openadr.vtn.app import create_app, make_engine
from drready.openadr.vtn.notify import Notifier
from drready.openadr.vtn.protocol import GRACEFUL_SHUTDOWN_S, CoalescingHttpToolsProtocol
from drready.openadr.vtn.settings import VtnSettings
from drready.openadr.vtn.store import create_all
from drready.openadr.vtn.webhook_setup import attach_webhooks
from drready.openadr.vtn.webhooks import WebhookNotifier
from drready.openadr.vtn.workers import serve as serve_workers
from drready.security.listen import check_listen_address
from drready.security.settings import SecuritySettings
from drready.security.tls import insecure_http_warning, uvicorn_ssl_kwargs, warn_insecure_http
from drready.security.tokens import (
    ENV_CLIENTS_FILE,
    ENV_CLIENTS_JSON,
    ENV_TOKEN_ALG,
    ENV_TOKEN_KEY,
    ClientRegistry,
    TokenService,
    load_registry,
)

__all__ = [
    "ENV_SETTINGS_JSON",
    "ENV_WEBHOOK_KEY",
    "WORKERS_MAX",
    "app_from_env",
    "attach_push",
    "freeze_startup_heap",
    "run",
    "uvicorn_config",
    "webhook_master_key",
]

ENV_SETTINGS_JSON = "DRREADY_VTN_SETTINGS_JSON"
ENV_WEBHOOK_KEY = "DRREADY_WEBHOOK_KEY"
WEBHOOK_KEY_MIN_BYTES = 32
WEBHOOK_CLOSE_S = 5.0
"""At shutdown, how long queued webhook notifications may still be delivered [s] (within the
graceful-shutdown budget, :data:`~drready.openadr.vtn.protocol.GRACEFUL_SHUTDOWN_S`)."""
WORKERS_MAX = 64

_log = logging.getLogger("drready.openadr.vtn")


def webhook_master_key() -> bytes:
    """The VTN's webhook signing key from ``DRREADY_WEBHOOK_KEY``; made at random (and put in
    the environment, for worker processes to inherit) when it is not set.

    Raises
    ------
    ValueError
        The key is shorter than :data:`WEBHOOK_KEY_MIN_BYTES`.
    """
    text = os.environ.get(ENV_WEBHOOK_KEY)
    if not text:
        text = secrets.token_urlsafe(WEBHOOK_KEY_MIN_BYTES)
        os.environ[ENV_WEBHOOK_KEY] = text
        _log.warning(
            "%s is not set: webhook notifications are signed with a random key no VEN can "
            "check (they still carry the subscription's bearerToken)",
            ENV_WEBHOOK_KEY,
        )
    key = text.encode()
    if len(key) < WEBHOOK_KEY_MIN_BYTES:
        raise ValueError(
            f"{ENV_WEBHOOK_KEY}: must be at least {WEBHOOK_KEY_MIN_BYTES} bytes, got {len(key)}"
        )
    return key


def attach_push(app: FastAPI, settings: VtnSettings) -> WebhookNotifier:
    """Install the webhook notifier on a built VTN app (see the module docstring); the MQTT
    binding, when configured, keeps receiving every change."""
    if settings.allow_private_callbacks:
        _log.warning(
            "callback URLs on loopback/private/link-local addresses are allowed "
            "(--allow-private-callbacks): the SSRF guard of webhooks is off"
        )
    notifier = attach_webhooks(
        app,
        signing_key=webhook_master_key(),
        verify=settings.callback_ca_file or True,
        allow_private_callbacks=settings.allow_private_callbacks,
        per_client_keys=True,
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[Any]:
        async with inner(served) as state:
            try:
                yield state
            finally:  # deliver what is queued before the store closes (within the grace)
                await asyncio.to_thread(notifier.close, WEBHOOK_CLOSE_S)

    app.router.lifespan_context = lifespan
    return notifier


def freeze_startup_heap() -> None:
    """Collect garbage, then move every surviving object to the collector's permanent
    generation (:func:`gc.freeze`): call once in a serving process, after building the app.

    Later full collections then walk only the objects created since (2–3 ms instead of ~60 ms
    measured in a VTN worker). The frozen objects are the long-lived ones (modules, the app,
    its caches); they are still freed by reference counting, only never scanned for cycles.
    """
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """uvicorn factory of a worker process: the VTN from the environment :func:`run` set."""
    raw = os.environ.get(ENV_SETTINGS_JSON)
    if not raw:
        raise RuntimeError(f"{ENV_SETTINGS_JSON} is not set: start workers with vtn.server.run")
    settings = VtnSettings.model_validate_json(raw)
    registry = load_registry(env=os.environ)
    app = create_app(settings, registry, settings.token_service(registry))
    attach_push(app, settings)
    freeze_startup_heap()
    return app


def _check_host(host: str, allow_any_address: bool) -> None:
    """Refuse every spelling of "every interface" unless allowed (security.listen)."""
    check_listen_address(host, allow_any_address=allow_any_address, field="host")


def _ssl_kwargs(tls: SecuritySettings | None, insecure_http: bool) -> dict[str, Any]:
    if insecure_http:
        print(insecure_http_warning(), file=sys.stderr)
        warn_insecure_http()
        return {}
    if tls is None or tls.cert_file is None or tls.key_file is None:
        raise ValueError(
            "tls: a VTN needs cert_file and key_file (see `drready certs`), "
            "or insecure_http=True for local experiments"
        )
    return dict(
        uvicorn_ssl_kwargs(
            tls.cert_file,
            tls.key_file,
            client_ca=tls.ca_file,
            require_client_cert=tls.require_client_cert,
        )
    )


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
    _check_host(host, allow_any_address)
    ssl_kwargs = _ssl_kwargs(tls, insecure_http)
    app = create_app(
        settings,
        registry,
        tokens if tokens is not None else settings.token_service(registry),
        notifier=notifier,
    )
    attach_push(app, settings)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        http=CoalescingHttpToolsProtocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **ssl_kwargs,
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
    workers: int = 1,
) -> None:
    """Serve the VTN until interrupted, in ``workers`` processes (1–:data:`WORKERS_MAX`).

    Raises
    ------
    ValueError
        ``workers`` out of range; with several workers: a custom ``notifier`` (each worker
        builds its own), an in-memory SQLite database (one per process) or a binary signing
        key; the checks of :func:`uvicorn_config`.
    """
    if not 1 <= workers <= WORKERS_MAX:
        raise ValueError(f"workers: must be within 1–{WORKERS_MAX}, got {workers}")
    if workers > 1:
        if notifier is not None:
            raise ValueError("notifier: a custom notifier needs workers=1")
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError(
                "database_url: an in-memory SQLite database is one per process; several "
                "workers need a file (sqlite:///FILE) or PostgreSQL"
            )
        signing_key = registry.signing_key
        if signing_key is None:
            raise ValueError("registry: a signing key is needed to serve (see DRREADY_TOKEN_KEY)")
        try:
            key_text = signing_key.decode() if isinstance(signing_key, bytes) else signing_key
        except UnicodeDecodeError as err:
            raise ValueError(
                "registry: several workers need a text signing key (token_urlsafe or PEM)"
            ) from err
        _check_host(host, allow_any_address)
        ssl_kwargs = _ssl_kwargs(tls, insecure_http)
        webhook_master_key()  # once here, so that every worker signs with the same key
        engine = make_engine(settings.database_url)
        create_all(engine)  # once here: workers creating tables at the same time would race
        engine.dispose()
        os.environ[ENV_SETTINGS_JSON] = settings.model_dump_json()
        os.environ[ENV_CLIENTS_JSON] = registry.dumps("json")
        os.environ[ENV_TOKEN_KEY] = key_text
        os.environ[ENV_TOKEN_ALG] = registry.algorithm
        os.environ.pop(ENV_CLIENTS_FILE, None)  # the JSON above is what the workers load
        config = uvicorn.Config(
            "drready.openadr.vtn.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            proxy_headers=False,
            server_header=False,
            http=CoalescingHttpToolsProtocol,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            **ssl_kwargs,
        )
        exit_code = serve_workers(config, workers)
        if exit_code:
            raise SystemExit(exit_code)
        return
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
    freeze_startup_heap()
    StoppingServer(config).run()


class StoppingServer(uvicorn.Server):
    """uvicorn's server, for which SIGTERM/SIGINT is the ordinary, clean way to stop.

    uvicorn (≥ 0.29) re-raises the captured signal after its graceful shutdown, so the process
    ends "killed by SIGTERM" (exit status −15) even when every request finished; the dealt-worker
    supervisor (:mod:`~drready.openadr.vtn.workers`) exits 0 after the same stop. Here the stop
    a signal asked for is complete when :meth:`run` returns, and the process exits 0 as well.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()
