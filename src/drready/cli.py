"""The ``drready`` command: demo, schema export, DR potential (F1) and DR-aware plans (F3/F4).

Other tools script against this contract: ``--json`` output is stable, and a bad argument exits
with status 2 and one line on stderr that names the argument.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from drready.echonet.frame import EOJ

app = typer.Typer(
    help="drready: DR-ready heat pump water heaters — device, maker cloud and DR servicer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
console = Console()


def _fail(argument: str, message: str) -> NoReturn:
    """Exit 2 with one line naming the argument."""
    print(f"drready: error: {argument}: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail("--date", f"must be YYYY-MM-DD, got {value!r}")


def _parse_window(value: str, day: date, tz: str) -> tuple[datetime, datetime]:
    from drready.domain.time import zone

    try:
        a, b = value.split("-")
        ta = time.fromisoformat(a)
        end_next = b == "24:00"
        tb = time(0, 0) if end_next else time.fromisoformat(b)
    except ValueError:
        _fail("--window", f"must be HH:MM-HH:MM (e.g. 10:00-15:00), got {value!r}")
    start = datetime.combine(day, ta, tzinfo=zone(tz))
    end = datetime.combine(day + timedelta(days=1 if end_next else 0), tb, tzinfo=zone(tz))
    if end <= start:
        _fail("--window", f"end must be after start, got {value!r}")
    if ta.minute % 30 or tb.minute % 30:
        _fail("--window", f"times must be on 30-minute boundaries, got {value!r}")
    return start, end


PersonsOpt = Annotated[int, typer.Option(help="Household size, 1–4 persons.")]
TankOpt = Annotated[float, typer.Option("--tank-l", help="Tank volume [L], 100–1000 (370, 460).")]
DateOpt = Annotated[
    str,
    typer.Option(
        "--date", help="Day the DR is for (YYYY-MM-DD); planning starts 23:00 the evening before."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ConfOpt = Annotated[float, typer.Option(help="Confidence of the potential, 0.5–0.999.")]
HeatOpt = Annotated[
    float | None,
    typer.Option(
        "--initial-heat-kwh",
        help="Stored heat at 23:00 the evening before [kWh]; default a quarter-full tank.",
    ),
]
SerialOpt = Annotated[str, typer.Option(help="Unit serial (F6), 1–13 of [A-Za-z0-9._-].")]
MakerOpt = Annotated[str, typer.Option(help="ECHONET Lite maker code, 6 hex digits.")]


def _unit_planner(
    persons: int,
    tank_l: float,
    day_s: str,
    confidence: float,
    initial_heat_kwh: float | None,
    maker_code: str,
    serial: str,
) -> tuple[object, date]:
    from drready.domain import DeviceId
    from drready.planning.unit import UnitConfig, UnitPlanner

    if not 1 <= persons <= 4:
        _fail("--persons", f"must be within 1–4, got {persons}")
    if not 100 <= tank_l <= 1000:
        _fail("--tank-l", f"must be within 100–1000 L, got {tank_l}")
    if not 0.5 <= confidence <= 0.999:
        _fail("--confidence", f"must be within 0.5–0.999, got {confidence}")
    if initial_heat_kwh is not None and not 0 <= initial_heat_kwh <= 100:
        _fail("--initial-heat-kwh", f"must be within 0–100 kWh, got {initial_heat_kwh}")
    day = _parse_date(day_s)
    try:
        device = DeviceId(maker_code=maker_code, serial=serial)
    except ValueError as err:
        _fail("--serial/--maker-code", str(err).splitlines()[-1].strip())
    cfg = UnitConfig(device_id=device, persons=persons, tank_l=tank_l)
    return (
        UnitPlanner.day_ahead(cfg, day, initial_heat_kwh=initial_heat_kwh, confidence=confidence),
        day,
    )


@app.command()
def potential(
    persons: PersonsOpt = 4,
    tank_l: TankOpt = 460.0,
    day: DateOpt = "2026-05-12",
    window: Annotated[str, typer.Option(help="Window HH:MM-HH:MM on --date.")] = "10:00-15:00",
    confidence: ConfOpt = 0.95,
    initial_heat_kwh: HeatOpt = None,
    maker_code: MakerOpt = "000000",
    serial: SerialOpt = "SIM0000001",
    as_json: JsonOpt = False,
) -> None:
    """F1: the DR potential (DR可能量) of one unit for a window."""
    from drready.planning.unit import UnitPlanner

    up, d = _unit_planner(persons, tank_l, day, confidence, initial_heat_kwh, maker_code, serial)
    assert isinstance(up, UnitPlanner)
    start, end = _parse_window(window, d, up.grid.tz)
    if not up.grid.contains(start, end):
        _fail(
            "--window",
            f"must lie within the planning horizon {up.grid.start.isoformat()} – "
            f"{up.grid.end.isoformat()}",
        )
    env = up.flexibility_envelope(start, end)
    summary = env.summary()
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(title=f"DR potential of {summary['device_id']} for {window} on {d}")
    for col in ("slot", "baseline kW", "min kW", "max kW"):
        table.add_column(col, justify="right")
    for s in summary["slots"]:
        table.add_row(
            s["start"][11:16], f"{s['baseline_kw']:.2f}", f"{s['min_kw']:.2f}", f"{s['max_kw']:.2f}"
        )
    console.print(table)
    console.print(
        f"up-DR (上げDR) {summary['up_kwh']:.2f} kWh, down-DR (下げDR) {summary['down_kwh']:.2f} "
        f"kWh at {summary['confidence']:.0%} confidence"
    )


@app.command()
def plan(
    request: Annotated[
        list[str] | None,
        typer.Option(
            help="DR request DIR:HH:MM-HH:MM:KWH, e.g. up:10:00-13:00:3.0 or "
            "down:17:00-20:00:1.5; repeat for several."
        ),
    ] = None,
    persons: PersonsOpt = 4,
    tank_l: TankOpt = 460.0,
    day: DateOpt = "2026-05-12",
    confidence: ConfOpt = 0.95,
    initial_heat_kwh: HeatOpt = None,
    maker_code: MakerOpt = "000000",
    serial: SerialOpt = "SIM0000001",
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the plan here.")] = None,
) -> None:
    """F2→F3/F4: the heating plan (沸き上げ計画) of one unit honouring DR requests."""
    from drready.domain import DrRequest
    from drready.planning.unit import UnitPlanner

    up, d = _unit_planner(persons, tank_l, day, confidence, initial_heat_kwh, maker_code, serial)
    assert isinstance(up, UnitPlanner)
    reqs = []
    for k, spec in enumerate(request or []):
        try:
            reqs.append(
                DrRequest.parse_cli(
                    spec, d, tz=up.grid.tz, request_id=f"r{k + 1}", issued_at=up.computed_at
                )
            )
        except ValueError as err:
            _fail("--request", str(err).splitlines()[-1].strip())
    outcome = up.respond_to_requests(reqs)
    heating, responses = outcome.heating_plan, outcome.responses
    out = {
        "responses": [
            {
                "request_id": r.request_id,
                "status": r.status.value,
                "accepted_kwh": round(r.accepted_kwh, 4),
                "reason": r.reason,
            }
            for r in responses
        ],
        "plan": {
            "slots": [
                {
                    "start": s.start.isoformat(),
                    "power_kw": round(s.power_kw, 4),
                    "energy_kwh": round(s.energy_kwh, 4),
                    "stored_heat_kwh": round(s.stored_heat_kwh, 4),
                }
                for s in heating.slots
            ]
        },
        "shortages": outcome.shortage_slots,
        "cost_yen": None if heating.cost_yen is None else round(heating.cost_yen, 1),
    }
    if plot is not None:
        from drready.sim.plots import plot_unit_plan

        plot_unit_plan(heating, up.baseline_plan(), plot)
    if as_json:
        print(json.dumps(out, ensure_ascii=False))
        return
    table = Table(title=f"DR responses of {heating.device_id}")
    for col in ("request", "status", "accepted kWh", "reason"):
        table.add_column(col)
    for r in responses:
        table.add_row(r.request_id, r.status.value, f"{r.accepted_kwh:.2f}", r.reason or "")
    console.print(table)
    cost = "unknown" if heating.cost_yen is None else f"¥{heating.cost_yen:.0f}"
    ptable = Table(title=f"Heating plan (沸き上げ計画), cost {cost}")
    for col in ("slot", "power kW", "energy kWh", "stored heat kWh"):
        ptable.add_column(col, justify="right")
    for s in heating.slots:
        ptable.add_row(
            s.start.strftime("%m-%d %H:%M"),
            f"{s.power_kw:.2f}",
            f"{s.energy_kwh:.2f}",
            f"{s.stored_heat_kwh:.1f}",
        )
    console.print(ptable)


@app.command()
def schema(
    out: Annotated[Path, typer.Argument(help="Folder to write the JSON Schemas into.")],
) -> None:
    """Write the JSON Schema of every unified data model type (D1)."""
    from drready.domain.schema import write_json_schemas

    for path in write_json_schemas(out):
        console.print(str(path))


@app.command("engine-demo")
def engine_demo(
    households: Annotated[int, typer.Option(help="Number of households, 1–100000.")] = 100,
    day: DateOpt = "2026-05-12",
    seed: Annotated[int, typer.Option(help="Random seed (reproducible runs).")] = 1,
    out: Annotated[Path, typer.Option(help="Folder for the PNG and JSON results.")] = Path(
        "engine-demo-output"
    ),
) -> None:
    """The DR engine alone, in one process: a fleet's up-DR (10–14 h) and down-DR (17–20 h)."""
    from drready.sim.demo import run_demo

    if not 1 <= households <= 100_000:
        _fail("--households", f"must be within 1–100000, got {households}")
    run_demo(households=households, day=_parse_date(day), seed=seed, out_dir=out, console=console)


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Households of the maker cloud, 1–100000.")] = 1000,
    homes: Annotated[
        int, typer.Option(help="ECHONET Lite homes behind the home gateway (127.0.0.2…), 1–10.")
    ] = 5,
    day: DateOpt = "2025-05-14",
    seed: Annotated[int, typer.Option(help="Random seed (reproducible runs).")] = 0,
    out: Annotated[
        Path, typer.Option(help="Folder for the report, settlement CSVs and databases.")
    ] = Path("demo-output"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the servicer's dashboard (HTTPS, loopback) while it runs.")
    ] = True,
    keep_serving: Annotated[
        bool, typer.Option(help="Keep the dashboard up after the day, until Ctrl-C.")
    ] = False,
) -> None:
    """One simulated day of the whole ecosystem over its real protocols (VTN, maker cloud,
    home gateway with ECHONET Lite nodes, battery, servicer): noon up-DR, evening down-DR, an
    hour of command following; prints the summary and writes an HTML report."""
    import asyncio

    from pydantic import ValidationError

    from drready.sim.day_demo import (
        DemoSettings,
        DemoSummary,
        print_summary,
        run_day_demo,
        summary_json,
    )

    try:
        settings = DemoSettings(
            out_dir=out,
            units=units,
            homes=homes,
            day=_parse_date(day),
            seed=seed,
            dashboard=dashboard,
            keep_serving=keep_serving,
        )
    except ValidationError as err:
        first = err.errors()[0]
        _fail(f"--{str(first['loc'][0]).replace('_', '-')}", first["msg"])

    def show(summary: DemoSummary) -> None:
        if as_json:
            sys.stdout.write(summary_json(summary) + "\n")
            sys.stdout.flush()
        else:
            print_summary(summary, console)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_day_demo(settings, Console(stderr=True), on_summary=show))


@app.command()
def certs(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for the CA, server and client certificates "
            "and keys; must be outside any git work tree."
        ),
    ],
    client: Annotated[
        list[str] | None,
        typer.Option(help="Client certificate name (repeat); default ven-1."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """S1: make a local CA and server/client certificates for development and tests."""
    from drready.security.certs import CertsArgumentError, certs_command

    try:
        bundle = certs_command(out, overwrite, client_names=tuple(client or ("ven-1",)))
    except CertsArgumentError as err:
        name = "--out" if err.argument == "out_dir" else f"--{err.argument.replace('_', '-')}"
        _fail(name, err.reason)
    for path in (bundle.ca_cert, bundle.server_cert, bundle.server_key, *bundle.private_keys):
        console.print(str(path))


vtn_app = typer.Typer(
    help="OpenADR 3.1 VTN (the DR servicer's server, route ii).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(vtn_app, name="vtn")
cloud_app = typer.Typer(
    help="Maker cloud: a fleet of simulated water heaters behind one OpenADR VEN (route ii).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cloud_app, name="cloud")


@vtn_app.command("serve")
def vtn_serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port, 1–65535.")] = 8443,
    cert: Annotated[
        Path | None, typer.Option(help="Server certificate (PEM), e.g. from `drready certs`.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    database: Annotated[
        str, typer.Option(help="SQLAlchemy URL: sqlite:///FILE (default) or postgresql+psycopg://…")
    ] = "sqlite:///drready-vtn.db",
    base_url: Annotated[
        str | None,
        typer.Option(help="Public base URL (for /auth/server); default https://HOST:PORT."),
    ] = None,
    clients_file: Annotated[
        Path | None,
        typer.Option(
            help="OAuth2 client registry (JSON/TOML, "
            "outside the repo); default "
            "$DRREADY_CLIENTS_FILE."
        ),
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option(help="Serve plain HTTP (prints a warning; local experiments only).")
    ] = False,
    allow_any_address: Annotated[bool, typer.Option(help="Allow binding 0.0.0.0.")] = False,
    mqtt_broker: Annotated[
        str | None,
        typer.Option(
            help="Offer the MQTT notifier binding via this broker (mqtts://… in production)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes, 1–64, each dealt new connections in turn; as many as CPU "
            "cores on SQLite, about cores + 1 on PostgreSQL (keeps the CPUs busy while a worker "
            "waits on the database)."
        ),
    ] = 1,
) -> None:
    """Run the VTN over HTTPS. The token signing key comes from $DRREADY_TOKEN_KEY."""
    from drready.openadr.vtn import VtnSettings
    from drready.openadr.vtn.server import run
    from drready.security.settings import SecuritySettings
    from drready.security.tokens import load_registry

    if not 1 <= port <= 65535:
        _fail("--port", f"must be within 1–65535, got {port}")
    if not 1 <= workers <= 64:
        _fail("--workers", f"must be within 1–64, got {workers}")
    if not insecure_http and (cert is None or key is None):
        _fail(
            "--cert/--key",
            "HTTPS needs a certificate and key (make them with `drready certs "
            "--out DIR`), or pass --insecure-http for a local experiment",
        )
    try:
        registry = load_registry(clients_file)
    except (ValueError, OSError) as err:
        _fail("--clients-file", str(err).splitlines()[0])
    scheme = "http" if insecure_http else "https"
    try:
        settings = VtnSettings(
            database_url=database,
            base_url=base_url or f"{scheme}://{host}:{port}",
            mqtt_broker_url=mqtt_broker,
        )
    except ValueError as err:
        _fail("--mqtt-broker", str(err).splitlines()[-1].strip())
    tls = None if insecure_http else SecuritySettings(cert_file=cert, key_file=key)
    try:
        run(
            settings,
            registry,
            host=host,
            port=port,
            tls=tls,
            insecure_http=insecure_http,
            allow_any_address=allow_any_address,
            workers=workers,
        )
    except ValueError as err:
        _fail("--host", str(err).splitlines()[0])


@cloud_app.command("serve")
def cloud_serve(
    vtn: Annotated[str, typer.Option(help="Base URL of the servicer's VTN (https://…).")],
    units: Annotated[int, typer.Option(help="Number of simulated units, 1–1000000.")] = 1000,
    client_id: Annotated[str, typer.Option(help="OAuth2 client id of this cloud's VEN.")] = (
        "maker-cloud"
    ),
    ca: Annotated[
        Path | None,
        typer.Option(
            help="CA certificate the VTN's certificate chains to (PEM); default the system store."
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="'units' (one resource per unit) or 'group' (the fleet as one resource, D6)."
        ),
    ] = "units",
    maker_code: MakerOpt = "000005",
    seed: Annotated[int, typer.Option(help="Seed of the fleet's households.")] = 0,
    interval: Annotated[float, typer.Option(help="Seconds between polls of the VTN, 1–3600.")] = (
        10.0
    ),
    insecure_http: Annotated[
        bool, typer.Option(help="Allow an http:// VTN (local experiments only).")
    ] = False,
) -> None:
    """Run a maker cloud; its client secret comes from $DRREADY_CLIENT_SECRET."""
    import os

    from drready.cloud.service import run_cloud

    if not 1 <= units <= 1_000_000:
        _fail("--units", f"must be within 1–1000000, got {units}")
    if mode not in ("units", "group"):
        _fail("--mode", f"must be 'units' or 'group', got {mode!r}")
    if not 1 <= interval <= 3600:
        _fail("--interval", f"must be within 1–3600 s, got {interval}")
    if not vtn.startswith(("https://", "http://")):
        _fail("--vtn", f"must be an https:// URL, got {vtn!r}")
    secret = os.environ.get("DRREADY_CLIENT_SECRET")
    if not secret:
        _fail("DRREADY_CLIENT_SECRET", "set it to this cloud's OAuth2 client secret")
    try:
        run_cloud(
            units,
            vtn,
            client_id=client_id,
            client_secret=secret,
            ca_file=None if ca is None else str(ca),
            maker_code=maker_code,
            mode=mode,  # type: ignore[arg-type]
            seed=seed,
            interval_s=interval,
            allow_insecure_http=insecure_http,
        )
    except KeyboardInterrupt:
        pass
    except ValueError as err:
        _fail("--vtn", str(err).splitlines()[0])


evaluate_app = typer.Typer(
    help="E1: evaluate DR-potential methods (scorecard).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.command("potential")
def evaluate_potential(
    households: Annotated[int, typer.Option(help="Simulated households, 1–100000.")] = 1000,
    days_per_season: Annotated[int, typer.Option(help="Days per season (4 seasons).")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed (reproducible runs).")] = 7,
    method: Annotated[
        list[str] | None,
        typer.Option(
            help="Method to score: ours, naive, fixed-margin, csv, or module:function "
            "(repeat); default ours, naive, fixed-margin."
        ),
    ] = None,
    fixed_margin: Annotated[float, typer.Option(help="Safety margin of fixed-margin, 0–1.")] = 0.3,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Declared values per household and day "
            "(columns household, day, direction, "
            "declared_kwh)."
        ),
    ] = None,
    window: Annotated[
        list[str] | None,
        typer.Option(
            help="Window DIR:HH:MM-HH:MM (repeat); default up:10:00-14:00 and down:00:00-04:00."
        ),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report with plots here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Monte Carlo scorecard: declared vs delivered vs perfect-foresight potential per method."""
    from drready.evaluation.scorecard import evaluate_potential_command

    methods = list(method or ["ours", "naive", "fixed-margin"])
    if csv is not None and "csv" not in methods:
        methods.append("csv")
    try:
        evaluate_potential_command(
            households,
            days_per_season,
            seed,
            as_json,
            html,
            methods,
            fixed_margin,
            csv,
            console,
            windows=window,
        )
    except ValueError as err:
        text = str(err).splitlines()[0]
        name = text.split(" ", 1)[0].replace("_", "-")
        _fail(f"--{name}", text)


conformance_app = typer.Typer(
    help="E1: black-box conformance checks of any DR-ready ECHONET Lite node or OpenADR VTN.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(conformance_app, name="conformance")


@conformance_app.command("echonet")
def conformance_echonet(
    address: Annotated[str, typer.Option(help="IPv4 address of the node to probe.")],
    interface: Annotated[str, typer.Option(help="Local IPv4 address to send from.")] = (
        "127.0.0.1"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Probe a node over ECHONET Lite for F1–F6 (pass / fail / not observable, with evidence).

    It sets and restores 0xC7/0xCA/0xF2 on the node. Exit status 1 when a check fails."""
    from drready.evaluation.conformance_echonet import echonet_conformance_command

    _check_address(address, "--address")
    _check_address(interface, "--interface")
    try:
        code = echonet_conformance_command(address, interface, as_json, console)
    except OSError as err:
        _fail("--interface", str(err))
    raise typer.Exit(code)


@conformance_app.command("openadr")
def conformance_openadr(
    vtn: Annotated[str, typer.Option(help="Base URL of the VTN (https://…).")],
    client_id: Annotated[str, typer.Option(help="The checker acts as this BL client.")],
    ca: Annotated[
        Path | None, typer.Option(help="CA certificate of the VTN (PEM); default the system store.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a VTN and the VENs behind it for S1 and F1–F6 as the BL (secret from
    $DRREADY_CLIENT_SECRET). Exit status 1 when a check fails."""
    import os

    from drready.evaluation.conformance_openadr import openadr_conformance_command

    secret = os.environ.get("DRREADY_CLIENT_SECRET")
    if not secret:
        _fail("DRREADY_CLIENT_SECRET", "set it to the BL client's secret")
    if not vtn.startswith(("https://", "http://")):
        _fail("--vtn", f"must be an https:// URL, got {vtn!r}")
    raise typer.Exit(openadr_conformance_command(vtn, client_id, secret, ca, as_json, console))


echonet_app = typer.Typer(
    help="ECHONET Lite (route i): run a device node, scan a LAN, get and set properties.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
servicer_app = typer.Typer(
    help="DR servicer: its database and the key that seals market registration data.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(servicer_app, name="servicer")


@servicer_app.command("db-upgrade")
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
    from sqlalchemy.exc import SQLAlchemyError

    from drready.servicer.storage.db import database_url, make_engine
    from drready.servicer.storage.migrations import current_revision, head_revision, upgrade

    url = database_url(database)
    try:
        engine = make_engine(url)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        engine.dispose()
    except (SQLAlchemyError, RuntimeError, ValueError) as err:
        _fail("--database", str(err).splitlines()[0])
    console.print(
        f"servicer database at revision {after} (was {before or 'empty'}; head {head_revision()})"
    )


@servicer_app.command("data-key")
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
    from drready.servicer.storage.crypto import write_key_file

    try:
        kid = write_key_file(out, key_id=key_id, overwrite=overwrite)
    except FileExistsError:
        _fail("--out", f"{out} exists (use --overwrite to replace it)")
    except ValueError as err:
        _fail("--out" if "work tree" in str(err) else "--key-id", str(err).splitlines()[0])
    console.print(f"wrote key {kid} to {out}")


gateway_app = typer.Typer(
    help="Home gateway: the water heaters of an ECHONET Lite home behind one OpenADR VEN "
    "(route i).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(gateway_app, name="gateway")


@gateway_app.command("serve")
def gateway_serve(
    vtn: Annotated[str, typer.Option(help="Base URL of the servicer's VTN (https://…).")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="IPv4 address of a water heater node (repeatable); default: multicast "
            "discovery on the LAN."
        ),
    ] = None,
    interface: Annotated[
        str, typer.Option(help="Local IPv4 address on the home LAN to send from.")
    ] = "127.0.0.1",
    client_id: Annotated[str, typer.Option(help="OAuth2 client id of this gateway's VEN.")] = (
        "home-gateway"
    ),
    ca: Annotated[
        Path | None,
        typer.Option(
            help="CA certificate the VTN's certificate chains to (PEM); default the system store."
        ),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls of the VTN, 1–3600.")] = (
        10.0
    ),
    power_interval: Annotated[
        float,
        typer.Option(help="Least seconds between two power reports of one DR event, 1–3600."),
    ] = 60.0,
    discovery_window: Annotated[
        float, typer.Option(help="Seconds to collect discovery answers, 0.1–10.")
    ] = 1.0,
    insecure_http: Annotated[
        bool, typer.Option(help="Allow an http:// VTN (local experiments only).")
    ] = False,
) -> None:
    """Run a home gateway's VEN; its client secret comes from $DRREADY_CLIENT_SECRET."""
    import os

    from drready.gateway.ven import NoWaterHeaterError, run_gateway

    _check_address(interface, "--interface")
    hosts = [_check_address(h, "--host") for h in host or []]
    if not 1 <= interval <= 3600:
        _fail("--interval", f"must be within 1–3600 s, got {interval}")
    if not 1 <= power_interval <= 3600:
        _fail("--power-interval", f"must be within 1–3600 s, got {power_interval}")
    if not 0.1 <= discovery_window <= 10:
        _fail("--discovery-window", f"must be within 0.1–10 s, got {discovery_window}")
    if not vtn.startswith(("https://", "http://")):
        _fail("--vtn", f"must be an https:// URL, got {vtn!r}")
    secret = os.environ.get("DRREADY_CLIENT_SECRET")
    if not secret:
        _fail("DRREADY_CLIENT_SECRET", "set it to this gateway's OAuth2 client secret")
    try:
        run_gateway(
            vtn,
            hosts,
            client_id=client_id,
            client_secret=secret,
            ca_file=None if ca is None else str(ca),
            interface=interface,
            interval_s=interval,
            power_interval_s=power_interval,
            discovery_window_s=discovery_window,
            allow_insecure_http=insecure_http,
        )
    except KeyboardInterrupt:
        pass
    except NoWaterHeaterError as err:
        _fail("--host", str(err))
    except OSError as err:
        _fail("--interface", str(err))
    except ValueError as err:
        _fail("--vtn", str(err).splitlines()[0])


app.add_typer(echonet_app, name="echonet")


def _parse_epc(value: str) -> int:
    try:
        epc = int(value, 16)
    except ValueError:
        _fail("EPC", f"must be a hex byte 0x80–0xFF (e.g. 0xE1), got {value!r}")
    if not 0x80 <= epc <= 0xFF:
        _fail("EPC", f"must be within 0x80–0xFF, got {value!r}")
    return epc


def _parse_eoj(value: str) -> EOJ:
    from drready.echonet import frame

    try:
        return frame.EOJ.parse(value if value.startswith("0x") else "0x" + value)
    except ValueError:
        _fail("--eoj", f"must be 6 hex digits like 026B01, got {value!r}")


def _check_address(value: str, argument: str) -> str:
    import ipaddress

    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        _fail(argument, f"must be an IPv4 address, got {value!r}")
    return value


@echonet_app.command("serve")
def echonet_serve(
    address: Annotated[
        str,
        typer.Option(
            help="IPv4 address to bind (port 3610); loopback "
            "addresses 127.0.0.2… let several nodes share a host."
        ),
    ],
    persons: PersonsOpt = 4,
    tank_l: TankOpt = 460.0,
    maker_code: MakerOpt = "000000",
    serial: SerialOpt = "SIM0000001",
    speed: Annotated[float, typer.Option(help="Simulated time per wall time, 0.1–3600.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the household's hot-water use.")] = 0,
    allow_any_address: Annotated[
        bool, typer.Option(help="Allow binding 0.0.0.0 (every interface).")
    ] = False,
) -> None:
    """Run a simulated DR-ready water heater as an ECHONET Lite node until interrupted."""
    import asyncio

    from drready.device.clock import SimClock
    from drready.device.heater import SimulatedWaterHeater
    from drready.domain import DeviceId
    from drready.domain.time import zone
    from drready.echonet.serve import serve_forever, water_heater_node
    from drready.planning.unit import UnitConfig

    if address != "0.0.0.0" or not allow_any_address:
        _check_address(address, "--address")
    if not 1 <= persons <= 4:
        _fail("--persons", f"must be within 1–4, got {persons}")
    if not 100 <= tank_l <= 1000:
        _fail("--tank-l", f"must be within 100–1000 L, got {tank_l}")
    if not 0.1 <= speed <= 3600:
        _fail("--speed", f"must be within 0.1–3600, got {speed}")
    try:
        device = DeviceId(maker_code=maker_code, serial=serial)
    except ValueError as err:
        _fail("--serial/--maker-code", str(err).splitlines()[-1].strip())
    now = datetime.now(zone("Asia/Tokyo"))
    heater = SimulatedWaterHeater(
        UnitConfig(device, persons, tank_l), SimClock(now, speed=speed), seed=seed, energy_shifts=2
    )
    try:
        node = water_heater_node(address, heater, allow_any_address=allow_any_address)
    except ValueError as err:
        _fail("--address", str(err))
    console.print(f"ECHONET Lite node {device} (0x026B01) on {address}:3610 — Ctrl-C to stop")
    try:
        asyncio.run(serve_forever(node, heater))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        _fail("--address", f"cannot bind {address}:3610: {err}")


@echonet_app.command("scan")
def echonet_scan(
    interface: Annotated[str, typer.Option(help="Local IPv4 address to send from.")] = "127.0.0.1",
    window: Annotated[float, typer.Option(help="Seconds to collect answers, 0.1–10.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Discover nodes by multicast and list their identification numbers and properties."""
    import asyncio

    from drready.echonet.controller import EchonetController

    _check_address(interface, "--interface")
    if not 0.1 <= window <= 10:
        _fail("--window", f"must be within 0.1–10 s, got {window}")

    async def run() -> list[dict[str, object]]:
        async with EchonetController(interface=interface) as ctl:
            nodes = await ctl.discover(window_s=window)
            out = []
            for n in nodes:
                entry = n.as_json()
                objs = {}
                for eoj in n.instances:
                    values = await ctl.read_all(n.address, eoj)
                    objs[str(eoj)] = {f"0x{k:02X}": _jsonable(v) for k, v in values.items()}
                entry["objects"] = objs
                out.append(entry)
            return out

    try:
        found = asyncio.run(run())
    except OSError as err:
        _fail("--interface", str(err))
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
        return
    table = Table(title=f"ECHONET Lite nodes seen from {interface}")
    for col in ("address", "identification (0x83)", "maker", "instances"):
        table.add_column(col)
    for n in found:
        table.add_row(
            str(n["address"]),
            str(n["identification"]),
            str(n["maker_code"]),
            ", ".join(str(i) for i in _as_list(n["instances"])),
        )
    console.print(table)


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@echonet_app.command("get")
def echonet_get(
    address: Annotated[str, typer.Argument(help="IPv4 address of the node.")],
    epc: Annotated[str, typer.Argument(help="Property code, e.g. 0xE1.")],
    eoj: Annotated[str, typer.Option(help="Object, 6 hex digits.")] = "026B01",
    interface: Annotated[str, typer.Option(help="Local IPv4 address.")] = "127.0.0.1",
) -> None:
    """Read one property and print its EDT (hex) and decoded value."""
    import asyncio

    from drready.echonet.controller import EchonetController, EchonetTimeoutError
    from drready.echonet.mra import class_spec
    from drready.echonet.values import decode_value

    _check_address(address, "ADDRESS")
    code = _parse_epc(epc)
    target = _parse_eoj(eoj)

    async def run() -> bytes | None:
        async with EchonetController(interface=interface) as ctl:
            return (await ctl.get(address, target, [code]))[code]

    try:
        edt = asyncio.run(run())
    except EchonetTimeoutError as err:
        print(f"drready: error: {err}", file=sys.stderr)
        raise typer.Exit(1) from err
    if edt is None:
        print(f"drready: error: the node refused EPC 0x{code:02X} (Get_SNA)", file=sys.stderr)
        raise typer.Exit(1)
    spec = class_spec(target.class_id).properties.get(code)
    decoded: object = edt.hex()
    if spec is not None:
        with contextlib.suppress(ValueError):
            decoded = _jsonable(decode_value(spec, edt))
    print(
        json.dumps({"epc": f"0x{code:02X}", "edt": edt.hex(), "value": decoded}, ensure_ascii=False)
    )


@echonet_app.command("set")
def echonet_set(
    address: Annotated[str, typer.Argument(help="IPv4 address of the node.")],
    epc: Annotated[str, typer.Argument(help="Property code, e.g. 0xCA.")],
    value: Annotated[str, typer.Argument(help="EDT as hex bytes, e.g. 0D or 0x0D.")],
    eoj: Annotated[str, typer.Option(help="Object, 6 hex digits.")] = "026B01",
    interface: Annotated[str, typer.Option(help="Local IPv4 address.")] = "127.0.0.1",
) -> None:
    """Write one property (SetC); exit 1 when the node refuses it."""
    import asyncio

    from drready.echonet.controller import EchonetController, EchonetTimeoutError

    _check_address(address, "ADDRESS")
    code = _parse_epc(epc)
    target = _parse_eoj(eoj)
    try:
        edt = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        _fail("VALUE", f"must be hex bytes, got {value!r}")
    if not 1 <= len(edt) <= 255:
        _fail("VALUE", "must be 1–255 bytes")

    async def run() -> bool:
        async with EchonetController(interface=interface) as ctl:
            res = await ctl.set(address, target, {code: edt})
            return res.get(code, False)

    try:
        ok = asyncio.run(run())
    except EchonetTimeoutError as err:
        print(f"drready: error: {err}", file=sys.stderr)
        raise typer.Exit(1) from err
    if not ok:
        print(
            f"drready: error: the node refused EPC 0x{code:02X} = {edt.hex()} (SetC_SNA)",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    print(json.dumps({"epc": f"0x{code:02X}", "edt": edt.hex(), "accepted": True}))


def main() -> None:
    """Console entry point: usage errors become one line and exit status 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(standalone_mode=False)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        print("drready: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.exceptions.TyperException as err:  # typer's (vendored click) usage errors
        param = getattr(err, "param", None)
        opts = getattr(param, "opts", None) or []
        name = f"{opts[0]}: " if opts else ""
        fmt = getattr(err, "format_message", None)
        msg = (fmt() if callable(fmt) else str(err)).replace("\n", " ")
        print(f"drready: error: {name}{msg}", file=sys.stderr)
        sys.exit(int(getattr(err, "exit_code", 2)))
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
