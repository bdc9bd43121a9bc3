"""Command-value following (U1), the servicer's side: statistics, the battery controller and the
F5 forecast (checked against the exact heater group of :mod:`drready.sim.following`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from pydantic import ValidationError

from drready.device.battery import BatterySpec, integrate_battery
from drready.servicer.core.following import (
    FollowingController,
    forecast_heater_kw,
    tracking_stats,
)
from drready.sim.following import example_group

SPEC = BatterySpec(capacity_kwh=20.0, max_charge_kw=10.0, max_discharge_kw=8.0)


# --------------------------------------------------------------------------- statistics


def test_tracking_stats_by_hand():
    s = tracking_stats([10.0, 10.0, 10.0, 10.0], [10.5, 9.0, 10.0, 12.0], offered_kw=10.0)
    assert s.mean_abs_error_kw == pytest.approx(0.875)
    assert s.max_abs_error_kw == pytest.approx(2.0)
    assert s.rmse_kw == pytest.approx(math.sqrt((0.25 + 1 + 0 + 4) / 4))
    assert s.share_within_tolerance == 0.75  # |1.0| counts as within ±1.0
    assert s.n_steps == 4 and s.tolerance_kw == pytest.approx(1.0)
    wide = tracking_stats([0.0, 0.0], [2.0, -3.0], offered_kw=10.0, tolerance_share=0.25)
    assert wide.share_within_tolerance == 0.5 and wide.tolerance_kw == 2.5
    assert s.model_dump()["n_steps"] == 4
    with pytest.raises(ValidationError, match="share_within_tolerance"):
        type(s)(**{**s.model_dump(), "share_within_tolerance": 1.5})


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 2.0], [1.0], 1.0), "same non-zero length"),
        (([], [], 1.0), "same non-zero length"),
        (([1.0], [np.inf], 1.0), "output_kw must be finite"),
        (([[1.0]], [[1.0]], 1.0), "1-d"),
        (([1.0], [1.0], -2.0), "offered_kw"),
        (([1.0], [1.0], 1.0, 0.0), "tolerance_share"),
        (([1.0], [1.0], 1.0, 1.5), "tolerance_share"),
    ],
)
def test_tracking_stats_refuses_bad_input(args: tuple[object, ...], match: str):
    with pytest.raises(ValueError, match=match):
        tracking_stats(*args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- controller


def test_controller_sets_the_residual_and_falls_back_to_the_plan():
    ctl = FollowingController(SPEC, offered_kw=5.0, restore_share_of_tolerance=0.0)
    soc = 0.5 * (SPEC.soc_min_kwh + SPEC.soc_max_kwh)
    planned = np.array([0.6, 0.6, 0.6])
    measured = np.array([1.2, 0.0, np.nan])  # third heater: no reading → its plan
    assert ctl.heater_estimate_kw(planned, measured) == pytest.approx(1.8)
    assert ctl.heater_estimate_kw(planned, None) == pytest.approx(1.8)
    assert ctl.setpoint_kw(5.0, soc, planned, measured) == pytest.approx(5.0 - 1.8)
    assert ctl.setpoint_kw(0.0, soc, planned, np.array([1.2, 1.3, 1.4])) == pytest.approx(-3.9)
    # the power limits clip
    assert ctl.setpoint_kw(30.0, soc, planned) == 10.0
    assert ctl.setpoint_kw(-30.0, soc, planned) == -8.0
    with pytest.raises(ValueError, match="shape"):
        ctl.heater_estimate_kw(planned, np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="soc_kwh"):
        ctl.setpoint_kw(1.0, 25.0, planned)


def test_controller_respects_what_the_store_can_take_in_one_step():
    ctl = FollowingController(SPEC, offered_kw=5.0, restore_share_of_tolerance=0.0)
    near_top = SPEC.soc_max_kwh - 0.05  # 0.05 kWh stored in 1 min at η_c = 0.95: 3.158 kW AC
    assert ctl.setpoint_kw(10.0, near_top, [0.0]) == pytest.approx(0.05 / 0.95 * 60)
    step = integrate_battery(SPEC, near_top, ctl.setpoint_kw(10.0, near_top, [0.0]), 1 / 60)
    assert step.soc_kwh == pytest.approx(SPEC.soc_max_kwh)
    near_floor = SPEC.soc_min_kwh + 0.02
    assert ctl.setpoint_kw(-10.0, near_floor, [0.0]) == pytest.approx(-0.02 * 0.95 * 60)
    assert ctl.step_limits_kw(SPEC.soc_min_kwh) == (pytest.approx(0.0), 10.0)


def test_restore_term_pulls_towards_the_middle_within_its_share_of_the_tolerance():
    ctl = FollowingController(SPEC, offered_kw=10.0)  # tolerance 1 kW, restore ≤ 0.25 kW
    mid = ctl.soc_target_kwh
    assert mid == pytest.approx(10.0)
    assert ctl.restore_kw(mid) == 0.0
    assert ctl.restore_kw(mid - 0.1) == pytest.approx(0.1)  # 0.1 kWh below, τ = 1 h: 0.1 kW
    assert ctl.restore_kw(mid - 5.0) == pytest.approx(0.25)
    assert ctl.restore_kw(mid + 5.0) == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="soc_target_share"):
        FollowingController(SPEC, offered_kw=1.0, soc_target_share=0.95)
    with pytest.raises(ValueError, match="restore_share_of_tolerance"):
        FollowingController(SPEC, offered_kw=1.0, restore_share_of_tolerance=1.0)


@dataclass(frozen=True)
class _Ratings:
    """A battery known only by the ratings its party reported (no device code)."""

    capacity_kwh: float = 20.0
    max_charge_kw: float = 10.0
    max_discharge_kw: float = 8.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min_share: float = 0.1
    soc_max_share: float = 0.9

    @property
    def soc_min_kwh(self) -> float:
        return self.soc_min_share * self.capacity_kwh

    @property
    def soc_max_kwh(self) -> float:
        return self.soc_max_share * self.capacity_kwh


def test_controller_needs_only_the_ratings_not_the_device_spec():
    """The servicer sees a battery through the ratings reported over the protocols: any object
    with them drives the controller exactly as the device's own BatterySpec does."""
    plain = FollowingController(_Ratings(), offered_kw=5.0)
    spec = FollowingController(SPEC, offered_kw=5.0)
    planned = np.array([0.6, 0.6, 0.6])
    for soc in (2.0, 10.0, 17.9, 18.0):
        for cmd in (-30.0, 0.0, 4.0, 30.0):
            assert plain.setpoint_kw(cmd, soc, planned) == spec.setpoint_kw(cmd, soc, planned)
    # by hand: 10 kWh stored (the middle), 5 kW asked, 1.8 kW of heaters → 3.2 kW
    assert plain.setpoint_kw(5.0, 10.0, planned) == pytest.approx(3.2)


# --------------------------------------------------------------------------- F5 forecast


def test_forecast_knows_every_stop_and_averages_unknown_starts():
    g = example_group(400, seed=5, safeguard_share=0.0)
    step_h = 1 / 60
    for k in (7, 20, 44):  # readings one minute late, inside the slot
        t0 = k * step_h
        slot0 = math.floor(t0 / g.slot_h) * g.slot_h
        reading = g.power_kw([t0 - step_h])[:, 0]
        used = (g.energy_kwh([t0 - step_h]) - g.energy_kwh([slot0]))[:, 0]
        s = int(slot0 / g.slot_h)
        fc = forecast_heater_kw(
            g.slot_energy_kwh[:, s],
            g.rated_kw,
            reading > 0,
            used,
            (t0 - step_h - slot0) / g.slot_h,
            (t0 - slot0) / g.slot_h,
            (t0 + step_h - slot0) / g.slot_h,
            continues=g.slot_energy_kwh[:, s + 1] > 0,
        )
        actual = g.mean_power_kw([t0], [t0 + step_h])[:, 0]
        on = reading > 0
        # a running heat pump stops when its slot energy is used: exactly predicted
        np.testing.assert_allclose(fc[on], actual[on], atol=1e-9)
        # so is a start whose run goes on into the next slot
        end_aligned = ~on & (g.slot_energy_kwh[:, s + 1] > 0)
        np.testing.assert_allclose(fc[end_aligned], actual[end_aligned], atol=1e-9)


def test_expected_start_overlap_matches_monte_carlo():
    rng = np.random.default_rng(0)
    r, x_read, x0, x1 = 0.3, 0.1, 0.2, 0.25
    starts = rng.uniform(x_read, 1.0 - r, 400_000)
    overlap = np.clip(np.minimum(starts + r, x1) - np.maximum(starts, x0), 0.0, None)
    mc = overlap.mean() / (x1 - x0)
    fc = forecast_heater_kw(0.3 * 0.5 * 1.2, 1.2, False, 0.0, x_read, x0, x1)
    # Monte Carlo standard error ≈ 0.0007 of the share
    assert float(fc) / 1.2 == pytest.approx(mc, abs=0.003)
    with pytest.raises(ValueError, match="x_read <= x0 < x1"):
        forecast_heater_kw(0.1, 1.0, False, 0.0, 0.5, 0.4, 0.45)
