"""``drready evaluate potential``: the E1 DR-potential scorecard in the terminal (E1, F1).

The run's inputs are the library's :class:`~drready.evaluation.scorecard.ScorecardSettings`
(its errors name the option, :func:`drready.cli.common.fail_validation`); this module adds the
progress bar, the tables (:func:`render`), the JSON on stdout and the HTML report file.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drready.cli.common import (
    JsonOpt,
    console,
    fail,
    first_line,
    option_for,
    output_file,
    sub_app,
    validated,
)
from drready.evaluation.households import evaluate_households, read_households_csv
from drready.evaluation.report import write_html
from drready.evaluation.scenarios import ALL_WINDOWS, library_dict, run_library
from drready.evaluation.scorecard import (
    DEFAULT_WINDOWS,
    ScorecardSettings,
    parse_window,
    score,
    scorecard_dict,
)

app = sub_app("E1: evaluate DR-potential methods (scorecard).")


@app.command("potential")
def evaluate_potential(
    households: Annotated[
        int | None,
        typer.Option(
            help="Simulated households, 1–200000 (default 1000); with --scenarios, homes per "
            "class and tariff, 1–2000 (default 10)."
        ),
    ] = None,
    days_per_season: Annotated[int, typer.Option(help="Days per season (4 seasons).")] = 7,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            help="Evaluated days in all, 1–360, spread over the 4 seasons (replaces "
            "--days-per-season).",
        ),
    ] = None,
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
    draws: Annotated[
        Path | None,
        typer.Option(
            help="Measured draws (columns household,time,litres_40c; ISO 8601 time with UTC "
            "offset); with --homes, scores these households instead of simulated ones: the "
            "first 14 days are history, the rest scored."
        ),
    ] = None,
    homes: Annotated[
        Path | None,
        typer.Option(help="The homes of --draws (columns household,persons,tank_l,tariff)."),
    ] = None,
    scenarios: Annotated[
        bool,
        typer.Option(
            "--scenarios",
            help="Run the scenario library (late baths, guests, trips, shift workers, 1.5× "
            "use, seasonal; flat/night/tou; every 3-hour window up and down) instead.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Monte Carlo scorecard: declared vs delivered vs perfect-foresight potential per method."""
    if scenarios or draws is not None or homes is not None:
        _households(draws, homes, scenarios, households, days, seed, method, window, as_json)
        return
    given = {"methods": method, "windows": window}  # the settings' defaults when not given
    settings = validated(
        ScorecardSettings,
        households=1000 if households is None else households,
        days_per_season=days_per_season,
        n_days=days,
        seed=seed,
        fixed_margin=fixed_margin,
        csv=csv,
        **{field: value for field, value in given.items() if value},
    )
    output_file(html, "--html")
    try:
        show_scorecard(settings, as_json=as_json, html=html, console=console)
    except ValueError as err:  # a method that cannot be resolved: "methods: …" or "csv: …"
        text = first_line(err)
        fail(option_for(text.split(":", 1)[0]), text)


def _households(
    draws: Path | None,
    homes: Path | None,
    scenarios: bool,
    households: int | None,
    days: int | None,
    seed: int,
    method: list[str] | None,
    window: list[str] | None,
    as_json: bool,
) -> None:
    """``--draws/--homes`` (measured households) or ``--scenarios`` (the library)."""
    if scenarios:
        if draws is not None or homes is not None:
            fail("--scenarios", "--scenarios takes no --draws/--homes")
        per_class = 10 if households is None else households
        scored = 14 if days is None else days
        try:
            windows = tuple(parse_window(w) for w in window) if window else ALL_WINDOWS
        except ValueError as err:
            fail("--window", first_line(err))
        try:
            res = run_library(per_class, scored, seed, windows=windows)
        except ValueError as err:  # per_class or scored_days out of range
            text = first_line(err)
            fail("--households" if text.startswith("per_class") else "--days", text)
        data = library_dict(res)
        if as_json:
            console.out(json.dumps(data, ensure_ascii=False), highlight=False)
        else:
            console.print(
                f"scenario library: {data['config']['households']} homes × "
                f"{data['config']['scored_days']} scored days, {data['targets_checked']} targets, "
                f"{len(data['failed'])} failed, {data['runtime_s']:.1f} s"
            )
            for f in data["failed"]:
                console.print(
                    f"  [red]FAIL[/red] {f['class']:<14} {f['tariff']:<6} {f['window']:<18} "
                    f"{f['name']}: {f['value']:.3f} {f['comparison']} {f['threshold']}"
                )
        return
    if draws is None or homes is None:
        fail("--draws" if draws is None else "--homes", "--draws and --homes go together")
    try:
        hh = read_households_csv(draws, homes)
        windows = tuple(parse_window(w) for w in window) if window else DEFAULT_WINDOWS
        sc = evaluate_households(
            hh, windows=windows, methods=tuple(method) if method else ("ours",), seed=seed
        )
    except ValueError as err:
        text = first_line(err)
        head = text.split(":", 1)[0]
        fail(
            {"draws": "--draws", "homes": "--homes", "windows": "--window"}.get(
                head, option_for(head)
            ),
            text,
        )
    data = scorecard_dict(sc)
    if as_json:
        console.out(json.dumps(data, ensure_ascii=False), highlight=False)
    else:
        render(data, console)


def show_scorecard(
    settings: ScorecardSettings, *, as_json: bool, html: Path | None, console: Console
) -> dict[str, Any]:
    """Run :func:`~drready.evaluation.scorecard.score` with a progress bar (on stderr under
    ``as_json``), print the tables or the JSON, write the HTML report; return the
    :func:`~drready.evaluation.scorecard.scorecard_dict`."""
    progress_console = Console(stderr=True) if as_json else console
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    ) as progress:
        task = progress.add_task("days", total=len(settings.days()))

        def step(day: date) -> None:
            progress.update(task, advance=1, description=f"day {day.isoformat()}")

        sc = score(settings, on_day=step)
    data = scorecard_dict(sc)
    if html is not None:
        write_html(sc, data, html)
    if as_json:
        console.out(json.dumps(data, ensure_ascii=False), highlight=False)
    else:
        render(data, console)
        if html is not None:
            console.print(f"HTML report: {html}")
    return data


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _kwh(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def render(data: dict[str, Any], console: Console) -> None:
    """Rich tables of a :func:`~drready.evaluation.scorecard.scorecard_dict` and the PASS/FAIL
    list."""
    cfg = data["config"]
    main = Table(
        title=(
            f"E1 DR-potential scorecard — {cfg['households']} households × "
            f"{len(cfg['days'])} days, seed {cfg['seed']}, {data['runtime_s']:.1f} s"
        )
    )
    for col in ("method", "window", "asked", "declared", "delivered", "oracle"):
        main.add_column(col, justify="left" if col in ("method", "window") else "right")
    for col in ("deliverable", "decl/oracle", "DR shortages"):
        main.add_column(col, justify="right")
    for m, per in data["results"].items():
        for label, entry in per.items():
            s = entry["overall"]
            main.add_row(
                m,
                label,
                str(s["asked"]),
                _kwh(s["declared_kwh"]),
                _kwh(s["delivered_kwh"]),
                _kwh(s["oracle_kwh"]),
                _pct(s["deliverability"]),
                _pct(s["declared_over_oracle"]),
                str(s["dr_caused_shortages"]),
            )
    console.print(main)
    console.print("kWh are means per household and day; deliverable = requests ≥ 95 % delivered.")
    for group, title in (("by_season", "season"), ("by_persons", "persons")):
        keys = list(next(iter(next(iter(data["results"].values())).values()))[group])
        t = Table(title=f"deliverability / declared÷oracle / DR shortages by {title}")
        t.add_column("method")
        t.add_column("window")
        for key in keys:
            t.add_column(key, justify="right")
        for m, per in data["results"].items():
            for label, entry in per.items():
                cells = [
                    f"{_pct(v['deliverability'])} / {_pct(v['declared_over_oracle'])} / "
                    f"{v['dr_caused_shortages']}"
                    for v in entry[group].values()
                ]
                t.add_row(m, label, *cells)
        console.print(t)
    for label, per_method in data["shiftable_share"].items():
        seasons = [s for s in next(iter(per_method.values())) if s != "all"]
        t = Table(title=f"shiftable share of the daily boil-up into {label} (persons 1/2/3/4)")
        t.add_column("method")
        for s in [*seasons, "all"]:
            t.add_column(s, justify="right")
        for name, per_season in per_method.items():
            cells = [
                " / ".join(_pct(per_season[s][p]) for p in ("1", "2", "3", "4"))
                + f"  (all {_pct(per_season[s]['all'])})"
                for s in [*seasons, "all"]
            ]
            t.add_row(name, *cells)
        console.print(t)
    console.print("[bold]Targets[/bold]")
    for tg in data["targets"]:
        verdict = "[green]PASS[/green]" if tg["passed"] else "[red]FAIL[/red]"
        value = tg["value"]
        shown = "nan" if value is None else f"{value:.3f}"
        console.print(
            f"  {verdict} {tg['method']:<13} {tg['window']:<18} {tg['name']}: "
            f"{shown} {tg['comparison']} {tg['threshold']:.3f}"
        )


# --- spec sheet (issue 13 item 4) ---------------------------------------------------------


@app.command("spec-sheet")
def evaluate_spec_sheet(
    persons: Annotated[int, typer.Option(help="The model's rated household, 1–4 persons.")] = 4,
    tank_l: Annotated[
        float, typer.Option("--tank-l", help="The model's tank volume [L], 100–1000.")
    ] = 460.0,
    as_json: JsonOpt = False,
) -> None:
    """The sheet a maker publishes per model: its DR-able share of the daily heating energy
    under the evaluation mode (docs/evaluation-mode.md), PASS at 50 % or more."""
    from pydantic import ValidationError

    from drready.cli.common import fail_validation
    from drready.evaluation.spec_sheet import spec_sheet

    try:
        data = spec_sheet(persons, tank_l).as_dict()
    except ValidationError as err:
        fail_validation(err)
    if as_json:
        console.out(json.dumps(data, ensure_ascii=False), highlight=False)
        return
    mode = data["evaluation_mode"]
    t = Table(title=f"{persons} persons, {tank_l:g} L — {mode['name']}, {mode['window']}")
    for col in ("day", "required kWh", "DR-able kWh", "share"):
        t.add_column(col, justify="right")
    for m in data["months"]:
        t.add_row(m["day"], f"{m['required_kwh']:.2f}", f"{m['dr_able_kwh']:.2f}", _pct(m["share"]))
    console.print(t)
    verdict = "[green]PASS[/green]" if data["result"] == "PASS" else "[red]FAIL[/red]"
    console.print(
        f"{verdict} DR-able share of the daily heating energy {_pct(data['dr_able_share'])} "
        f"(≥ {_pct(data['threshold'])}; lowest month {_pct(data['lowest_month']['share'])})"
    )
