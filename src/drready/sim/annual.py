"""A year of one or more households on real calendar dates, day after day (E1).

Each day is planned at 23:00 the evening before over the unit's day-ahead horizon (64 slots, to
07:00 of the day after, so the next night's heating is inside it, as
:meth:`drready.planning.unit.UnitPlanner.day_ahead` plans) and its first 48 slots are executed
against the day's use; the stored heat at 23:00 starts the next day. A week of the previous
December runs first, unscored, so that January starts from a tank in its daily rhythm.

What a day is made of:

* **day types** from the real calendar (:func:`drready.physics.draws.day_type_on`: Japan's
  weekdays, weekends and public holidays), not the model year of the national schedule;
* **draws**: the national standard schedule of the day types (its expected value, no noise),
  plus the **bath keep-warm heat** of the unit's bath function (:mod:`drready.physics.bath`,
  full-auto by default), both known to the unit's forecast (the draws' uncertainty gives the
  plan its safety margin, as in :func:`drready.planning.problem.draw_forecast`);
* **weather**: the climate's hourly air temperature (COP, defrost, standby loss) and daily mains
  water temperature (:mod:`drready.physics.climate`);
* **operation**: by default the national method's — the heat pump heats only in the night
  window 23:00–07:00 (``R_day = 0``, eq. (19), (29) of its 付録 E), the unit's automatic reheat
  aside (:attr:`Heating.NIGHT`); or the DR engine's least-cost baseline under the tariff
  (:attr:`Heating.TARIFF`), which in winter heats part of the evening's need in the evening,
  where the air is warmer and the heat is stored for fewer hours;
* **electricity**: the heat pump's (heat / COP, with the auxiliaries that run with it,
  :func:`drready.physics.heatpump.cop`) plus the 6 W the unit draws at all times
  (:func:`drready.physics.heatpump.standby_power_kw`).

The annual efficiency (:attr:`YearResult.annual_efficiency`) is JIS C 9220's ratio — the heat
delivered (at the taps, incl. the bath fill, plus the heat the bath water receives from keep-warm
or top-up) over the unit's electricity — computed on this simulated year, not under the JIS test
conditions; ``docs/dr-potential-method.md`` §9 says how the two differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from drready.domain import SlotGrid
from drready.domain.time import DEFAULT_TZ, zone
from drready.physics.bath import BathFunction, bath_heat_kwh
from drready.physics.climate import TOKYO, Climate, daily_mean_air_c, hour_of_year
from drready.physics.draws import (
    DayType,
    DrawVariability,
    day_type_on,
    expected_step_use_l,
    slot_use_moments_l,
)
from drready.physics.heatpump import standby_power_kw
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.engine import FleetPlanner
from drready.planning.execution import execute_plan
from drready.planning.problem import (
    NIGHT_START_HOUR,
    DrawForecast,
    Fleet,
    PlanningProblem,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    relax_problem,
    unit_temperatures,
)
from drready.planning.tariff import NIGHT_TOU, Tariff

__all__ = ["AnnualResult", "Heating", "YearResult", "simulate_standard_year", "simulate_year"]

FloatArray = npt.NDArray[np.float64]

STEP_MINUTES = 5
"""Execution step [min]."""
SLOTS_PER_DAY = 48
HORIZON_SLOTS = 64
"""Day-ahead horizon: 23:00 to 07:00 of the day after next (the unit planner's default)."""
WARM_UP_DAYS = 7
"""Unscored days before Jan 1 that bring the tank into its daily rhythm."""
_STEPS_PER_SLOT = 30 // STEP_MINUTES
NIGHT_WINDOW = (time(23, 0), time(7, 0))
"""The night heating window of the national method's standard case (its eq. (17)–(19): heating
ends at 07:00 and starts as many hours before as the day's heat needs)."""


class Heating(StrEnum):
    """When the simulated units may heat (besides their automatic reheat)."""

    NIGHT = "night"
    """Only in the night window 23:00–07:00, the cheapest plan there: the national method's
    operation (no daytime heating, R_day = 0)."""
    TARIFF = "tariff"
    """Whenever the DR engine's least-cost baseline under the tariff heats."""


def _night_only(problem: PlanningProblem) -> PlanningProblem:
    """The problem with no heating outside :data:`NIGHT_WINDOW` (bounds no plan can then meet
    are loosened again, as :func:`~drready.planning.problem.build_problem` does)."""
    start, end = NIGHT_WINDOW
    night = np.array([t.time() >= start or t.time() < end for t in problem.grid.starts()])
    cap = np.where(night[:, None], problem.heat_cap_kwh, 0.0)
    return relax_problem(replace(problem, heat_cap_kwh=cap, staircase_cache=None))


@dataclass(frozen=True)
class AnnualResult:
    """Totals per unit over the simulated days [kWh] and shortage steps."""

    heat_delivered_kwh: FloatArray
    electricity_kwh: FloatArray
    shortage_steps: npt.NDArray[np.int64]

    @property
    def efficiency(self) -> FloatArray:
        """Annual efficiency: heat delivered / electricity [-] (see :class:`YearResult`)."""
        return self.heat_delivered_kwh / self.electricity_kwh


@dataclass(frozen=True)
class YearResult:
    """Per unit and day (N, D) [kWh] over ``dates``.

    Attributes
    ----------
    dates : list of date
        The simulated days.
    electricity_kwh : float array (N, D)
        The unit's electricity: heating (heat pump, defrost, auxiliaries while heating) and
        the standby power.
    tap_heat_kwh : float array (N, D)
        Heat delivered at the taps and to the bath fill (above mains).
    bath_heat_kwh : float array (N, D)
        Heat the bath water received from keep-warm (full-auto) or 60 °C top-up water.
    tank_heat_kwh : float array (N, D)
        Heat the heat pump put into the tank.
    standby_loss_kwh : float array (N, D)
        The tank's standby loss.
    shortage_steps : int array (N,)
        Execution steps with unmet use over the year.
    """

    dates: list[date]
    electricity_kwh: FloatArray
    tap_heat_kwh: FloatArray
    bath_heat_kwh: FloatArray
    tank_heat_kwh: FloatArray
    standby_loss_kwh: FloatArray
    shortage_steps: npt.NDArray[np.int64]

    @property
    def heat_delivered_kwh(self) -> FloatArray:
        """Heat delivered (N, D) [kWh]: the taps' and the bath's — JIS C 9220's numerator."""
        out: FloatArray = self.tap_heat_kwh + self.bath_heat_kwh
        return out

    @property
    def annual_efficiency(self) -> FloatArray:
        """Heat delivered / electricity over the whole span, per unit (N,) [-]."""
        out: FloatArray = self.heat_delivered_kwh.sum(axis=1) / self.electricity_kwh.sum(axis=1)
        return out

    def totals(self) -> AnnualResult:
        """Totals over the span."""
        return AnnualResult(
            self.heat_delivered_kwh.sum(axis=1),
            self.electricity_kwh.sum(axis=1),
            self.shortage_steps,
        )

    def monthly(self, values_kwh: FloatArray) -> dict[int, FloatArray]:
        """Sums of per-day values (N, D) by calendar month → (N,) [kWh]."""
        months = np.array([d.month for d in self.dates])
        return {int(m): values_kwh[:, months == m].sum(axis=1) for m in np.unique(months)}


def _model_day(day: date) -> int:
    """Day of the climate's 365-day year (Feb 29 as Feb 28)."""
    noon = datetime.combine(day, time(12), zone(DEFAULT_TZ))
    return int(hour_of_year([noon])[0] // 24)


def _forecast(
    fleet: Fleet,
    grid: SlotGrid,
    types: Sequence[DayType],
    offset: int,
    extra_l: FloatArray,
) -> DrawForecast:
    """The unit's forecast over ``grid`` for the span's day types: the schedule's per-slot mean
    and uncertainty (the same construction as ``planning.problem.draw_forecast``: the day
    factor fully correlated within a calendar day, the independent increments summed with a
    running maximum) plus the known extra use ``extra_l`` (N, span slots) [L at 40 °C]."""
    var = DrawVariability()
    mean, indep = slot_use_moments_l(fleet.persons, types, 30, var, fleet.bathtub)
    mean = mean + extra_l
    t = grid.n_slots
    sl = slice(offset, offset + t)
    cv_day = var.day_factor_cv
    day_of_slot = np.repeat(np.arange(len(types)), SLOTS_PER_DAY)[sl]
    tap_mean = (mean - extra_l)[:, sl]
    cum_var = np.zeros((fleet.size, t + 1))
    # the increments may be negative (jitter moves use between neighbouring slots): the running
    # maximum of their non-negative running sum, as the planner's own forecast does
    cum_var[:, 1:] = np.maximum.accumulate(np.cumsum(indep[:, sl], axis=1).clip(min=0.0), axis=1)
    for d in np.unique(day_of_slot):
        in_day = np.where(day_of_slot == d, tap_mean, 0.0)
        cum_d = np.zeros((fleet.size, t + 1))
        np.cumsum(in_day, axis=1, out=cum_d[:, 1:])
        cum_var += (cv_day * cum_d) ** 2
    end_idx = offset + t
    stop = (len(types) - 1) * SLOTS_PER_DAY + NIGHT_START_HOUR * 2
    after = mean[:, end_idx:stop].sum(axis=1) if stop > end_idx else np.zeros(fleet.size)
    return DrawForecast(
        np.ascontiguousarray(mean[:, sl].T), np.ascontiguousarray(np.sqrt(cum_var).T), after
    )


def simulate_year(
    fleet: Fleet,
    year: int = 2026,
    climate: Climate = TOKYO,
    bath_function: BathFunction = BathFunction.FULL_AUTO,
    n_days: int | None = None,
    heating: Heating = Heating.NIGHT,
    tariff: Tariff = NIGHT_TOU,
) -> YearResult:
    """Run the days of ``year`` (or its first ``n_days``) for every unit of ``fleet``.

    Parameters
    ----------
    fleet : Fleet
        Households and units; their boil-up temperature is the planner's default unless set.
    year : int
        Calendar year: its real dates, weekdays and Japanese public holidays.
    climate : Climate
        Weather (Tokyo by default).
    bath_function : BathFunction
        How the units keep the bath warm (full-auto by default, the national method's default).
    n_days : int, optional
        Simulate only the first ``n_days`` days of the year.
    heating : Heating
        When the units heat: only at night as the national method assumes (default), or as
        the least-cost baseline under ``tariff`` does.
    tariff : Tariff
        The customers' tariff (the planner's default, a night time-of-use tariff).
    """
    first = date(year, 1, 1)
    days_in_year = (date(year + 1, 1, 1) - first).days
    n = days_in_year if n_days is None else n_days
    if not 1 <= n <= days_in_year:
        raise ValueError(f"n_days must be within 1–{days_in_year}, got {n_days}")
    start = first - timedelta(days=WARM_UP_DAYS)
    grid = SlotGrid.day_ahead(start, n_slots=HORIZON_SLOTS)
    q = default_initial_heat_kwh(fleet, grid, climate, fill=0.5)
    standby_kwh = standby_power_kw(fleet.heat_pump) * 24.0
    shape = (fleet.size, n)
    out = {k: np.zeros(shape) for k in ("elec", "tap", "bath", "tank", "loss")}
    short = np.zeros(fleet.size, dtype=np.int64)
    k = _STEPS_PER_SLOT
    for i in range(-WARM_UP_DAYS, n):
        day = first + timedelta(days=i)
        grid = SlotGrid.day_ahead(day, n_slots=HORIZON_SLOTS)
        span, offset = days_covering(grid)
        types = [day_type_on(x) for x in span]
        air_c = daily_mean_air_c(climate, np.array([_model_day(x) for x in span]))
        bath = bath_heat_kwh(
            fleet.persons, types, air_c, STEP_MINUTES, bath_function, fleet.bathtub
        )
        taps_l = expected_step_use_l(fleet.persons, types, STEP_MINUTES, fleet.bathtub)
        # the unit's mains temperature (the planner's) converts the bath's heat into litres
        _, mains_c, _ = unit_temperatures(fleet, grid, climate)
        bath_l = bath.tank_kwh / (HEAT_KWH_PER_L_K * (USE_TEMP_C - mains_c))[:, None]
        bath_slot_l = bath_l.reshape(fleet.size, -1, k).sum(axis=2)
        forecast = _forecast(fleet, grid, types, offset, bath_slot_l)
        problem = build_problem(fleet, grid, q, forecast, climate=climate, tariff=tariff)
        planned = _night_only(problem) if Heating(heating) is Heating.NIGHT else problem
        plan = FleetPlanner(planned).baseline()
        steps = slice(offset * k, (offset + SLOTS_PER_DAY) * k)
        use = taps_l[:, steps] + bath_l[:, steps]
        # the first 48 slots of the 64-slot plan, to 23:00 (execute_plan reads the problem's
        # per-slot arrays only for the slots of the plan it is given); executed against the
        # unconstrained problem: the automatic reheat runs at full output at any hour
        run = execute_plan(
            problem,
            plan.heat_kwh[:, :SLOTS_PER_DAY],
            use,
            np.zeros(use.shape, dtype=bool),
            fleet.reserve_l,
        )
        q_next = run.stored_heat_kwh[:, -1]
        if i >= 0:
            heat_in_kwh = (run.electric_kwh * problem.cop[:SLOTS_PER_DAY].T).sum(axis=1)
            bath_tank_kwh = bath.tank_kwh[:, steps].sum(axis=1)
            out["elec"][:, i] = run.electric_kwh.sum(axis=1) + standby_kwh
            # a shortage is counted against the taps (the bath's heat is drawn as planned)
            out["tap"][:, i] = run.delivered_heat_kwh - bath_tank_kwh
            out["bath"][:, i] = bath.delivered_kwh[:, steps].sum(axis=1)
            out["tank"][:, i] = heat_in_kwh
            out["loss"][:, i] = q + heat_in_kwh - run.delivered_heat_kwh - q_next
            short += run.shortage_steps
        q = q_next
    return YearResult(
        dates=[first + timedelta(days=i) for i in range(n)],
        electricity_kwh=out["elec"],
        tap_heat_kwh=out["tap"],
        bath_heat_kwh=out["bath"],
        tank_heat_kwh=out["tank"],
        standby_loss_kwh=out["loss"],
        shortage_steps=short,
    )


def simulate_standard_year(
    fleet: Fleet, year: int = 2026, climate: Climate = TOKYO, n_days: int = 365
) -> AnnualResult:
    """Totals of :func:`simulate_year` over the first ``n_days`` days of ``year`` (full-auto,
    night heating)."""
    return simulate_year(fleet, year, climate, BathFunction.FULL_AUTO, n_days).totals()
