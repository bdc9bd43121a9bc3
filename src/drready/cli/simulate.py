"""``drready simulate year``: a household's year with its unit, month by month (E1).

Runs :func:`drready.sim.annual.simulate_year` — the calibrated physics (national calculation
method, :mod:`drready.physics.heatpump`), the national hot-water schedule on the year's real
calendar, bath keep-warm — and prints each month's electricity and delivered heat and the
annual efficiency as JIS C 9220 defines the ratio (``docs/dr-potential-method.md`` §9).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from drready.cli.common import JsonOpt, PersonsOpt, TankOpt, check_range, console, fail, sub_app
from drready.physics.bath import BathFunction
from drready.physics.heatpump import HeatPumpSpec
from drready.planning.problem import Fleet
from drready.sim.annual import Heating, YearResult, simulate_year

app = sub_app("E1: simulate a household's water heater for a year, month by month.")

YEAR_RANGE = (1971, 2099)
"""Years the calendar of Japanese public holidays covers here."""
RATED_EFFICIENCY_RANGE = (2.7, 3.6)
"""Rated efficiencies of table 4(b) of the national method."""

_EFFICIENCY_KIND = {
    BathFunction.FULL_AUTO: "年間給湯保温効率 (JIS C 9220 annual hot-water supply and keep-warm)",
    BathFunction.AUTO: "年間給湯効率 (JIS C 9220 annual hot-water supply)",
    BathFunction.PLAIN: "年間給湯効率 (JIS C 9220 annual hot-water supply)",
}


def year_json(result: YearResult, unit: int = 0) -> dict[str, Any]:
    """Months and annual figures of one unit of ``result`` as JSON-ready values [kWh]."""
    columns = {
        "electricity_kwh": result.electricity_kwh,
        "heat_delivered_kwh": result.heat_delivered_kwh,
        "tap_heat_kwh": result.tap_heat_kwh,
        "bath_heat_kwh": result.bath_heat_kwh,
        "heat_pump_heat_kwh": result.tank_heat_kwh,
        "standby_loss_kwh": result.standby_loss_kwh,
    }
    monthly = {name: result.monthly(values) for name, values in columns.items()}
    months_of = np.array([d.month for d in result.dates])
    months = [
        {
            "month": m,
            "days": int((months_of == m).sum()),
            **{name: round(float(by_month[m][unit]), 3) for name, by_month in monthly.items()},
        }
        for m in sorted(monthly["electricity_kwh"])
    ]
    return {
        "months": months,
        "annual_electricity_kwh": round(float(result.electricity_kwh[unit].sum()), 3),
        "annual_heat_delivered_kwh": round(float(result.heat_delivered_kwh[unit].sum()), 3),
        "annual_efficiency": round(float(result.annual_efficiency[unit]), 4),
        "shortage_steps": int(result.shortage_steps[unit]),
    }


@app.command("year")
def simulate_year_command(
    persons: PersonsOpt = 4,
    tank_l: TankOpt = 460.0,
    year: Annotated[
        int, typer.Option(help="Calendar year (its real weekdays and holidays).")
    ] = 2026,
    bath_function: Annotated[
        BathFunction,
        typer.Option(
            help="Bath keep-warm: full-auto (reheat, the national method's default), auto or "
            "plain (top-up with 60 °C water)."
        ),
    ] = BathFunction.FULL_AUTO,
    heating: Annotated[
        Heating,
        typer.Option(
            help="night: heat only 23:00–07:00 as the national method assumes; tariff: the DR "
            "engine's least-cost baseline under the night tariff."
        ),
    ] = Heating.NIGHT,
    rated_efficiency: Annotated[
        float, typer.Option(help="Rated efficiency class of the unit, 2.7–3.6 in steps of 0.1.")
    ] = 3.3,
    as_json: JsonOpt = False,
) -> None:
    """A year of the household in Tokyo: electricity and heat delivered per month, and the
    annual efficiency (heat delivered / electricity)."""
    check_range("--persons", persons, 1, 4)
    check_range("--tank-l", tank_l, 100.0, 1000.0, "L")
    check_range("--year", year, *YEAR_RANGE)
    check_range("--rated-efficiency", rated_efficiency, *RATED_EFFICIENCY_RANGE)
    try:
        spec = HeatPumpSpec.for_rated_efficiency(rated_efficiency)
    except ValueError as err:
        fail("--rated-efficiency", str(err))
    fleet = Fleet(np.array([persons]), np.array([float(tank_l)]), np.array([True]), heat_pump=spec)
    result = simulate_year(fleet, year, bath_function=bath_function, heating=heating)
    out = {
        "persons": persons,
        "tank_l": tank_l,
        "year": year,
        "climate": "Tokyo",
        "bath_function": bath_function.value,
        "heating": heating.value,
        "rated_efficiency": rated_efficiency,
        "annual_efficiency_kind": _EFFICIENCY_KIND[bath_function],
        **year_json(result),
    }
    if as_json:
        print(json.dumps(out, ensure_ascii=False))
        return
    table = Table(title=f"{persons} persons, {tank_l:g} L, Tokyo {year} ({bath_function.value})")
    for col in ("month", "days", "electricity kWh", "heat delivered kWh", "bath kWh", "loss kWh"):
        table.add_column(col, justify="right")
    for m in out["months"]:
        table.add_row(
            str(m["month"]),
            str(m["days"]),
            f"{m['electricity_kwh']:.1f}",
            f"{m['heat_delivered_kwh']:.1f}",
            f"{m['bath_heat_kwh']:.1f}",
            f"{m['standby_loss_kwh']:.1f}",
        )
    console.print(table)
    console.print(
        f"year: {out['annual_electricity_kwh']:.0f} kWh of electricity, "
        f"{out['annual_heat_delivered_kwh']:.0f} kWh delivered, annual efficiency "
        f"{out['annual_efficiency']:.2f} ({out['annual_efficiency_kind']}, on this simulated "
        "year, not under the JIS test conditions)"
    )
