"""``drready stack up``: the whole ecosystem, each party its own OS process over the real
protocols, driven through the servicer's north-bound API (C1, S1, U2, D3, D6; issue 11 item 5).

The run's settings are the library's :class:`~drready.sim.stack.StackSettings`; its errors
name the option (:func:`drready.cli.common.fail_validation`). SIGINT (Ctrl-C) and SIGTERM end
the run the same way ``--duration`` does: every child is stopped and the report printed.
Exit status 0 when every child started, ran and exited 0 and nothing was left behind; 1
otherwise (the report says what); 2 for a bad argument.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from drready.cli.common import console, fail, sub_app, validated
from drready.domain.time import DEFAULT_TZ, zone
from drready.sim.stack import StackReport, StackSettings, run_stack

app = sub_app(
    "The whole ecosystem as separate processes: VTN, servicer, maker cloud, home gateway."
)


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail("--start", f"must be an ISO 8601 date-time like 2026-05-14T06:00, got {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone(DEFAULT_TZ))


def _clean(report: StackReport) -> bool:
    left = any(report.left_behind.get(k) for k in ("processes", "tcp_listening", "udp_bound"))
    exits_ok = all(p.exit_code == 0 and not p.killed and not p.early for p in report.processes)
    return report.error is None and exits_ok and not left


def _show(report: StackReport, out: Console) -> None:
    orders = Table(title="orders (as the servicer reports them)", box=box.SIMPLE_HEAD)
    for col in ("window", "dir.", "requested", "accepted", "delivered", "status"):
        orders.add_column(
            col, justify="right" if col in ("requested", "accepted", "delivered") else "left"
        )
    for o in report.orders:
        orders.add_row(
            f"{o['window_start'][:16]}–{o['window_end'][11:16]}",
            o["direction"],
            f"{o['requested_kwh']:.1f}",
            f"{o['accepted_kwh']:.1f}",
            f"{o['delivered_kwh']:.1f}",
            o["status"],
        )
    out.print(orders)
    procs = Table(title="processes", box=box.SIMPLE_HEAD)
    for col in ("name", "pid", "exit", "stop s", "RSS MB (per day)"):
        procs.add_column(col)
    for p in report.processes:
        rss = ", ".join(f"{k}: {v / 1024:.0f}" for k, v in p.rss_kb.items())
        exit_text = (
            f"{p.exit_code}" + (" (killed)" if p.killed else "") + (" early" if p.early else "")
        )
        procs.add_row(p.name, str(p.pid), exit_text, f"{p.stop_s:.1f}", rss)
    out.print(procs)
    out.print(
        f"{report.simulated_hours:.1f} simulated hours in {report.wall_s:.0f} s, stopped by "
        f"{report.stopped_by}; DR-caused shortages (units with more than their no-DR twin): "
        f"{report.dr_caused_shortages}",
        soft_wrap=True,
    )
    for note in report.missing:
        out.print(f"note: {note}", soft_wrap=True)
    if report.error:
        out.print(f"error: {report.error}", soft_wrap=True)


@app.command("up")
def stack_up(
    units: Annotated[
        int, typer.Option(help="Maker cloud's simulated units, 0–1000000 (0: no cloud).")
    ] = 1000,
    mode: Annotated[
        str, typer.Option(help="'group' (the fleet as one resource, D6) or 'units'.")
    ] = "group",
    homes: Annotated[
        int,
        typer.Option(
            help="ECHONET Lite homes behind the home gateway, 0–10 (0: none): the first half "
            "DR-ready units, the rest standard-only units of the installed base."
        ),
    ] = 10,
    battery: Annotated[
        bool, typer.Option(help="Run the ECHONET Lite storage battery node (class 0x027D).")
    ] = True,
    time_scale: Annotated[
        float, typer.Option(help="Simulated seconds per wall second, 1–1000 (720: a day in 2 min).")
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start (ISO 8601, local time if no offset); default tomorrow 06:00."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall seconds (default: Ctrl-C).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Private folder (outside any git work tree) for keys, credentials, databases "
            "and logs; default a new one under $XDG_STATE_HOME/drready/runs."
        ),
    ] = None,
    vtn_port: Annotated[int, typer.Option(help="VTN's HTTPS port (0: any free port).")] = 8443,
    api_port: Annotated[
        int, typer.Option(help="Servicer API and dashboard HTTPS port (0: any free port).")
    ] = 8444,
    echonet_base: Annotated[
        str, typer.Option(help="IPv4 address of the first home; the gateway uses the one before.")
    ] = "127.0.0.2",
    servicer: Annotated[
        bool, typer.Option(help="Run the servicer (without it no order is placed).")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the households.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout at the end.")
    ] = False,
) -> None:
    """Bring up the whole ecosystem as separate processes — VTN, servicer (API + dashboard),
    maker cloud, home gateway with its ECHONET Lite nodes, storage battery node — on one clock,
    place the demo day's orders through the servicer's API, and stop everything on Ctrl-C or
    after --duration."""
    settings = validated(
        StackSettings,
        units=units,
        mode=mode,
        homes=homes,
        battery=battery,
        servicer=servicer,
        time_scale=time_scale,
        start=_parse_start(start),
        duration_s=duration,
        state_dir=state_dir,
        vtn_port=vtn_port,
        api_port=api_port,
        echonet_base=echonet_base,
        seed=seed,
    )
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run_stack(settings, console=Console(stderr=True), stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if as_json:
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
        sys.stdout.flush()
    else:
        _show(report, console)
    if not _clean(report):
        raise typer.Exit(1)
