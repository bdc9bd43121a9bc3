"""A year of one or more households, day after day, with the tank state carried over (E1).

Each day's plan starts at 23:00 the evening before (48 slots to 23:00), is made from the
forecast, and is executed against the day's use; the stored heat at its end starts the next
day. Used for the annual hot-water efficiency (heat delivered at the taps / electricity), the
figure the JIS rated efficiency describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from drready.domain import SlotGrid
from drready.physics.climate import TOKYO, Climate
from drready.physics.draws import day_type_for, expected_step_use_l
from drready.planning.engine import FleetPlanner
from drready.planning.execution import execute_plan
from drready.planning.problem import (
    Fleet,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    draw_forecast,
)

STEP_MINUTES = 5


@dataclass(frozen=True)
class AnnualResult:
    """Totals per unit over the simulated days [kWh] and shortage steps."""

    heat_delivered_kwh: npt.NDArray[np.float64]
    electricity_kwh: npt.NDArray[np.float64]
    shortage_steps: npt.NDArray[np.int64]

    @property
    def efficiency(self) -> npt.NDArray[np.float64]:
        """Annual hot-water efficiency: heat delivered at the taps / electricity [-]."""
        return self.heat_delivered_kwh / self.electricity_kwh


def simulate_standard_year(
    fleet: Fleet, year: int = 2026, climate: Climate = TOKYO, n_days: int = 365
) -> AnnualResult:
    """Run ``n_days`` from Jan 1 with the standard schedule as the realised use."""
    first = date(year, 1, 1)
    grid = SlotGrid.day_ahead(first, n_slots=48)
    q = default_initial_heat_kwh(fleet, grid, climate, fill=0.5)
    heat = np.zeros(fleet.size)
    elec = np.zeros(fleet.size)
    short = np.zeros(fleet.size, dtype=np.int64)
    k = 30 // STEP_MINUTES
    for d in range(n_days):
        day = first + timedelta(days=d)
        grid = SlotGrid.day_ahead(day, n_slots=48)
        problem = build_problem(fleet, grid, q, draw_forecast(fleet, grid), climate=climate)
        plan = FleetPlanner(problem).baseline()
        span, offset = days_covering(grid)
        use = expected_step_use_l(
            fleet.persons, [day_type_for(x) for x in span], STEP_MINUTES, fleet.bathtub
        )[:, offset * k : (offset + grid.n_slots) * k]
        run = execute_plan(problem, plan.heat_kwh, use, np.zeros(use.shape, bool), fleet.reserve_l)
        heat += run.delivered_heat_kwh
        elec += run.electric_kwh.sum(axis=1)
        short += run.shortage_steps
        q = run.stored_heat_kwh[:, -1]
    return AnnualResult(heat, elec, short)
