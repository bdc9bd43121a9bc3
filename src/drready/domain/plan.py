"""The device's heating (boil-up) plan, DR-aware (F3, F4, D1, D5).

A :class:`HeatingPlan` gives, per 30-minute slot of its :class:`~drready.domain.time.SlotGrid`,
the planned electric power and energy and the expected heat stored in the tank at the end of the
slot, together with the ids of the DR requests it honours and its expected electricity cost.
Sending it (F4) gives the DR servicer foresight of what the unit will do.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator, model_validator

from .base import DomainModel, NonNegativeFloat, RequestId
from .ids import DeviceId
from .time import SLOT_HOURS, Instant, SlotGrid, require_slot_aligned
from .tolerances import ENERGY_TOL_KWH

__all__ = ["HeatingPlan", "PlanSlot"]


class PlanSlot(DomainModel):
    """One 30-minute slot of a heating plan: ``energy_kwh = power_kw × 0.5 h`` (within 1e-6)."""

    start: Instant = Field(description="Slot start (aligned).")
    power_kw: NonNegativeFloat = Field(description="Planned mean electric power [kW].")
    energy_kwh: NonNegativeFloat = Field(description="Planned electric energy in the slot [kWh].")
    stored_heat_kwh: NonNegativeFloat = Field(
        description="Expected heat stored in the tank at the end of the slot [kWh]."
    )

    @model_validator(mode="after")
    def _check(self) -> PlanSlot:
        require_slot_aligned(self.start, "start")
        expected = self.power_kw * SLOT_HOURS
        if abs(self.energy_kwh - expected) > ENERGY_TOL_KWH:
            raise ValueError(
                f"energy_kwh must equal power_kw × 0.5 h = {expected!r} (tolerance 1e-6 kWh), "
                f"got {self.energy_kwh!r}"
            )
        return self

    @classmethod
    def from_power(cls, start: datetime, power_kw: float, stored_heat_kwh: float) -> PlanSlot:
        """Slot with ``energy_kwh`` computed from ``power_kw``."""
        return cls(
            start=start,
            power_kw=power_kw,
            energy_kwh=power_kw * SLOT_HOURS,
            stored_heat_kwh=stored_heat_kwh,
        )


class HeatingPlan(DomainModel):
    """A heating plan over a slot grid (F3), as sent to the servicer (F4).

    ``slots`` has one entry per slot of ``grid`` with matching starts; ``honours`` lists the ids
    of the DR requests the plan takes into account; ``cost_yen`` is its expected cost (None
    when unknown, e.g. a plan read over ECHONET Lite, which does not carry it).
    """

    device_id: DeviceId = Field(description="The unit (or group) the plan is for.")
    created_at: Instant = Field(description="When the plan was made.")
    grid: SlotGrid = Field(description="The plan's time axis.")
    slots: tuple[PlanSlot, ...] = Field(description="One entry per slot of the grid.")
    honours: tuple[RequestId, ...] = Field(
        default=(), description="Ids of the DR requests this plan honours (no duplicates)."
    )
    cost_yen: NonNegativeFloat | None = Field(
        default=None,
        description="Expected electricity cost of the plan [JPY]; None where the route that "
        "carried the plan does not report it (ECHONET Lite).",
    )

    @field_validator("honours")
    @classmethod
    def _unique_honours(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({r for r in value if value.count(r) > 1})
        if dupes:
            raise ValueError(f"honours must not repeat a request id, got duplicates {dupes}")
        return value

    @model_validator(mode="after")
    def _check(self) -> HeatingPlan:
        if len(self.slots) != self.grid.n_slots:
            raise ValueError(
                f"slots must have one entry per grid slot ({self.grid.n_slots}), "
                f"got {len(self.slots)}"
            )
        for k, (slot, expected) in enumerate(zip(self.slots, self.grid.starts(), strict=True)):
            if slot.start != expected:
                raise ValueError(
                    f"slots[{k}].start must be {expected.isoformat()} (the grid's slot {k}), "
                    f"got {slot.start.isoformat()}"
                )
        return self

    @property
    def energy_kwh(self) -> float:
        """Total planned electric energy [kWh]."""
        return sum(s.energy_kwh for s in self.slots)

    def window_energy_kwh(self, start: datetime, end: datetime) -> float:
        """Planned electric energy inside ``[start, end)`` [kWh].

        Raises
        ------
        ValueError
            If the window is not aligned, empty, or not inside the grid.
        """
        i, j = self.grid.window_indices(start, end)
        return sum(s.energy_kwh for s in self.slots[i:j])
