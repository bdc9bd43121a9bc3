"""Execute heating plans against realised hot-water use, units × time (F3, F5, E1).

Each unit follows its plan's heat rate inside every 30-minute slot, as an EcoCute's controller
does, with the unit's own safeguards on top — automatic reheat below the reserve, manual
reheat, a full tank refusing heat, a shortage (湯切れ) when a draw cannot be served. The rules
are those of one step, :func:`drready.physics.tank_step.tank_step`, applied here to every unit
at once, step after step (5 minutes by default); the live single unit
(:class:`drready.device.heater.SimulatedWaterHeater`) applies the same function one step at a
time. Shortages — the unmet heat and the number of steps with unmet use — are counted per unit
and returned, never hidden.

Used by the maker fleet's simulated meter (:mod:`drready.cloud.fleet`, F5), the annual run and
the demo (:mod:`drready.sim`) and the evaluation of declared potential (:mod:`drready.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from drready.domain.tolerances import SHORTAGE_TOL_KWH
from drready.physics.tank_step import step_retention, tank_step
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.problem import PlanningProblem

__all__ = ["Execution", "execute_plan"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Execution:
    """What happened: per-slot electricity (N, T) [kWh], stored heat at slot boundaries
    (N, T+1) [kWh], unmet heat (N,) [kWh], steps with a shortage (N,), heat delivered at the
    taps (N,) [kWh], automatic-reheat steps (N,)."""

    electric_kwh: FloatArray
    stored_heat_kwh: FloatArray
    unmet_kwh: FloatArray
    shortage_steps: npt.NDArray[np.int64]
    delivered_heat_kwh: FloatArray
    auto_reheat_steps: npt.NDArray[np.int64]

    @property
    def has_shortage(self) -> BoolArray:
        """Units whose unmet heat exceeds ``SHORTAGE_TOL_KWH`` (N,)."""
        out: BoolArray = self.unmet_kwh > SHORTAGE_TOL_KWH
        return out


def execute_plan(
    problem: PlanningProblem,
    planned_heat_kwh: FloatArray,
    use_l: npt.NDArray[np.floating[Any]],
    manual_reheat: BoolArray,
    reserve_l: float,
    *,
    reheat_below_kwh: FloatArray | None = None,
) -> Execution:
    """Run every unit through the grid with the realised use.

    Parameters
    ----------
    problem : PlanningProblem
        Supplies the initial state, retention, COP, heat-pump output and tank capacity.
    planned_heat_kwh : (N, T)
        Heat per slot of the plan being followed [kWh].
    use_l : (N, T·k)
        Realised hot-water use per step at 40 °C [L]; ``k`` steps per slot.
    manual_reheat : bool (N, T·k)
        Steps during which the household runs a manual reheat.
    reserve_l : float
        Usable hot water below which the unit reheats automatically [L at 40 °C].
    reheat_below_kwh : (N, T), optional
        Instead of the reserve, the stored heat below which each unit reheats automatically,
        per slot [kWh] (a safeguard that follows the plan; ``benchmarks/library_forecasters.py``
        measures some).
    """
    n, t = planned_heat_kwh.shape
    if use_l.shape[0] != n or use_l.shape[1] % t:
        raise ValueError(f"use_l must be (N, T·k) with N={n}, T={t}; got {use_l.shape}")
    if manual_reheat.shape != use_l.shape:
        raise ValueError("manual_reheat must have the shape of use_l")
    k = use_l.shape[1] // t
    heat_per_l = _heat_per_l(problem)
    draw_kwh = use_l.astype(np.float64) * heat_per_l[:, None]
    full_step_kwh = problem.heat_cap_kwh.T / k  # (N, T)
    retention = problem.retention.T
    cop = problem.cop.T
    plan_step_kwh = planned_heat_kwh / k
    if reheat_below_kwh is None:
        threshold_kwh = np.repeat((reserve_l * heat_per_l)[:, None], t, axis=1)
    elif reheat_below_kwh.shape != (n, t):
        raise ValueError(
            f"reheat_below_kwh must be (N, T) = ({n}, {t}), got {reheat_below_kwh.shape}"
        )
    else:
        threshold_kwh = reheat_below_kwh
    q = problem.q0_kwh.copy()
    q_max = problem.q_max_kwh
    elec = np.zeros((n, t))
    stored = np.empty((n, t + 1))
    stored[:, 0] = q
    unmet = np.zeros(n)
    short_steps = np.zeros(n, dtype=np.int64)
    auto_steps = np.zeros(n, dtype=np.int64)
    delivered = np.zeros(n)
    for s in range(t):
        a_step = step_retention(retention[:, s], k)
        for j in range(k):
            step = s * k + j
            out = tank_step(
                q,
                plan_step_kwh[:, s],
                full_step_kwh[:, s],
                draw_kwh[:, step],
                a_step,
                q_max,
                threshold_kwh[:, s],
                manual_reheat[:, step],
            )
            auto_steps += out.auto_reheat
            unmet += out.unmet_kwh
            short_steps += out.shortage
            delivered += out.delivered_kwh
            q = out.stored_heat_kwh
            elec[:, s] += out.heat_kwh / cop[:, s]
        stored[:, s + 1] = q
    return Execution(elec, stored, unmet, short_steps, delivered, auto_steps)


def _heat_per_l(problem: PlanningProblem) -> FloatArray:
    """Heat of one litre of use at 40 °C above each unit's mains temperature (N,) [kWh/L]."""
    out: FloatArray = HEAT_KWH_PER_L_K * (USE_TEMP_C - problem.mains_temp_c)
    return out
