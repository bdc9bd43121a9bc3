"""One live, simulated stationary storage battery on a clock: the fast resource of U1 (U1, F5).

A heat pump water heater runs on/off inside its slots (:mod:`drready.physics.duty`), so a group
of heaters cannot follow a command minute by minute on its own; a battery next to it absorbs the
residual (:mod:`drready.servicer.core.following`). :class:`SimulatedBattery` is that battery as a
device: a :class:`BatterySpec`, a :class:`~drready.device.clock.Clock`, a power setpoint and an
exactly integrated store. The ECHONET Lite storage battery object (class 0x027D,
:mod:`drready.echonet.battery`) wraps it, as the 0x026B object wraps the water heater.

Sign convention: AC power at the battery's terminals, **consumption positive** like the
heaters' F5 — ``+`` charges (draws from the grid), ``−`` discharges (feeds the group).

Model (one-way efficiencies, constant self-discharge)
------------------------------------------------------
With stored (DC) energy ``E`` [kWh], AC power ``P`` [kW], charge and discharge efficiencies
``η_c``, ``η_d`` and standby loss ``L`` [kW]::

    dE/dt = η_c · P − L       (P > 0, charging)
    dE/dt = P / η_d − L       (P < 0, discharging)
    dE/dt = −L                (P = 0)

The operating window is ``[E_min, E_max] = [soc_min_share, soc_max_share] · capacity_kwh``:

* discharging stops (P = 0) the instant ``E`` reaches ``E_min`` and stays stopped while
  ``E ≤ E_min``; self-discharge goes on below it, down to ``E = 0`` where it stops;
* charging stops the instant ``E`` reaches ``E_max``: from then on the battery *floats* — it
  draws only what keeps ``E`` at ``E_max`` (``min(P, L / η_c)``, which is 0 without standby
  loss), so the result does not depend on how often :meth:`SimulatedBattery.advance` is called;
* at ``E = 0`` self-discharge takes at most what flows in.

For a piecewise-constant setpoint ``E(t)`` is piecewise linear between those events, so
:func:`integrate_battery` is exact (no time step): it walks from event to event. Its bookkeeping
closes exactly: ``E_end − E_start = η_c · charged − discharged / η_d − standby loss``
(:meth:`SimulatedBattery.energy_balance`).

A setpoint outside ``[−max_discharge_kw, max_charge_kw]`` is refused with a ``ValueError`` (the
caller — a controller or the ECHONET Lite object — clips or refuses; the device never silently
changes an order). The bounds of the numbers are those ECHONET Lite can carry (0xD0 Wh and
0xEB/0xEC W are uint32 up to 999 999 999).

References
----------
The efficiency/standing-loss form is the storage model of PyPSA (``StorageUnit``:
``efficiency_store``, ``efficiency_dispatch``, ``standing_loss``), here in continuous time with
a constant loss. ECHONET Consortium, "Machine Readable Appendix" Release R, class 0x027D
(storage battery): the quantities exposed (0xD3 signed AC power, 0xD6/0xD8 cumulative energy,
0xE2 remaining DC energy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, model_validator

from drready.device.clock import Clock
from drready.domain import MAX_POWER_W, DeviceId, Instant, PowerSource
from drready.domain.base import DomainModel, NonNegativeFloat, bounded_float

__all__ = [
    "MAX_BATTERY_KW",
    "MAX_BATTERY_KWH",
    "BatteryEnergyBalance",
    "BatterySample",
    "BatterySpec",
    "BatteryState",
    "BatteryStep",
    "SimulatedBattery",
    "integrate_battery",
]

MAX_BATTERY_KWH: Final = 999_999.0
"""Largest capacity [kWh]: 0xD0 / 0xE2 carry Wh as uint32 up to 999 999 999."""
MAX_BATTERY_KW: Final = 999_999.0
"""Largest power limit [kW]: 0xEB / 0xEC carry W as uint32 up to 999 999 999."""
_MAX_EVENTS = 16  # a step crosses at most E_max, E_min and 0 (see integrate_battery)

Efficiency = Annotated[float, bounded_float(0.0, 1.0, lo_open=True)]


class BatterySpec(DomainModel):
    """Ratings of a storage battery (all AC powers, DC stored energy)."""

    capacity_kwh: Annotated[float, bounded_float(0.0, MAX_BATTERY_KWH, lo_open=True)] = Field(
        description="Stored (DC) energy at 100 % state of charge [kWh], (0, 999999]."
    )
    max_charge_kw: Annotated[float, bounded_float(0.0, MAX_BATTERY_KW, lo_open=True)] = Field(
        description="Largest AC charging power [kW], (0, 999999]."
    )
    max_discharge_kw: Annotated[float, bounded_float(0.0, MAX_BATTERY_KW, lo_open=True)] = Field(
        description="Largest AC discharging power [kW], (0, 999999]."
    )
    charge_efficiency: Efficiency = Field(
        default=0.95, description="One-way AC → stored efficiency η_c [-], (0, 1]."
    )
    discharge_efficiency: Efficiency = Field(
        default=0.95, description="One-way stored → AC efficiency η_d [-], (0, 1]."
    )
    soc_min_share: Annotated[float, bounded_float(0.0, 1.0, hi_open=True)] = Field(
        default=0.1, description="Discharge floor as a share of capacity [-], [0, 1)."
    )
    soc_max_share: Annotated[float, bounded_float(0.0, 1.0, lo_open=True)] = Field(
        default=0.9, description="Charge ceiling as a share of capacity [-], (0, 1]."
    )
    standby_loss_kw: Annotated[float, bounded_float(0.0, MAX_BATTERY_KW)] = Field(
        default=0.0, description="Self-discharge of the store [kW DC], >= 0."
    )

    @model_validator(mode="after")
    def _window(self) -> BatterySpec:
        if not self.soc_min_share < self.soc_max_share:
            raise ValueError(
                f"soc_min_share must be < soc_max_share, got {self.soc_min_share} and "
                f"{self.soc_max_share}"
            )
        return self

    @property
    def soc_min_kwh(self) -> float:
        """Discharge floor ``E_min`` [kWh]."""
        return self.soc_min_share * self.capacity_kwh

    @property
    def soc_max_kwh(self) -> float:
        """Charge ceiling ``E_max`` [kWh]."""
        return self.soc_max_share * self.capacity_kwh

    @property
    def usable_kwh(self) -> float:
        """Stored energy between floor and ceiling [kWh DC]."""
        return self.soc_max_kwh - self.soc_min_kwh

    @property
    def round_trip_efficiency(self) -> float:
        """``η_c · η_d`` [-]."""
        return self.charge_efficiency * self.discharge_efficiency

    def check_setpoint(self, power_kw: float) -> float:
        """``power_kw`` as a float if it is finite and within the power limits, else ValueError."""
        p = float(power_kw)
        if not math.isfinite(p) or not -self.max_discharge_kw <= p <= self.max_charge_kw:
            raise ValueError(
                f"power_kw must be finite and within [-{self.max_discharge_kw:g}, "
                f"{self.max_charge_kw:g}] kW (− discharge, + charge), got {power_kw!r}"
            )
        return p


class BatteryState(StrEnum):
    """What the battery is doing now (ECHONET Lite 0xCF working operation status)."""

    CHARGING = "charging"
    DISCHARGING = "discharging"
    STANDBY = "standby"


class BatterySample(DomainModel):
    """F5-like reading of a battery: signed AC power, counters and stored energy."""

    device_id: DeviceId = Field(description="The battery measured.")
    timestamp: Instant = Field(description="When the sample was taken.")
    power_w: Annotated[float, bounded_float(-MAX_POWER_W, MAX_POWER_W)] = Field(
        description="AC power [W]: + charging (consumption), − discharging."
    )
    cumulative_charged_kwh: NonNegativeFloat = Field(description="AC energy charged [kWh].")
    cumulative_discharged_kwh: NonNegativeFloat = Field(description="AC energy discharged [kWh].")
    soc_kwh: NonNegativeFloat = Field(description="Stored (DC) energy [kWh].")
    source: PowerSource = Field(description="'measured' or 'estimated'.")


@dataclass(frozen=True)
class BatteryStep:
    """Outcome of :func:`integrate_battery` over one constant-setpoint interval.

    Energies are totals over the interval [kWh]; ``power_kw`` is the instantaneous AC power at
    its end (what the meter shows then).
    """

    soc_kwh: float
    charged_kwh: float
    discharged_kwh: float
    standby_loss_kwh: float
    power_kw: float

    @property
    def net_kwh(self) -> float:
        """AC energy drawn from the grid, ``charged − discharged`` [kWh]."""
        return self.charged_kwh - self.discharged_kwh


@dataclass(frozen=True)
class BatteryEnergyBalance:
    """Totals since construction [kWh]; ``residual_kwh`` is 0 up to rounding."""

    initial_kwh: float
    stored_kwh: float
    charged_kwh: float
    discharged_kwh: float
    charge_loss_kwh: float
    discharge_loss_kwh: float
    standby_loss_kwh: float

    @property
    def residual_kwh(self) -> float:
        """``(stored − initial) − (charged − charge loss − discharged − discharge loss −
        standby loss)``."""
        inflow = self.charged_kwh - self.charge_loss_kwh
        outflow = self.discharged_kwh + self.discharge_loss_kwh + self.standby_loss_kwh
        return (self.stored_kwh - self.initial_kwh) - (inflow - outflow)


def _regime(spec: BatterySpec, e: float, p: float) -> tuple[float, float, float]:
    """(AC power, dE/dt, standby loss rate) [kW] at stored energy ``e`` under setpoint ``p``."""
    eta_c, eta_d, loss = spec.charge_efficiency, spec.discharge_efficiency, spec.standby_loss_kw
    e_min, e_max = spec.soc_min_kwh, spec.soc_max_kwh
    if p > 0.0:
        if e < e_max:
            inflow = eta_c * p
            lost = loss if e > 0.0 else min(loss, inflow)
            return p, inflow - lost, lost
        if e == e_max:  # float: draw what self-discharge takes, at most the setpoint
            power = min(p, loss / eta_c)
            return power, eta_c * power - loss, loss
        return 0.0, -loss, loss  # above the ceiling (only from the initial state)
    lost = loss if e > 0.0 else 0.0
    if p < 0.0 and e > e_min:
        return p, p / eta_d - lost, lost
    return 0.0, -lost, lost


def integrate_battery(
    spec: BatterySpec, soc_kwh: float, setpoint_kw: float, duration_h: float
) -> BatteryStep:
    """Exact evolution of a battery over ``duration_h`` under a constant setpoint.

    Parameters
    ----------
    spec : BatterySpec
        The battery.
    soc_kwh : float
        Stored energy at the start [kWh], in ``[0, capacity_kwh]``.
    setpoint_kw : float
        AC power asked for [kW] (+ charge, − discharge), within the power limits.
    duration_h : float
        Length of the interval [h], ``>= 0``.

    Returns
    -------
    BatteryStep
        End state, AC energies and standby loss over the interval (see the module docstring for
        the rules at the bounds).

    Raises
    ------
    ValueError
        If an argument is outside its range (the message names it and the range).

    Examples
    --------
    >>> spec = BatterySpec(capacity_kwh=10, max_charge_kw=5, max_discharge_kw=5,
    ...                    charge_efficiency=0.9, soc_min_share=0.0, soc_max_share=1.0)
    >>> step = integrate_battery(spec, 5.0, 2.0, 0.5)  # 1 kWh AC in, 0.9 kWh stored
    >>> round(step.soc_kwh, 9), round(step.charged_kwh, 9)
    (5.9, 1.0)
    """
    p = spec.check_setpoint(setpoint_kw)
    e = float(soc_kwh)
    if not math.isfinite(e) or not 0.0 <= e <= spec.capacity_kwh:
        raise ValueError(f"soc_kwh must be within [0, {spec.capacity_kwh:g}] kWh, got {soc_kwh!r}")
    h = float(duration_h)
    if not math.isfinite(h) or h < 0.0:
        raise ValueError(f"duration_h must be finite and >= 0, got {duration_h!r}")
    bounds = sorted({0.0, spec.soc_min_kwh, spec.soc_max_kwh, spec.capacity_kwh})
    charged = discharged = lost = 0.0
    remaining = h
    for _ in range(_MAX_EVENTS):
        power, rate, loss = _regime(spec, e, p)
        if remaining <= 0.0 or rate == 0.0:
            dt = remaining
            nxt = e
        else:
            ahead = [b for b in bounds if (b > e if rate > 0.0 else b < e)]
            # every regime with a non-zero rate moves towards a bound (0 or E_max at worst)
            target = min(ahead) if rate > 0.0 else max(ahead)
            t_hit = (target - e) / rate
            if t_hit >= remaining:
                dt, nxt = remaining, e + rate * remaining
                if (nxt - target) * rate > 0.0:
                    nxt = target  # rounding must not carry the store across a bound
            else:
                dt, nxt = t_hit, target  # snap onto the bound: the regimes compare exactly
        charged += max(power, 0.0) * dt
        discharged += max(-power, 0.0) * dt
        lost += loss * dt
        e = min(max(nxt, 0.0), spec.capacity_kwh)
        remaining -= dt
        if remaining <= 0.0:
            break
    else:  # pragma: no cover - the regimes admit at most three events
        raise RuntimeError("integrate_battery: too many events in one interval")
    return BatteryStep(
        soc_kwh=e,
        charged_kwh=charged,
        discharged_kwh=discharged,
        standby_loss_kwh=lost,
        power_kw=_regime(spec, e, p)[0],
    )


class SimulatedBattery:
    """A simulated storage battery on a clock (U1; F5-like readings).

    Parameters
    ----------
    spec : BatterySpec
        Ratings.
    clock : Clock
        Source of the current time (:class:`~drready.device.clock.SimClock` in tests).
    device_id : DeviceId
        Identity (ECHONET Lite 0x83 of the 0x027D object).
    initial_soc_kwh : float or None
        Stored energy at construction [kWh], in ``[0, capacity_kwh]``; None: the middle of the
        operating window.

    Every public reader first calls :meth:`advance`, which integrates the store exactly from
    the last instant to ``clock.now()`` with the setpoint in force (:func:`integrate_battery`).
    ``on_change`` (if set) is called with ``{"state"}`` whenever :attr:`state` changes —
    on a new setpoint or when a bound stops the battery inside an interval.
    """

    def __init__(
        self,
        spec: BatterySpec,
        clock: Clock,
        *,
        device_id: DeviceId,
        initial_soc_kwh: float | None = None,
    ) -> None:
        e0 = (
            0.5 * (spec.soc_min_kwh + spec.soc_max_kwh)
            if initial_soc_kwh is None
            else float(initial_soc_kwh)
        )
        if not math.isfinite(e0) or not 0.0 <= e0 <= spec.capacity_kwh:
            raise ValueError(
                f"initial_soc_kwh must be within [0, {spec.capacity_kwh:g}] kWh, "
                f"got {initial_soc_kwh!r}"
            )
        self._spec = spec
        self._clock = clock
        self._device_id = device_id
        self._t: datetime = clock.now()
        self._e0 = e0
        self._e = e0
        self._setpoint = 0.0
        self._charged = 0.0
        self._discharged = 0.0
        self._standby_loss = 0.0
        self.on_change: Callable[[set[str]], None] | None = None
        self._announced_state = self._state_now()

    # ------------------------------------------------------------------ time
    @property
    def spec(self) -> BatterySpec:
        return self._spec

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def device_id(self) -> DeviceId:
        return self._device_id

    def advance(self) -> None:
        """Integrate the store up to ``clock.now()`` (a clock that went back is ignored)."""
        now = self._clock.now()
        if now <= self._t:
            return
        hours = (now - self._t).total_seconds() / 3600.0
        step = integrate_battery(self._spec, self._e, self._setpoint, hours)
        self._e = step.soc_kwh
        self._charged += step.charged_kwh
        self._discharged += step.discharged_kwh
        self._standby_loss += step.standby_loss_kwh
        self._t = now
        self._notify()

    def set_power_kw(self, power_kw: float) -> None:
        """New AC setpoint [kW] (+ charge, − discharge) from now on.

        Raises
        ------
        ValueError
            If ``power_kw`` is not finite or outside ``[-max_discharge_kw, max_charge_kw]``; the
            battery keeps its setpoint.
        """
        p = self._spec.check_setpoint(power_kw)
        self.advance()
        self._setpoint = p
        self._notify()

    # ------------------------------------------------------------------ live values
    @property
    def setpoint_kw(self) -> float:
        """The AC power asked for [kW]."""
        return self._setpoint

    @property
    def power_kw(self) -> float:
        """The AC power now [kW] (the setpoint unless a bound stopped the battery)."""
        self.advance()
        return _regime(self._spec, self._e, self._setpoint)[0]

    def _state_now(self) -> BatteryState:
        p = _regime(self._spec, self._e, self._setpoint)[0]
        if p > 0.0:
            return BatteryState.CHARGING
        if p < 0.0:
            return BatteryState.DISCHARGING
        return BatteryState.STANDBY

    @property
    def state(self) -> BatteryState:
        """Charging, discharging or standby, from the power now."""
        self.advance()
        return self._state_now()

    @property
    def soc_kwh(self) -> float:
        """Stored (DC) energy [kWh]."""
        self.advance()
        return self._e

    @property
    def soc_share(self) -> float:
        """Stored energy as a share of capacity [-]."""
        return self.soc_kwh / self._spec.capacity_kwh

    @property
    def cumulative_charged_kwh(self) -> float:
        """AC energy charged since construction [kWh]."""
        self.advance()
        return self._charged

    @property
    def cumulative_discharged_kwh(self) -> float:
        """AC energy discharged since construction [kWh]."""
        self.advance()
        return self._discharged

    def power_sample(self) -> BatterySample:
        """F5-like reading: AC power now, the AC counters and the stored energy (measured)."""
        self.advance()
        return BatterySample(
            device_id=self._device_id,
            timestamp=self._t,
            power_w=_regime(self._spec, self._e, self._setpoint)[0] * 1000.0,
            cumulative_charged_kwh=self._charged,
            cumulative_discharged_kwh=self._discharged,
            soc_kwh=self._e,
            source=PowerSource.MEASURED,
        )

    def energy_balance(self) -> BatteryEnergyBalance:
        """Totals since construction for checking the bookkeeping."""
        self.advance()
        s = self._spec
        return BatteryEnergyBalance(
            initial_kwh=self._e0,
            stored_kwh=self._e,
            charged_kwh=self._charged,
            discharged_kwh=self._discharged,
            charge_loss_kwh=self._charged * (1.0 - s.charge_efficiency),
            discharge_loss_kwh=self._discharged * (1.0 / s.discharge_efficiency - 1.0),
            standby_loss_kwh=self._standby_loss,
        )

    def _notify(self) -> None:
        state = self._state_now()
        if state != self._announced_state:
            self._announced_state = state
            if self.on_change is not None:
                self.on_change({"state"})
