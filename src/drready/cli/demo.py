"""``drready demo``: one simulated day of the whole ecosystem over its real protocols (F1–F6, C1,
S1, U1, D3, D6).

The run's settings are the library's :class:`~drready.sim.day_demo.DemoSettings`; its errors
name the option (:func:`drready.cli.common.fail_validation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drready.cli.common import DateOpt, console, parse_date, validated
from drready.sim.day_demo import (
    DemoSettings,
    DemoSummary,
    print_summary,
    run_day_demo,
    summary_json,
)

app = typer.Typer(rich_markup_mode=None)


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Households of the maker cloud, 1–100000.")] = 1000,
    homes: Annotated[
        int, typer.Option(help="ECHONET Lite homes behind the home gateway (127.0.0.2…), 1–10.")
    ] = 5,
    day: DateOpt = "2025-05-14",
    seed: Annotated[int, typer.Option(help="Random seed (reproducible runs).")] = 0,
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for what may be shared: report.html, the settlement CSVs, summary.json."
        ),
    ] = Path("demo-output"),
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Private folder (0700, outside any git work tree) for the run's keys, "
            "credentials, databases and logs; default a new one under "
            "$XDG_STATE_HOME/drready/runs (~/.local/state/drready/runs)."
        ),
    ] = None,
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
    settings = validated(
        DemoSettings,
        out_dir=out,
        units=units,
        homes=homes,
        day=parse_date(day),
        seed=seed,
        dashboard=dashboard,
        keep_serving=keep_serving,
        state_dir=state_dir,
    )

    def show(summary: DemoSummary) -> None:
        if as_json:
            sys.stdout.write(summary_json(summary) + "\n")
            sys.stdout.flush()
        else:
            print_summary(summary, console)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_day_demo(settings, Console(stderr=True), on_summary=show))
