"""``drready servicer run``: the aggregator's long-running service — the VTN's BL on its own
database, a schedule in local time, the north-bound API, the dashboard, health and metrics, in
one asyncio process (U1, U2, D3, D5, F1, F2, F5, S1; issue 11 items 2, 4, 6).

:func:`serve` runs until SIGTERM or SIGINT:

* **the BL** (:class:`~drready.servicer.service.Servicer`) over an observed client of the VTN
  (:func:`~drready.servicer.bl.observed_bl_client`: latency and last contact in the metrics),
  on its store (SQLite by default, PostgreSQL by URL; migrated at start). Until the VTN answers
  it retries; once it does, :meth:`Servicer.resume` sends whatever was decided but not sent
  before the last stop (a killed servicer resumes from its database).
* **the schedule** (:mod:`drready.servicer.core.schedule`) on the process clock
  (:func:`drready.domain.clock.clock_from_env`: the wall clock, or the :class:`ScaledClock`
  every process shares through ``DRREADY_CLOCK``; every wait is converted to wall seconds with
  ``clock.wall_seconds``):

  ============== ==================== =====================================================
  job            when (default)       what
  ============== ==================== =====================================================
  ``sync``       every 10 min         VENs and resources from the VTN into the registry
  ``potential``  07:00 and 13:00      ask the potential for the next day's windows
                                      (10:00–14:00, 17:00–20:00): the day-ahead collection;
                                      and the windows of the run's own day still ahead
                                      (:func:`day_ahead_windows`)
  ``orders``     every 30 s           each order one step on (:class:`~drready.servicer.
                                      orders.OrderDesk`): potential for its window, dispatch,
                                      follow-up and re-dispatch of shortfall, status; new
                                      answers to open potential requests stored
  ``power``      every 60 s           F5 power reports of the orders whose window runs
  ``settlement`` 10:00                closed dispatches settled from the meter history
                                      (:func:`~drready.servicer.settling.settle_due`), old
                                      readings pruned
  ============== ==================== =====================================================

  A job that fails (the VTN away, a database error) is logged, counted and retried after
  ``retry_after``; a missed run (the servicer was down) is caught up once.
* **the web app** (:func:`drready.servicer.web.app.create_app`) under uvicorn in the same event
  loop, over HTTPS by default; its dashboard behind the operators' login
  (:mod:`drready.servicer.web.login`: the operators file, a session key in the state
  directory), with the VTN's protocol class
  (:class:`~drready.openadr.vtn.protocol.CoalescingHttpToolsProtocol`: idle TLS keep-alive
  clients cannot hold a stop) and its bounded graceful phase
  (:data:`~drready.openadr.vtn.protocol.GRACEFUL_SHUTDOWN_S`).

**Stop.** SIGTERM or SIGINT: the schedule finishes the job in progress (cancelled after
``stop_grace_s``), the web server stops taking connections and finishes the requests in flight,
the clients and the database are closed, and :func:`serve` returns 0 — within 10 s. A second
SIGINT forces the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from drready.domain import DEFAULT_TZ
from drready.domain.clock import ENV_CLOCK, ScaledClock, WallClock
from drready.domain.time import zone
from drready.openadr.ven import VenError
from drready.openadr.vtn.protocol import GRACEFUL_SHUTDOWN_S, CoalescingHttpToolsProtocol
from drready.security.listen import check_listen_address
from drready.security.operators import OperatorFile
from drready.security.sessions import load_or_create_session_key
from drready.security.tls import insecure_http_warning, uvicorn_ssl_kwargs, warn_insecure_http
from drready.security.tokens import ClientRegistry
from drready.security.verify_pool import BoundedVerifier
from drready.servicer.bl import observed_bl_client
from drready.servicer.core.schedule import DailyJob, Due, JobState, PeriodicJob, Schedule
from drready.servicer.metrics import ServicerMetrics
from drready.servicer.orders import OrderDesk
from drready.servicer.service import Servicer
from drready.servicer.settling import settle_due
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.app import ServiceState, create_app
from drready.servicer.web.auth import AUDIENCE
from drready.servicer.web.login import LOGIN_THROTTLE, PasswordFileAuthenticator

__all__ = ["ServiceConfig", "day_ahead_windows", "serve"]

_log = logging.getLogger("drready.servicer.run")

#: How long the answers to a day-ahead potential request are collected.
_POTENTIAL_HORIZON = timedelta(days=1)
#: Shortest wall-clock wait between two looks at the schedule [s] (a fast clock would spin).
_MIN_WAIT_S = 0.01
#: Longest wall-clock wait before retrying a VTN that did not answer at start [s].
_CONNECT_RETRY_S = 5.0


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``drready servicer run`` is told (its flags); durations are on the process
    clock (simulated under a scaled clock)."""

    vtn_url: str
    vtn_client_id: str
    vtn_client_secret: str = field(repr=False)
    database_url: str
    vtn_ca_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 8444
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_http: bool = False
    allow_any_address: bool = False
    base_url: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)
    potential_at: tuple[time, ...] = (time(7), time(13))
    potential_windows: tuple[tuple[time, time], ...] = ((time(10), time(14)), (time(17), time(20)))
    settle_at: tuple[time, ...] = (time(10),)
    tick: timedelta = timedelta(seconds=30)
    power_every: timedelta = timedelta(seconds=60)
    sync_every: timedelta = timedelta(minutes=10)
    potential_wait: timedelta = timedelta(minutes=10)
    response_timeout: timedelta = timedelta(minutes=15)
    max_rounds: int = 3
    retry_after: timedelta = timedelta(minutes=1)
    vtn_timeout_s: float = 10.0
    stop_grace_s: float = 5.0
    dashboard_poll_s: float = 2.0
    access_log: bool = False
    token_ttl_s: int = 300
    operators_file: Path | None = None
    """Who may log in to the dashboard (``None``: no one; the pages stay closed)."""
    state_dir: Path | None = None
    """Where the service keeps its own keys (the session key); ``None``: sessions end with
    the process."""
    session_ttl_s: int = 8 * 3600
    tz: str = DEFAULT_TZ

    @property
    def public_url(self) -> str:
        scheme = "http" if self.insecure_http else "https"
        return self.base_url or f"{scheme}://{self.host}:{self.port}"

    def schedule(self) -> Schedule:
        """The service's schedule (see the module docstring)."""
        return Schedule(
            (
                PeriodicJob("sync", self.sync_every),
                DailyJob("potential", self.potential_at),
                PeriodicJob("orders", self.tick),
                PeriodicJob("power", self.power_every),
                DailyJob("settlement", self.settle_at),
            ),
            tz=self.tz,
            retry_after=self.retry_after,
        )


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: :func:`serve` handles the signals
    and stops the schedule and the server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _uvicorn_config(config: ServiceConfig, app: Any) -> uvicorn.Config:
    check_listen_address(config.host, allow_any_address=config.allow_any_address, field="--host")
    ssl: dict[str, Any] = {}
    if config.insecure_http:
        print(insecure_http_warning(), file=sys.stderr)
        warn_insecure_http()
    else:
        if config.cert_file is None or config.key_file is None:
            raise ValueError("--cert/--key: HTTPS needs a certificate and key")
        ssl = dict(uvicorn_ssl_kwargs(config.cert_file, config.key_file))
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        proxy_headers=False,
        server_header=False,
        http=CoalescingHttpToolsProtocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        log_config=None,
        access_log=config.access_log,
        lifespan="on",
        **ssl,
    )


def day_ahead_windows(
    due_at: datetime,
    now: datetime,
    windows: tuple[tuple[time, time], ...],
    tz: str = DEFAULT_TZ,
) -> list[tuple[datetime, datetime]]:
    """The windows a potential run asks for: each of ``windows`` on the day of ``due_at`` (the
    instant the run is *for*) and on the day after, if it has not begun at ``now``.

    The day after is the day-ahead collection. The run's own day is its intraday refresh: at
    13:00 the evening window's potential is asked again, after the noon up-DR has filled the
    tanks, so an order for it is sized on what the units can still shed. A run caught up late
    asks for the windows still ahead of the run it stands for — the servicer brought up at
    05:00 after missing 13:00 and 23:00 of the day before asks for today's 10:00 and 17:00.

    >>> from zoneinfo import ZoneInfo
    >>> jst = ZoneInfo("Asia/Tokyo")
    >>> w = ((time(10), time(14)), (time(17), time(20)))
    >>> def at(d, h, m=0):
    ...     return datetime(2026, 5, d, h, m, tzinfo=jst)
    >>> [s.strftime("%d %H") for s, _ in day_ahead_windows(at(14, 7), at(14, 7), w)]
    ['14 10', '14 17', '15 10', '15 17']
    >>> [s.strftime("%d %H") for s, _ in day_ahead_windows(at(14, 13), at(14, 13), w)]
    ['14 17', '15 10', '15 17']
    >>> [s.strftime("%d %H") for s, _ in day_ahead_windows(at(13, 23), at(14, 5), w)]
    ['14 10', '14 17']
    >>> night = ((time(22), time(2)),)
    >>> [(s.day, e.day) for s, e in day_ahead_windows(at(14, 23), at(14, 23), night)]
    [(15, 16)]
    """
    zone_ = zone(tz)
    day = due_at.astimezone(zone_).date()
    out = []
    for d in (day, day + timedelta(days=1)):
        for start_t, end_t in windows:
            start = datetime.combine(d, start_t, tzinfo=zone_)
            end = datetime.combine(
                d + timedelta(days=1 if end_t <= start_t else 0), end_t, tzinfo=zone_
            )
            if start > now:
                out.append((start, end))
    return out


class _Service:
    """The running service's parts and its schedule loop."""

    def __init__(
        self,
        config: ServiceConfig,
        registry: ClientRegistry,
        clock: WallClock | ScaledClock,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = ServicerStore.open(config.database_url)
        self.metrics = ServicerMetrics(self.store, now=clock.now)
        self.bl = observed_bl_client(
            config.vtn_url,
            config.vtn_client_id,
            config.vtn_client_secret,
            ca_file=config.vtn_ca_file,
            observe=self.metrics.observe_vtn,
            timeout_s=config.vtn_timeout_s,
            allow_insecure_http=config.vtn_url.startswith("http://"),
        )
        self.servicer = Servicer(
            self.bl,
            self.store,
            clock=clock.now,
            routes=config.routes,
            response_timeout=config.response_timeout,
            max_rounds=config.max_rounds,
        )
        self.desk = OrderDesk(self.servicer, potential_wait=config.potential_wait, step=config.tick)
        self.state = ServiceState()
        self.schedule = config.schedule()
        self.states: dict[str, JobState] = {
            name: JobState(r.last_due_at, r.last_attempt_at, r.last_ok)
            for name, r in self.store.job_records().items()
        }
        tokens = registry.token_service(
            config.public_url, ttl_s=config.token_ttl_s, audience=AUDIENCE
        )
        self.login_verifier = BoundedVerifier(1, LOGIN_THROTTLE.verify_queue_max)
        operators = PasswordFileAuthenticator(
            None if config.operators_file is None else OperatorFile(config.operators_file),
            self.login_verifier,
        )
        if config.operators_file is None:
            _log.warning(
                "no --operators-file: the dashboard is closed to everyone (add an operator with "
                "`drready servicer operator add NAME --operators-file FILE`)"
            )
        self.app = create_app(
            store=self.store,
            servicer=self.servicer,
            clock=clock,
            registry=registry,
            tokens=tokens,
            base_url=config.public_url,
            metrics=self.metrics,
            state=self.state,
            tz=config.tz,
            dashboard_poll_s=config.dashboard_poll_s,
            operators=operators,
            session_key=None
            if config.state_dir is None
            else load_or_create_session_key(config.state_dir),
            secure_cookies=not config.insecure_http,
            session_ttl_s=config.session_ttl_s,
        )
        self.jobs: dict[str, Callable[[datetime], Awaitable[Any]]] = {
            "sync": self._sync,
            "potential": self._potential,
            "orders": self._orders,
            "power": self.desk.collect_power,
            "settlement": self._settle,
        }

    # -------------------------------------------------------------------- jobs
    async def _sync(self, now: datetime) -> None:
        asked = await self.servicer.sync_resources()
        _log.info("registry synced: %d resources", len(asked), extra={"job": "sync"})

    async def _potential(self, now: datetime, due_at: datetime | None = None) -> None:
        windows = self.config.potential_windows
        for start, end in day_ahead_windows(due_at or now, now, windows, self.config.tz):
            request_id = await self.servicer.ask_potential(start, end)
            _log.info(
                "day-ahead potential asked for %s–%s",
                start.isoformat(),
                end.isoformat(),
                extra={"job": "potential", "event_id": request_id},
            )

    async def _orders(self, now: datetime) -> None:
        await self.desk.collect_potentials(now, _POTENTIAL_HORIZON)
        await self.desk.step(now)

    async def _settle(self, now: datetime) -> None:
        resources = self.servicer.registry.list_resources()
        settled = await asyncio.to_thread(
            settle_due, self.store, resources, now=now, tz=self.config.tz
        )
        orders = [self.store.order_by_dispatch(d) for d in settled]
        self.desk.refresh_figures([o.id for o in orders if o is not None], now)
        _log.info("settlement: %d dispatches settled", len(settled), extra={"job": "settlement"})

    # -------------------------------------------------------------------- loop
    async def _connect(self, stop: asyncio.Event) -> bool:
        """Reach the VTN (program, resend what is pending); False if stopped first."""
        while not stop.is_set():
            try:
                await self.servicer.resume()
                self.state.program_id = self.servicer.program_id
                self.state.vtn_error = None
                _log.info("connected to the VTN at %s", self.config.vtn_url)
                return True
            except (VenError, SQLAlchemyError, ValueError) as err:
                self.state.vtn_error = str(err)[:500]
                _log.warning("VTN not reachable yet: %s", err)
            wait_s = min(self.clock.wall_seconds(self.config.retry_after.total_seconds()), 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(wait_s, _MIN_WAIT_S))
        return False

    async def _run_job(self, due: Due) -> None:
        now = self.clock.now()
        self.state.running_job = due.name
        ok, error = True, None
        try:
            if due.name == "potential":  # for the instant it is due for (a catch-up)
                await self._potential(now, due.due_at)
            else:
                await self.jobs[due.name](now)
        except (VenError, SQLAlchemyError, ValueError) as err:
            ok, error = False, f"{type(err).__name__}: {err}"
            _log.warning("job %s failed: %s", due.name, error, extra={"job": due.name})
        except Exception as err:  # a bug must not end the service: logged, counted, retried
            ok, error = False, f"{type(err).__name__}: {err}"
            _log.exception("job %s failed", due.name, extra={"job": due.name})
        finally:
            self.state.running_job = None
        record = self.store.record_job_run(
            name=due.name, due_at=due.due_at, attempted_at=now, ok=ok, error=error
        )
        self.states[due.name] = JobState(record.last_due_at, record.last_attempt_at, ok)
        self.metrics.job_done(due.name, ok=ok)
        self.state.last_job, self.state.last_job_at, self.state.last_job_ok = due.name, now, ok
        if ok and due.name in ("sync", "orders"):
            self.state.vtn_error = None
        elif not ok:
            self.state.vtn_error = error

    async def run_schedule(self, stop: asyncio.Event) -> None:
        """Run the due jobs until ``stop`` is set (the job in progress finishes)."""
        if not await self._connect(stop):
            return
        while not stop.is_set():
            now = self.clock.now()
            for due in self.schedule.due(now, self.states):
                if stop.is_set():
                    return
                await self._run_job(due)
            now = self.clock.now()
            wake = self.schedule.next_wake(now, self.states)
            wait_s = max(self.clock.wall_seconds((wake - now).total_seconds()), _MIN_WAIT_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)

    async def close(self) -> None:
        self.login_verifier.close()
        await self.bl.close()
        self.store.close()


async def serve(
    config: ServiceConfig, registry: ClientRegistry, clock: WallClock | ScaledClock
) -> int:
    """Run the service until SIGTERM/SIGINT (see the module docstring); returns the exit status
    (0 after a clean stop, 1 if the web server could not start)."""
    service = _Service(config, registry, clock)
    server = _Server(_uvicorn_config(config, service.app))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            _log.warning("second %s: forcing the stop", signal.Signals(signum).name)
            server.force_exit = True
            schedule_task.cancel()
            return
        _log.info("%s: stopping", signal.Signals(signum).name)
        service.state.stopping = True
        stop.set()
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    scale = clock.scale
    _log.info(
        "servicer at %s, VTN %s, database %s, clock ×%g (now %s)",
        config.public_url,
        config.vtn_url,
        _redacted(config.database_url),
        scale,
        clock.now().astimezone(zone(config.tz)).isoformat(timespec="seconds"),
    )

    async def web() -> int:
        try:
            await server.serve()
        except SystemExit as err:  # uvicorn exits when it cannot start (port in use …)
            return err.code if isinstance(err.code, int) else 1
        return 0

    if isinstance(clock, ScaledClock):  # what other processes need to share this clock
        _log.info("shared clock: %s=%s", ENV_CLOCK, clock.spec.to_env())
    schedule_task = asyncio.create_task(service.run_schedule(stop), name="schedule")
    server_task = asyncio.create_task(web(), name="web")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    status = 0
    try:
        done, _ = await asyncio.wait(
            {schedule_task, server_task, stopped}, return_when=asyncio.FIRST_COMPLETED
        )
        if server_task in done and not stop.is_set():
            status = server_task.result() or 1  # the web server ended on its own: not started
            _log.error("the web server did not start or stopped on its own; stopping")
            stop.set()
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(schedule_task), timeout=config.stop_grace_s)
        except TimeoutError:
            _log.warning(
                "the job in progress did not finish in %.0f s: cancelled", config.stop_grace_s
            )
            schedule_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedule_task
        except asyncio.CancelledError:
            pass
        with contextlib.suppress(asyncio.CancelledError):
            web_status = await server_task
            status = status or web_status
    finally:
        stopped.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await service.close()
    _log.info("servicer stopped")
    return status


def _redacted(url: str) -> str:
    """A database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: shown as given, it holds no parsed password
        return url.split("@")[-1]
