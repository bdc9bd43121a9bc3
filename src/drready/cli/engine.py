"""``drready potential``, ``plan``, ``schema`` and ``engine-demo``: the DR engine of one unit or a
fleet, in one process (F1 potential, F2→F3/F4 plans, D1 schemas).

The household and its unit are a :class:`~drready.planning.unit.UnitConfig` and the plan's start a
:class:`~drready.planning.unit.PlanInputs`: the library validates them, and their errors name
the option (:func:`drready.cli.common.fail_validation`).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from drready.cli.common import (
    ConfOpt,
    DateOpt,
    HeatOpt,
    JsonOpt,
    MakerOpt,
    PersonsOpt,
    SerialOpt,
    TankOpt,
    check_range,
    console,
    fail,
    parse_date,
    parse_window,
    validated,
)
from drready.cli.dr_spec import parse_dr_spec, spec_error_line
from drready.domain.schema import write_json_schemas
from drready.planning.unit import PlanInputs, UnitConfig, UnitPlanner
from drready.sim.demo import PROGRESS_STEPS, run_demo
from drready.sim.plots import plot_unit_plan

app = typer.Typer(rich_markup_mode=None)


def unit_planner(
    persons: int,
    tank_l: float,
    day_s: str,
    confidence: float,
    initial_heat_kwh: float | None,
    maker_code: str,
    serial: str,
) -> tuple[UnitPlanner, date]:
    """The day-ahead planner of the unit the options describe, and the day; exit 2 naming the
    option of the first invalid input."""
    device_id = {"maker_code": maker_code, "serial": serial}
    cfg = validated(UnitConfig, device_id=device_id, persons=persons, tank_l=tank_l)
    inputs = validated(PlanInputs, confidence=confidence, initial_heat_kwh=initial_heat_kwh)
    day = parse_date(day_s)
    planner = UnitPlanner.day_ahead(
        cfg, day, initial_heat_kwh=inputs.initial_heat_kwh, confidence=inputs.confidence
    )
    return planner, day


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
    up, d = unit_planner(persons, tank_l, day, confidence, initial_heat_kwh, maker_code, serial)
    start, end = parse_window(window, d, up.grid.tz)
    if not up.grid.contains(start, end):
        fail(
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
            "down:17:00-20:00:1.5, or by start time alone start:HH:MM[:KWH], e.g. start:13:00 "
            "(heat from 13:00 as much as the plan allows); repeat for several."
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
    up, d = unit_planner(persons, tank_l, day, confidence, initial_heat_kwh, maker_code, serial)
    reqs = []
    for k, spec in enumerate(request or []):
        try:
            reqs.append(
                parse_dr_spec(
                    spec, d, tz=up.grid.tz, request_id=f"r{k + 1}", issued_at=up.computed_at
                )
            )
        except ValueError as err:
            fail("--request", spec_error_line(spec, err))
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
    check_range("--households", households, 1, 100_000)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("planning and simulating", total=PROGRESS_STEPS)
        summary = run_demo(
            households=households,
            day=parse_date(day),
            seed=seed,
            out_dir=out,
            progress=lambda: progress.advance(task),
        )
    print_engine_demo(summary, console)


def print_engine_demo(summary: dict[str, Any], console: Console) -> None:
    """The engine demo's table (kWh per window), the notes and the files written."""
    households = summary["households"]
    table = Table(
        title=f"drready demo — {households} households, {summary['day']} "
        f"(seed {summary['seed']}), kWh"
    )
    table.add_column("window", no_wrap=True)
    for col in ("target", "declared", "requested", "accepted", "delivered"):
        table.add_column(col, justify="right")
    for r in summary["windows"]:
        table.add_row(
            str(r["window"]),
            f"{r['target_kwh']:.1f}",
            f"{r['declared_kwh']:.1f}",
            f"{r['requested_kwh']:.1f}",
            f"{r['accepted_kwh']:.1f}",
            f"{r['delivered_kwh']:.1f}",
        )
    console.print(table)
    for r in summary["windows"]:
        if float(r["declared_kwh"]) < 0.01 * households:
            console.print(
                f"note: {r['window']}: the baseline plans almost no heating in this window, so "
                "there is little to shed; down-DR potential lies where the baseline heats "
                "(the night, try `drready potential --window 01:00-05:00`)."
            )
    console.print(
        f"shortages (湯切れ, households): baseline {summary['shortages_baseline']}, "
        f"with DR {summary['shortages_dr']}, caused by DR {summary['dr_caused_shortages']}"
    )
    console.print(f"wrote {' and '.join(summary['files'])}")
