"""Command-value following (U1): signal, statistics, controller, F5 forecast, and the demo that
F5 plus a battery follows a minute command while the plan alone and the heaters alone do not."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from pydantic import ValidationError

from drready.device.battery import BatterySpec, integrate_battery
from drready.domain.time import zone
from drready.servicer.core.following import (
    CommandSignal,
    FollowingController,
    HeaterGroup,
    command_signal,
    compare_following,
    example_group,
    forecast_heater_kw,
    group_baseline_kw,
    regulation_signal,
    simulate_following,
    tracking_stats,
)

TZ = zone("Asia/Tokyo")
START = datetime(2026, 5, 12, 13, 0, tzinfo=TZ)
SPEC = BatterySpec(capacity_kwh=20.0, max_charge_kw=10.0, max_discharge_kw=8.0)


# --------------------------------------------------------------------------- signal


def test_regulation_signal_is_bounded_seeded_and_has_the_stated_statistics():
    s = regulation_signal(60, seed=4)
    assert s.shape == (60,) and np.all(np.abs(s) <= 1.0)
    assert np.array_equal(s, regulation_signal(60, seed=4))
    assert not np.array_equal(s, regulation_signal(60, seed=5))
    # unclipped regime (σ = 0.2): mean 0, std σ, lag-1 autocorrelation exp(−60/600)
    long = regulation_signal(200_000, sigma=0.2, seed=1)
    assert abs(long.mean()) < 0.01  # standard error of the mean ≈ 0.2 √(2·10/200000) = 0.002
    assert long.std() == pytest.approx(0.2, rel=0.03)
    rho = np.corrcoef(long[:-1], long[1:])[0, 1]
    assert rho == pytest.approx(math.exp(-0.1), abs=0.005)
    # σ = 0.5 clips about P(|Z| > 2) ≈ 4.6 % of the steps
    clipped = np.mean(np.abs(regulation_signal(200_000, seed=2)) == 1.0)
    assert clipped == pytest.approx(0.0455, abs=0.006)


def test_command_is_baseline_plus_offered_times_signal():
    cmd = command_signal([10.0, 12.0, 11.0], 5.0, start=START, seed=3)
    np.testing.assert_allclose(cmd.command_kw, cmd.baseline_kw + 5.0 * cmd.regulation)
    np.testing.assert_allclose(cmd.regulation, regulation_signal(3, seed=3))
    assert cmd.times()[2] == datetime(2026, 5, 12, 13, 2, tzinfo=TZ)
    flat = command_signal(7.0, 2.0, start=START, n_steps=4, step_s=30.0)
    assert flat.n_steps == 4 and np.all(flat.baseline_kw == 7.0)
    assert flat.times()[1] == datetime(2026, 5, 12, 13, 0, 30, tzinfo=TZ)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_kw": 5.0, "offered_kw": 1.0}, "n_steps is required"),
        ({"baseline_kw": [1.0, 2.0], "offered_kw": 0.0}, "offered_kw must be finite and > 0"),
        ({"baseline_kw": [1.0, np.nan], "offered_kw": 1.0}, "baseline_kw must be finite"),
        ({"baseline_kw": [1.0], "offered_kw": 1.0, "step_s": -60.0}, "step_s"),
        ({"baseline_kw": [1.0], "offered_kw": 1.0, "n_steps": 3}, "does not match"),
    ],
)
def test_bad_command_input_is_refused(kwargs: dict[str, object], match: str):
    with pytest.raises(ValueError, match=match):
        command_signal(start=START, **kwargs)  # type: ignore[arg-type]


def test_command_signal_refuses_naive_start_and_out_of_band_regulation():
    with pytest.raises(ValueError, match="start"):
        command_signal([1.0], 1.0, start=datetime(2026, 5, 12, 13))
    with pytest.raises(ValueError, match=r"within \[-1, 1\]"):
        CommandSignal(START, 60.0, np.array([1.0]), 1.0, np.array([1.5]))


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


# --------------------------------------------------------------------------- heaters


def test_group_energy_is_exact_against_brute_force_and_keeps_the_plan():
    g = example_group(30, seed=2, safeguard_share=0.3)
    t = np.linspace(0.0, g.horizon_h, 180_001)  # 0.03 s grid for the brute-force integral
    power = g.power_kw(t)
    brute = np.concatenate(
        [
            np.zeros((g.n_heaters, 1)),
            np.cumsum(0.5 * (power[:, 1:] + power[:, :-1]) * np.diff(t), 1),
        ],
        axis=1,
    )
    marks = np.array([0.1, 0.5, 0.77, 1.0, 1.5])
    idx = np.searchsorted(t, marks)
    # each on/off switch costs the trapezoid at most p · Δt / 2 ≈ 1.5 kW · 4e-6 h
    np.testing.assert_allclose(g.energy_kwh(marks), brute[:, idx], atol=5e-5)
    plain = example_group(30, seed=2, safeguard_share=0.0)
    slot_means = plain.mean_power_kw([0.0, 0.5, 1.0], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(slot_means * 0.5, plain.slot_energy_kwh, atol=1e-12)
    assert np.all(g.energy_kwh([1.5]) >= plain.energy_kwh([1.5]) - 1e-12)  # safeguards add


def test_group_refuses_bad_arrays():
    ok = example_group(3, seed=0)
    fields = {
        "slot_energy_kwh": ok.slot_energy_kwh,
        "rated_kw": ok.rated_kw,
        "phase": ok.phase,
        "safeguard_start_h": ok.safeguard_start_h,
        "safeguard_duration_h": ok.safeguard_duration_h,
    }
    for name, bad, match in (
        ("rated_kw", np.array([1.0, 0.0, 1.0]), "rated_kw > 0"),
        ("phase", np.full((3, 3), 1.0), r"phase must lie in \[0, 1\)"),
        ("slot_energy_kwh", np.full((3, 3), np.nan), "finite"),
        ("rated_kw", np.array([1.0, 1.0]), "shape"),
    ):
        with pytest.raises(ValueError, match=match):
            HeaterGroup(**{**fields, name: bad})
    with pytest.raises(ValueError, match="n_heaters"):
        example_group(0)


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


# --------------------------------------------------------------------------- simulation


def _scenario(
    n: int, offered_kw: float, seed: int
) -> tuple[HeaterGroup, CommandSignal, BatterySpec]:
    """N heaters, a command ±offered around their plan, a battery of 1.25 × offered kW and
    2 h × offered kWh (C/1.6)."""
    g = example_group(n, seed=seed)
    cmd = command_signal(group_baseline_kw(g, 60), offered_kw, start=START, seed=1000 + seed)
    bat = BatterySpec(
        capacity_kwh=2.0 * offered_kw,
        max_charge_kw=1.25 * offered_kw,
        max_discharge_kw=1.25 * offered_kw,
    )
    return g, cmd, bat


def test_simulation_bookkeeping_is_consistent():
    g, cmd, bat = _scenario(40, 15.0, seed=3)
    r = simulate_following(g, cmd, bat)
    np.testing.assert_allclose(r.output_kw, r.heater_kw + r.battery_kw)
    np.testing.assert_allclose(r.heater_kw, g.mean_power_kw(r.time_h, r.time_h + 1 / 60).sum(0))
    for k in (0, 17, 59):  # the battery follows its own exact model step by step
        step = integrate_battery(bat, r.soc_kwh[k], r.battery_setpoint_kw[k], 1 / 60)
        assert r.soc_kwh[k + 1] == pytest.approx(step.soc_kwh)
        assert r.battery_kw[k] == pytest.approx(step.net_kwh * 60)
    assert np.all((r.soc_kwh >= bat.soc_min_kwh - 1e-9) & (r.soc_kwh <= bat.soc_max_kwh + 1e-9))
    plan = simulate_following(g, cmd, bat, f5=False)
    np.testing.assert_allclose(plan.heater_estimate_kw, cmd.baseline_kw)
    alone = simulate_following(g, cmd, None)
    assert np.all(alone.battery_kw == 0.0) and alone.soc_kwh.size == 0
    np.testing.assert_allclose(alone.output_kw, r.heater_kw)
    with pytest.raises(ValueError, match="longer than"):
        simulate_following(example_group(5, n_slots=1), cmd, bat)
    with pytest.raises(ValueError, match="estimator"):
        simulate_following(g, cmd, bat, estimator="oracle")  # type: ignore[arg-type]


def test_when_the_plan_is_exact_the_plan_suffices():
    """Control: heaters that run whole slots (no on/off inside a slot, no safeguards) are
    known from the plan, and following then works without F5 — the failure without F5 comes
    from on/off timing, not from the controller."""
    g = example_group(50, seed=1, safeguard_share=0.0, run_hours=(0.5, 0.5))
    whole = HeaterGroup(
        slot_energy_kwh=np.where(g.slot_energy_kwh > 0, g.rated_kw[:, None] * 0.5, 0.0),
        rated_kw=g.rated_kw,
        phase=np.zeros_like(g.phase),
        safeguard_start_h=g.safeguard_start_h,
        safeguard_duration_h=g.safeguard_duration_h,
    )
    cmd = command_signal(group_baseline_kw(whole, 60), 15.0, start=START, seed=9)
    bat = BatterySpec(capacity_kwh=30.0, max_charge_kw=19.0, max_discharge_kw=19.0)
    assert simulate_following(whole, cmd, bat, f5=False).stats.share_within_tolerance == 1.0


SIZES = [(20, 12.0), (50, 18.0), (100, 25.0), (200, 35.0)]
SEEDS = range(5)


@pytest.mark.parametrize(("n", "offered_kw"), SIZES)
def test_with_f5_and_a_battery_the_group_follows_without_f5_it_fails(n: int, offered_kw: float):
    within = {"f5": [], "plan": [], "heaters": [], "last": []}
    for seed in SEEDS:
        g, cmd, bat = _scenario(n, offered_kw, seed)
        c = compare_following(g, cmd, bat)
        within["f5"].append(c.with_f5.stats.share_within_tolerance)
        within["plan"].append(c.without_f5.stats.share_within_tolerance)
        within["heaters"].append(c.heaters_only.stats.share_within_tolerance)
        last = simulate_following(g, cmd, bat, estimator="last")
        within["last"].append(last.stats.share_within_tolerance)
        assert c.with_f5.stats.mean_abs_error_kw < 0.5 * c.without_f5.stats.mean_abs_error_kw
    share = {k: float(np.mean(v)) for k, v in within.items()}  # minutes of 5 hours pooled
    assert share["f5"] >= 0.95, share
    assert min(within["f5"]) >= 0.9, within
    assert share["plan"] <= 0.75, share  # at least 20 points below the target
    assert share["heaters"] <= 0.3, share
    # the raw last reading is better than the plan but short of the target
    assert share["plan"] < share["last"] < share["f5"], share
