"""``drready servicer run|db-upgrade|data-key``: the DR servicer as a long-running service
(the VTN's BL, a schedule in local time, the north-bound API, dashboard, health and metrics;
issue 11 item 2), its database, and the key that seals market registration data at rest (S1).

``run`` is made for a process supervisor (systemd, ``drready stack up``): every setting is a flag
(or its environment variable), credentials come from files or the environment outside the
repository — the VTN client secret from ``$DRREADY_CLIENT_SECRET``, the API's token signing key
from ``$DRREADY_TOKEN_KEY`` / ``$DRREADY_TOKEN_KEY_FILE``, the API's client registry from
``--clients-file`` / ``$DRREADY_SERVICER_CLIENTS_FILE``, the dashboard's operators from
``--operators-file`` / ``$DRREADY_SERVICER_OPERATORS_FILE`` (written by ``drready servicer
operator add NAME``; without it the dashboard is closed to everyone), the session key from
``--state-dir`` — and SIGTERM stops it with exit status 0 within 10 s. Bad arguments exit 2 with
one line naming the option.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from drready.cli.common import (
    CaOpt,
    check_range,
    client_secret,
    console,
    fail,
    first_line,
    require_http_url,
    sub_app,
)
from drready.domain import DEFAULT_TZ
from drready.domain.clock import (
    ENV_CLOCK,
    MAX_TIME_SCALE,
    ClockSpec,
    ScaledClock,
    WallClock,
    clock_from_env,
)
from drready.domain.time import zone
from drready.security.operators import OperatorFile, check_operator_name, check_password
from drready.security.sessions import load_or_create_session_key
from drready.security.tokens import load_registry
from drready.servicer.logs import LOG_FORMATS, configure_logging
from drready.servicer.run import ServiceConfig, serve
from drready.servicer.storage.crypto import write_key_file
from drready.servicer.storage.db import database_url, make_engine
from drready.servicer.storage.migrations import current_revision, head_revision, upgrade
from drready.servicer.web.auth import SERVICER_POLICY
from drready.sim.stack_state import state_home

app = sub_app(
    "DR servicer: run it as a service, its database, the key that seals market registration data."
)

#: Environment variable naming the API's client registry (the VTN's is DRREADY_CLIENTS_FILE).
ENV_SERVICER_CLIENTS_FILE = "DRREADY_SERVICER_CLIENTS_FILE"
#: Environment variable naming the dashboard's operators file.
ENV_OPERATORS_FILE = "DRREADY_SERVICER_OPERATORS_FILE"
#: Environment variable naming the servicer's state directory (its session key).
ENV_STATE_DIR = "DRREADY_SERVICER_STATE_DIR"

operator_app = sub_app("The dashboard's operators: a password file with scrypt hashes (0600).")
app.add_typer(operator_app, name="operator")


def _operators_path(option: Path | None) -> Path | None:
    if option is not None:
        return option
    env = os.environ.get(ENV_OPERATORS_FILE)
    return Path(env) if env else None


def _state_dir(option: Path | None) -> Path:
    """--state-dir, else $DRREADY_SERVICER_STATE_DIR, else systemd's $STATE_DIRECTORY, else
    the user's drready state folder."""
    if option is not None:
        return option
    for name in (ENV_STATE_DIR, "STATE_DIRECTORY"):
        value = os.environ.get(name, "").split(":")[0]
        if value:
            return Path(value)
    return state_home() / "servicer"


def _times(value: str, option: str) -> tuple[time, ...]:
    """``HH:MM[,HH:MM…]`` → local times of day."""
    try:
        out = tuple(time.fromisoformat(part.strip()) for part in value.split(","))
    except ValueError:
        fail(option, f"must be HH:MM or a comma-separated list of them, got {value!r}")
    if len(set(out)) != len(out):
        fail(option, f"must not repeat a time, got {value!r}")
    return out


def _window(value: str, option: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` on 30-minute boundaries → (start, end) times of day."""
    try:
        a, b = value.split("-")
        start, end = time.fromisoformat(a), time.fromisoformat(b)
    except ValueError:
        fail(option, f"must be HH:MM-HH:MM (e.g. 10:00-14:00), got {value!r}")
    if start.minute % 30 or end.minute % 30 or start.second or end.second:
        fail(option, f"times must be on 30-minute boundaries, got {value!r}")
    if start == end:
        fail(option, f"end must differ from start, got {value!r}")
    return start, end


def _routes(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        client, sep, route = value.partition("=")
        if not sep or not client or route not in ("gateway", "cloud"):
            fail("--route", f"must be CLIENT_ID=gateway or CLIENT_ID=cloud, got {value!r}")
        out[client] = route
    return out


def _clock(time_scale: float | None, sim_start: str | None) -> WallClock | ScaledClock:
    """The process clock: $DRREADY_CLOCK, else --time-scale from --sim-start (or now), else the
    wall clock."""
    try:
        shared = clock_from_env()
    except ValueError as err:
        fail(ENV_CLOCK, first_line(err))
    if isinstance(shared, ScaledClock):
        if time_scale is not None and time_scale != shared.scale:
            fail(
                "--time-scale",
                f"{ENV_CLOCK} sets the shared clock already (×{shared.scale:g}); a process "
                "follows the shared clock — leave --time-scale out or give the same value",
            )
        return shared
    if time_scale is None:
        if sim_start is not None:
            fail("--sim-start", "needs --time-scale (the wall clock cannot start elsewhere)")
        return shared
    check_range("--time-scale", time_scale, 1, MAX_TIME_SCALE)
    start = datetime.now(zone(DEFAULT_TZ))
    if sim_start is not None:
        try:
            start = datetime.fromisoformat(sim_start)
        except ValueError:
            fail("--sim-start", f"must be an ISO 8601 date-time, got {sim_start!r}")
        if start.tzinfo is None:
            fail("--sim-start", f"must carry a UTC offset (e.g. +09:00), got {sim_start!r}")
    return ScaledClock(ClockSpec.starting_now(start, time_scale))


@app.command("run")
def servicer_run(
    vtn: Annotated[str, typer.Option(help="Base URL of the servicer's VTN (https://…).")],
    database: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL (sqlite:///servicer.db, postgresql+psycopg://…); default "
            "$DRREADY_SERVICER_DATABASE_URL, else sqlite:///drready-servicer.db."
        ),
    ] = None,
    vtn_client_id: Annotated[
        str, typer.Option(help="OAuth2 client id of the servicer's BL at the VTN.")
    ] = "dr-servicer",
    ca: CaOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the API and dashboard, 1–65535.")] = 8444,
    cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    insecure_http: Annotated[
        bool, typer.Option(help="Serve plain HTTP (prints a warning; local experiments only).")
    ] = False,
    allow_any_address: Annotated[bool, typer.Option(help="Allow binding 0.0.0.0.")] = False,
    base_url: Annotated[
        str | None, typer.Option(help="Public base URL (for /auth/server); default from host.")
    ] = None,
    clients_file: Annotated[
        Path | None,
        typer.Option(
            help="The API's OAuth2 client registry (JSON/TOML with scrypt hashes, outside the "
            "repository; roles trader, meter, viewer); default $DRREADY_SERVICER_CLIENTS_FILE."
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(
            help="CLIENT_ID=gateway|cloud: the route of a VEN by its client id (repeatable); "
            "unnamed VENs are maker clouds (route ii)."
        ),
    ] = None,
    potential_at: Annotated[
        str, typer.Option(help="Local times of the day-ahead potential collection.")
    ] = "07:00,13:00",
    potential_window: Annotated[
        list[str] | None,
        typer.Option(
            help="HH:MM-HH:MM: a window of the next day to collect potential for (repeatable); "
            "default 10:00-14:00 and 17:00-20:00."
        ),
    ] = None,
    settle_at: Annotated[str, typer.Option(help="Local time(s) of the daily settlement.")] = (
        "10:00"
    ),
    tick: Annotated[
        float, typer.Option(help="Seconds between two steps of the orders (dispatch, follow-up).")
    ] = 30.0,
    power_every: Annotated[
        float, typer.Option(help="Seconds between two collections of F5 power reports.")
    ] = 60.0,
    sync_every: Annotated[float, typer.Option(help="Seconds between two registry syncs.")] = 600.0,
    potential_wait: Annotated[
        float, typer.Option(help="Longest wait for potential answers before a dispatch [s].")
    ] = 600.0,
    response_timeout: Annotated[
        float,
        typer.Option(help="Seconds a DR event may go unanswered before it is re-dispatched."),
    ] = 900.0,
    max_rounds: Annotated[int, typer.Option(help="Dispatch rounds per order, 1–10.")] = 3,
    retry_after: Annotated[float, typer.Option(help="Seconds before a failed job runs again.")] = (
        60.0
    ),
    time_scale: Annotated[
        float | None,
        typer.Option(
            help=f"Run N× faster than the wall clock (1–{MAX_TIME_SCALE:g}) when ${ENV_CLOCK} "
            "does not set a shared clock; every duration above is on this clock."
        ),
    ] = None,
    sim_start: Annotated[
        str | None,
        typer.Option(help="With --time-scale: the simulated instant now (ISO 8601, offset)."),
    ] = None,
    log_format: Annotated[str, typer.Option(help="'text' or 'json' (JSON lines).")] = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = False,
    operators_file: Annotated[
        Path | None,
        typer.Option(
            help="Who may log in to the dashboard: the file `drready servicer operator add` "
            "writes (scrypt hashes, mode 0600, outside the repository); default "
            f"${ENV_OPERATORS_FILE}. Without it the dashboard is closed to everyone."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory (0700, outside the repository) for the servicer's own keys: the "
            f"dashboard's session key; default ${ENV_STATE_DIR}, $STATE_DIRECTORY, else "
            "~/.local/state/drready/servicer."
        ),
    ] = None,
) -> None:
    """Run the DR servicer: the VTN's BL on its own database, its schedule, the north-bound API
    (/api/v1, /auth/token, /openapi.json, /docs), the dashboard (/dashboard/), /healthz and
    /metrics. The VTN client secret comes from $DRREADY_CLIENT_SECRET, the API's token signing
    key from $DRREADY_TOKEN_KEY (or $DRREADY_TOKEN_KEY_FILE). Stops on SIGTERM/SIGINT."""
    check_range("--port", port, 1, 65535)
    require_http_url(vtn)
    if vtn.startswith("http://") and not insecure_http:
        fail("--vtn", "an http:// VTN needs --insecure-http (local experiments only)")
    if not insecure_http and (cert is None or key is None):
        fail(
            "--cert/--key",
            "HTTPS needs a certificate and key (make them with `drready certs --out DIR`), or "
            "pass --insecure-http for a local experiment",
        )
    if log_format not in LOG_FORMATS:
        fail("--log-format", f"must be 'text' or 'json', got {log_format!r}")
    for option, seconds, hi in (
        ("--tick", tick, 3600),
        ("--power-every", power_every, 3600),
        ("--sync-every", sync_every, 86400),
        ("--potential-wait", potential_wait, 86400),
        ("--response-timeout", response_timeout, 86400),
        ("--retry-after", retry_after, 86400),
    ):
        check_range(option, seconds, 1, hi, "s")
    check_range("--max-rounds", max_rounds, 1, 10)
    windows = tuple(
        _window(w, "--potential-window") for w in potential_window or ["10:00-14:00", "17:00-20:00"]
    )
    potential_times = _times(potential_at, "--potential-at")
    settle_times = _times(settle_at, "--settle-at")
    routes = _routes(route or [])
    clock = _clock(time_scale, sim_start)
    secret = client_secret("the servicer's OAuth2 client secret at the VTN")
    registry_file = clients_file or (
        Path(os.environ[ENV_SERVICER_CLIENTS_FILE])
        if os.environ.get(ENV_SERVICER_CLIENTS_FILE)
        else None
    )
    if registry_file is None:
        fail(
            "--clients-file",
            f"the API's client registry is needed (or ${ENV_SERVICER_CLIENTS_FILE}): a JSON/TOML "
            "file outside the repository with scrypt hashes, roles trader, meter or viewer",
        )
    try:
        registry = load_registry(registry_file, policy=SERVICER_POLICY)
    except (ValueError, OSError) as err:
        fail("--clients-file", first_line(err))
    operators_path = _operators_path(operators_file)
    session_dir: Path | None = None
    if operators_path is not None:
        try:
            OperatorFile(operators_path).names()
        except (ValueError, OSError) as err:
            fail("--operators-file", first_line(err))
        session_dir = _state_dir(state_dir)
        try:
            load_or_create_session_key(session_dir)
        except (ValueError, OSError) as err:
            fail("--state-dir", first_line(err))
    try:
        configure_logging(log_format, log_level, clock=clock)
    except ValueError as err:
        fail("--log-level", first_line(err))
    config = ServiceConfig(
        vtn_url=vtn,
        vtn_client_id=vtn_client_id,
        vtn_client_secret=secret,
        database_url=database_url(database),
        vtn_ca_file=None if ca is None else str(ca),
        host=host,
        port=port,
        cert_file=cert,
        key_file=key,
        insecure_http=insecure_http,
        allow_any_address=allow_any_address,
        base_url=base_url,
        routes=routes,
        potential_at=potential_times,
        potential_windows=windows,
        settle_at=settle_times,
        tick=timedelta(seconds=tick),
        power_every=timedelta(seconds=power_every),
        sync_every=timedelta(seconds=sync_every),
        potential_wait=timedelta(seconds=potential_wait),
        response_timeout=timedelta(seconds=response_timeout),
        max_rounds=max_rounds,
        retry_after=timedelta(seconds=retry_after),
        access_log=access_log,
        operators_file=operators_path,
        state_dir=session_dir,
    )
    try:
        status = asyncio.run(serve(config, registry, clock))
    except ValueError as err:
        fail("--host" if "host" in str(err) else "--cert/--key", first_line(err))
    except SQLAlchemyError as err:
        fail("--database", first_line(err))
    if status:
        raise typer.Exit(status)


@app.command("db-upgrade")
def servicer_db_upgrade(
    database: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL (sqlite:///servicer.db, postgresql+psycopg://…); default "
            "$DRREADY_SERVICER_DATABASE_URL, else sqlite:///drready-servicer.db."
        ),
    ] = None,
) -> None:
    """Create or migrate the servicer's tables to the newest revision (idempotent)."""
    url = database_url(database)
    try:
        engine = make_engine(url)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        engine.dispose()
    except (SQLAlchemyError, RuntimeError, ValueError) as err:
        fail("--database", first_line(err))
    console.print(
        f"servicer database at revision {after} (was {before or 'empty'}; head {head_revision()})"
    )


@app.command("data-key")
def servicer_data_key(
    out: Annotated[
        Path, typer.Option(help="Key file to write (mode 0600, outside any git work tree).")
    ],
    key_id: Annotated[
        str | None, typer.Option(help="Key id for rotation (letters, digits, - _ .).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Make the AES-256 key that seals market registration data at rest; point
    $DRREADY_SERVICER_DATA_KEY_FILE at it."""
    try:
        kid = write_key_file(out, key_id=key_id, overwrite=overwrite)
    except FileExistsError:
        fail("--out", f"{out} exists (use --overwrite to replace it)")
    except ValueError as err:
        fail("--out" if "work tree" in str(err) else "--key-id", first_line(err))
    console.print(f"wrote key {kid} to {out}")


OperatorsFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="The operators file (TOML, 0600, outside the repository); default "
        f"${ENV_OPERATORS_FILE}."
    ),
]


def _operators_file(option: Path | None) -> OperatorFile:
    path = _operators_path(option)
    if path is None:
        fail("--operators-file", f"name the operators file (or set ${ENV_OPERATORS_FILE})")
    try:
        return OperatorFile(path)
    except (ValueError, OSError) as err:
        fail("--operators-file", first_line(err))


def _read_password() -> str:
    """The password: prompted twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            fail("password", "the two entries differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


@operator_app.command("add")
def operator_add(
    name: Annotated[str, typer.Argument(help="The operator's name (letters, digits, . _ @ -).")],
    operators_file: OperatorsFileOpt = None,
) -> None:
    """Add an operator or set a new password (which ends the operator's sessions). The password
    is read from the terminal (twice) or from the first line of standard input, never from an
    option; at least 16 characters."""
    try:
        check_operator_name(name)
    except ValueError as err:
        fail("NAME", first_line(err))
    operators = _operators_file(operators_file)
    password = _read_password()
    try:
        check_password(password)
    except ValueError as err:
        fail("password", first_line(err))
    new = operators.add(name, password)
    console.print(f"{'added' if new else 'new password for'} operator {name} in {operators.path}")


@operator_app.command("remove")
def operator_remove(
    name: Annotated[str, typer.Argument(help="The operator's name.")],
    operators_file: OperatorsFileOpt = None,
) -> None:
    """Remove an operator (their sessions end at their next request)."""
    operators = _operators_file(operators_file)
    if not operators.remove(name):
        fail("NAME", f"no operator {name!r} in {operators.path}")
    console.print(f"removed operator {name} from {operators.path}")


@operator_app.command("list")
def operator_list(operators_file: OperatorsFileOpt = None) -> None:
    """The operators' names (never their hashes)."""
    for name in _operators_file(operators_file).names():
        print(name)
