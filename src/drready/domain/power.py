"""Current power consumption of a unit (F5, U1, D1).

A servicer can only make a resource group follow a command value (U1) if it knows each member's
power: a :class:`PowerSample` carries the instantaneous power, the cumulative energy counter and
whether the value is measured or estimated.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .base import DomainModel, NonNegativeFloat, bounded_float
from .ids import DeviceId
from .time import Instant

__all__ = ["MAX_POWER_W", "PowerSample", "PowerSource"]

#: Upper bound on the power of a unit or of a group of units (D6) [W]: 10 GW, above any fleet
#: a maker or servicer manages (10⁶ heat pumps ≈ 1 GW); it catches nonsense, not unit mix-ups.
MAX_POWER_W = 1e10


class PowerSource(StrEnum):
    """Whether a power value was measured or estimated (e.g. from the heat pump's state)."""

    MEASURED = "measured"
    ESTIMATED = "estimated"


class PowerSample(DomainModel):
    """Instantaneous electric power of a unit at ``timestamp`` (F5)."""

    device_id: DeviceId = Field(description="The unit measured.")
    timestamp: Instant = Field(description="When the sample was taken.")
    power_w: Annotated[float, bounded_float(0.0, MAX_POWER_W)] = Field(
        description="Instantaneous electric power of a unit or group (D6) [W], 0–1e10."
    )
    cumulative_energy_kwh: NonNegativeFloat = Field(
        description="Cumulative electric energy counter [kWh]."
    )
    source: PowerSource = Field(description="'measured' or 'estimated'.")
