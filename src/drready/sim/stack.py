"""``drready stack up``: the whole DR-ready ecosystem, each party its own OS process over the real
protocols, on one shared clock, driven through the servicer's north-bound API (C1, S1, U2, D3,
D6; issue 11 items 5 and 7; issue 15's target).

What runs (all on loopback unless told otherwise), in start groups (:func:`start_groups`): each
group is started at once, when every child of the group before is ready:

=================  ========================================================  ===============
party              command                                                   ready when
=================  ========================================================  ===============
VTN                ``drready vtn serve`` (HTTPS, SQLite in the state dir)    ``/auth/server``
water heaters      ``drready echonet serve`` per home, on 127.0.0.2 …:       UDP 3610 bound
                   the first half ``--profile dr-ready``, the rest the
                   installed base (``standard``, ``standard-single``)
battery            ``drready echonet serve-battery`` on 127.0.0.20           UDP 3610 bound
maker cloud        ``drready cloud serve --units N --mode units|group``      its VEN and a
                                                                             resource on the VTN
home gateway       ``drready gateway serve --host …`` (route i)              the same
servicer           ``drready servicer run`` (BL client, API, dashboard)      ``/healthz``
=================  ========================================================  ===============

Certificates and credentials are made fresh in the run's private state directory
(:mod:`drready.sim.stack_creds`, :mod:`drready.sim.stack_state`), with a dashboard operator
(:func:`dashboard_operator`: ``credentials/dashboard-login.txt``), and every child gets the
same :class:`~drready.domain.clock.ClockSpec` in :data:`~drready.domain.clock.ENV_CLOCK`,
``time_scale`` simulated seconds per wall second. The simulated day starts at ``start``
(default tomorrow 06:00 in :data:`~drready.domain.time.DEFAULT_TZ`); the children are started
``warmup`` earlier, at 00:00 by default (:func:`default_warmup`): the servicer's first potential
run stands for 23:00 of the evening before and asks for that day's windows still ahead
(:func:`drready.servicer.run.day_ahead_windows`), so the desk can size the first morning's
order from it. The households are on a flat rate (:data:`TARIFF`) and the maker cloud declares
its potential at :data:`CLOUD_CONFIDENCE`.

Then the stack is an aggregator's trading desk (:mod:`drready.sim.stack_orders`): each simulated
day it reads the portfolio potential the servicer collected and places an up-DR order for
10:00–14:00 (the evening before, while the standard-only units' shift times are open) and a
down-DR order for 17:00–20:00 (at 13:30) through ``POST /api/v1/orders``, and follows
them with ``GET /api/v1/orders/{id}``. It stops on SIGINT/SIGTERM or after ``duration_s``:
the children's figures are read once more, then each stop wave gets SIGTERM and at most 10 s
before SIGKILL (:mod:`drready.sim.stack_procs`), and what is left — processes of the children's
groups, listening ports, bound ECHONET Lite sockets — is listed. The report
(:class:`StackReport`, ``--json``) says what the parties themselves measured: the orders as the
servicer tells them (accepted, delivered from F5 or meter data), the VTN's events that a
targeted resource never answered, each process's exit and its memory per simulated day, and
the DR-caused shortages the maker cloud and every water heater node counted against their no-DR
twins and left in their status files (:mod:`drready.device.status`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from rich.console import Console

from drready.device.status import read_status
from drready.domain import DEFAULT_TZ
from drready.domain.clock import ENV_CLOCK, MAX_TIME_SCALE, ClockSpec, ScaledClock
from drready.domain.time import zone
from drready.security.files import make_private_dirs
from drready.security.operators import OperatorFile
from drready.security.paths import git_work_tree
from drready.security.tls import client_ssl_context
from drready.security.tokens import ENV_CLIENTS_FILE, ENV_TOKEN_KEY
from drready.servicer.web.auth import SERVICER_POLICY
from drready.sim.processes import free_port
from drready.sim.stack_creds import ENV_CLIENT_SECRET, OBSERVER, Credentials, make_credentials
from drready.sim.stack_http import TokenClient, unanswered_events
from drready.sim.stack_orders import (
    OrderDriver,
    OrderPosted,
    OrderRead,
    OrderRefused,
    PostOrder,
    PotentialMissing,
    PotentialRead,
    ReadOrder,
    ReadPotential,
    Tick,
    plans_between,
)
from drready.sim.stack_procs import (
    ChildExit,
    ChildFailedError,
    ChildSpec,
    Supervisor,
    bound_udp,
    leftovers,
    listening_tcp,
    rss_kb,
)
from drready.sim.stack_state import RunDir, new_run_dir

_log = logging.getLogger("drready.stack")

__all__ = [
    "MAKER_CODE",
    "ProcessReport",
    "StackReport",
    "StackSettings",
    "child_specs",
    "default_start",
    "run_stack",
    "stack_credentials",
]

MAKER_CODE = "000005"
ECHONET_PORT = 3610
#: VTN client ids of the parties (role): the servicer is the VTN's BL, the others VENs.
SERVICER_CLIENT = "dr-servicer"
CLOUD_CLIENT = "maker-cloud"
GATEWAY_CLIENT = "home-gateway"
VTN_CLIENTS = {SERVICER_CLIENT: "bl", CLOUD_CLIENT: "ven", GATEWAY_CLIENT: "ven"}
#: The servicer API's client the stack places orders with (role ``trader``).
TRADER_CLIENT = "operator"
#: The dashboard's operator made for the run (``servicer run --operators-file``), and the
#: files of the run's state directory: the operators file (scrypt hashes) and the 0600 file
#: that tells the operator's password.
DASHBOARD_OPERATOR = "stack"
OPERATORS_FILE = "servicer/operators.toml"
DASHBOARD_LOGIN_FILE = "credentials/dashboard-login.txt"
SERVICER_STATE_DIR = "servicer/state"
#: Households of the route-i homes (persons, tank [L]), as in ``drready demo``; the first
#: half of the homes run DR-ready units, the second half units of the installed base
#: (standard energy shift only, issue 15): see :func:`home_profile`.
_HOMES: tuple[tuple[int, float], ...] = (
    (4, 460.0),
    (2, 370.0),
    (3, 370.0),
    (4, 460.0),
    (1, 460.0),
    (3, 370.0),
    (2, 370.0),
    (4, 460.0),
    (3, 460.0),
    (3, 370.0),
)
#: The households' tariff, for the cloud's units and the homes' (the demo's flat rate: a
#: night-rate household heats at night and has nothing to shed in the evening window).
TARIFF = "flat"
#: The maker cloud's confidence level (E1): the potential it declares and the reserve it keeps.
#: At 0.95 one unit of the stack's 1000 (seed 0) ran dry for one 5-minute step at the end of
#: the first evening's down-DR window, which its no-DR twin did not (tests/test_soak.py).
CLOUD_CONFIDENCE = 0.99
#: The battery's address: the demo's 127.0.0.20, 18 after the first home.
_BATTERY_OFFSET = 18
#: Simulated local time of each day at which the processes' memory is sampled: after the day's
#: last window (17:00–20:00) has ended and been followed up.
RSS_SAMPLE_HOUR = 21
#: Wall seconds between two turns of the main loop.
_TURN_S = 0.1
#: Wall seconds the observer waits for late answers before calling an event's report lost.
_LOST_AFTER_S = 5.0
#: The servicer's registry of API clients (``servicer run --clients-file`` by default).
ENV_SERVICER_CLIENTS_FILE = "DRREADY_SERVICER_CLIENTS_FILE"
#: Wall seconds between two steps of the servicer's orders and F5 collection, and between two
#: polls of the VENs: their own defaults (30 s, 60 s, 10 s of the process clock) would be a few
#: milliseconds of wall time at 720×, and the processes would only poll each other.
_STEP_WALL_S = 0.2
_POLL_WALL_S = 0.1
#: Wall seconds the servicer waits for the VENs' answers before it dispatches or re-dispatches.
_ANSWER_WALL_S = 5.0


def home_profile(k: int, homes: int) -> str:
    """The ``echonet serve --profile`` of home ``k`` (0-based) of ``homes``: the first half
    (rounded up) DR-ready, the rest the installed base, alternately ``standard`` (two shift
    times) and ``standard-single`` (one shift time, 09–17 h).

    >>> [home_profile(k, 10) for k in (0, 4, 5, 6, 9)]
    ['dr-ready', 'dr-ready', 'standard', 'standard-single', 'standard']
    >>> home_profile(0, 1)
    'dr-ready'
    """
    first_standard = (homes + 1) // 2
    if k < first_standard:
        return "dr-ready"
    return "standard" if (k - first_standard) % 2 == 0 else "standard-single"


def servicer_tick_s(time_scale: float) -> float:
    """The servicer's ``--tick`` and ``--power-every`` [simulated s]: 30 s, or
    :data:`_STEP_WALL_S` of wall time when that is longer.

    >>> servicer_tick_s(1.0), servicer_tick_s(720.0)
    (30.0, 144.0)
    """
    return max(30.0, float(round(_STEP_WALL_S * time_scale)))


def ven_poll_s(time_scale: float) -> float:
    """The VENs' ``--interval`` [simulated s]: 10 s, or :data:`_POLL_WALL_S` of wall time
    when that is longer.

    >>> ven_poll_s(1.0), ven_poll_s(720.0)
    (10.0, 72.0)
    """
    return max(10.0, float(round(_POLL_WALL_S * time_scale)))


def answer_wait_s(time_scale: float) -> float:
    """The servicer's ``--potential-wait`` [simulated s]: its default of 10 minutes, or
    :data:`_ANSWER_WALL_S` of wall time when that is longer — a home gateway reads its units
    over ECHONET Lite before it answers, which takes wall time, not simulated time.

    >>> answer_wait_s(1.0), answer_wait_s(720.0)
    (600.0, 3600.0)
    """
    return max(600.0, float(round(_ANSWER_WALL_S * time_scale)))


#: Stop waves (highest first): the order desk's peers, then the VENs, then the VTN and the LAN.
_WAVE_SERVICER, _WAVE_VENS, _WAVE_BASE = 2, 1, 0


#: The stack comes up at 00:00 of its first day (the start is 06:00): 6 simulated hours.
WARMUP_H = 6.0
#: … but never more than a minute of wall time (at 1× the warm-up would take 6 hours).
WARMUP_MAX_WALL_S = 60.0
#: The servicer's potential collection: its defaults and 23:00, the instant a stack that comes
#: up after midnight catches up (that day's windows) and the night's refresh of the next day's.
POTENTIAL_AT = "07:00,13:00,23:00"


def default_warmup(time_scale: float) -> float:
    """Simulated hours the children run before the start: :data:`WARMUP_H`, or
    :data:`WARMUP_MAX_WALL_S` of wall time when that is less.

    >>> default_warmup(720.0), default_warmup(1.0)
    (6.0, 0.016666666666666666)
    """
    return min(WARMUP_H, WARMUP_MAX_WALL_S * time_scale / 3600.0)


def default_start(now: datetime | None = None) -> datetime:
    """Tomorrow 06:00 in :data:`DEFAULT_TZ` (the simulated start of ``stack up``).

    >>> default_start(datetime(2026, 5, 14, 23, 30, tzinfo=zone(DEFAULT_TZ))).isoformat()
    '2026-05-15T06:00:00+09:00'
    """
    tz = zone(DEFAULT_TZ)
    today = (now or datetime.now(tz)).astimezone(tz).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=tz).replace(
        hour=6
    )


class StackSettings(BaseModel):
    """What ``drready stack up`` runs."""

    units: int = Field(default=1000, ge=0, le=1_000_000, description="Maker cloud's units.")
    mode: Literal["units", "group"] = "group"
    homes: int = Field(
        default=10,
        ge=0,
        le=len(_HOMES),
        description="Route-i homes: half DR-ready, half standard-only (home_profile).",
    )
    battery: bool = True
    servicer: bool = True
    time_scale: float = Field(default=1.0, ge=1.0, le=MAX_TIME_SCALE)
    start: AwareDatetime | None = None
    duration_s: float | None = Field(default=None, gt=0.0, le=30 * 86400.0)
    warmup_h: float | None = Field(
        default=None,
        ge=0.0,
        le=24.0,
        description="Simulated hours the stack runs before the start (default_warmup).",
    )
    up_share: float = Field(default=0.6, gt=0.0, le=1.0)
    down_share: float = Field(default=0.6, gt=0.0, le=1.0)
    state_dir: Path | None = None
    vtn_port: int = Field(default=8443, ge=0, le=65535, description="0: any free port.")
    api_port: int = Field(default=8444, ge=0, le=65535, description="0: any free port.")
    echonet_base: str = Field(default="127.0.0.2", description="First home's IPv4 address.")
    seed: int = Field(default=0, ge=0)
    poll_s: float | None = Field(
        default=None, ge=1.0, le=3600.0, description="VENs' poll interval (their --interval)."
    )

    @field_validator("echonet_base")
    @classmethod
    def _loopback_range(cls, value: str) -> str:
        address = ipaddress.IPv4Address(value)
        if int(address) & 0xFF < 2 or int(address) & 0xFF > 255 - _BATTERY_OFFSET - 1:
            raise ValueError(f"must end in .2–.{255 - _BATTERY_OFFSET - 1}, got {value}")
        return value

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

    def home_hosts(self) -> list[str]:
        base = ipaddress.IPv4Address(self.echonet_base)
        return [str(base + k) for k in range(self.homes)]

    def battery_host(self) -> str:
        return str(ipaddress.IPv4Address(self.echonet_base) + _BATTERY_OFFSET)

    def lan_interface(self) -> str:
        """The gateway's own address on the home LAN: the one before the first home."""
        return str(ipaddress.IPv4Address(self.echonet_base) - 1)


class ProcessReport(BaseModel):
    """One child: how it ended and its memory (RSS of its process tree) per simulated day."""

    name: str
    pid: int
    exit_code: int | None
    killed: bool = False
    early: bool = False
    stop_s: float = 0.0
    rss_kb: dict[str, int] = Field(default_factory=dict)
    log: str
    argv: list[str] = Field(default_factory=list, description="Its command line.")


class StackReport(BaseModel):
    """What ``stack up --json`` prints (see the module docstring)."""

    simulated_hours: float
    simulated_start: datetime
    warmup_hours: float = Field(description="Simulated hours the stack ran before the start.")
    simulated_end: datetime
    time_scale: float
    wall_s: float
    stopped_by: str
    orders: list[dict[str, Any]]
    dr_caused_shortages: int | None
    unanswered_events: list[dict[str, Any]] | None = None
    processes: list[ProcessReport]
    left_behind: dict[str, list[Any]] = Field(default_factory=dict)
    urls: dict[str, str] = Field(default_factory=dict)
    state_dir: str
    credentials: str
    shortages: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each party's shortage counters as its status file gave them at the stop.",
    )
    dashboard_login: str | None = Field(
        default=None, description="The 0600 file with the dashboard operator's name and password."
    )
    missing: list[str] = Field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Urls:
    vtn: str
    api: str


def _python() -> list[str]:
    return [sys.executable, "-m", "drready.cli"]


def child_specs(
    settings: StackSettings,
    run: RunDir,
    creds: Credentials,
    urls: _Urls,
    clock_env: str,
    *,
    ready: Callable[[str], Callable[[], bool] | None] = lambda _: None,
) -> list[ChildSpec]:
    """The children of a run, in start order (see the module docstring); ``ready(name)``
    gives each its readiness probe."""
    clock = {ENV_CLOCK: clock_env}
    ca = str(creds.certs.ca_cert)
    tls = ["--cert", str(creds.certs.server_cert), "--key", str(creds.certs.server_key)]
    vtn_port = urls.vtn.rsplit(":", 1)[1]
    specs = [
        ChildSpec(
            "vtn",
            [
                *_python(),
                "vtn",
                "serve",
                "--port",
                vtn_port,
                *tls,
                "--database",
                f"sqlite:///{run.path / 'vtn' / 'vtn.db'}",
                "--base-url",
                urls.vtn,
            ],
            {**creds.vtn_env, **clock},
            ready("vtn"),
            stop_wave=_WAVE_BASE,
        )
    ]
    status = run.path / "status"
    for k, host in enumerate(settings.home_hosts()):
        persons, tank_l = _HOMES[k]
        specs.append(
            ChildSpec(
                f"home-{k + 1}",
                [
                    *_python(),
                    "echonet",
                    "serve",
                    "--address",
                    host,
                    "--persons",
                    str(persons),
                    "--tank-l",
                    f"{tank_l:g}",
                    "--maker-code",
                    MAKER_CODE,
                    "--serial",
                    f"HG{k + 1:07d}",
                    "--seed",
                    str(settings.seed + 101 + k),
                    "--profile",
                    home_profile(k, settings.homes),
                    "--tariff",
                    TARIFF,
                    "--status-file",
                    str(status / f"home-{k + 1}.json"),
                ],
                clock,
                ready(f"home-{k + 1}"),
                stop_wave=_WAVE_BASE,
            )
        )
    if settings.battery:
        specs.append(
            ChildSpec(
                "battery",
                [
                    *_python(),
                    "echonet",
                    "serve-battery",
                    "--address",
                    settings.battery_host(),
                    "--maker-code",
                    MAKER_CODE,
                    "--serial",
                    "BT0000001",
                ],
                clock,
                ready("battery"),
                stop_wave=_WAVE_BASE,
            )
        )
    poll_s = ven_poll_s(settings.time_scale) if settings.poll_s is None else settings.poll_s
    poll = ["--interval", f"{poll_s:g}"]
    if settings.units:
        specs.append(
            ChildSpec(
                "cloud",
                [
                    *_python(),
                    "cloud",
                    "serve",
                    "--vtn",
                    urls.vtn,
                    "--ca",
                    ca,
                    "--units",
                    str(settings.units),
                    "--mode",
                    settings.mode,
                    "--client-id",
                    CLOUD_CLIENT,
                    "--maker-code",
                    MAKER_CODE,
                    "--seed",
                    str(settings.seed),
                    "--tariff",
                    TARIFF,
                    "--confidence",
                    f"{CLOUD_CONFIDENCE:g}",
                    "--status-file",
                    str(status / "cloud.json"),
                    *poll,
                ],
                {ENV_CLIENT_SECRET: creds.secrets[CLOUD_CLIENT], **clock},
                ready("cloud"),
                ready_timeout_s=180.0,
                stop_wave=_WAVE_VENS,
            )
        )
    if settings.homes:
        hosts = [a for h in settings.home_hosts() for a in ("--host", h)]
        specs.append(
            ChildSpec(
                "gateway",
                [
                    *_python(),
                    "gateway",
                    "serve",
                    "--vtn",
                    urls.vtn,
                    "--ca",
                    ca,
                    *hosts,
                    "--interface",
                    settings.lan_interface(),
                    "--client-id",
                    GATEWAY_CLIENT,
                    *poll,
                ],
                {ENV_CLIENT_SECRET: creds.secrets[GATEWAY_CLIENT], **clock},
                ready("gateway"),
                stop_wave=_WAVE_VENS,
            )
        )
    if settings.servicer:
        api_port = urls.api.rsplit(":", 1)[1]
        specs.append(
            ChildSpec(
                "servicer",
                [
                    *_python(),
                    "servicer",
                    "run",
                    "--vtn",
                    urls.vtn,
                    "--ca",
                    ca,
                    "--vtn-client-id",
                    SERVICER_CLIENT,
                    "--port",
                    api_port,
                    *tls,
                    "--database",
                    f"sqlite:///{run.path / 'servicer' / 'servicer.db'}",
                    "--route",
                    f"{GATEWAY_CLIENT}=gateway",
                    "--route",
                    f"{CLOUD_CLIENT}=cloud",
                    "--tick",
                    f"{servicer_tick_s(settings.time_scale):g}",
                    "--power-every",
                    f"{servicer_tick_s(settings.time_scale):g}",
                    "--potential-at",
                    POTENTIAL_AT,
                    "--operators-file",
                    str(run.path / OPERATORS_FILE),
                    "--state-dir",
                    str(run.path / SERVICER_STATE_DIR),
                    "--potential-wait",
                    f"{answer_wait_s(settings.time_scale):g}",
                    "--response-timeout",
                    f"{max(900.0, answer_wait_s(settings.time_scale)):g}",
                ],
                {
                    ENV_CLIENT_SECRET: creds.secrets[SERVICER_CLIENT],
                    ENV_TOKEN_KEY: creds.api_env[ENV_TOKEN_KEY],
                    ENV_SERVICER_CLIENTS_FILE: creds.api_env[ENV_CLIENTS_FILE],
                    **clock,
                },
                ready("servicer"),
                ready_timeout_s=60.0,
                stop_wave=_WAVE_SERVICER,
            )
        )
    return specs


def start_groups(specs: list[ChildSpec]) -> list[list[ChildSpec]]:
    """The children in the groups they start in, each group at once once the one before is
    ready: the VTN; the LAN (water heaters, battery); the VENs (cloud, gateway: they need the
    VTN, and the gateway the LAN); the servicer, whose first potential collection needs the
    VENs' resources on the VTN.

    >>> names = ["vtn", "home-1", "home-2", "battery", "cloud", "gateway", "servicer"]
    >>> [[c.name for c in g] for g in start_groups([ChildSpec(n, []) for n in names])]
    [['vtn'], ['home-1', 'home-2', 'battery'], ['cloud', 'gateway'], ['servicer']]
    """
    rank = {"vtn": 0, "battery": 1, "cloud": 2, "gateway": 2, "servicer": 3}
    groups: dict[int, list[ChildSpec]] = {}
    for spec in specs:
        groups.setdefault(rank.get(spec.name, 1), []).append(spec)
    return [groups[k] for k in sorted(groups)]


def dashboard_operator(run: RunDir) -> Path:
    """An operator of the servicer's dashboard for the run (:data:`DASHBOARD_OPERATOR`, a
    random password): the operators file ``servicer run --operators-file`` reads, and the 0600
    file that tells the password (returned)."""
    password = secrets.token_urlsafe(18)
    make_private_dirs((run.path / OPERATORS_FILE).parent)
    OperatorFile(run.path / OPERATORS_FILE).add(DASHBOARD_OPERATOR, password)
    text = f"operator: {DASHBOARD_OPERATOR}\npassword: {password}\n"
    return run.write_secret(DASHBOARD_LOGIN_FILE, text.encode())


def stack_credentials(settings: StackSettings, run: RunDir, urls: _Urls) -> Credentials:
    """The run's certificates and credentials (:func:`make_credentials`): the VTN's clients,
    the servicer API's ``operator`` (role trader) when the run has a servicer, and one ``.env``
    file per party."""
    return make_credentials(
        run,
        VTN_CLIENTS,
        party_env={
            "vtn": {"DRREADY_TOKEN_KEY": "vtn-env:DRREADY_TOKEN_KEY"}
            | {"DRREADY_CLIENTS_FILE": "vtn-env:DRREADY_CLIENTS_FILE"},
            "maker-cloud": {ENV_CLIENT_SECRET: f"vtn:{CLOUD_CLIENT}"},
            "home-gateway": {ENV_CLIENT_SECRET: f"vtn:{GATEWAY_CLIENT}"},
            **(
                {
                    "servicer": {
                        ENV_CLIENT_SECRET: f"vtn:{SERVICER_CLIENT}",
                        ENV_TOKEN_KEY: f"api-env:{ENV_TOKEN_KEY}",
                        ENV_SERVICER_CLIENTS_FILE: f"api-env:{ENV_CLIENTS_FILE}",
                    },
                    TRADER_CLIENT: {
                        "DRREADY_API_URL": f"literal:{urls.api}/api/v1",
                        "DRREADY_API_CLIENT_ID": f"literal:{TRADER_CLIENT}",
                        "DRREADY_API_CLIENT_SECRET": f"api:{TRADER_CLIENT}",
                    },
                }
                if settings.servicer
                else {}
            ),
        },
        api_clients={TRADER_CLIENT: ("trader", None)} if settings.servicer else None,
        api_policy=SERVICER_POLICY if settings.servicer else None,
    )


@dataclass
class _Run:
    """The mutable state of one run (the shell's, not the order core's)."""

    settings: StackSettings
    run: RunDir
    console: Console
    stop: threading.Event
    launched: float = field(default_factory=time.monotonic)
    missing: list[str] = field(default_factory=list)
    rss: dict[str, dict[str, int]] = field(default_factory=dict)
    sampled: set[date] = field(default_factory=set)


def _http_ok(url: str, ca: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with httpx.Client(verify=client_ssl_context(ca), timeout=2.0) as http:
                return http.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def _udp_bound(address: str) -> Callable[[], bool]:
    return lambda: bool(bound_udp([address], ECHONET_PORT))


def _ven_ready(observer: TokenClient, ven_name: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            vens = observer.get("/vens", venName=ven_name)
            if vens.status_code != 200 or not vens.json():
                return False
            ven_id = vens.json()[0]["id"]
            resources = observer.get("/resources", venID=ven_id, limit=1)
            return resources.status_code == 200 and bool(resources.json())
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    return probe


def _port(wanted: int) -> int:
    return wanted or free_port()


def run_stack(
    settings: StackSettings,
    *,
    console: Console | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[dict[str, str]], None] | None = None,
) -> StackReport:
    """Bring the stack up, drive the orders, stop everything (see the module docstring).

    ``stop`` ends the run when set (the CLI sets it on SIGINT/SIGTERM); ``on_ready`` gets the
    URLs and paths once every child is ready."""
    state = _Run(
        settings=settings,
        run=new_run_dir("stack", explicit=settings.state_dir),
        console=console or Console(stderr=True),
        stop=stop or threading.Event(),
    )
    run = state.run
    say = state.console.print
    if run.fallback_reason is not None:
        say(f"state directory: a temporary one ({run.fallback_reason})", soft_wrap=True)
    say(f"keys, credentials, databases and logs of this run: {run.path}", soft_wrap=True)
    urls = _Urls(
        vtn=f"https://localhost:{_port(settings.vtn_port)}",
        api=f"https://localhost:{_port(settings.api_port)}",
    )
    creds = stack_credentials(settings, run, urls)
    login = dashboard_operator(run) if settings.servicer else None
    start = settings.start or default_start()
    warmup = timedelta(
        hours=default_warmup(settings.time_scale)
        if settings.warmup_h is None
        else settings.warmup_h
    )
    spec = ClockSpec(sim_start=start - warmup, wall_start=time.time(), scale=settings.time_scale)
    clock = ScaledClock(spec)
    ca = str(creds.certs.ca_cert)
    observer = TokenClient(urls.vtn, OBSERVER, creds.secrets[OBSERVER], ca_file=ca)
    trader = (
        TokenClient(urls.api, TRADER_CLIENT, creds.api_secrets[TRADER_CLIENT], ca_file=ca)
        if settings.servicer
        else None
    )

    def ready(name: str) -> Callable[[], bool] | None:
        if name == "vtn":
            return _http_ok(f"{urls.vtn}/auth/server", ca)
        if name.startswith("home-"):
            return _udp_bound(settings.home_hosts()[int(name.split("-")[1]) - 1])
        if name == "battery":
            return _udp_bound(settings.battery_host())
        if name == "cloud":
            return _ven_ready(observer, CLOUD_CLIENT)
        if name == "gateway":
            return _ven_ready(observer, GATEWAY_CLIENT)
        if name == "servicer":
            return _http_ok(f"{urls.api}/healthz", ca)
        return None

    run.private_file("servicer/servicer.db")  # private from the start (SQLite keeps the mode)
    (run.path / "status").mkdir(mode=0o700, exist_ok=True)
    specs = child_specs(settings, run, creds, urls, spec.to_env(), ready=ready)
    supervisor = Supervisor(run.path / "logs", _child_env())
    error: str | None = None
    stopped_by = "signal"
    driver: OrderDriver | None = None
    sim_end = start
    orders: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] | None = None
    try:
        for group in start_groups(specs):
            say(f"starting {', '.join(c.name for c in group)} …")
            supervisor.start_all(group, should_stop=state.stop.is_set)
        shown = _shown_urls(settings, urls, run, creds)
        say(_ready_text(shown, start, settings), soft_wrap=True)
        if login is not None:
            say(
                f"dashboard login: operator {DASHBOARD_OPERATOR!r}, password in {login}",
                soft_wrap=True,
            )
        if on_ready is not None:
            on_ready(shown)
        if trader is not None:
            horizon = spec.sim_start + timedelta(
                seconds=(settings.duration_s or 30 * 86400.0) * settings.time_scale
            )
            driver = OrderDriver(
                plans_between(
                    start - timedelta(seconds=1),
                    horizon,
                    run_id=run.path.name,
                    up_share=settings.up_share,
                    down_share=settings.down_share,
                )
            )
        else:
            state.missing.append("no servicer API in this run: no orders placed")
        stopped_by = _main_loop(state, supervisor, clock, driver, trader)
        sim_end = clock.now()
        if driver is not None and trader is not None:
            _perform_all(driver, trader, list(driver.closing_reads()), clock)
            orders = driver.report()
        lost = _lost_reports(observer)
    except ChildFailedError as err:
        error = str(err)
        stopped_by = f"{err.name} failed"
        sim_end = clock.now()
    except InterruptedError:
        stopped_by = "signal during start-up"
        sim_end = clock.now()
    except Exception as err:  # a bug of the stack itself: the children are stopped all the same
        _log.exception("stack up failed")
        error = f"{type(err).__name__}: {err}"
        stopped_by = "error"
        sim_end = clock.now()
    finally:
        _sample_rss(state, supervisor, "end")
        exits = supervisor.stop()
        observer.close()
        if trader is not None:
            trader.close()
    left = _left_behind(exits, settings, urls)
    counters, shortages = _shortages(run, [e.name for e in exits], state.missing)
    argv_of = {c.name: list(c.argv) for c in specs}
    return StackReport(
        simulated_hours=round(max((sim_end - start).total_seconds(), 0.0) / 3600.0, 3),
        simulated_start=start,
        warmup_hours=round(warmup.total_seconds() / 3600.0, 3),
        simulated_end=sim_end,
        time_scale=settings.time_scale,
        wall_s=round(time.monotonic() - state.launched, 1),
        stopped_by=stopped_by,
        orders=orders,
        dr_caused_shortages=shortages,
        shortages=counters,
        dashboard_login=None if login is None else str(login),
        unanswered_events=lost,
        processes=[
            ProcessReport(
                name=e.name,
                pid=e.pid,
                exit_code=e.exit_code,
                killed=e.killed,
                early=e.early,
                stop_s=e.stop_s,
                rss_kb=state.rss.get(e.name, {}),
                log=str(supervisor.log(e.name)),
                argv=argv_of.get(e.name, []),
            )
            for e in exits
        ],
        left_behind=left,
        urls={k: v for k, v in _shown_urls(settings, urls, run, creds).items()},
        state_dir=str(run.path),
        credentials=str(creds.directory),
        missing=state.missing,
        error=error,
    )


def _shortages(
    run: RunDir, names: list[str], missing: list[str]
) -> tuple[dict[str, dict[str, Any]], int | None]:
    """The shortage counters of the children that keep a status file (the maker cloud and
    the water heaters: :mod:`drready.device.status`) as they wrote them at their stop, and the
    DR-caused shortages summed over them — None, with a note in ``missing``, if one of them
    has no final status to give."""
    counters: dict[str, dict[str, Any]] = {}
    total: int | None = 0
    for name in names:
        if name != "cloud" and not name.startswith("home-"):
            continue
        status = read_status(run.path / "status" / f"{name}.json")
        if status is None or status.dr_caused_shortages is None or not status.final:
            missing.append(f"DR-caused shortages: {name} left no final status file")
            total = None
            if status is None:
                continue
        counters[name] = status.model_dump(mode="json")
        if total is not None and status.dr_caused_shortages is not None:
            total += status.dr_caused_shortages
    return counters, total


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRREADY_")}
    env["PYTHONUNBUFFERED"] = "1"  # the logs show what happened when it happened
    return env


def _shown_urls(
    settings: StackSettings, urls: _Urls, run: RunDir, creds: Credentials
) -> dict[str, str]:
    shown = {"vtn": urls.vtn, "ca": str(creds.certs.ca_cert)}
    if settings.servicer:
        shown |= {
            "api": f"{urls.api}/api/v1",
            "api_docs": f"{urls.api}/docs",
            "dashboard": f"{urls.api}/dashboard/",
            "healthz": f"{urls.api}/healthz",
            "metrics": f"{urls.api}/metrics",
        }
    shown |= {"credentials": str(creds.directory), "logs": str(run.path / "logs")}
    return shown


def _ready_text(shown: dict[str, str], start: datetime, settings: StackSettings) -> str:
    lines = [f"stack up — simulated {start.isoformat()} at {settings.time_scale:g}× wall time"]
    lines += [f"  {name:<12} {value}" for name, value in shown.items()]
    return "\n".join(lines)


def _main_loop(
    state: _Run,
    supervisor: Supervisor,
    clock: ScaledClock,
    driver: OrderDriver | None,
    trader: TokenClient | None,
) -> str:
    duration = state.settings.duration_s
    while True:
        if state.stop.is_set():
            return "signal"
        if duration is not None and time.monotonic() - state.launched >= duration:
            return "duration"
        early = supervisor.exited()
        if early:
            names = ", ".join(f"{e.name} (exit {e.exit_code})" for e in early)
            raise ChildFailedError(
                early[0].name, f"exited by itself: {names}", supervisor.log(early[0].name)
            )
        now = clock.now()
        if driver is not None and trader is not None:
            _perform_all(driver, trader, driver.handle(Tick(), now), clock)
        day = now.astimezone(zone(DEFAULT_TZ))
        if day.hour >= RSS_SAMPLE_HOUR and day.date() not in state.sampled:
            state.sampled.add(day.date())
            _sample_rss(state, supervisor, day.date().isoformat())
        time.sleep(_TURN_S)


def _sample_rss(state: _Run, supervisor: Supervisor, label: str) -> None:
    for name, pid in supervisor.pids().items():
        state.rss.setdefault(name, {})[label] = rss_kb(pid)


def _perform_all(
    driver: OrderDriver, trader: TokenClient, actions: list[Any], clock: ScaledClock
) -> None:
    """Do what the order core asks, feeding each answer back, until it asks nothing more."""
    todo = list(actions)
    while todo:
        action = todo.pop(0)
        answer = _perform(trader, action)
        if answer is not None:
            todo += driver.handle(answer, clock.now())


def _perform(trader: TokenClient, action: Any) -> Any:
    if isinstance(action, ReadPotential):
        plan = action.plan
        try:
            got = trader.get(
                "/api/v1/portfolio/potential",
                start=plan.start.isoformat(),
                end=plan.end.isoformat(),
            )
        except httpx.HTTPError as err:
            return PotentialMissing(plan.key, f"potential: {err!r}")
        if got.status_code != 200:
            return PotentialMissing(plan.key, f"potential: {got.status_code} {got.text[:200]}")
        potential = got.json()["potential"]
        return PotentialRead(plan.key, float(potential["up_kwh"]), float(potential["down_kwh"]))
    if isinstance(action, PostOrder):
        plan = action.plan
        body = {
            "direction": plan.direction.value,
            "window": {"start": plan.start.isoformat(), "end": plan.end.isoformat()},
            "energy_kwh": action.energy_kwh,
        }
        try:
            got = trader.request(
                "POST", "/api/v1/orders", json=body, headers={"Idempotency-Key": plan.key}
            )
        except httpx.HTTPError as err:
            return OrderRefused(plan.key, f"post: {err!r}", final=False)
        if got.status_code in (200, 201):
            return OrderPosted(plan.key, str(got.json()["id"]))
        transient = got.status_code >= 500 or got.status_code == 429
        return OrderRefused(
            plan.key, f"post: {got.status_code} {got.text[:200]}", final=not transient
        )
    if isinstance(action, ReadOrder):
        try:
            got = trader.get(f"/api/v1/orders/{action.order_id}", detail="resources")
        except httpx.HTTPError:
            return None
        if got.status_code != 200:
            return None
        return OrderRead(action.order_id, got.json())
    raise TypeError(f"unknown action {action!r}")


def _lost_reports(observer: TokenClient) -> list[dict[str, Any]] | None:
    """Events a targeted resource has not answered, after :data:`_LOST_AFTER_S` for late
    answers; None if the VTN could not be read."""
    deadline = time.monotonic() + _LOST_AFTER_S
    while True:
        try:
            lost = unanswered_events(observer)
        except Exception:  # the check must not cost the run's report
            _log.exception("reading the VTN's events and reports failed")
            return None
        if not lost or time.monotonic() >= deadline:
            return lost
        time.sleep(0.5)


def _left_behind(
    exits: list[ChildExit], settings: StackSettings, urls: _Urls
) -> dict[str, list[Any]]:
    ports = [int(u.rsplit(":", 1)[1]) for u in (urls.vtn, urls.api)]
    hosts = settings.home_hosts() + ([settings.lan_interface()] if settings.homes else [])
    if settings.battery:
        hosts.append(settings.battery_host())
    return {
        "processes": leftovers(e.pid for e in exits),
        "tcp_listening": [list(x) for x in listening_tcp(ports)],
        "udp_bound": [list(x) for x in bound_udp(hosts, ECHONET_PORT)],
    }
