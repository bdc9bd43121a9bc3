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
When the start of a run is not known, only its distribution is: :func:`expected_block_overlap`
gives the expected time a block of known length and uniformly distributed start spends inside
an interval — what the servicer's F5 forecast
(:func:`drready.servicer.core.following.forecast_heater_kw`) uses for a run yet to start.
Everything is vectorised over units (any array shape that broadcasts).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from drready.domain.time import SLOT_HOURS
from drready.domain.tolerances import ROUNDOFF

__all__ = [
    "duty_fraction",
    "expected_block_overlap",
    "interval_overlap",
    "on_off_energy_fraction",
    "on_off_energy_kwh",
    "on_off_power_kw",
]

FloatArray = NDArray[np.float64]


def duty_fraction(
    energy_kwh: ArrayLike, rated_kw: ArrayLike, slot_h: float = SLOT_HOURS
) -> FloatArray:
    """Share of the slot the unit runs at ``rated_kw`` to use ``energy_kwh`` (clipped to [0, 1]).

    A unit with ``rated_kw`` ≤ 0 never runs (duty 0)."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    p = np.asarray(rated_kw, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(p > 0.0, e / (p * slot_h), 0.0)
    # a slot energy above rated input × slot length still runs at most the whole slot (the
    # power then rises to keep the energy, see on_off_power_kw); a negative energy never runs
    out: FloatArray = np.clip(np.nan_to_num(d, nan=0.0), 0.0, 1.0)
    return out


def interval_overlap(a0: ArrayLike, a1: ArrayLike, b0: ArrayLike, b1: ArrayLike) -> FloatArray:
    """Length of ``[a0, a1) ∩ [b0, b1)`` (0 when they do not meet), elementwise.

    Examples
    --------
    >>> float(interval_overlap(0.0, 0.5, 0.25, 1.0)), float(interval_overlap(0.0, 0.2, 0.5, 1.0))
    (0.25, 0.0)
    """
    lo = np.maximum(np.asarray(a0, dtype=np.float64), np.asarray(b0, dtype=np.float64))
    hi = np.minimum(np.asarray(a1, dtype=np.float64), np.asarray(b1, dtype=np.float64))
    # disjoint intervals give hi < lo: their overlap is empty, not negative
    out: FloatArray = np.clip(hi - lo, 0.0, None)
    return out


def expected_block_overlap(
    lo: ArrayLike, hi: ArrayLike, length: ArrayLike, x0: ArrayLike, x1: ArrayLike
) -> FloatArray:
    """E[|[σ, σ + length) ∩ [x0, x1)|] for a start σ uniform on [lo, hi] (hi ≥ lo), exact.

    Equals ``∫_{x0}^{x1} |[max(lo, y − length), min(hi, y)]|⁺ dy / (hi − lo)``; the integrand
    is piecewise linear in y with kinks at lo, hi, lo + length, hi + length, so the trapezoid
    rule on those points is exact. A start range of zero width (up to round-off) is a known
    start: then it is :func:`interval_overlap` of the block with ``[x0, x1)``.

    Parameters
    ----------
    lo, hi : array_like
        Earliest and latest start of the block (any unit of time, e.g. slot fractions).
    length : array_like
        Length of the block, ``>= 0`` (same unit).
    x0, x1 : array_like
        The interval, ``x0 <= x1`` (same unit).

    Examples
    --------
    A block of 0.2 starting uniformly in [0, 0.4] covers of [0.2, 0.3): σ for a start σ in
    [0, 0.1], all 0.1 for σ in [0.1, 0.2], 0.3 − σ for σ in [0.2, 0.3], nothing later — on
    average (0.005 + 0.01 + 0.005) / 0.4 = 0.05:

    >>> round(float(expected_block_overlap(0.0, 0.4, 0.2, 0.2, 0.3)), 12)
    0.05
    """
    lo_a, hi_a, len_a, x0_a, x1_a = (
        np.asarray(v, dtype=np.float64) for v in (lo, hi, length, x0, x1)
    )
    shape = np.broadcast_shapes(lo_a.shape, hi_a.shape, len_a.shape, x0_a.shape, x1_a.shape)
    lo_b, hi_b, len_b, x0_b, x1_b = (
        np.broadcast_to(v, shape) for v in (lo_a, hi_a, len_a, x0_a, x1_a)
    )
    width = hi_b - lo_b
    known = width <= ROUNDOFF
    # the kinks of the integrand, kept inside [x0, x1] (outside it nothing is integrated)
    kinks = (np.clip(v, x0_b, x1_b) for v in (lo_b, hi_b, lo_b + len_b, hi_b + len_b))
    pts = np.sort(np.stack([x0_b, x1_b, *kinks], axis=-1), axis=-1)
    # the measure of the starts whose block covers y: empty (not negative) when none does
    f = np.clip(
        np.minimum(hi_b[..., None], pts) - np.maximum(lo_b[..., None], pts - len_b[..., None]),
        0.0,
        None,
    )
    integral = np.sum(0.5 * (f[..., 1:] + f[..., :-1]) * np.diff(pts, axis=-1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = integral / np.where(known, 1.0, width)
    out: FloatArray = np.where(known, interval_overlap(lo_b, lo_b + len_b, x0_b, x1_b), spread)
    return out


def on_off_energy_fraction(duty: ArrayLike, phase: ArrayLike, x: ArrayLike) -> FloatArray:
    """Share of the slot spent running during [0, x) (x, phase in slot fractions, 0 ≤ x ≤ 1).

    The on block is [φ, φ + d) wrapped into [0, 1): the part beyond 1 runs at the slot's start.
    """
    d = np.asarray(duty, dtype=np.float64)
    phi = np.mod(np.asarray(phase, dtype=np.float64), 1.0)
    # x outside the slot reads the slot's start (nothing yet) or its end (all of it)
    xx = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    zero = np.zeros_like(xx)
    main = interval_overlap(zero, xx, phi, np.minimum(phi + d, 1.0))
    # the part of the block beyond the slot's end, run at its start; none when it fits
    wrapped = interval_overlap(zero, xx, zero, np.clip(phi + d - 1.0, 0.0, None))
    out: FloatArray = main + wrapped
    return out


def on_off_power_kw(
    energy_kwh: ArrayLike,
    rated_kw: ArrayLike,
    phase: ArrayLike,
    x: ArrayLike,
    slot_h: float = SLOT_HOURS,
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
    slot_h: float = SLOT_HOURS,
) -> FloatArray:
    """Energy [kWh] used from the slot start to slot fraction ``x`` (``energy_kwh`` at 1)."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    d = duty_fraction(e, rated_kw, slot_h)
    share = on_off_energy_fraction(d, phase, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(d > 0.0, e * share / np.where(d > 0.0, d, 1.0), 0.0)
    return out
