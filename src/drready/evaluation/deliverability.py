"""Monte Carlo check of declared DR potential against what units really deliver (F1, E1).

For stochastic households over chosen days and windows, each unit declares its potential
day-ahead (at 23:00 the evening before, at the planner's confidence), is then asked for exactly
that amount, re-plans, and lives through the day with *realised* hot-water use (noise, timing
jitter, manual reheats) under its own safeguards (:mod:`drready.planning.execution`). The same draws
are replayed without DR for the baseline, so that

* delivered = energy in the window with DR − without (up-DR), or the reverse (down-DR);
* a DR-caused shortage is a household that runs out of hot water with DR but not without;
* the oracle potential is what the unit could have shifted had it known the day's use
  (perfect foresight: the same planner with the realised use as forecast and no margin),
  measured from the unit's own baseline like the delivery.

A request counts as delivered when delivered ≥ (1 − tolerance) × declared; cases with less
than ``min_declared_kwh`` declared are not requests anyone would send and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
import numpy.typing as npt

from drready.domain import Direction, SlotGrid
from drready.domain.time import zone
from drready.physics.draws import DrawVariability, day_type_for, sample_step_use_l
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.execution import execute_plan
from drready.planning.problem import (
    Fleet,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    draw_forecast,
    perfect_forecast,
)

FloatArray = npt.NDArray[np.float64]
STEP_MINUTES = 5


@dataclass(frozen=True)
class EvalWindow:
    """A DR window on each evaluated day (local times; ``end`` may be 00:00 = midnight)."""

    direction: Direction
    start: time
    end: time


@dataclass(frozen=True)
class WindowOutcome:
    """Per case (household × day) of one window: arrays of shape (M,)."""

    window: EvalWindow
    declared_kwh: FloatArray
    delivered_kwh: FloatArray
    oracle_kwh: FloatArray
    dr_caused_shortage: npt.NDArray[np.bool_]
    persons: npt.NDArray[np.int64]
    day_index: npt.NDArray[np.int64]

    def asked(self, min_declared_kwh: float) -> npt.NDArray[np.bool_]:
        return self.declared_kwh >= min_declared_kwh

    def deliverability(self, tolerance: float = 0.05, min_declared_kwh: float = 0.1) -> float:
        """Share of asked cases that delivered ≥ (1 − tolerance) × declared."""
        m = self.asked(min_declared_kwh)
        if not m.any():
            return float("nan")
        ok = self.delivered_kwh[m] >= (1.0 - tolerance) * self.declared_kwh[m]
        return float(ok.mean())

    def declared_over_oracle(self) -> float:
        """Σ declared / Σ oracle over all cases."""
        total = float(self.oracle_kwh.sum())
        return float(self.declared_kwh.sum()) / total if total > 0 else float("nan")

    @property
    def shortages(self) -> int:
        return int(self.dr_caused_shortage.sum())


def evaluate_declared_potential(
    n_households: int,
    days: list[date],
    windows: list[EvalWindow],
    seed: int,
    *,
    confidence: float = 0.95,
    variability: DrawVariability | None = None,
) -> list[WindowOutcome]:
    """Run the check; one :class:`WindowOutcome` per window, cases = households × days."""
    rng = np.random.default_rng(seed)
    fleet = Fleet.random(rng, n_households)
    var = DrawVariability() if variability is None else variability
    parts: list[list[tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]]] = [
        [] for _ in windows
    ]
    k = 30 // STEP_MINUTES
    for day in days:
        grid = SlotGrid.day_ahead(day, n_slots=64)
        q0 = default_initial_heat_kwh(fleet, grid) * rng.uniform(0.6, 1.4, n_households)
        forecast = draw_forecast(fleet, grid, var)
        problem = build_problem(fleet, grid, q0, forecast, confidence=confidence)
        planner = FleetPlanner(problem)
        baseline = planner.baseline()
        span, offset = days_covering(grid)
        sample = sample_step_use_l(
            rng, fleet.persons, [day_type_for(d) for d in span], STEP_MINUTES, var, fleet.bathtub
        )
        sl = slice(offset * k, (offset + grid.n_slots) * k)
        use = sample.use_l[:, sl].astype(np.float64)
        manual = sample.manual_reheat[:, sl]
        slot_use = use.reshape(n_households, grid.n_slots, k).sum(axis=2)
        oracle_problem = build_problem(
            fleet, grid, q0, perfect_forecast(slot_use, forecast.after_end_l), confidence=0.5
        )
        # the same rules as the unit's: up-DR never below the unit's own baseline
        oracle = FleetPlanner(oracle_problem, in_force_heat_kwh=baseline.heat_kwh)
        base_run = execute_plan(problem, baseline.heat_kwh, use, manual, fleet.reserve_l)
        tz = zone(grid.tz)
        for j, w in enumerate(windows):
            start = datetime.combine(day, w.start, tzinfo=tz)
            end_day = day if w.end > w.start else date.fromordinal(day.toordinal() + 1)
            end = datetime.combine(end_day, w.end, tzinfo=tz)
            s, e = grid.window_indices(start, end)
            pot = planner.potential(s, e)
            opot = oracle.potential(s, e)
            up = w.direction is Direction.UP
            declared = pot.up_kwh if up else pot.down_kwh
            # both measured from the unit's own baseline, the one delivery is measured against
            oracle_kwh = np.maximum(
                opot.most_kwh - pot.baseline_kwh if up else pot.baseline_kwh - opot.least_kwh, 0.0
            )
            dr = planner.plan([WindowRequest(w.direction, s, e, declared)])
            run = execute_plan(problem, dr.heat_kwh, use, manual, fleet.reserve_l)
            diff = (run.electric_kwh[:, s:e] - base_run.electric_kwh[:, s:e]).sum(axis=1)
            delivered = diff if up else -diff
            caused = run.has_shortage & ~base_run.has_shortage
            parts[j].append((declared, delivered, oracle_kwh, caused))
    out = []
    n_days = len(days)
    for j, w in enumerate(windows):
        cols = list(zip(*parts[j], strict=True))
        out.append(
            WindowOutcome(
                window=w,
                declared_kwh=np.concatenate(cols[0]),
                delivered_kwh=np.concatenate(cols[1]),
                oracle_kwh=np.concatenate(cols[2]),
                dr_caused_shortage=np.concatenate(cols[3]),
                persons=np.tile(fleet.persons, n_days),
                day_index=np.repeat(np.arange(n_days), n_households),
            )
        )
    return out
