"""The VTN application factory (C1: the DR servicer's OpenADR 3.1 server; S1: tokens, privacy,
body limit; D6: ven/resource grouping).

:func:`create_app` builds everything from its arguments — engine, tables, routers, error
handlers, body-size limit, the fast paths of the two hottest requests
(:mod:`drready.openadr.vtn.fastpath`) — so one process can hold several VTNs (tests run the
same suite on SQLite and PostgreSQL) and nothing happens at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from drready.openadr.vtn.checkpoint import AUTOCHECKPOINT_BACKSTOP_PAGES, WalCheckpointer
from drready.openadr.vtn.deps import VerifiedTokens
from drready.openadr.vtn.errors import install_error_handlers
from drready.openadr.vtn.fastpath import FastPaths
from drready.openadr.vtn.mqtt import MqttNotifier, attach_mqtt
from drready.openadr.vtn.notify import Notifier, NullNotifier
from drready.openadr.vtn.routes import (
    auth,
    events,
    notifiers,
    programs,
    reports,
    resources,
    subscriptions,
    vens,
)
from drready.openadr.vtn.settings import VtnSettings
from drready.openadr.vtn.store import RawStore, create_all, wire_json
from drready.security.files import create_private_file
from drready.security.limits import BodySizeLimit
from drready.security.throttle import TokenThrottle
from drready.security.tokens import ClientRegistry, TokenService
from drready.security.verify_pool import BoundedVerifier

__all__ = ["create_app", "make_engine"]


def make_engine(database_url: str) -> Engine:
    """A SQLAlchemy engine for SQLite (thread-shared) or PostgreSQL (pre-pinged pool).

    JSON columns are written with :func:`~drready.openadr.vtn.store.wire_json`, so a stored
    body is the exact text the API answers for it. A SQLite file that does not exist yet is
    created first with mode 0600 (its missing directories 0700), so neither the database nor
    its ``-wal``/``-shm`` files are ever readable by other users
    (:func:`drready.security.files.create_private_file`).
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"json_serializer": wire_json}
    sqlite_file = False
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if url.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            sqlite_file = True
            if not url.database.startswith("file:"):  # a plain path, not a SQLite URI
                create_private_file(Path(url.database))
            # one connection per concurrent request: a small pool starves under load while
            # finished requests still hold their connection
            kwargs.update(pool_size=32, max_overflow=64, pool_timeout=10, pool_use_lifo=True)
    else:
        kwargs["pool_pre_ping"] = True
        kwargs.update(pool_size=16, max_overflow=32, pool_timeout=10)
    engine = create_engine(url, **kwargs)
    if sqlite_file:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL: readers never wait for the writer; NORMAL sync is durable in WAL mode except
            # for the last transactions on power loss, and never corrupts the file
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            # checkpoints run in WalCheckpointer's thread, not inside request commits
            cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_BACKSTOP_PAGES}")
            cursor.close()

    return engine


def create_app(
    settings: VtnSettings,
    registry: ClientRegistry,
    tokens: TokenService,
    *,
    notifier: Notifier | None = None,
    mqtt_notifier: MqttNotifier | None = None,
) -> FastAPI:
    """Build the VTN.

    Parameters
    ----------
    settings : VtnSettings
        Database URL, public base URL, body limit, page size.
    registry : ClientRegistry
        The OAuth2 clients (``POST /auth/token`` authenticates against it).
    tokens : TokenService
        Issues and verifies the access tokens.
    notifier : Notifier, optional
        Receives every committed change (default :class:`NullNotifier`).
    mqtt_notifier : MqttNotifier, optional
        Only with ``settings.mqtt_broker_url``: the MQTT publisher (default: one for that URL,
        reading the ven grants from this VTN's store); composed with ``notifier``.

    Returns
    -------
    FastAPI
        ``app.state`` holds ``settings``, ``registry``, ``tokens``, ``notifier``, ``engine``,
        ``sessionmaker`` and ``raw_store`` (:class:`~drready.openadr.vtn.store.RawStore`, the
        hot routes' statements), ``token_throttle`` and ``secret_verifier`` (the token
        endpoint's :class:`~drready.security.throttle.TokenThrottle` and
        :class:`~drready.security.verify_pool.BoundedVerifier`), and ``mqtt_notifier`` with
        MQTT. While the app runs (its
        lifespan), a SQLite file database gets background WAL checkpoints
        (:class:`~drready.openadr.vtn.checkpoint.WalCheckpointer`); at shutdown they stop,
        the engine is disposed and the MQTT notifier closed.
    """
    engine = make_engine(settings.database_url)
    create_all(engine)
    url = engine.url
    checkpointer = (
        WalCheckpointer(url.database)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if checkpointer is not None:
            checkpointer.start()
        try:
            yield
        finally:
            if checkpointer is not None:
                checkpointer.stop()
            app.state.secret_verifier.close()
            mqtt: MqttNotifier | None = getattr(app.state, "mqtt_notifier", None)
            if mqtt is not None:
                mqtt.close()
            engine.dispose()

    app = FastAPI(
        title="drready OpenADR 3.1 VTN",
        version="3.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.tokens = tokens
    app.state.verified_tokens = VerifiedTokens(tokens)
    throttling = settings.token_throttle
    app.state.token_throttle = TokenThrottle(throttling)
    app.state.secret_verifier = BoundedVerifier(
        throttling.verify_threads, throttling.verify_queue_max, throttling.verify_nice
    )
    app.state.notifier = notifier if notifier is not None else NullNotifier()
    app.state.engine = engine
    app.state.raw_store = RawStore(engine)
    app.state.sessionmaker = sessionmaker(engine, expire_on_commit=False)
    if settings.mqtt_broker_url is not None:
        attach_mqtt(app, mqtt_notifier)
    elif mqtt_notifier is not None:
        raise ValueError("mqtt_notifier needs settings.mqtt_broker_url (the announced broker)")
    install_error_handlers(app)
    for module in (programs, events, reports, subscriptions, vens, resources, auth, notifiers):
        app.include_router(module.router)
    # added first, so it runs inside the body limit (the last added middleware is the outermost)
    app.add_middleware(FastPaths)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    return app
