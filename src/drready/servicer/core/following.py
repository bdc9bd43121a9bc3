"""Command-value following (U1), the servicer's side: a battery makes heaters follow a command.

A balancing-market-like command asks the servicer's resource group for a power every
``step_s`` (60 s by default): the group's planned consumption plus ``offered_kw × s(t)``, with
``s`` a regulation signal in [−1, 1]. The group is N heat pump water heaters with live power
reports (F5) and one battery. The heaters keep their plans; the battery absorbs the residual
(:class:`FollowingController`). :func:`forecast_heater_kw` turns each heater's last F5 reading
and its plan into its expected power for the coming step; :func:`tracking_stats` scores the
result.

This module is what runs live in the servicer: it sees a battery only through its ratings
(:class:`BatteryRatings`, as its party reports them over the protocols) and heaters only
through their plans and F5 readings. Why the plan alone is not enough, the command model and
the offline reference simulation that measures all this are in :mod:`drready.sim.following` and
:mod:`drready.sim.command_signal`.

Controller
----------
Each step the controller takes the command for the coming step, the battery's stored energy
and the heaters' power — per heater the F5-based value (the last reading, or better
:func:`forecast_heater_kw`), and for a heater without one (``None`` for all, or NaN) its
plan's slot mean ``e / slot_h`` — and sets

``battery = clip(command − heater estimate + restore, step limits)``

* step limits: the power limits and what the store can take or give in one step
  (``(E_max − E) / (η_c Δt)`` charging, ``(E − E_min) η_d / Δt`` discharging);
* restore: a gentle state-of-charge term ``(E_target − E) / restore_time_constant_s`` [kW],
  capped at ``restore_share_of_tolerance × tolerance``. It spends part of the tolerance band to
  pull the store back towards the middle of its window, so that the efficiency losses and a
  one-sided stretch of the signal do not drift the battery into a bound within an hour.

F5 forecast
-----------
A heat pump that runs goes on until it has used its slot energy, so the energy counter tells
when it will stop; one that has still to run must start early enough to finish in its slot —
exactly at the slot's end minus its run time when the plan heats on into the next slot. What
stays unknown is the start of the few runs that begin inside a slot (their expected overlap
with the step is used) and the safeguards.

Tracking statistics
-------------------
Per step the error is ``output − command`` (step means, kW). :class:`TrackingStats` gives the
mean absolute, maximum absolute and RMS error and the share of steps with ``|error| ≤
tolerance_share × offered_kw`` (±10 % of the offered amount by default).
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from drready.domain.base import DomainModel, NonNegativeFloat, bounded_float
from drready.domain.checks import finite_array, positive
from drready.domain.time import SLOT_HOURS
from drready.domain.tolerances import ROUNDOFF
from drready.physics.duty import duty_fraction, expected_block_overlap, interval_overlap

__all__ = [
    "DEFAULT_STEP_S",
    "DEFAULT_TOLERANCE_SHARE",
    "BatteryRatings",
    "FollowingController",
    "TrackingStats",
    "forecast_heater_kw",
    "tracking_stats",
]

FloatArray = NDArray[np.float64]

DEFAULT_STEP_S: Final = 60.0
"""Command interval [s]."""
DEFAULT_TOLERANCE_SHARE: Final = 0.10
"""Tolerance on the tracking error, as a share of the offered amount [-]."""


class BatteryRatings(Protocol):
    """What the controller needs to know of a battery: its ratings (AC powers, DC energy).

    :class:`drready.device.battery.BatterySpec` has this shape; the servicer gets it from the
    battery's party over the protocols (e.g. ECHONET Lite 0x027D through the gateway's
    :class:`~drready.gateway.battery.BatteryLink`), never from device code.
    """

    @property
    def capacity_kwh(self) -> float:
        """Stored (DC) energy at 100 % state of charge [kWh]."""
        ...

    @property
    def max_charge_kw(self) -> float:
        """Largest AC charging power [kW]."""
        ...

    @property
    def max_discharge_kw(self) -> float:
        """Largest AC discharging power [kW]."""
        ...

    @property
    def charge_efficiency(self) -> float:
        """One-way AC → stored efficiency η_c [-]."""
        ...

    @property
    def discharge_efficiency(self) -> float:
        """One-way stored → AC efficiency η_d [-]."""
        ...

    @property
    def soc_min_share(self) -> float:
        """Discharge floor as a share of capacity [-]."""
        ...

    @property
    def soc_max_share(self) -> float:
        """Charge ceiling as a share of capacity [-]."""
        ...

    @property
    def soc_min_kwh(self) -> float:
        """Discharge floor ``E_min`` [kWh]."""
        ...

    @property
    def soc_max_kwh(self) -> float:
        """Charge ceiling ``E_max`` [kWh]."""
        ...


# --------------------------------------------------------------------------- statistics


class TrackingStats(DomainModel):
    """How well an output followed a command (per-step means, kW)."""

    mean_abs_error_kw: NonNegativeFloat = Field(description="Mean of |output − command| [kW].")
    max_abs_error_kw: NonNegativeFloat = Field(description="Largest |output − command| [kW].")
    rmse_kw: NonNegativeFloat = Field(description="Root mean square error [kW].")
    share_within_tolerance: Annotated[float, bounded_float(0.0, 1.0)] = Field(
        description="Share of steps with |error| ≤ tolerance_kw [-]."
    )
    n_steps: int = Field(ge=1, description="Number of steps scored.")
    tolerance_kw: Annotated[float, bounded_float(0.0, lo_open=True)] = Field(
        description="tolerance_share × offered_kw [kW]."
    )


def tracking_stats(
    command_kw: ArrayLike,
    output_kw: ArrayLike,
    offered_kw: float,
    tolerance_share: float = DEFAULT_TOLERANCE_SHARE,
) -> TrackingStats:
    """Tracking error statistics of ``output_kw`` against ``command_kw``.

    Parameters
    ----------
    command_kw, output_kw : array_like
        Per-step mean command and output [kW]; 1-d, same non-zero length, finite.
    offered_kw : float
        The offered amount [kW], > 0.
    tolerance_share : float
        Tolerance as a share of ``offered_kw``, in (0, 1].

    Examples
    --------
    >>> s = tracking_stats([10.0, 10.0, 10.0, 10.0], [10.5, 9.0, 10.0, 12.0], offered_kw=10.0)
    >>> s.mean_abs_error_kw, s.max_abs_error_kw, s.share_within_tolerance
    (0.875, 2.0, 0.75)
    """
    cmd = finite_array("command_kw", command_kw, ndim=1)
    out = finite_array("output_kw", output_kw, ndim=1)
    if cmd.shape != out.shape or cmd.size == 0:
        raise ValueError(
            f"command_kw and output_kw must have the same non-zero length, got {cmd.shape} and "
            f"{out.shape}"
        )
    offered = positive("offered_kw", offered_kw)
    share = float(tolerance_share)
    if not math.isfinite(share) or not 0.0 < share <= 1.0:
        raise ValueError(f"tolerance_share must be in (0, 1], got {tolerance_share!r}")
    tol = share * offered
    err = np.abs(out - cmd)
    return TrackingStats(
        mean_abs_error_kw=float(err.mean()),
        max_abs_error_kw=float(err.max()),
        rmse_kw=float(np.sqrt(np.mean(err**2))),
        # a minute exactly on the tolerance counts as inside, whatever the rounding
        share_within_tolerance=float(np.mean(err <= tol * (1.0 + ROUNDOFF))),
        n_steps=int(cmd.size),
        tolerance_kw=tol,
    )


# --------------------------------------------------------------------------- controller


class FollowingController:
    """Battery setpoint that makes heaters + battery follow the command (module docstring).

    Parameters
    ----------
    spec : BatteryRatings
        The battery's ratings, as its party reports them (e.g. a
        :class:`~drready.device.battery.BatterySpec` read by
        :meth:`drready.gateway.battery.BatteryLink.spec`).
    offered_kw : float
        The offered amount [kW] (sets the tolerance the restore term may use).
    step_s : float
        Command interval [s].
    tolerance_share : float
        Tolerance as a share of ``offered_kw``, (0, 1].
    soc_target_share : float or None
        Stored energy the restore term aims at, as a share of capacity; None: the middle of the
        operating window.
    restore_time_constant_s : float
        Time constant of the restore term [s] (1 h: a 1 kWh offset asks for 1 kW).
    restore_share_of_tolerance : float
        Cap of the restore term as a share of the tolerance, [0, 1).
    """

    def __init__(
        self,
        spec: BatteryRatings,
        *,
        offered_kw: float,
        step_s: float = DEFAULT_STEP_S,
        tolerance_share: float = DEFAULT_TOLERANCE_SHARE,
        soc_target_share: float | None = None,
        restore_time_constant_s: float = 3600.0,
        restore_share_of_tolerance: float = 0.25,
    ) -> None:
        self.spec = spec
        self.offered_kw = positive("offered_kw", offered_kw)
        self.step_s = positive("step_s", step_s)
        share = float(tolerance_share)
        if not math.isfinite(share) or not 0.0 < share <= 1.0:
            raise ValueError(f"tolerance_share must be in (0, 1], got {tolerance_share!r}")
        self.tolerance_kw = share * self.offered_kw
        if soc_target_share is None:
            self.soc_target_kwh = 0.5 * (spec.soc_min_kwh + spec.soc_max_kwh)
        else:
            t = float(soc_target_share)
            if not spec.soc_min_share <= t <= spec.soc_max_share:
                raise ValueError(
                    f"soc_target_share must be within [{spec.soc_min_share}, "
                    f"{spec.soc_max_share}] (the operating window), got {soc_target_share!r}"
                )
            self.soc_target_kwh = t * spec.capacity_kwh
        tau_s = positive("restore_time_constant_s", restore_time_constant_s)
        self.restore_time_constant_h = tau_s / 3600.0
        r = float(restore_share_of_tolerance)
        if not math.isfinite(r) or not 0.0 <= r < 1.0:
            raise ValueError(
                f"restore_share_of_tolerance must be in [0, 1), got {restore_share_of_tolerance!r}"
            )
        self.restore_max_kw = r * self.tolerance_kw

    @staticmethod
    def heater_estimate_kw(planned_kw: ArrayLike, measured_kw: ArrayLike | None = None) -> float:
        """The heaters' power for the coming step [kW].

        ``planned_kw``: each heater's plan for the step (slot energy / slot length), or the
        group's sum. ``measured_kw``: the F5-based power, same shape — the latest readings, or
        better :func:`forecast_heater_kw` of them; ``None`` (no F5) or NaN for a heater without
        a reading falls back to its plan.
        """
        plan = finite_array("planned_kw", planned_kw)
        if measured_kw is None:
            return float(plan.sum())
        meas = np.asarray(measured_kw, dtype=np.float64)
        if meas.shape != plan.shape:
            raise ValueError(
                f"measured_kw must have the shape of planned_kw {plan.shape}, got {meas.shape}"
            )
        if np.any(np.isinf(meas)):
            raise ValueError("measured_kw must be finite or NaN (missing)")
        return float(np.where(np.isnan(meas), plan, meas).sum())

    def step_limits_kw(self, soc_kwh: float) -> tuple[float, float]:
        """(lowest, highest) AC setpoint [kW] allowed for one step from ``soc_kwh``."""
        s = self.spec
        dt_h = self.step_s / 3600.0
        hi = min(s.max_charge_kw, max(s.soc_max_kwh - soc_kwh, 0.0) / (s.charge_efficiency * dt_h))
        lo = -min(
            s.max_discharge_kw,
            max(soc_kwh - s.soc_min_kwh, 0.0) * s.discharge_efficiency / dt_h,
        )
        return lo, hi

    def restore_kw(self, soc_kwh: float) -> float:
        """The state-of-charge restoring term [kW] (+ charges towards the target)."""
        r = (self.soc_target_kwh - soc_kwh) / self.restore_time_constant_h
        # capped so that it spends at most its share of the tolerance band
        return float(np.clip(r, -self.restore_max_kw, self.restore_max_kw))

    def setpoint_kw(
        self,
        command_kw: float,
        soc_kwh: float,
        planned_kw: ArrayLike,
        measured_kw: ArrayLike | None = None,
    ) -> float:
        """Battery AC setpoint [kW] for the coming step.

        Parameters
        ----------
        command_kw : float
            Power the group is asked for in the coming step [kW].
        soc_kwh : float
            The battery's stored energy now [kWh].
        planned_kw, measured_kw
            See :meth:`heater_estimate_kw`.
        """
        cmd = float(command_kw)
        soc = float(soc_kwh)
        if not math.isfinite(cmd):
            raise ValueError(f"command_kw must be finite, got {command_kw!r}")
        if not math.isfinite(soc) or not 0.0 <= soc <= self.spec.capacity_kwh:
            raise ValueError(
                f"soc_kwh must be within [0, {self.spec.capacity_kwh:g}] kWh, got {soc_kwh!r}"
            )
        heaters = self.heater_estimate_kw(planned_kw, measured_kw)
        lo, hi = self.step_limits_kw(soc)
        # the battery can do no more than its power and its store allow in this step
        return float(np.clip(cmd - heaters + self.restore_kw(soc), lo, hi))


# --------------------------------------------------------------------------- F5 forecast


def forecast_heater_kw(
    slot_energy_kwh: ArrayLike,
    rated_kw: ArrayLike,
    on: ArrayLike,
    used_kwh: ArrayLike,
    x_read: ArrayLike,
    x0: ArrayLike,
    x1: ArrayLike,
    continues: ArrayLike = False,
    slot_h: float = SLOT_HOURS,
) -> FloatArray:
    """Expected mean power of each heater over the slot fractions ``[x0, x1)``, from F5 + plan.

    What one F5 reading (power and energy counter) and the plan's slot energy imply, under the
    run model of a CO2 heat pump (one block per slot at rated input, which, once started,
    runs until the slot's energy is used; :func:`drready.sim.following.example_group` draws
    groups of such heaters):

    * ``r = (slot_energy − used) / (rated · slot_h)``: on-time left in the slot (a slot share,
      at most ``1 − x_read``);
    * on at the reading: it runs on for ``r`` and stops — the stop is *known*;
    * off with ``r > 0``: if the plan heats on into the next slot (``continues``), the run ends
      at the slot's end and starts at ``1 − r`` — known; otherwise it starts at an unknown
      time, uniform over the starts that still let it finish in the slot, ``[x_read, 1 − r]``,
      and the expected overlap is used (:func:`~drready.physics.duty.expected_block_overlap`);
    * off with nothing left: it stays off; on with nothing left: an unplanned run (a
      safeguard reheat), taken to go on at rated input; a slot energy of rated input or more
      (duty ≥ 1): the plan's mean.

    Parameters
    ----------
    slot_energy_kwh, rated_kw : array_like
        The plan's energy for the slot of the coming step [kWh] and the rated input [kW].
    on : array_like of bool
        Whether the heater ran at the reading.
    used_kwh : array_like
        Energy used in this slot up to the reading [kWh] (from the F5 energy counter; 0 when
        the reading is from before the slot: then pass ``x_read = 0``, and ``on`` means the run
        goes on into this slot).
    x_read, x0, x1 : array_like
        Slot fractions of the reading and of the coming step, ``x_read ≤ x0 < x1 ≤ 1``.
    continues : array_like of bool
        Whether the plan has energy in the next slot.
    slot_h : float
        Slot length [h].
    """
    e = np.asarray(slot_energy_kwh, dtype=np.float64)
    p = np.asarray(rated_kw, dtype=np.float64)
    running = np.asarray(on, dtype=bool)
    used = np.asarray(used_kwh, dtype=np.float64)
    xr = np.asarray(x_read, dtype=np.float64)
    a = np.asarray(x0, dtype=np.float64)
    b = np.asarray(x1, dtype=np.float64)
    if np.any(b <= a) or np.any(xr > a + ROUNDOFF):
        raise ValueError("need x_read <= x0 < x1 (slot fractions)")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(p > 0.0, (e - used) / (p * slot_h), 0.0)
    # the run cannot outlast the slot, nor have a negative rest (a safeguard used extra energy)
    r = np.clip(r, 0.0, 1.0 - xr)
    known_on = interval_overlap(xr, xr + r, a, b)
    last_start = np.maximum(1.0 - r, xr)
    first_start = np.where(np.asarray(continues, dtype=bool), last_start, xr)
    pending = expected_block_overlap(first_start, last_start, r, a, b)
    share = np.where(running, known_on, np.where(r > 0.0, pending, 0.0)) / (b - a)
    full = duty_fraction(e, p, slot_h) >= 1.0
    out: FloatArray = np.where(full, e / slot_h, p * share)
    # running with no planned energy left: an unplanned run (a safeguard) — it goes on as seen
    out = np.where(running & (r <= 0.0) & ~full, p, out)
    return out
