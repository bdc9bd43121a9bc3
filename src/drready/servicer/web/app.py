"""The running servicer's web application: north-bound API, token endpoint, live dashboard,
health and metrics in one FastAPI app (U1, U2, D3, S1; issue 11 item 2).

:func:`create_app` builds it from its arguments (nothing at import time):

* ``POST /auth/token``, ``GET /auth/server`` — OAuth2 client credentials, the VTN's own route
  module (:mod:`drready.openadr.vtn.routes.auth`: form or JSON body or HTTP Basic, throttle and
  lockout per address and client, scrypt in a bounded low-priority thread) on this API's client
  registry and token service (:mod:`drready.servicer.web.auth`);
* ``/api/v1/…`` — the API (:mod:`drready.servicer.web.api`);
* ``/dashboard/`` — the live dashboard (:mod:`drready.servicer.web.dashboard`) over the orders
  and the registry; ``/`` redirects to it;
* ``GET /healthz`` — 200 while the process runs and its database answers (503 otherwise), with
  the last successful VTN contact, the schedule's last job and the clock;
* ``GET /metrics`` — Prometheus text (:mod:`drready.servicer.metrics`);
* ``GET /openapi.json`` and ``GET /docs`` — the API's OpenAPI document and its viewer.

* ``GET/POST /login``, ``POST /logout`` — the operators' login (:mod:`drready.servicer.web.login`):
  the dashboard and every operator page need a session cookie, every state change there a CSRF
  token; who an operator is comes from one :class:`~drready.servicer.web.login.
  OperatorAuthenticator` (the operators file by default, an OIDC provider by design).

Health, metrics and the API's documents need no token (bind the service to an internal address,
as the CLI does by default); every ``/api/v1`` operation needs a bearer token (no cookies).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from drready.domain import DEFAULT_TZ
from drready.domain.clock import Clock
from drready.domain.time import zone
from drready.openadr.vtn.deps import VerifiedTokens
from drready.openadr.vtn.routes import auth as token_routes
from drready.openadr.vtn.settings import VtnSettings
from drready.security.limits import BodySizeLimit
from drready.security.sessions import SessionSigner
from drready.security.throttle import TokenThrottle, TokenThrottleSettings
from drready.security.tokens import ClientRegistry, TokenService
from drready.security.verify_pool import BoundedVerifier
from drready.servicer.metrics import CONTENT_TYPE, ServicerMetrics
from drready.servicer.service import Servicer
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.api import ApiContext, api_router, install_api_error_handlers
from drready.servicer.web.dashboard import DashboardSnapshot, dashboard_router
from drready.servicer.web.login import (
    LOGIN_THROTTLE,
    OperatorAuthenticator,
    PasswordFileAuthenticator,
    install_operator_login,
    operator_bar,
)
from drready.servicer.web.snapshot import build_snapshot, order_window_rows

__all__ = ["MAX_BODY_BYTES", "ServiceState", "create_app"]

#: Largest request body [B]: a meter post of a month of slots for ~100 resources.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Orders the dashboard shows (the most recent windows).
_DASHBOARD_ORDERS = 20


@dataclass
class ServiceState:
    """What the running service tells ``/healthz`` (the runner updates it)."""

    program_id: str | None = None
    """The BL's program on the VTN, once the servicer reached it."""
    vtn_error: str | None = None
    """The last VTN error of the schedule, cleared by a successful job."""
    last_job: str | None = None
    last_job_at: datetime | None = None
    last_job_ok: bool | None = None
    running_job: str | None = None
    stopping: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def create_app(
    *,
    store: ServicerStore,
    servicer: Servicer,
    clock: Clock,
    registry: ClientRegistry,
    tokens: TokenService,
    base_url: str,
    metrics: ServicerMetrics,
    state: ServiceState,
    tz: str = DEFAULT_TZ,
    dashboard_poll_s: float = 2.0,
    token_throttle: TokenThrottleSettings | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    operators: OperatorAuthenticator | None = None,
    session_key: bytes | None = None,
    secure_cookies: bool = True,
    session_ttl_s: int = 8 * 3600,
    login_throttle: TokenThrottleSettings = LOGIN_THROTTLE,
) -> FastAPI:
    """The servicer's web app (see the module docstring).

    ``clock`` is the process clock (its ``scale`` shown by ``/healthz``); ``tokens`` must use
    the API's policy and audience (:mod:`drready.servicer.web.auth`); ``base_url`` is the public
    URL announced by ``GET /auth/server``. ``operators`` says who may log in to the dashboard
    (``None``: no one — the pages stay closed); ``session_key`` signs the session cookies (from
    the state directory; ``None``: a random key, sessions end with the process);
    ``secure_cookies`` when served over TLS; ``login_throttle`` limits the operators' login
    attempts (per address and per name).
    """
    throttling = token_throttle or TokenThrottleSettings()
    verifier = BoundedVerifier(
        throttling.verify_threads, throttling.verify_queue_max, throttling.verify_nice
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            verifier.close()

    app = FastAPI(
        title="drready DR servicer API",
        version="1.0.0",
        description=(
            "The aggregator's north-bound API: orders (up/down DR in a window), their status "
            "and deliveries per route (route i: home gateways, route ii: maker clouds), the "
            "portfolio's potential, settlements from 30-minute meter data, meter readings. "
            "OAuth2 client credentials at /auth/token; scopes orders:write, orders:read, "
            "portfolio:read, settlements:read, meter:write."
        ),
        lifespan=lifespan,
    )
    # the token route reads these (drready.openadr.vtn.routes.auth): this API's registry and
    # tokens, and a settings object carrying only what that route uses — the announced token
    # URL and the throttle
    app.state.settings = VtnSettings(
        database_url="sqlite://", base_url=base_url, token_throttle=throttling
    )
    app.state.registry = registry
    app.state.tokens = tokens
    app.state.verified_tokens = VerifiedTokens(tokens)
    app.state.token_throttle = TokenThrottle(throttling)
    app.state.secret_verifier = verifier
    app.state.api = ApiContext(store=store, servicer=servicer, now=clock.now, tz=tz)
    install_api_error_handlers(app)
    login = install_operator_login(
        app,
        authenticator=operators
        or PasswordFileAuthenticator(None, BoundedVerifier(1, 0, throttling.verify_nice)),
        sessions=SessionSigner(session_key or secrets.token_bytes(32), ttl_s=session_ttl_s),
        secure=secure_cookies,
        throttle=login_throttle,
    )
    app.include_router(token_routes.router)
    app.include_router(api_router())
    local = zone(tz)

    def snapshot() -> DashboardSnapshot:
        now = clock.now().astimezone(local)
        orders = store.list_orders(limit=_DASHBOARD_ORDERS, tz=tz)
        return build_snapshot(
            servicer,
            order_window_rows(orders, local),
            None,
            run_state="finished" if state.stopping else "running",
            now=now,
        )

    async def snapshot_async() -> DashboardSnapshot:
        return await asyncio.to_thread(snapshot)

    app.include_router(
        dashboard_router(
            snapshot_async, poll_interval_s=dashboard_poll_s, operator_bar=operator_bar(login)
        ),
        prefix="/dashboard",
    )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/healthz", tags=["operations"], summary="Process, database and VTN contact")
    def healthz() -> JSONResponse:
        database = "ok"
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as err:  # any driver error means: not reachable
            database = f"unreachable: {type(err).__name__}"
        last = metrics.last_vtn_success_at
        body = {
            "status": "ok" if database == "ok" else "unavailable",
            "database": database,
            "vtn": {
                "url": servicer.bl.base_url,
                "last_success_at": None if last is None else last.astimezone(local).isoformat(),
                "last_success_unix_s": metrics.last_vtn_success_s,
                "program_id": state.program_id,
                "last_error": state.vtn_error,
            },
            "scheduler": {
                "running_job": state.running_job,
                "last_job": state.last_job,
                "last_job_at": None
                if state.last_job_at is None
                else state.last_job_at.astimezone(local).isoformat(),
                "last_job_ok": state.last_job_ok,
                "stopping": state.stopping,
            },
            "clock": {
                "now": clock.now().astimezone(local).isoformat(),
                "scale": float(getattr(clock, "scale", 1.0)),
            },
        }
        return JSONResponse(body, status_code=200 if database == "ok" else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes)
    return app
