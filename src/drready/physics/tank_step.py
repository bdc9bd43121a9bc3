"""One time step of a heat pump water heater's tank under its own safeguards (F3, E1).

The single rule by which every simulated unit moves: the maker fleet's simulated meter and the
evaluation's executions (:func:`drready.planning.execution.execute_plan`, units × time) and the
live single unit (:class:`drready.device.heater.SimulatedWaterHeater`, one step at a time) all
call :func:`tank_step`. It is pure and vectorised: every argument broadcasts (a scalar for one
unit, an array (N,) for a fleet), nothing is kept between calls.

The state is the heat stored above mains temperature, ``Q`` [kWh], of the thermocline tank of
:mod:`drready.physics.tank` (linear standby loss: a share ``a = exp(−λ·Δt)`` of ``Q`` is left
after a step of ``Δt``). A step of a unit whose plan asks for heat ``x_plan`` [kWh], drawing
heat ``w`` [kWh] at the taps, goes in this order — the consumer's use always has priority over
the plan, as an EcoCute's controller gives it:

1. **automatic reheat** (自動沸き増し): ``Q < Q_reserve`` at the step's start → the heat pump runs
   at full output, whatever the plan says;
2. **manual reheat** (沸き増し): the household pressed the button → full output too;
   ``x = x_full`` if (1) or (2), else ``x = x_plan``;
3. **balance**: ``Q' = a·Q + x − w``;
4. **full tank**: heat that does not fit is not produced —
   ``x_refused = min(max(Q' − Q_max, 0), x)``, ``x ← x − x_refused``, ``Q' ← min(Q', Q_max)``;
5. **shortage** (湯切れ): a draw the tank cannot serve is not served — the unmet heat is
   ``u = max(−Q', 0)``, the heat delivered ``w − u``, and ``Q_next = max(Q', 0)``. A step counts
   as a shortage when ``u`` exceeds :data:`~drready.domain.tolerances.SHORTAGE_TOL_KWH` (float
   round-off never does, a real one always does).

Energy balance of every step (for ``Q ≤ Q_max`` at its start, which the callers keep):
``Q_next = Q − loss + x − delivered`` with ``loss = (1 − a)·Q`` — exact up to round-off, and
checked by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drready.domain.tolerances import SHORTAGE_TOL_KWH

__all__ = ["TankStep", "step_retention", "tank_step"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TankStep:
    """The outcome of one step, per unit (arrays of the broadcast shape of the inputs).

    Attributes
    ----------
    heat_kwh : float array
        Heat the heat pump added in the step, after a full tank refused what did not fit [kWh].
    stored_heat_kwh : float array
        Stored heat above mains at the step's end, ``Q_next`` ≥ 0 [kWh].
    delivered_kwh : float array
        Heat delivered at the taps [kWh].
    unmet_kwh : float array
        Heat the draw asked for and the tank could not give [kWh] (0 without a shortage).
    loss_kwh : float array
        Standby loss of the step, ``(1 − a)·Q`` [kWh].
    auto_reheat : bool array
        The stored heat was below the reserve at the step's start: automatic reheat.
    forced : bool array
        Full output, by automatic or manual reheat, instead of the plan.
    clipped : bool array
        A full tank refused some of the heat.
    """

    heat_kwh: FloatArray
    stored_heat_kwh: FloatArray
    delivered_kwh: FloatArray
    unmet_kwh: FloatArray
    loss_kwh: FloatArray
    auto_reheat: BoolArray
    forced: BoolArray
    clipped: BoolArray

    @property
    def shortage(self) -> BoolArray:
        """Whether the step had a shortage (unmet heat above ``SHORTAGE_TOL_KWH``)."""
        out: BoolArray = self.unmet_kwh > SHORTAGE_TOL_KWH
        return out


def step_retention(slot_retention: npt.ArrayLike, steps_per_slot: int) -> FloatArray:
    """Share of stored heat left after one of ``steps_per_slot`` equal steps of a slot [-].

    The loss is exponential in time (:func:`drready.physics.tank.retention_factor`), so a step
    keeps the ``steps_per_slot``-th root of the slot's retention.

    >>> float(step_retention(0.81, 2))
    0.9
    """
    out: FloatArray = np.asarray(slot_retention, dtype=np.float64) ** (1.0 / steps_per_slot)
    return out


def tank_step(
    stored_heat_kwh: npt.ArrayLike,
    planned_heat_kwh: npt.ArrayLike,
    full_heat_kwh: npt.ArrayLike,
    draw_kwh: npt.ArrayLike,
    retention: npt.ArrayLike,
    max_heat_kwh: npt.ArrayLike,
    reserve_kwh: npt.ArrayLike,
    manual_reheat: npt.ArrayLike,
) -> TankStep:
    """Move the tank by one step under the plan and the unit's safeguards (see the module).

    Parameters
    ----------
    stored_heat_kwh : numeric
        Stored heat above mains at the step's start, ``Q`` [kWh], 0 ≤ Q ≤ ``max_heat_kwh``.
    planned_heat_kwh : numeric
        Heat the plan asks the heat pump for in this step, ``x_plan`` [kWh].
    full_heat_kwh : numeric
        Heat of the step at the heat pump's full output, ``x_full`` [kWh].
    draw_kwh : numeric
        Heat drawn at the taps in the step, ``w`` [kWh].
    retention : numeric
        Share of the stored heat left after the step's standby loss, ``a`` [-].
    max_heat_kwh : numeric
        Tank capacity, ``Q_max`` [kWh].
    reserve_kwh : numeric
        Stored heat below which the unit reheats automatically, ``Q_reserve`` [kWh].
    manual_reheat : bool, numeric
        Whether the household runs a manual reheat in the step.

    Returns
    -------
    TankStep
        Arrays of the inputs' broadcast shape (0-d for scalar inputs).

    Examples
    --------
    A full tank refuses the plan's heat beyond its capacity:

    >>> s = tank_step(9.5, 1.0, 0.375, 0.0, 1.0, 10.0, 2.0, False)
    >>> float(s.heat_kwh), float(s.stored_heat_kwh), bool(s.clipped)
    (0.5, 10.0, True)
    """
    q = np.asarray(stored_heat_kwh, dtype=np.float64)
    draw = np.asarray(draw_kwh, dtype=np.float64)
    a = np.asarray(retention, dtype=np.float64)
    q_max = np.asarray(max_heat_kwh, dtype=np.float64)
    auto = q < np.asarray(reserve_kwh, dtype=np.float64)
    forced = auto | np.asarray(manual_reheat, dtype=np.bool_)
    heat = np.where(
        forced,
        np.asarray(full_heat_kwh, dtype=np.float64),
        np.asarray(planned_heat_kwh, dtype=np.float64),
    )
    q_next = a * q + heat - draw
    refused = np.minimum(np.maximum(q_next - q_max, 0.0), heat)
    heat = heat - refused
    q_next = np.minimum(q_next, q_max)
    unmet = np.maximum(-q_next, 0.0)
    return TankStep(
        heat_kwh=heat,
        stored_heat_kwh=np.maximum(q_next, 0.0),
        delivered_kwh=draw - unmet,
        unmet_kwh=unmet,
        loss_kwh=(1.0 - a) * q,
        auto_reheat=auto,
        forced=forced,
        clipped=refused > 0.0,
    )
