"""Command-value following (U1), offline: why F5 plus a battery follows a minute command.

The reference simulation of the servicer's controller
(:class:`drready.servicer.core.following.FollowingController`) against a group of simulated
heaters (:class:`HeaterGroup`, :func:`example_group`) and an exactly integrated battery
(:func:`drready.device.battery.integrate_battery`), driven by a seeded command
(:mod:`drready.sim.command_signal`). :func:`simulate_following` runs one hour at one-minute
steps; :func:`compare_following` runs it with F5, without F5 (plan only) and with the heaters
alone, and shows why the live power reports (F5) are what makes following possible.

Physics: why the plan is not enough, and why F5 plus a battery is
------------------------------------------------------------------
A plan fixes each heater's *energy* per 30-minute slot, not its power minute by minute. A CO2
heat pump delivers that energy by running at its rated input (1.0–1.5 kW) for part of the slot
and being off otherwise (:mod:`drready.physics.duty`: duty ``d = e / (p · slot_h)``, one block
starting at an unknown phase). On top of that the unit's safeguards (the automatic reheat when
the usable hot water falls below the reserve, a manual reheat, a full tank refusing heat, see
:mod:`drready.planning.execution`) switch it on or off outside the plan. So from the plan alone the
servicer knows only the slot mean ``e / slot_h``; the group's real power differs from it by
``Σ pᵢ (onᵢ(t) − dᵢ)``, with a standard deviation of about ``p √(Σ dᵢ (1 − dᵢ))`` — ≈ 6 kW for
100 heaters of 1.25 kW at d = 0.5, far beyond a ±10 % tolerance on a few-ten-kW offer. A
battery steered from the plan cancels only the *expected* heater power and passes that whole
deviation on to the group's output: **without F5 the tracking fails**.

With F5 the controller has each heater's power and energy counter: one reading per minute,
arriving ``lag_s`` late (a minute by default). Taken as it is (``estimator="last"``) the last
reading is wrong for every heater that switched since — about two switching events per heater
and run. Read together with the plan it says much more (``estimator="forecast"``,
:func:`drready.servicer.core.following.forecast_heater_kw`): a heat pump that runs goes on
until it has used its slot energy, so the counter tells when it will stop; one that has still
to run must start early enough to finish in its slot — exactly at the slot's end minus its run
time when the plan heats on into the next slot. What stays unknown is the start of the few
runs that begin inside a slot, and the safeguards. The battery, whose power the controller sets
freely within its limits, absorbs the residual ``command − heater power``. With a battery sized
for ``offered_kw`` plus the heaters' deviation from the plan, the group then stays within
tolerance in nearly every minute (≥ 95 % in the tests). A group of heaters alone cannot follow
at all: nothing in it moves its power with the command.

Measured with :func:`example_group` (one run of 15–90 min per heater at 1.0–1.5 kW, 5 % of the
heaters with a safeguard reheat), commands of ±12, 18, 25, 35 kW for 20, 50, 100, 200 heaters,
a battery of 1.25 × offered kW and 2 h × offered kWh, F5 one minute late, ten seeded hours
each: minutes within ±10 % of the offered amount — 99–100 % with F5 (forecast), 82–86 % with
the raw last reading, 49–61 % from the plan alone, 13–18 % for the heaters alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from drready.device.battery import BatterySpec, integrate_battery
from drready.domain.checks import finite_array, positive
from drready.domain.time import SLOT_HOURS
from drready.domain.tolerances import ROUNDOFF
from drready.physics.duty import duty_fraction, on_off_energy_fraction, on_off_power_kw
from drready.servicer.core.following import (
    DEFAULT_STEP_S,
    DEFAULT_TOLERANCE_SHARE,
    FollowingController,
    TrackingStats,
    forecast_heater_kw,
    tracking_stats,
)
from drready.sim.command_signal import CommandSignal

__all__ = [
    "Estimator",
    "FollowingComparison",
    "FollowingResult",
    "HeaterGroup",
    "compare_following",
    "example_group",
    "group_baseline_kw",
    "simulate_following",
]

FloatArray = NDArray[np.float64]

_MS_PER_H: Final = 3_600_000.0
#: How far (a slot fraction) a run that ends at its slot's end is pulled back, so that float
#: round-off in phase + duty never wraps it into the slot's start. Local and far below
#: ROUNDOFF on purpose: the group is exact to round-off, and a larger pull-back shows — the F5
#: forecast, which takes such a run to end exactly at the slot's end, then differs from the
#: group by 1e-9 × rated kW / step share (4e-8 kW for one-minute steps).
_END_GUARD: Final = 1e-12

Estimator = Literal["forecast", "last"]
"""The heater power the controller uses with F5 (see :func:`simulate_following`)."""


# --------------------------------------------------------------------------- heater group


@dataclass(frozen=True)
class HeaterGroup:
    """N heaters over ``S`` consecutive slots from the simulation start (slot-aligned).

    Attributes
    ----------
    slot_energy_kwh : (N, S) array
        Planned electric energy per heater and slot [kWh].
    rated_kw : (N,) array
        Rated electric input [kW] (the on-level of :mod:`drready.physics.duty`).
    phase : (N, S) array
        Start of the on-block in each slot, as a slot fraction in [0, 1).
    safeguard_start_h, safeguard_duration_h : (N,) arrays
        An unplanned safety reheat at rated input during ``[start, start + duration)`` hours
        from the simulation start (NaN start: none). Where the plan already runs, nothing
        changes; elsewhere it adds ``rated_kw`` (energy the plan does not show).
    slot_h : float
        Slot length [h].
    """

    slot_energy_kwh: FloatArray
    rated_kw: FloatArray
    phase: FloatArray
    safeguard_start_h: FloatArray
    safeguard_duration_h: FloatArray
    slot_h: float = SLOT_HOURS

    def __post_init__(self) -> None:
        e = finite_array("slot_energy_kwh", self.slot_energy_kwh, ndim=2)
        n, s = e.shape
        if n == 0 or s == 0:
            raise ValueError(
                f"slot_energy_kwh must have at least one heater and slot, got {e.shape}"
            )
        p = finite_array("rated_kw", self.rated_kw, ndim=1)
        ph = finite_array("phase", self.phase, ndim=2)
        g0 = np.asarray(self.safeguard_start_h, dtype=np.float64)
        g1 = finite_array("safeguard_duration_h", self.safeguard_duration_h, ndim=1)
        if p.shape != (n,) or ph.shape != (n, s) or g0.shape != (n,) or g1.shape != (n,):
            raise ValueError(
                f"rated_kw, safeguard_* must have shape ({n},) and phase ({n}, {s}), got "
                f"{p.shape}, {g0.shape}, {g1.shape}, {ph.shape}"
            )
        if np.any(e < 0.0) or np.any(p <= 0.0) or np.any(g1 < 0.0):
            raise ValueError("slot_energy_kwh and safeguard_duration_h must be >= 0, rated_kw > 0")
        if np.any((ph < 0.0) | (ph >= 1.0)):
            raise ValueError("phase must lie in [0, 1)")
        if np.any(np.isinf(g0)):
            raise ValueError("safeguard_start_h must be finite or NaN (none)")
        positive("slot_h", self.slot_h)
        for name, arr in (
            ("slot_energy_kwh", e),
            ("rated_kw", p),
            ("phase", ph),
            ("safeguard_start_h", g0),
            ("safeguard_duration_h", g1),
        ):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_heaters(self) -> int:
        return int(self.slot_energy_kwh.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.slot_energy_kwh.shape[1])

    @property
    def horizon_h(self) -> float:
        return self.n_slots * self.slot_h

    def _slot_of(self, t_h: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
        # instants are read on a millisecond grid: k · step − lag lands exactly on a slot start;
        # an instant outside the horizon reads its first or last slot
        t = np.clip(np.round(t_h * _MS_PER_H) / _MS_PER_H, 0.0, self.horizon_h)
        idx = np.minimum((t // self.slot_h).astype(np.intp), self.n_slots - 1)
        x = (t - idx * self.slot_h) / self.slot_h
        return idx, x

    def _per_slot(self, values: FloatArray, idx: NDArray[np.intp]) -> FloatArray:
        """``values[i, idx[...]]`` for every heater: shape (N, *idx.shape)."""
        out: FloatArray = np.take_along_axis(
            values, np.broadcast_to(idx.ravel(), (self.n_heaters, idx.size)), axis=1
        ).reshape((self.n_heaters, *idx.shape))
        return out

    def planned_kw(self, t_h: ArrayLike) -> FloatArray:
        """Each heater's plan at hours ``t_h``: slot energy / slot length [kW], shape (N, T)."""
        idx, _ = self._slot_of(np.atleast_1d(np.asarray(t_h, dtype=np.float64)))
        return self._per_slot(self.slot_energy_kwh, idx) / self.slot_h

    def _in_safeguard(self, t: FloatArray) -> NDArray[np.bool_]:
        g0 = self.safeguard_start_h[:, None]
        g1 = g0 + self.safeguard_duration_h[:, None]
        inside: NDArray[np.bool_] = (t[None, :] >= g0) & (t[None, :] < g1)  # NaN: False
        return inside

    def power_kw(self, t_h: ArrayLike) -> FloatArray:
        """Instantaneous power of each heater at hours ``t_h`` (what F5 reads), (N, T) [kW]."""
        t = np.atleast_1d(np.asarray(t_h, dtype=np.float64))
        idx, x = self._slot_of(t)
        e = self._per_slot(self.slot_energy_kwh, idx)
        ph = self._per_slot(self.phase, idx)
        p = self.rated_kw[:, None]
        plan = on_off_power_kw(e, p, ph, x[None, :], self.slot_h)
        return np.where(self._in_safeguard(t), np.maximum(plan, p), plan)

    def _on_hours(self, a_h: FloatArray, b_h: FloatArray) -> FloatArray:
        """Hours each heater's planned on-blocks overlap ``[a, b)`` (arrays (N, T))."""
        total = np.zeros(np.broadcast_shapes(a_h.shape, b_h.shape))
        for s in range(self.n_slots):
            s0 = s * self.slot_h
            d = duty_fraction(self.slot_energy_kwh[:, s], self.rated_kw, self.slot_h)[:, None]
            ph = self.phase[:, s][:, None]
            # the parts of [a, b) outside slot s hold none of its on-block
            xa = np.clip((a_h - s0) / self.slot_h, 0.0, 1.0)
            xb = np.clip((b_h - s0) / self.slot_h, 0.0, 1.0)
            fa = on_off_energy_fraction(d, ph, xa)
            fb = on_off_energy_fraction(d, ph, xb)
            total = total + (fb - fa) * self.slot_h
        return total

    def energy_kwh(self, t_h: ArrayLike) -> FloatArray:
        """Each heater's electric energy from the start to hours ``t_h``, (N, T) [kWh] (exact)."""
        # nothing is used before the start, nothing more after the horizon
        t = np.clip(np.atleast_1d(np.asarray(t_h, dtype=np.float64)), 0.0, self.horizon_h)
        n_t = t.size
        planned = np.zeros((self.n_heaters, n_t))
        for s in range(self.n_slots):
            # slot s reads nothing before it starts and all of it once it has ended
            x = np.clip((t - s * self.slot_h) / self.slot_h, 0.0, 1.0)
            d = duty_fraction(self.slot_energy_kwh[:, s], self.rated_kw, self.slot_h)[:, None]
            share = on_off_energy_fraction(d, self.phase[:, s][:, None], x[None, :])
            e = self.slot_energy_kwh[:, s][:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                planned += np.where(d > 0.0, e * share / np.where(d > 0.0, d, 1.0), 0.0)
        # safeguard: rated power where the plan is off inside [g0, min(g1, t))
        g0 = np.nan_to_num(self.safeguard_start_h, nan=np.inf)[:, None]
        g1 = g0 + self.safeguard_duration_h[:, None]
        a = np.minimum(g0, t[None, :])
        b = np.clip(np.minimum(g1, t[None, :]), a, None)  # empty before g0 and without one
        off_h = (b - a) - self._on_hours(a, b)
        # where the plan runs through the whole reheat, round-off may leave a hair below 0
        extra = self.rated_kw[:, None] * np.clip(off_h, 0.0, None)
        out: FloatArray = planned + extra
        return out

    def mean_power_kw(self, t0_h: ArrayLike, t1_h: ArrayLike) -> FloatArray:
        """Each heater's mean power over ``[t0, t1)`` [kW], (N, T) (exact)."""
        t0 = np.atleast_1d(np.asarray(t0_h, dtype=np.float64))
        t1 = np.atleast_1d(np.asarray(t1_h, dtype=np.float64))
        if t0.shape != t1.shape or np.any(t1 <= t0):
            raise ValueError("t1_h must be later than t0_h, elementwise, with the same shape")
        out: FloatArray = (self.energy_kwh(t1) - self.energy_kwh(t0)) / (t1 - t0)[None, :]
        return out


def example_group(
    n_heaters: int,
    *,
    n_slots: int = 3,
    seed: int = 0,
    rated_kw: tuple[float, float] = (1.0, 1.5),
    run_hours: tuple[float, float] = (0.25, 1.5),
    safeguard_share: float = 0.05,
    safeguard_minutes: tuple[float, float] = (10.0, 30.0),
    slot_h: float = SLOT_HOURS,
) -> HeaterGroup:
    """A seeded group of ``n_heaters`` heaters, each running one block in the horizon.

    A CO2 heat pump avoids short cycling: it heats in one run at rated input. Each heater's run
    has a length uniform in ``run_hours`` and a start uniform in ``[−length, horizon)`` (so it
    overlaps the horizon); its rated input is uniform in ``rated_kw``. The run becomes the
    plan's slot energies and phases (:mod:`drready.physics.duty` with a block that starts at
    the phase and never wraps): a slot the run covers has duty 1, the slots where it starts and
    ends a partial duty. A share ``safeguard_share`` of the heaters also runs one unplanned
    safety reheat of uniform ``safeguard_minutes`` at a uniform time in the horizon.

    The default three slots are the hour :func:`simulate_following` runs plus the next slot: a
    plan always reaches beyond the hour being followed, and the F5 forecast uses the next
    slot's energy (:func:`~drready.servicer.core.following.forecast_heater_kw`, ``continues``).
    """
    if isinstance(n_heaters, bool) or not isinstance(n_heaters, int) or n_heaters < 1:
        raise ValueError(f"n_heaters must be an int >= 1, got {n_heaters!r}")
    if isinstance(n_slots, bool) or not isinstance(n_slots, int) or n_slots < 1:
        raise ValueError(f"n_slots must be an int >= 1, got {n_slots!r}")
    if not 0.0 <= safeguard_share <= 1.0:
        raise ValueError(f"safeguard_share must be in [0, 1], got {safeguard_share!r}")
    if not 0.0 < run_hours[0] <= run_hours[1]:
        raise ValueError(f"run_hours must be a range of positive lengths, got {run_hours!r}")
    if not 0.0 < rated_kw[0] <= rated_kw[1]:
        raise ValueError(f"rated_kw must be a range of positive powers, got {rated_kw!r}")
    if not 0.0 <= safeguard_minutes[0] <= safeguard_minutes[1]:
        raise ValueError(f"safeguard_minutes must be a range >= 0, got {safeguard_minutes!r}")
    rng = np.random.default_rng(seed)
    horizon = n_slots * slot_h
    p = rng.uniform(rated_kw[0], rated_kw[1], n_heaters)
    length = rng.uniform(run_hours[0], run_hours[1], n_heaters)
    start = rng.uniform(-length, horizon)
    slot0 = np.arange(n_slots) * slot_h
    # the run's part inside each slot: [a, b), empty (a = b) where the run misses the slot
    a = np.clip(start[:, None], slot0, slot0 + slot_h)
    b = np.clip((start + length)[:, None], slot0, slot0 + slot_h)
    overlap = b - a
    duty = duty_fraction(p[:, None] * overlap, p[:, None], slot_h)
    # a block that ends at the slot's end must not wrap by a rounding error into its start;
    # a block that fills the slot (duty 1) starts at its start, not before
    phase = np.clip(np.minimum((a - slot0) / slot_h, 1.0 - duty - _END_GUARD), 0.0, None)
    phase = np.where(overlap > 0.0, phase, 0.0)
    has = rng.uniform(0.0, 1.0, n_heaters) < safeguard_share
    g_start = np.where(has, rng.uniform(0.0, horizon, n_heaters), np.nan)
    g_len = rng.uniform(safeguard_minutes[0], safeguard_minutes[1], n_heaters) / 60.0
    return HeaterGroup(
        slot_energy_kwh=p[:, None] * overlap,
        rated_kw=p,
        phase=phase,
        safeguard_start_h=g_start,
        safeguard_duration_h=np.where(has, g_len, 0.0),
        slot_h=slot_h,
    )


def group_baseline_kw(
    group: HeaterGroup, n_steps: int, step_s: float = DEFAULT_STEP_S
) -> FloatArray:
    """The group's planned consumption per step [kW] (the command's baseline)."""
    t = np.arange(n_steps) * (step_s / 3600.0)
    out: FloatArray = group.planned_kw(t).sum(axis=0)
    return out


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class FollowingResult:
    """Series of one simulated run (per step unless noted) and its statistics."""

    label: str
    time_h: FloatArray
    command_kw: FloatArray
    heater_kw: FloatArray
    heater_estimate_kw: FloatArray
    battery_setpoint_kw: FloatArray
    battery_kw: FloatArray
    output_kw: FloatArray
    soc_kwh: FloatArray
    """Stored energy at each step boundary, ``n_steps + 1`` values (empty without battery)."""
    stats: TrackingStats


@dataclass(frozen=True)
class FollowingComparison:
    """The three runs of :func:`compare_following` on the same group and command."""

    with_f5: FollowingResult
    without_f5: FollowingResult
    heaters_only: FollowingResult


def simulate_following(
    group: HeaterGroup,
    command: CommandSignal,
    battery: BatterySpec | None,
    *,
    f5: bool = True,
    lag_s: float = DEFAULT_STEP_S,
    estimator: Estimator = "forecast",
    initial_soc_kwh: float | None = None,
    tolerance_share: float = DEFAULT_TOLERANCE_SHARE,
    controller: FollowingController | None = None,
    label: str | None = None,
) -> FollowingResult:
    """Offline reference run of heaters + battery + controller over the command's steps.

    Parameters
    ----------
    group : HeaterGroup
        The heaters; the command's steps must fit inside its slots (``n_steps · step_s ≤
        horizon``) and ``step_s`` must divide the slot length.
    command : CommandSignal
        What the group is asked for (``command.start`` is the start of ``group``'s first slot).
    battery : BatterySpec or None
        The battery; None: the heaters alone (they keep their plans).
    f5 : bool
        Whether the controller has the heaters' live F5. True: each step it has every heater's
        power and energy counter as read at ``t_k − lag_s`` (one reading late by default; at
        the very start the reading of ``t = 0``). False: it uses the plan (slot energy / slot
        length).
    lag_s : float
        Age of the F5 reading when the controller uses it [s], ``>= 0``.
    estimator : {"forecast", "last"}
        With F5, the heater power the controller uses: ``"forecast"`` — what the reading and
        the plan imply for the coming step
        (:func:`~drready.servicer.core.following.forecast_heater_kw`); ``"last"`` — the last
        reading as it is.
    initial_soc_kwh : float or None
        Battery start; None: the middle of its window.
    tolerance_share : float
        For :func:`~drready.servicer.core.following.tracking_stats` and the controller.
    controller : FollowingController or None
        None: ``FollowingController(battery, offered_kw=command.offered_kw, ...)``.
    label : str or None
        Name of the run in the result.

    Returns
    -------
    FollowingResult
        Heater step means are exact (:meth:`HeaterGroup.mean_power_kw`); the battery follows
        its exact model (:func:`~drready.device.battery.integrate_battery`), so its step mean
        is below the setpoint only when a bound stops it.
    """
    step_h = command.step_s / 3600.0
    n = command.n_steps
    slot_s = group.slot_h * 3600.0
    if abs(slot_s / command.step_s - round(slot_s / command.step_s)) > ROUNDOFF:
        raise ValueError(f"step_s={command.step_s} must divide the slot length {slot_s:g} s")
    if n * step_h > group.horizon_h * (1.0 + ROUNDOFF):
        raise ValueError(
            f"the command ({n} steps of {command.step_s:g} s) is longer than the group's "
            f"{group.n_slots} slots"
        )
    lag_h = float(lag_s) / 3600.0
    if not math.isfinite(lag_h) or lag_h < 0.0:
        raise ValueError(f"lag_s must be finite and >= 0, got {lag_s!r}")
    if estimator not in ("forecast", "last"):
        raise ValueError(f"estimator must be 'forecast' or 'last', got {estimator!r}")
    t: FloatArray = np.arange(n, dtype=np.float64) * step_h
    heater_kw = group.mean_power_kw(t, t + step_h).sum(axis=0)
    planned = group.planned_kw(t)  # (N, n)
    measured = None
    if f5:
        t_read = np.maximum(t - lag_h, 0.0)
        measured = group.power_kw(t_read)
        if estimator == "forecast":
            measured = _forecast_from_readings(group, t, t_read, step_h, measured, planned)
    cmd = command.command_kw
    if battery is None:
        estimate = measured.sum(axis=0) if measured is not None else planned.sum(axis=0)
        zeros = np.zeros(n)
        return FollowingResult(
            label=label or "heaters only",
            time_h=t,
            command_kw=cmd,
            heater_kw=heater_kw,
            heater_estimate_kw=estimate,
            battery_setpoint_kw=zeros,
            battery_kw=zeros,
            output_kw=heater_kw,
            soc_kwh=np.zeros(0),
            stats=tracking_stats(cmd, heater_kw, command.offered_kw, tolerance_share),
        )
    ctl = controller or FollowingController(
        battery,
        offered_kw=command.offered_kw,
        step_s=command.step_s,
        tolerance_share=tolerance_share,
    )
    soc = np.empty(n + 1)
    soc[0] = (
        0.5 * (battery.soc_min_kwh + battery.soc_max_kwh)
        if initial_soc_kwh is None
        else float(initial_soc_kwh)
    )
    setpoint = np.empty(n)
    battery_kw = np.empty(n)
    estimate = np.empty(n)
    for k in range(n):  # sequential: each setpoint depends on the state of charge it left
        meas_k = None if measured is None else measured[:, k]
        estimate[k] = ctl.heater_estimate_kw(planned[:, k], meas_k)
        setpoint[k] = ctl.setpoint_kw(cmd[k], soc[k], planned[:, k], meas_k)
        step = integrate_battery(battery, soc[k], setpoint[k], step_h)
        soc[k + 1] = step.soc_kwh
        battery_kw[k] = step.net_kwh / step_h
    output = heater_kw + battery_kw
    return FollowingResult(
        label=label or ("with F5" if f5 else "without F5 (plan only)"),
        time_h=t,
        command_kw=cmd,
        heater_kw=heater_kw,
        heater_estimate_kw=estimate,
        battery_setpoint_kw=setpoint,
        battery_kw=battery_kw,
        output_kw=output,
        soc_kwh=soc,
        stats=tracking_stats(cmd, output, command.offered_kw, tolerance_share),
    )


def _forecast_from_readings(
    group: HeaterGroup,
    t: FloatArray,
    t_read: FloatArray,
    step_h: float,
    power_read: FloatArray,
    planned: FloatArray,
) -> FloatArray:
    """The servicer's F5 forecast for every heater and step, from the lagged F5 readings
    (:func:`~drready.servicer.core.following.forecast_heater_kw`)."""
    slot0 = np.floor(t / group.slot_h + ROUNDOFF) * group.slot_h
    same = (t_read - slot0) / group.slot_h >= -ROUNDOFF
    used = np.where(same[None, :], group.energy_kwh(t_read) - group.energy_kwh(slot0), 0.0)
    x_read = np.where(same, (t_read - slot0) / group.slot_h, 0.0)
    x0 = (t - slot0) / group.slot_h
    slot_idx = np.minimum(np.round(slot0 / group.slot_h).astype(np.intp) + 1, group.n_slots - 1)
    nxt = group.slot_energy_kwh[:, slot_idx]
    last = (np.round(slot0 / group.slot_h).astype(np.intp) + 1 >= group.n_slots)[None, :]
    return forecast_heater_kw(
        planned * group.slot_h,
        group.rated_kw[:, None],
        power_read > 0.0,
        used,
        x_read[None, :],
        x0[None, :],
        (x0 + step_h / group.slot_h)[None, :],
        continues=(nxt > 0.0) & ~last,
        slot_h=group.slot_h,
    )


def compare_following(
    group: HeaterGroup,
    command: CommandSignal,
    battery: BatterySpec,
    *,
    lag_s: float = DEFAULT_STEP_S,
    estimator: Estimator = "forecast",
    initial_soc_kwh: float | None = None,
    tolerance_share: float = DEFAULT_TOLERANCE_SHARE,
) -> FollowingComparison:
    """The U1 demonstration: with F5, without F5 (plan only), and the heaters alone."""
    return FollowingComparison(
        with_f5=simulate_following(
            group,
            command,
            battery,
            f5=True,
            lag_s=lag_s,
            estimator=estimator,
            initial_soc_kwh=initial_soc_kwh,
            tolerance_share=tolerance_share,
        ),
        without_f5=simulate_following(
            group,
            command,
            battery,
            f5=False,
            initial_soc_kwh=initial_soc_kwh,
            tolerance_share=tolerance_share,
        ),
        heaters_only=simulate_following(
            group, command, None, tolerance_share=tolerance_share, label="heaters only"
        ),
    )
