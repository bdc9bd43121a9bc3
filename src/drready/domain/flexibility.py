"""DR potential of one unit (or group) for a time window: the flexibility envelope (F1, D1, E1).

Per 30-minute slot the envelope gives the baseline power (what the unit would do without DR), the
minimum and maximum power it could run at, and cumulative energy bounds from the window start to
the end of the slot. The cumulative bounds couple the slots: a heater that heats now cannot heat
the same water again later, so the per-slot maxima cannot all be used at once.

The single "DR potential" number of the seed is derived from it: ``up_kwh`` (extra consumption
possible inside the window, up-DR) and ``down_kwh`` (consumption that can be avoided inside the
window, down-DR), each holding at probability ``confidence``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from pydantic import Field, model_validator

from .base import ENERGY_TOL_KWH, POWER_TOL_KW, DomainModel, FiniteFloat, NonNegativeFloat
from .base import bounded_float as _bounded_float
from .ids import DeviceId
from .time import (
    DEFAULT_TZ,
    SLOT,
    SLOT_HOURS,
    Instant,
    SlotGrid,
    count_window_slots,
    require_slot_aligned,
)

__all__ = ["EnvelopeSlot", "FlexibilityEnvelope"]

_Confidence = Annotated[float, _bounded_float(0.5, 1.0, hi_open=True)]


def _round4(x: float) -> float:
    return round(x, 4)


class EnvelopeSlot(DomainModel):
    """One 30-minute slot of a flexibility envelope (F1).

    ``min_kw ≤ baseline_kw ≤ max_kw`` (within 1e-6 kW) and ``cum_min_kwh ≤ cum_max_kwh``; the
    cumulative bounds are the energy from the window start to the **end** of this slot.
    """

    start: Instant = Field(description="Slot start (aligned, timezone-aware).")
    baseline_kw: NonNegativeFloat = Field(description="Power without DR [kW].")
    min_kw: NonNegativeFloat = Field(description="Lowest power the unit could run at [kW].")
    max_kw: NonNegativeFloat = Field(description="Highest power the unit could run at [kW].")
    cum_min_kwh: FiniteFloat = Field(
        description="Least energy from the window start to the end of this slot [kWh]."
    )
    cum_max_kwh: FiniteFloat = Field(
        description="Most energy from the window start to the end of this slot [kWh]."
    )

    @model_validator(mode="after")
    def _check(self) -> EnvelopeSlot:
        require_slot_aligned(self.start, "start")
        if not self.min_kw <= self.baseline_kw + POWER_TOL_KW:
            raise ValueError(
                f"min_kw must be <= baseline_kw (tolerance {POWER_TOL_KW} kW), "
                f"got min_kw={self.min_kw!r} > baseline_kw={self.baseline_kw!r}"
            )
        if not self.baseline_kw <= self.max_kw + POWER_TOL_KW:
            raise ValueError(
                f"baseline_kw must be <= max_kw (tolerance {POWER_TOL_KW} kW), "
                f"got baseline_kw={self.baseline_kw!r} > max_kw={self.max_kw!r}"
            )
        if not self.cum_min_kwh <= self.cum_max_kwh + ENERGY_TOL_KWH:
            raise ValueError(
                f"cum_min_kwh must be <= cum_max_kwh (tolerance {ENERGY_TOL_KWH} kWh), "
                f"got cum_min_kwh={self.cum_min_kwh!r} > cum_max_kwh={self.cum_max_kwh!r}"
            )
        return self


class FlexibilityEnvelope(DomainModel):
    """The DR potential (DR可能量) of a unit or group for ``[window_start, window_end)`` (F1).

    ``slots`` covers the window exactly, one per 30-minute slot from ``window_start``; the
    cumulative bounds never decrease (within 1e-6 kWh). ``up_kwh`` / ``down_kwh`` are the
    declared up- and down-DR energies inside the window, holding with probability
    ``confidence`` (0.5 ≤ confidence < 1).
    """

    device_id: DeviceId = Field(description="The unit, or the group's representative id.")
    computed_at: Instant = Field(description="When the envelope was computed.")
    window_start: Instant = Field(description="Window start (aligned).")
    window_end: Instant = Field(description="Window end, exclusive (aligned, ≤ 48 h later).")
    confidence: _Confidence = Field(description="Probability the declared amounts hold [-].")
    up_kwh: NonNegativeFloat = Field(description="Up-DR: extra consumption possible [kWh].")
    down_kwh: NonNegativeFloat = Field(description="Down-DR: consumption avoidable [kWh].")
    slots: tuple[EnvelopeSlot, ...] = Field(description="One entry per slot of the window.")

    @model_validator(mode="after")
    def _check(self) -> FlexibilityEnvelope:
        n = count_window_slots(
            self.window_start, self.window_end, start_field="window_start", end_field="window_end"
        )
        if len(self.slots) != n:
            raise ValueError(
                f"slots must have one entry per 30-minute slot of the window ({n}), "
                f"got {len(self.slots)}"
            )
        first = self.window_start.astimezone(UTC)
        for k, slot in enumerate(self.slots):
            expected = first + k * SLOT  # in UTC: elapsed time, not wall-clock time
            if slot.start != expected:
                shown = expected.astimezone(self.window_start.tzinfo)
                raise ValueError(
                    f"slots[{k}].start must be {shown.isoformat()} (consecutive from "
                    f"window_start), got {slot.start.isoformat()}"
                )
            if k == 0:
                continue
            prev = self.slots[k - 1]
            for name in ("cum_min_kwh", "cum_max_kwh"):
                before, now = getattr(prev, name), getattr(slot, name)
                if now < before - ENERGY_TOL_KWH:
                    raise ValueError(
                        f"slots[{k}].{name} must be >= slots[{k - 1}].{name} "
                        f"(cumulative bounds never decrease, tolerance {ENERGY_TOL_KWH} kWh), "
                        f"got {now!r} < {before!r}"
                    )
        return self

    @property
    def n_slots(self) -> int:
        """Number of 30-minute slots in the window."""
        return len(self.slots)

    @property
    def baseline_kwh(self) -> float:
        """Baseline energy inside the window [kWh] (Σ baseline_kw × 0.5 h)."""
        return sum(s.baseline_kw for s in self.slots) * SLOT_HOURS

    def grid(self, tz: str = DEFAULT_TZ) -> SlotGrid:
        """The window as a :class:`SlotGrid` (displayed in ``tz``)."""
        return SlotGrid(start=self.window_start, n_slots=self.n_slots, tz=tz)

    def summary(self) -> dict[str, Any]:
        """A compact, JSON-ready view: ids and times as strings, floats rounded to 4 decimals."""
        return {
            "device_id": str(self.device_id),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "up_kwh": _round4(self.up_kwh),
            "down_kwh": _round4(self.down_kwh),
            "confidence": _round4(self.confidence),
            "slots": [
                {
                    "start": s.start.isoformat(),
                    "baseline_kw": _round4(s.baseline_kw),
                    "min_kw": _round4(s.min_kw),
                    "max_kw": _round4(s.max_kw),
                }
                for s in self.slots
            ],
        }
