"""On/off operation of a heat pump inside a 30-minute slot: instantaneous power (F5, U1).

A plan gives each unit an electric energy per slot; a CO2 heat pump delivers it by running at
its rated input for part of the slot, not at a steady fraction of it. Over a slot of length
``slot_h`` a unit with slot energy ``e`` and rated input ``p`` is on for the duty
``d = e / (p · slot_h)`` (clipped to [0, 1]) in one block that starts at its phase ``φ`` ∈ [0, 1)
of the slot and wraps around the slot's end. Instantaneous power is therefore ``p`` or 0, and
the energy used from the slot start is ``p · slot_h`` times the overlap of [0, x) with the on
block — at the slot's end it is exactly ``e``, so slot energies (and settlement) are unchanged.

This is why the servicer needs live power reports to follow a minute-by-minute command (U1):
from the plan alone it knows each unit's slot energy, not when inside the slot the unit runs.
Everything is vectorised over units (any array shape that broadcasts).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "duty_fraction",
    "on_off_energy_fraction",
    "on_off_energy_kwh",
    "on_off_power_kw",
]

FloatArray = NDArray[np.float64]


def duty_fraction(energy_kwh: ArrayLike, rated_kw: ArrayLike, slot_h: float = 0.5) -> FloatArray:
    """Share of the slot the unit runs at ``rated_kw`` to use ``energy_kwh`` (clipped to [0, 1]).

    A unit with ``rated_kw`` ≤ 0 never runs (duty 0)."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    p = np.asarray(rated_kw, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(p > 0.0, e / (p * slot_h), 0.0)
    out: FloatArray = np.clip(np.nan_to_num(d, nan=0.0), 0.0, 1.0)
    return out


def _overlap(a0: FloatArray, a1: FloatArray, b0: FloatArray, b1: FloatArray) -> FloatArray:
    out: FloatArray = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None)
    return out


def on_off_energy_fraction(duty: ArrayLike, phase: ArrayLike, x: ArrayLike) -> FloatArray:
    """Share of the slot spent running during [0, x) (x, phase in slot fractions, 0 ≤ x ≤ 1).

    The on block is [φ, φ + d) wrapped into [0, 1): the part beyond 1 runs at the slot's start.
    """
    d = np.asarray(duty, dtype=np.float64)
    phi = np.mod(np.asarray(phase, dtype=np.float64), 1.0)
    xx = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    zero = np.zeros_like(xx)
    main = _overlap(zero, xx, phi, np.minimum(phi + d, 1.0))
    wrapped = _overlap(zero, xx, zero, np.clip(phi + d - 1.0, 0.0, None))
    out: FloatArray = main + wrapped
    return out


def on_off_power_kw(
    energy_kwh: ArrayLike,
    rated_kw: ArrayLike,
    phase: ArrayLike,
    x: ArrayLike,
    slot_h: float = 0.5,
) -> FloatArray:
    """Instantaneous power [kW] at slot fraction ``x`` ∈ [0, 1): ``rated_kw`` while on, else 0.

    A unit whose slot energy needs more than its rated input (duty clipped at 1) runs all slot
    at ``energy_kwh / slot_h``, so the slot's energy is always kept.
    """
    e = np.asarray(energy_kwh, dtype=np.float64)
    p = np.asarray(rated_kw, dtype=np.float64)
    d = duty_fraction(e, p, slot_h)
    phi = np.mod(np.asarray(phase, dtype=np.float64), 1.0)
    xx = np.mod(np.asarray(x, dtype=np.float64), 1.0)
    on = np.mod(xx - phi, 1.0) < d
    full = d >= 1.0
    level = np.where(full, np.maximum(e / slot_h, p), p)
    out: FloatArray = np.where(on | full, level, 0.0) * (e > 0.0)
    return out


def on_off_energy_kwh(
    energy_kwh: ArrayLike,
    rated_kw: ArrayLike,
    phase: ArrayLike,
    x: ArrayLike,
    slot_h: float = 0.5,
) -> FloatArray:
    """Energy [kWh] used from the slot start to slot fraction ``x`` (``energy_kwh`` at 1)."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    d = duty_fraction(e, rated_kw, slot_h)
    share = on_off_energy_fraction(d, phase, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(d > 0.0, e * share / np.where(d > 0.0, d, 1.0), 0.0)
    return out
