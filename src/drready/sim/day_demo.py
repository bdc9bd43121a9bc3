"""`drready demo`: one day of the DR-ready ecosystem, every party over its real protocol (U1, U2).

What runs (all on loopback, embedded defaults):

* the servicer's **VTN** — ``drready vtn serve`` as a child process, HTTPS with a fresh local
  CA, SQLite (:class:`drready.sim.processes.VtnProcess`);
* a **maker cloud** (route ii) — :class:`~drready.cloud.service.MakerCloud` with ``units``
  simulated households, offered as one group resource (D6) over OpenADR 3.1;
* a **home gateway** (route i) — ECHONET Lite device nodes on 127.0.0.2 … (one simulated
  water heater each), discovered by the gateway's controller and offered through its own VEN
  (:class:`~drready.gateway.ven.GatewayVen`);
* a **battery** — an ECHONET Lite storage battery node (class 0x027D) at the servicer's site;
* the **servicer** — :class:`~drready.servicer.service.Servicer`, the VTN's BL client, plus the
  dashboard (HTTPS) while the day runs.

Time is simulated: one clock (:class:`~drready.device.clock.SimClock`, moving only when the
driver advances it) is shared by the units, the VENs and the servicer; the driver steps it
(5 minutes, 1 minute during command following) and lets each party act once per step.
Nothing passes between parties except over HTTPS (OpenADR) and UDP (ECHONET Lite).

The day (local time):

* 07:00 — the servicer reads the registry and asks every resource for its potential for
  10:00–14:00 (up-DR: absorb solar surplus);
* 07:30 — it sells ``up_share`` of the declared potential and dispatches it (HiGHS, fair
  split); answers and plans come back; shortfalls are re-dispatched;
* 11:00–12:00 — command-value following (U1): the heaters (live F5 power) plus the battery
  follow a balancing-market command updated every minute;
* 13:00 — potential for 17:00–20:00 (down-DR: scarcity); 13:30 dispatch of ``down_share``;
* 21:00 — settlement: the physical delivery (the simulated meters with and without DR
  against the same household use), the ERAB "High 4 of 5" settlement from 30-minute meter
  history, DR-caused hot-water shortages.

Households are on a flat-rate tariff: a night-rate household heats at night and has nothing to
shed in the evening (see ``docs/dr-potential-method.md``).

Where files go: only what may be shared — ``report.html``, ``settlement-up.csv``,
``settlement-down.csv`` and ``summary.json`` — is written to ``out_dir`` (which may lie in a
clone of the repository). The run's keys, credentials, databases and logs go to its private
state directory outside any git work tree (:func:`drready.sim.stack_state.new_run_dir`:
``$XDG_STATE_HOME/drready/runs/…``), printed at the start and named in the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import holidays
import numpy as np
import uvicorn
from pydantic import BaseModel, Field, field_validator
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drready.cloud.fleet import MakerFleet
from drready.cloud.service import MakerCloud
from drready.device.battery import BatterySpec, SimulatedBattery
from drready.device.clock import SimClock
from drready.device.heater import SimulatedWaterHeater
from drready.domain import DEFAULT_TZ, DeviceId, Direction, HeatingPlan, PowerSample
from drready.domain.time import zone
from drready.echonet.battery import battery_node
from drready.echonet.controller import EchonetController
from drready.echonet.node import EchonetNode
from drready.echonet.serve import water_heater_node
from drready.gateway.battery import BatteryLink, discover_batteries
from drready.gateway.ven import GatewayVen, discover_links
from drready.openadr.profile import group_resource
from drready.openadr.ven import VenClient
from drready.planning.problem import Fleet
from drready.planning.tariff import Tariff, TariffPeriod
from drready.planning.unit import UnitConfig
from drready.security.operators import OperatorFile
from drready.security.paths import git_work_tree, write_private_file
from drready.security.sessions import SessionSigner, load_or_create_session_key
from drready.security.verify_pool import BoundedVerifier
from drready.servicer.bl import BlClient
from drready.servicer.core.baseline import BaselineConfig, EventWindow
from drready.servicer.core.dispatch import EnergyTarget
from drready.servicer.core.following import (
    DEFAULT_TOLERANCE_SHARE,
    FollowingController,
    tracking_stats,
)
from drready.servicer.core.settlement import settle_event
from drready.servicer.service import Servicer
from drready.servicer.storage.crypto import KeyRing
from drready.servicer.storage.lifecycle import AssignmentStatus
from drready.servicer.storage.registry import MarketRegistration
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.dashboard import (
    DashboardSnapshot,
    TrackingPanel,
    WindowRow,
    dashboard_router,
    write_report,
)
from drready.servicer.web.dashboard import TrackingStats as DashTrackingStats
from drready.servicer.web.login import (
    PasswordFileAuthenticator,
    install_operator_login,
    operator_bar,
)
from drready.servicer.web.snapshot import build_snapshot
from drready.sim.command_signal import command_signal
from drready.sim.meters import fleet_history_kwh, history_days, unit_history_kwh
from drready.sim.processes import VtnProcess, free_port
from drready.sim.stack_state import new_run_dir

__all__ = [
    "DEMO_DAY",
    "FLAT_TARIFF",
    "SHAREABLE_OUTPUTS",
    "DemoSettings",
    "DemoSummary",
    "print_summary",
    "run_day_demo",
    "summary_json",
]

_log = logging.getLogger("drready.demo")

DEMO_DAY = date(2025, 5, 14)  # a Wednesday in May: mild weather, no holiday near
MAKER_CODE = "000005"
GROUP_RESOURCE = group_resource(MAKER_CODE)
"""The demo cloud's fleet group resource (D6: one per maker, ``FLEET-000005``)."""
FLAT_TARIFF = Tariff(
    name="illustrative flat rate (31 yen/kWh all day)",
    periods=(
        TariffPeriod(start=time(0, 0), end=time(12, 0), price_yen_per_kwh=31.0),
        TariffPeriod(start=time(12, 0), end=time(0, 0), price_yen_per_kwh=31.0),
    ),
)
HOME_HOSTS = tuple(f"127.0.0.{k}" for k in range(2, 12))
BATTERY_HOST = "127.0.0.20"
CLIENTS = {"dr-servicer": "bl", "maker-cloud": "ven", "home-gateway": "ven"}
ROUTES = {"maker-cloud": "cloud", "home-gateway": "gateway"}


class DemoSettings(BaseModel):
    """What ``drready demo`` runs (defaults: the issue's demo)."""

    out_dir: Path
    units: int = Field(default=1000, ge=1, le=100_000, description="Maker cloud's households.")
    homes: int = Field(default=5, ge=1, le=len(HOME_HOSTS), description="Route-i homes.")
    day: date = DEMO_DAY
    seed: int = Field(default=0, ge=0)
    up_share: float = Field(default=0.6, gt=0.0, le=1.0, description="Share of up potential sold.")
    down_share: float = Field(default=0.6, gt=0.0, le=1.0, description="Share of down potential.")
    history_days: int = Field(default=12, ge=8, le=30, description="Meter history [days].")
    battery_kw: float = Field(default=250.0, gt=0.0, le=10_000.0, description="Battery power.")
    battery_kwh: float = Field(default=500.0, gt=0.0, le=100_000.0, description="Capacity.")
    dashboard: bool = True
    keep_serving: bool = False
    state_dir: Path | None = Field(
        default=None,
        description="The run's private state directory (keys, databases, logs); default a new "
        "one under $XDG_STATE_HOME/drready/runs.",
    )

    @field_validator("state_dir")
    @classmethod
    def _outside_repository(cls, value: Path | None) -> Path | None:
        repo = None if value is None else git_work_tree(value)
        if repo is not None:
            raise ValueError(
                f"{value} is inside the git work tree {repo}; keys, credentials and databases "
                "stay outside the repository"
            )
        return value


#: What the demo writes to its ``out_dir``: the shareable results, nothing secret.
SHAREABLE_OUTPUTS = ("report.html", "settlement-up.csv", "settlement-down.csv", "summary.json")


class RouteRow(BaseModel):
    """One line of the summary table."""

    window: str
    route: str
    requested_kwh: float
    accepted_kwh: float
    delivered_kwh: float
    settled_kwh: float | None
    dr_caused_shortages: int


class DemoSummary(BaseModel):
    """What the demo prints (``--json``: the same as JSON)."""

    day: date
    units: int
    homes: int
    rows: list[RouteRow]
    tracking: dict[str, Any] | None = None
    report_html: str | None = None
    dashboard_url: str | None = None
    state_dir: str | None = None
    wall_time_s: float = 0.0


@dataclass
class _World:
    """Everything the demo started, so that it can all be stopped."""

    clock: SimClock
    vtn: VtnProcess
    nodes: list[EchonetNode] = field(default_factory=list)
    heaters: list[SimulatedWaterHeater] = field(default_factory=list)
    twins: list[SimulatedWaterHeater] = field(default_factory=list)
    clients: list[VenClient | BlClient] = field(default_factory=list)
    controller: EchonetController | None = None


def _home_units(settings: DemoSettings, clock: SimClock) -> list[SimulatedWaterHeater]:
    persons = (4, 2, 3, 4, 1, 3, 2, 4, 3, 3)
    tanks = (460.0, 370.0, 370.0, 460.0, 460.0, 370.0, 370.0, 460.0, 460.0, 370.0)
    return [
        SimulatedWaterHeater(
            UnitConfig(
                DeviceId(maker_code=MAKER_CODE, serial=f"HG{k + 1:07d}"), persons[k], tanks[k]
            ),
            clock,
            seed=settings.seed + 101 + k,
            tariff=FLAT_TARIFF,
        )
        for k in range(settings.homes)
    ]


def _register_market_data(
    store: ServicerStore, homes: list[SimulatedWaterHeater], seed: int
) -> None:
    """The servicer's market registration of each home (supply point, retailer, contract,
    product), sealed with a key that exists only in this process for the demo's run: it lives
    in the servicer's registry and nowhere else, and no device ever sees it."""
    rng = np.random.default_rng(seed + 99)
    registry = store.registry(KeyRing([("demo-run", secrets.token_bytes(32))]))
    names = {r.resource_name: r.id for r in registry.list_resources()}
    for unit in homes:
        rid = names.get(str(unit.device_id))
        if rid is None:
            continue
        digits = "".join(str(d) for d in rng.integers(0, 10, 20))
        registry.set_market_registration(
            rid,
            MarketRegistration(
                supply_point_id="03" + digits,  # area 03: TEPCO (Tokyo)
                voltage_class="low",
                retailer="demo retailer",
                contract_power_kw=6.0,
                product_class="tertiary_reserve_2",
            ),
        )


def _tz_time(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zone(DEFAULT_TZ))


@dataclass
class _Window:
    """One DR window of the day and what the servicer did with it."""

    label: str
    direction: Direction
    start: datetime
    end: datetime
    share: float
    ask_at: datetime
    dispatch_at: datetime
    request_id: str | None = None
    dispatch_id: int | None = None
    potential_kwh: float = 0.0
    target_kwh: float = 0.0


@dataclass
class _Tracking:
    """The command-following hour (U1), minute by minute."""

    start: datetime
    minutes: int
    offered_kw: float
    times: list[datetime] = field(default_factory=list)
    command_kw: list[float] = field(default_factory=list)
    heater_kw: list[float] = field(default_factory=list)
    planned_kw: list[float] = field(default_factory=list)
    battery_kw: list[float] = field(default_factory=list)
    soc_kwh: list[float] = field(default_factory=list)
    setpoint_no_f5_kw: list[float] = field(default_factory=list)
    counter_kwh: list[float] = field(default_factory=list)
    """The heaters' summed energy counters at each minute (F5), and after the last one."""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    def active(self, t: datetime) -> bool:
        """Minute steps: the hour, and its end (the last counter reading)."""
        return self.start <= t <= self.end


def _plan_power_kw(plans: list[HeatingPlan], at: datetime) -> float:
    """The summed planned power of ``plans`` in the slot containing ``at`` [kW]."""
    slot = at.replace(minute=at.minute // 30 * 30, second=0, microsecond=0)
    total = 0.0
    for plan in plans:
        try:
            total += plan.slots[plan.grid.index_of(slot)].power_kw
        except ValueError:  # the plan does not reach this slot
            continue
    return total


#: The demo's dashboard operator (issue 12 item 6: the dashboard is behind a login).
DEMO_OPERATOR = "demo"
#: The file of the run's state directory holding the demo operator's name and password.
DEMO_LOGIN_FILE = "dashboard-login.txt"


def _demo_operator(run_dir: Path) -> tuple[OperatorFile, Path]:
    """An operators file with one operator of a random password, in the run's private state
    directory, and the 0600 file that tells the password."""
    password = secrets.token_urlsafe(18)
    operators = OperatorFile(run_dir / "dashboard" / "operators.toml")
    operators.add(DEMO_OPERATOR, password)
    login = run_dir / DEMO_LOGIN_FILE
    write_private_file(
        login, f"operator: {DEMO_OPERATOR}\npassword: {password}\n".encode(), overwrite=True
    )
    return operators, login


class _DashboardServer:
    """The dashboard over HTTPS on loopback in a background thread (uvicorn), behind the
    operators' login (an operator made for the run, see :func:`_demo_operator`)."""

    def __init__(
        self,
        provider: Callable[[], DashboardSnapshot],
        cert: Path,
        key: Path,
        run_dir: Path,
    ) -> None:
        from fastapi import FastAPI
        from fastapi.responses import RedirectResponse

        app = FastAPI(title="drready servicer dashboard", docs_url=None, redoc_url=None)
        operators, self.login_file = _demo_operator(run_dir)
        self._verifier = BoundedVerifier(1, 4)
        login = install_operator_login(
            app,
            authenticator=PasswordFileAuthenticator(operators, self._verifier),
            sessions=SessionSigner(load_or_create_session_key(run_dir / "dashboard")),
            secure=True,
        )
        app.include_router(
            dashboard_router(provider, operator_bar=operator_bar(login)), prefix="/dashboard"
        )
        app.add_api_route("/", lambda: RedirectResponse("/dashboard/"), include_in_schema=False)
        self.port = free_port()
        self.url = f"https://localhost:{self.port}/dashboard/"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        for _ in range(100):
            if self._server.started:
                return
            threading.Event().wait(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._verifier.close()


async def run_day_demo(
    settings: DemoSettings,
    console: Console | None = None,
    on_summary: Callable[[DemoSummary], None] | None = None,
) -> DemoSummary:
    """Run the demo day (see the module docstring); everything it started is stopped after.

    ``on_summary`` gets the summary as soon as the day is settled — before the dashboard is
    kept serving (``keep_serving``) until the task is cancelled (Ctrl-C)."""
    console = console or Console(stderr=True)
    wall0 = _monotonic()
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    run = new_run_dir("demo", explicit=settings.state_dir)
    if run.fallback_reason is not None:
        console.print(f"state directory: a temporary one ({run.fallback_reason})", soft_wrap=True)
    # soft_wrap: a path is printed whole (copied from a terminal, searched in a log)
    console.print(f"keys, credentials, databases and logs of this run: {run.path}", soft_wrap=True)
    day = settings.day
    tz = zone(DEFAULT_TZ)
    first_day = day - timedelta(days=settings.history_days - 1)
    clock = SimClock(datetime.combine(first_day, time(0, 0), tzinfo=tz), speed=0.0)
    homes = _home_units(settings, clock)
    twins = _home_units(settings, clock)  # same households, same draws, never asked: no DR
    fleet_model = Fleet.random(np.random.default_rng(settings.seed), settings.units)
    fleet = MakerFleet(
        fleet_model, day, seed=settings.seed, tariff=FLAT_TARIFF, maker_code=MAKER_CODE
    )
    windows = [
        _Window(
            "up-DR 10:00–14:00 (absorb solar surplus)",
            Direction.UP,
            _tz_time(day, 10),
            _tz_time(day, 14),
            settings.up_share,
            ask_at=_tz_time(day, 7),
            dispatch_at=_tz_time(day, 7, 30),
        ),
        _Window(
            "down-DR 17:00–20:00 (scarcity)",
            Direction.DOWN,
            _tz_time(day, 17),
            _tz_time(day, 20),
            settings.down_share,
            ask_at=_tz_time(day, 13),
            dispatch_at=_tz_time(day, 13, 30),
        ),
    ]
    tracking = _Tracking(start=_tz_time(day, 11), minutes=60, offered_kw=settings.battery_kw * 0.8)
    end = _tz_time(day, 21)

    with _progress(console) as progress:
        history = progress.add_task("households' history (meter data)", total=None)
        while clock.now() < _tz_time(day, 7):
            clock.advance(timedelta(hours=1))
            for unit in (*homes, *twins):
                unit.advance()
        progress.update(history, total=1, completed=1)

        vtn = VtnProcess(run.path / "vtn", CLIENTS)
        task = progress.add_task("starting the VTN (drready vtn serve, HTTPS)", total=None)
        await asyncio.to_thread(vtn.start)
        progress.update(task, total=1, completed=1)
        ca = str(vtn.ca_file)
        store_path = run.path / "servicer.db"
        for stale in (store_path, Path(f"{store_path}-wal"), Path(f"{store_path}-shm")):
            stale.unlink(missing_ok=True)
        run.private_file(store_path.name)
        store = ServicerStore.open(f"sqlite:///{store_path}")
        dashboard: _DashboardServer | None = None
        nodes: list[EchonetNode] = []
        battery = SimulatedBattery(
            BatterySpec(
                capacity_kwh=settings.battery_kwh,
                max_charge_kw=settings.battery_kw,
                max_discharge_kw=settings.battery_kw,
            ),
            clock,
            device_id=DeviceId(maker_code=MAKER_CODE, serial="BT0000001"),
        )
        snapshot: list[DashboardSnapshot] = []
        try:
            for k, unit in enumerate(homes):
                nodes.append(water_heater_node(HOME_HOSTS[k], unit))
            nodes.append(battery_node(BATTERY_HOST, battery))
            for node in nodes:
                await node.start()
            async with (
                EchonetController(interface="127.0.0.1") as home_lan,
                EchonetController(interface="127.0.0.1") as site_lan,
                vtn.ven_client("home-gateway") as gateway_client,
                vtn.ven_client("maker-cloud") as cloud_client,
                vtn.bl_client("dr-servicer") as bl,
            ):
                links = await discover_links(
                    home_lan, HOME_HOSTS[: settings.homes], window_s=0.3, clock=clock.now
                )
                gateway = GatewayVen(links, gateway_client, power_interval_s=60.0)
                cloud = MakerCloud(fleet, cloud_client, mode="group", power_interval_s=60.0)
                servicer = Servicer(
                    bl,
                    store,
                    clock=clock.now,
                    routes=ROUTES,
                    response_timeout=timedelta(minutes=15),
                )
                (battery_link,) = await discover_batteries(
                    site_lan, host=BATTERY_HOST, window_s=0.3, clock=clock.now
                )
                await cloud.register()
                await gateway.register()
                await servicer.start()
                await servicer.sync_resources()
                _register_market_data(store, homes, settings.seed)

                def provide() -> DashboardSnapshot:
                    return snapshot[-1]

                snapshot.append(
                    build_snapshot(servicer, [], None, run_state="running", now=clock.now())
                )
                if settings.dashboard:
                    assert vtn.bundle is not None
                    dashboard = _DashboardServer(
                        provide, vtn.bundle.server_cert, vtn.bundle.server_key, run.path
                    )
                    dashboard.start()
                    console.print(f"dashboard: {dashboard.url}  (CA: {ca})")
                    console.print(
                        f"dashboard login: operator {DEMO_OPERATOR!r}, password in "
                        f"{dashboard.login_file}",
                        soft_wrap=True,
                    )

                steps = progress.add_task("simulated day 07:00–21:00", total=14 * 60)
                controller: FollowingController | None = None
                counters: dict[str, tuple[datetime, float]] = {}
                latest: dict[str, float] = {}
                while clock.now() <= end:
                    now = clock.now()
                    for w in windows:
                        if now == w.ask_at:
                            w.request_id = await servicer.ask_potential(w.start, w.end)
                        if now == w.dispatch_at and w.request_id is not None:
                            pot = await servicer.collect_potential(w.request_id)
                            w.potential_kwh = (
                                pot.up_kwh if w.direction is Direction.UP else (pot.down_kwh)
                            )
                            w.target_kwh = round(w.share * w.potential_kwh, 3)
                            if w.target_kwh > 0:
                                w.dispatch_id = await servicer.dispatch(
                                    w.label,
                                    EnergyTarget(direction=w.direction, energy_kwh=w.target_kwh),
                                    w.request_id,
                                )
                    await cloud.poll_once(now)
                    await gateway.poll_once(now)
                    new_power: dict[str, list[PowerSample]] = {}
                    for w in windows:
                        if w.dispatch_id is not None:
                            await servicer.follow_up(w.dispatch_id)
                            for name, got in (await servicer.collect_power(w.dispatch_id)).items():
                                new_power.setdefault(name, []).extend(got)
                    if tracking.active(now):
                        if controller is None:
                            spec = await battery_link.spec()
                            controller = FollowingController(spec, offered_kw=tracking.offered_kw)
                            plans = await _accepted_plans(servicer, windows[0].dispatch_id)
                            _start_command(tracking, plans, settings.seed)
                        await _follow_one_minute(
                            tracking, controller, battery_link, new_power, now, counters, latest
                        )
                    for unit in twins:
                        unit.advance()
                    minute = tracking.start - timedelta(minutes=5) < now < tracking.end
                    step = timedelta(minutes=1 if minute else 5)
                    if now - _tz_time(day, 7) >= timedelta(0):
                        progress.update(
                            steps, completed=(now - _tz_time(day, 7)) / timedelta(minutes=1)
                        )
                    if int(now.timestamp()) % 1800 == 0:
                        snapshot.append(
                            build_snapshot(
                                servicer, _rows(windows), None, run_state="running", now=now
                            )
                        )
                    clock.advance(step)

                task = progress.add_task("settlement (High 4 of 5, physical delivery)", total=None)
                rows, window_rows = await asyncio.to_thread(
                    _settle, settings, servicer, windows, fleet, fleet_model, homes, twins
                )
                progress.update(task, total=1, completed=1)
                panel = _tracking_panel(tracking)
                final = build_snapshot(
                    servicer, window_rows, panel, run_state="finished", now=clock.now()
                )
                snapshot.append(final)
                report = write_report(final, out / "report.html")
        finally:
            for node in nodes:
                await node.close()
            store.close()
            await asyncio.to_thread(vtn.stop)
            if dashboard is not None and not settings.keep_serving:
                dashboard.stop()
    summary = DemoSummary(
        day=day,
        units=settings.units,
        homes=settings.homes,
        rows=rows,
        tracking=None if panel is None else _tracking_summary(tracking),
        report_html=str(report),
        dashboard_url=None if dashboard is None else dashboard.url,
        state_dir=str(run.path),
        wall_time_s=round(_monotonic() - wall0, 1),
    )
    (out / "summary.json").write_text(summary_json(summary) + "\n", encoding="utf-8")
    if on_summary is not None:
        on_summary(summary)
    if dashboard is not None and settings.keep_serving:
        console.print(f"dashboard still served at {dashboard.url} — Ctrl-C to stop")
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            dashboard.stop()
    return summary


# --------------------------------------------------------------------------- helpers


def _monotonic() -> float:
    import time as _time

    return _time.monotonic()


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


async def _accepted_plans(servicer: Servicer, dispatch_id: int | None) -> list[HeatingPlan]:
    if dispatch_id is None:
        return []
    return list((await servicer.accepted_plans(dispatch_id)).values())


def _start_command(tracking: _Tracking, plans: list[HeatingPlan], seed: int) -> None:
    """The balancing-market command of the hour: the group's plan plus the offered amount ×
    a regulation signal (:func:`drready.sim.command_signal.command_signal`)."""
    starts = [tracking.start + timedelta(minutes=k) for k in range(tracking.minutes)]
    baseline = np.array([_plan_power_kw(plans, t) for t in starts])
    signal = command_signal(
        baseline, tracking.offered_kw, start=tracking.start, step_s=60.0, seed=seed + 7
    )
    tracking.command_kw = [float(x) for x in signal.command_kw]
    tracking.planned_kw = [float(x) for x in baseline]


async def _follow_one_minute(
    tracking: _Tracking,
    controller: FollowingController,
    link: BatteryLink,
    new_power: dict[str, list[PowerSample]],
    now: datetime,
    counters: dict[str, tuple[datetime, float]],
    latest: dict[str, float],
) -> None:
    """One minute of U1: the heaters' F5 readings taken *now* (reported over OpenADR in this
    step), the battery set for the coming minute over ECHONET Lite."""
    for name, samples in new_power.items():
        last = max(samples, key=lambda s: s.timestamp)
        latest[name] = last.power_w / 1000.0
        counters[name] = (last.timestamp, last.cumulative_energy_kwh)
    k = round((now - tracking.start) / timedelta(minutes=1))
    if k == tracking.minutes:  # the end of the hour: the counters close the last minute
        tracking.counter_kwh.append(sum(c for _, c in counters.values()))
        return
    if not 0 <= k < tracking.minutes:
        return
    planned = tracking.planned_kw[k]
    measured = sum(latest.values()) if latest else None
    soc = await link.soc_kwh()
    setpoint = controller.setpoint_kw(
        tracking.command_kw[k],
        soc,
        np.array([planned]),
        None if measured is None else np.array([measured]),
    )
    blind = controller.setpoint_kw(tracking.command_kw[k], soc, np.array([planned]), None)
    await link.set_power_kw(setpoint)
    sample = await link.power_sample()
    tracking.times.append(now)
    tracking.heater_kw.append(float("nan") if measured is None else measured)
    tracking.battery_kw.append(sample.power_w / 1000.0)
    tracking.soc_kwh.append(sample.soc_kwh)
    tracking.setpoint_no_f5_kw.append(blind)
    tracking.counter_kwh.append(sum(c for _, c in counters.values()))


def _tracking_series(tracking: _Tracking) -> dict[str, np.ndarray]:
    """Minute means: the heaters' from their energy counters (F5), and the group's output with
    the live controller, with a controller blind to F5 (same heaters, its own setpoints), and
    with the heaters alone."""
    n = len(tracking.times)
    counters = np.asarray(tracking.counter_kwh, dtype=np.float64)
    if n == 0 or counters.size < n + 1:
        raise RuntimeError(
            f"command following has {n} minutes and {counters.size} counter readings; "
            "the power reports did not arrive every minute"
        )
    heater = np.diff(counters[: n + 1]) * 60.0  # kWh per minute → kW
    battery = np.asarray(tracking.battery_kw)
    blind = np.asarray(tracking.setpoint_no_f5_kw)
    command = np.asarray(tracking.command_kw[:n])
    return {
        "command": command,
        "heater": heater,
        "battery": battery,
        "output": heater + battery,
        "output_no_f5": heater + blind,
        "soc": np.asarray(tracking.soc_kwh),
    }


def _tracking_panel(tracking: _Tracking) -> TrackingPanel | None:
    if not tracking.times:
        return None
    s = _tracking_series(tracking)
    tol = DEFAULT_TOLERANCE_SHARE * tracking.offered_kw
    return TrackingPanel(
        offered_kw=tracking.offered_kw,
        tolerance_kw=tol,
        times=tuple(tracking.times),
        command_kw=tuple(float(x) for x in s["command"]),
        output_kw=tuple(float(x) for x in s["output"]),
        heater_kw=tuple(float(x) for x in s["heater"]),
        battery_kw=tuple(float(x) for x in s["battery"]),
        soc_kwh=tuple(max(float(x), 0.0) for x in s["soc"]),
        stats=DashTrackingStats.from_series(s["command"].tolist(), s["output"].tolist(), tol),
        stats_without_f5=DashTrackingStats.from_series(
            s["command"].tolist(), s["output_no_f5"].tolist(), tol
        ),
    )


def _tracking_summary(tracking: _Tracking) -> dict[str, Any]:
    s = _tracking_series(tracking)
    out: dict[str, Any] = {"offered_kw": tracking.offered_kw, "minutes": len(tracking.times)}
    for key, series in (
        ("with_f5", s["output"]),
        ("without_f5", s["output_no_f5"]),
        ("heaters_only", s["heater"]),
    ):
        stats = tracking_stats(s["command"], series, tracking.offered_kw)
        out[key] = stats.model_dump(mode="json")
    return out


@dataclass
class _Delivery:
    """Per resource of one window: physical delivery [kWh] and per-slot [kW] series."""

    delivered_kwh: dict[str, float] = field(default_factory=dict)
    delivered_slot_kw: dict[str, np.ndarray] = field(default_factory=dict)


def _home_slots(unit: SimulatedWaterHeater, starts: list[datetime]) -> np.ndarray:
    by_start = {r.start: r.electric_kwh for r in unit.slot_history()}
    return np.array([by_start.get(t, np.nan) for t in starts])


def _home_shortage_steps(unit: SimulatedWaterHeater, day: date) -> int:
    tz = zone(DEFAULT_TZ)
    return sum(
        r.shortage_steps for r in unit.slot_history() if r.start.astimezone(tz).date() == day
    )


def _physical(
    w: _Window,
    fleet: MakerFleet,
    before: np.ndarray,
    homes: list[SimulatedWaterHeater],
    twins: list[SimulatedWaterHeater],
) -> _Delivery:
    """Delivered energy per resource in the window's direction, measured from the no-DR
    baseline as the profile defines every DR amount (also a second request in a day): the
    fleet's metered DR run minus ``before`` (its baseline plan against the same household
    use), the homes' minus their twins' (same households, never asked). A load shift counts
    in both windows it touches — the noon up-DR also lowers the evening's use — as it does in
    the market settlement."""
    sign = 1.0 if w.direction is Direction.UP else -1.0
    out = _Delivery()
    meter = fleet.simulated_meter()
    s, e = fleet.grid.window_indices(w.start, w.end)
    diff = (meter.electric_kwh - before)[:, s:e].sum(axis=0) * sign
    out.delivered_kwh[GROUP_RESOURCE] = float(diff.sum())
    out.delivered_slot_kw[GROUP_RESOURCE] = diff / 0.5
    starts = [w.start + timedelta(minutes=30 * k) for k in range(e - s)]
    for unit, twin in zip(homes, twins, strict=True):
        d = (_home_slots(unit, starts) - _home_slots(twin, starts)) * sign
        out.delivered_kwh[str(unit.device_id)] = float(np.nansum(d))
        out.delivered_slot_kw[str(unit.device_id)] = np.nan_to_num(d) / 0.5
    return out


def _settle(
    settings: DemoSettings,
    servicer: Servicer,
    windows: list[_Window],
    fleet: MakerFleet,
    fleet_model: Fleet,
    homes: list[SimulatedWaterHeater],
    twins: list[SimulatedWaterHeater],
) -> tuple[list[RouteRow], list[WindowRow]]:
    """The day's figures per window and route: requested, accepted, physically delivered,
    settled by the ERAB baseline (the servicer's :func:`settle_event` on the meter data
    gathered here), DR-caused shortages."""
    day = settings.day
    days = history_days(day, settings.history_days)
    history = np.concatenate(
        [
            fleet_history_kwh(
                fleet_model,
                days,
                seed=settings.seed,
                tariff=FLAT_TARIFF,
                maker_code=MAKER_CODE,
                event_day_fleet=fleet,
            )[None],
            unit_history_kwh(homes, days),
        ]
    )  # (1 + homes, D, 48)
    names = [GROUP_RESOURCE, *(str(u.device_id) for u in homes)]
    route_of = {GROUP_RESOURCE: "cloud", **{str(u.device_id): "gateway" for u in homes}}
    base_config = BaselineConfig(
        holidays=frozenset(holidays.country_holidays("JP", years={d.year for d in days}))
    )
    meter = fleet.simulated_meter()
    shortages = {
        GROUP_RESOURCE: int(np.sum(meter.shortage_steps > meter.baseline_shortage_steps)),
        **{
            str(u.device_id): int(_home_shortage_steps(u, day) > _home_shortage_steps(t, day))
            for u, t in zip(homes, twins, strict=True)
        },
    }
    by_id = {r.id: r.resource_name for r in servicer.registry.list_resources()}
    before = fleet.simulated_meter().baseline_electric_kwh
    notes: list[str] = []
    rows: list[RouteRow] = []
    window_rows: list[WindowRow] = []
    for w in windows:
        if w.dispatch_id is None:
            continue
        record = servicer.store.get_dispatch(w.dispatch_id)
        assert record is not None
        requested = dict.fromkeys(names, 0.0)
        accepted = dict.fromkeys(names, 0.0)
        for a in record.assignments:
            name = by_id.get(a.resource_id, a.resource_id)
            requested[name] = requested.get(name, 0.0) + a.requested_kwh
            if not a.late and a.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.PARTIAL):
                accepted[name] = accepted.get(name, 0.0) + (a.accepted_kwh or 0.0)
        physical = _physical(w, fleet, before, homes, twins)
        # settled: only the resources that accepted the event (a home that refused is paid
        # nothing for the load the noon shift moved); requested and accepted kept apart
        takers = [n for n in names if accepted[n] > 0]
        result = (
            None
            if not takers
            else settle_event(
                history[[names.index(n) for n in takers]],
                days,
                EventWindow.from_times(w.start, w.end),
                event_id=w.label.split(" ")[0],
                direction=w.direction,
                resource_ids=takers,
                requested_kwh=[requested[n] for n in takers],
                accepted_kwh=[accepted[n] for n in takers],
                config=base_config,
                other_windows=[EventWindow.from_times(o.start, o.end) for o in windows],
            )
        )
        for name, reason in ({} if result is None else result.unsettled).items():
            notes.append(f"{w.label.split(' (')[0]}: no baseline for {name}: {reason}")
        if result is not None and result.settlement is not None:
            tag = "up" if w.direction is Direction.UP else "down"
            result.settlement.to_csv(settings.out_dir / f"settlement-{tag}.csv")
        envs = servicer.envelopes(w.request_id or "")
        for route in ("gateway", "cloud", "all"):
            members = [n for n in names if route == "all" or route_of[n] == route]
            took_part = [n for n in members if accepted[n] > 0]
            settled = None if result is None else result.total_delivered_kwh(took_part)
            req = w.target_kwh if route == "all" else sum(requested[n] for n in members)
            row = RouteRow(
                window=w.label.split(" (")[0],
                route=route,
                requested_kwh=round(req, 3),
                accepted_kwh=round(sum(accepted[n] for n in members), 3),
                delivered_kwh=round(
                    sum(physical.delivered_kwh[n] for n in members if accepted[n] > 0), 3
                ),
                settled_kwh=None if settled is None else round(settled, 3),
                dr_caused_shortages=sum(shortages[n] for n in members if accepted[n] > 0),
            )
            rows.append(row)
            n_slots = round((w.end - w.start) / timedelta(minutes=30))
            starts = tuple(w.start + timedelta(minutes=30 * k) for k in range(n_slots))
            pot_kw = np.zeros(n_slots)
            for n in members:
                env = envs.get(n)
                if env is not None:
                    for k, slot in enumerate(env.slots):
                        room = slot.max_kw - slot.baseline_kw
                        pot_kw[k] += (
                            room
                            if w.direction is Direction.UP
                            else (slot.baseline_kw - slot.min_kw)
                        )
            delivered_kw = sum(
                (physical.delivered_slot_kw[n] for n in members if accepted[n] > 0),
                start=np.zeros(n_slots),
            )
            hours = n_slots * 0.5
            window_rows.append(
                WindowRow(
                    label=w.label,
                    direction=w.direction,
                    window_start=w.start,
                    window_end=w.end,
                    route=route,
                    potential_kwh=max(
                        sum(
                            (envs[n].up_kwh if w.direction is Direction.UP else envs[n].down_kwh)
                            for n in members
                            if n in envs
                        ),
                        0.0,
                    ),
                    requested_kwh=row.requested_kwh,
                    accepted_kwh=row.accepted_kwh,
                    delivered_kwh=row.delivered_kwh,
                    shortages=row.dr_caused_shortages,
                    slot_starts=starts,
                    potential_kw=tuple(float(x) for x in pot_kw),
                    requested_kw=tuple([row.requested_kwh / hours] * n_slots),
                    delivered_kw=tuple(float(x) for x in delivered_kw),
                )
            )
    for note in notes:
        _log.warning("%s", note)
    return rows, window_rows


def _rows(windows: list[_Window]) -> list[WindowRow]:
    """Window rows while the day runs: potential and target, nothing delivered yet."""
    out = []
    for w in windows:
        if w.dispatch_id is None:
            continue
        out.append(
            WindowRow(
                label=w.label,
                direction=w.direction,
                window_start=w.start,
                window_end=w.end,
                route="all",
                potential_kwh=w.potential_kwh,
                requested_kwh=w.target_kwh,
                accepted_kwh=0.0,
                delivered_kwh=0.0,
            )
        )
    return out


# --------------------------------------------------------------------------- output


def summary_table(summary: DemoSummary) -> Table:
    """The summary as a rich table (fits 80 columns)."""
    table = Table(
        title=f"drready demo — {summary.day.isoformat()} (simulated day)", box=box.SIMPLE_HEAD
    )
    table.add_column("window")
    table.add_column("route")
    for col in ("asked", "accepted", "deliv.", "d/asked", "settled*", "short."):
        table.add_column(col, justify="right")
    for r in summary.rows:
        ratio = r.delivered_kwh / r.requested_kwh if r.requested_kwh > 0 else float("nan")
        table.add_row(
            r.window.split(" ")[0],
            r.route,
            f"{r.requested_kwh:.1f}",
            f"{r.accepted_kwh:.1f}",
            f"{r.delivered_kwh:.1f}",
            f"{ratio:.1%}",
            "—" if r.settled_kwh is None else f"{r.settled_kwh:.1f}",
            str(r.dr_caused_shortages),
        )
    table.caption = (
        "kWh. asked: for 'all' the target sold; deliv.: metered against the same households "
        "without DR; *settled: ERAB High 4 of 5 baseline (— where none); short.: DR-caused "
        "hot-water shortages"
    )
    return table


def tracking_table(summary: DemoSummary) -> Table | None:
    """Command-following statistics (with F5, without F5, heaters alone)."""
    if summary.tracking is None:
        return None
    t = summary.tracking
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"command following {t['minutes']} min, offered ±{t['offered_kw']:.0f} kW, "
        "tolerance ±10 %",
    )
    for col in ("controller", "within ±10 %", "mean |err| kW", "max |err| kW"):
        table.add_column(col, justify="left" if col == "controller" else "right")
    for key, label in (
        ("with_f5", "live F5 + battery"),
        ("without_f5", "plan only (no F5) + battery"),
        ("heaters_only", "heaters alone"),
    ):
        s = t[key]
        table.add_row(
            label,
            f"{s['share_within_tolerance']:.1%}",
            f"{s['mean_abs_error_kw']:.2f}",
            f"{s['max_abs_error_kw']:.2f}",
        )
    return table


def print_summary(summary: DemoSummary, console: Console) -> None:
    console.print(summary_table(summary))
    table = tracking_table(summary)
    if table is not None:
        console.print(table)
    console.print(f"HTML report: {summary.report_html}   ({summary.wall_time_s:.0f} s wall time)")
    if summary.state_dir is not None:
        console.print(
            f"keys, credentials, databases and logs of the run: {summary.state_dir}",
            soft_wrap=True,
        )


def summary_json(summary: DemoSummary) -> str:
    return json.dumps(summary.model_dump(mode="json"), indent=2, ensure_ascii=False)
