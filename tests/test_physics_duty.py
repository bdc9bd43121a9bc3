"""On/off operation inside a slot: hand-computed cases and the energy it must keep (U1, F5)."""

from __future__ import annotations

import numpy as np
import pytest

from drready.physics.duty import (
    duty_fraction,
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
