"""Execute heating plans against realised hot-water use, step by step (F3, E1).

Each unit follows its plan's heat rate inside every 30-minute slot, as an EcoCute's controller
does, with the unit's own safeguards on top — the consumer's use always has priority:

* **automatic reheat** (自動沸き増し): whenever the usable hot water falls below the reserve, the
  heat pump runs at full output whatever the plan says;
* **manual reheat** (沸き増し): when the household presses the button, full output for its
  duration;
* **full tank**: heat that does not fit (stored heat at ``Q_max``) is not produced.

A draw that needs more heat than the tank holds is a **shortage** (湯切れ): its unmet heat and
the number of steps with unmet use are counted per unit and returned, never hidden.

Vectorised over units; the loop runs over time steps (5 minutes by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.problem import PlanningProblem

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SHORTAGE_TOL_KWH = 1e-3
"""Unmet heat below this (≈ 0.04 L at 40 °C) is float round-off, not a shortage."""


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
        return self.unmet_kwh > SHORTAGE_TOL_KWH


def execute_plan(
    problem: PlanningProblem,
    planned_heat_kwh: FloatArray,
    use_l: npt.NDArray[np.floating[Any]],
    manual_reheat: BoolArray,
    reserve_l: float,
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
    """
    n, t = planned_heat_kwh.shape
    if use_l.shape[0] != n or use_l.shape[1] % t:
        raise ValueError(f"use_l must be (N, T·k) with N={n}, T={t}; got {use_l.shape}")
    if manual_reheat.shape != use_l.shape:
        raise ValueError("manual_reheat must have the shape of use_l")
    k = use_l.shape[1] // t
    per_l = _heat_per_l(problem)
    draw_kwh = use_l.astype(np.float64) * per_l[:, None]
    cap_step = problem.heat_cap_kwh.T / k  # (N, T)
    retention = problem.retention.T
    cop = problem.cop.T
    plan_step = planned_heat_kwh / k
    reserve = reserve_l * per_l
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
        a_step = retention[:, s] ** (1.0 / k)
        for j in range(k):
            step = s * k + j
            low = q < reserve
            force = low | manual_reheat[:, step]
            heat = np.where(force, cap_step[:, s], plan_step[:, s])
            auto_steps += low
            q_next = a_step * q + heat - draw_kwh[:, step]
            over = np.maximum(q_next - q_max, 0.0)
            heat = heat - np.minimum(over, heat)
            q_next = np.minimum(q_next, q_max)
            miss = np.maximum(-q_next, 0.0)
            unmet += miss
            short_steps += miss > SHORTAGE_TOL_KWH
            delivered += draw_kwh[:, step] - miss
            q = np.maximum(q_next, 0.0)
            elec[:, s] += heat / cop[:, s]
        stored[:, s + 1] = q
    return Execution(elec, stored, unmet, short_steps, delivered, auto_steps)


def _heat_per_l(problem: PlanningProblem) -> FloatArray:
    return HEAT_KWH_PER_L_K * (USE_TEMP_C - problem.mains_temp_c)
