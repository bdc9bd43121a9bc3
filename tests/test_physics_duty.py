"""On/off operation inside a slot: hand-computed cases and the energy it must keep (U1, F5);
the expected overlap of a run whose start is unknown."""

from __future__ import annotations

import numpy as np
import pytest

from drready.physics.duty import (
    duty_fraction,
    expected_block_overlap,
    interval_overlap,
    on_off_energy_fraction,
    on_off_energy_kwh,
    on_off_power_kw,
)


def test_hand_computed_unit() -> None:
    # 0.3 kWh in a half-hour slot at 1.2 kW rated: on for 0.25 h = half the slot.
    assert duty_fraction(0.3, 1.2) == pytest.approx(0.5)
    # phase 0.75: on from 0.75 to 1.0 and wrapped from 0.0 to 0.25
    xs = np.array([0.0, 0.2, 0.3, 0.7, 0.8, 0.99])
    power = on_off_power_kw(0.3, 1.2, 0.75, xs)
    np.testing.assert_allclose(power, [1.2, 1.2, 0.0, 0.0, 1.2, 1.2])
    # energy to x = 0.5: the wrapped quarter only → 1.2 kW × 0.125 h = 0.15 kWh
    assert on_off_energy_kwh(0.3, 1.2, 0.75, 0.5) == pytest.approx(0.15)
    assert on_off_energy_fraction(0.5, 0.75, 1.0) == pytest.approx(0.5)


def test_energy_is_kept_and_power_integrates_to_it() -> None:
    rng = np.random.default_rng(3)
    e = rng.uniform(0.0, 0.9, 500)
    p = rng.uniform(0.8, 1.6, 500)
    phi = rng.uniform(0.0, 1.0, 500)
    np.testing.assert_allclose(on_off_energy_kwh(e, p, phi, 1.0), e, atol=1e-12)
    # midpoint rule over 3000 sub-steps of the slot
    xs = (np.arange(3000) + 0.5) / 3000
    integral = on_off_power_kw(e[:, None], p[:, None], phi[:, None], xs[None, :]).mean(axis=1) * 0.5
    np.testing.assert_allclose(integral, e, atol=2e-3)


def test_overfull_slot_runs_all_slot_and_idle_unit_never_runs() -> None:
    assert on_off_power_kw(1.0, 1.2, 0.3, 0.1) == pytest.approx(2.0)  # 1 kWh in 0.5 h
    assert on_off_power_kw(0.0, 1.2, 0.3, 0.4) == 0.0
    assert on_off_energy_kwh(0.0, 0.0, 0.3, 0.4) == 0.0


# (a0, a1, b0, b1) → |[a0, a1) ∩ [b0, b1)|
OVERLAPS = [
    ((0.0, 0.5, 0.25, 1.0), 0.25),
    ((0.25, 1.0, 0.0, 0.5), 0.25),  # symmetric
    ((0.0, 0.2, 0.5, 1.0), 0.0),  # disjoint: empty, not negative
    ((0.1, 0.9, 0.3, 0.4), 0.1),  # one inside the other
    ((0.3, 0.3, 0.0, 1.0), 0.0),  # an empty interval
]


@pytest.mark.parametrize(("bounds", "expected"), OVERLAPS)
def test_interval_overlap_hand_computed(bounds: tuple[float, ...], expected: float) -> None:
    assert float(interval_overlap(*bounds)) == pytest.approx(expected, abs=1e-15)


def test_interval_overlap_is_vectorised() -> None:
    cols = np.array([b for b, _ in OVERLAPS]).T
    np.testing.assert_allclose(interval_overlap(*cols), [e for _, e in OVERLAPS], atol=1e-15)


# (lo, hi, length, x0, x1) → E|[σ, σ + length) ∩ [x0, x1)| for σ ~ U[lo, hi], by hand
BLOCKS = [
    # σ in [0, .1]: covers σ; [.1, .2]: all .1; [.2, .3]: .3 − σ; later nothing → .02 / .4
    ((0.0, 0.4, 0.2, 0.2, 0.3), 0.05),
    # a known start (zero-width range): [.3, .5) ∩ [.2, .4)
    ((0.3, 0.3, 0.2, 0.2, 0.4), 0.1),
    # every start covers the whole interval
    ((0.0, 0.1, 0.5, 0.2, 0.3), 0.1),
    # no start reaches it
    ((0.0, 0.1, 0.1, 0.5, 0.6), 0.0),
    # σ in [0, .5]: 0.5; [.5, 1]: 1 − σ → 0.25 + 0.125
    ((0.0, 1.0, 0.5, 0.0, 1.0), 0.375),
    # a block of no length covers nothing
    ((0.0, 1.0, 0.0, 0.0, 1.0), 0.0),
]


@pytest.mark.parametrize(("args", "expected"), BLOCKS)
def test_expected_block_overlap_hand_computed(args: tuple[float, ...], expected: float) -> None:
    assert float(expected_block_overlap(*args)) == pytest.approx(expected, abs=1e-12)


def test_expected_block_overlap_is_vectorised_and_matches_monte_carlo() -> None:
    cols = np.array([a for a, _ in BLOCKS]).T
    np.testing.assert_allclose(expected_block_overlap(*cols), [e for _, e in BLOCKS], atol=1e-12)
    rng = np.random.default_rng(0)
    lo, hi, length, x0, x1 = 0.1, 0.7, 0.3, 0.2, 0.25
    starts = rng.uniform(lo, hi, 400_000)
    mc = interval_overlap(starts, starts + length, x0, x1).mean()
    # Monte Carlo standard error ≈ 0.05 · √(p (1 − p) / 400 000) ≈ 4e-5
    assert float(expected_block_overlap(lo, hi, length, x0, x1)) == pytest.approx(mc, abs=2e-4)
