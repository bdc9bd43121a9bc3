"""The simulated storage battery: exact state of charge, bounds, bookkeeping, bad input (U1)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from drready.device.battery import (
    BatterySpec,
    BatteryState,
    SimulatedBattery,
    integrate_battery,
)
from drready.device.clock import SimClock
from drready.domain import DeviceId, PowerSource
from drready.domain.time import zone

TZ = zone("Asia/Tokyo")
START = datetime(2026, 5, 12, 13, 0, tzinfo=TZ)
BAT_ID = DeviceId(maker_code="000005", serial="BAT0000001")


def spec(**kw: float) -> BatterySpec:
    base: dict[str, float] = {
        "capacity_kwh": 10.0,
        "max_charge_kw": 5.0,
        "max_discharge_kw": 4.0,
        "charge_efficiency": 0.9,
        "discharge_efficiency": 0.8,
        "soc_min_share": 0.1,
        "soc_max_share": 0.9,
        "standby_loss_kw": 0.0,
    }
    base.update(kw)
    return BatterySpec(**base)  # type: ignore[arg-type]


def battery(
    s: BatterySpec | None = None, soc: float | None = 5.0
) -> tuple[SimulatedBattery, SimClock]:
    clock = SimClock(START, speed=0.0)
    return SimulatedBattery(s or spec(), clock, device_id=BAT_ID, initial_soc_kwh=soc), clock


def test_hand_computed_trajectory_with_one_way_efficiencies():
    bat, clock = battery()
    bat.set_power_kw(2.0)  # 2 kW AC for 30 min: 1 kWh in, 0.9 kWh stored
    clock.advance(timedelta(minutes=30))
    assert bat.soc_kwh == pytest.approx(5.9, abs=1e-12)
    sample = bat.power_sample()
    assert sample.power_w == pytest.approx(2000.0)
    assert sample.source is PowerSource.MEASURED and sample.timestamp == clock.now()
    bat.set_power_kw(-4.0)  # 4 kW AC out for 15 min: 1 kWh out, 1.25 kWh taken from the store
    clock.advance(timedelta(minutes=15))
    assert bat.soc_kwh == pytest.approx(4.65, abs=1e-12)
    assert bat.power_kw == pytest.approx(-4.0)
    assert bat.state is BatteryState.DISCHARGING
    bat.set_power_kw(0.0)
    clock.advance(timedelta(hours=1))  # no standby loss: nothing moves
    assert bat.soc_kwh == pytest.approx(4.65, abs=1e-12)
    assert bat.state is BatteryState.STANDBY
    assert bat.cumulative_charged_kwh == pytest.approx(1.0)
    assert bat.cumulative_discharged_kwh == pytest.approx(1.0)
    assert bat.energy_balance().residual_kwh == pytest.approx(0.0, abs=1e-12)


def test_charging_stops_the_instant_the_ceiling_is_reached():
    bat, clock = battery(soc=8.5)
    bat.set_power_kw(5.0)  # stores 4.5 kWh/h: 0.5 kWh to E_max = 9 takes 1/9 h
    clock.advance(timedelta(minutes=30))
    assert bat.soc_kwh == 9.0  # exactly on the bound, not past it
    assert bat.cumulative_charged_kwh == pytest.approx(5.0 / 9.0, rel=1e-12)
    assert bat.power_kw == 0.0 and bat.state is BatteryState.STANDBY
    assert bat.setpoint_kw == 5.0  # the order stays; the battery cannot carry it out


def test_discharging_stops_at_the_floor_inside_a_step():
    step = integrate_battery(spec(), 1.5, -4.0, 0.5)  # takes 5 kWh/h: 0.5 kWh in 0.1 h
    assert step.soc_kwh == 1.0
    assert step.discharged_kwh == pytest.approx(0.4, rel=1e-12)
    assert step.charged_kwh == 0.0 and step.power_kw == 0.0
    assert step.net_kwh == pytest.approx(-0.4)


def test_standby_loss_floats_at_the_ceiling_and_drains_to_zero():
    s = spec(standby_loss_kw=0.09)
    top = integrate_battery(s, 9.0, 5.0, 2.0)  # at E_max a charging battery floats
    assert top.soc_kwh == pytest.approx(9.0, abs=1e-12)
    assert top.power_kw == pytest.approx(0.1)  # 0.09 kW loss / η_c 0.9
    assert top.charged_kwh == pytest.approx(0.2)
    assert top.standby_loss_kwh == pytest.approx(0.18)
    idle = integrate_battery(s, 1.0, -4.0, 20.0)  # below the floor: self-discharge goes on
    assert idle.soc_kwh == 0.0  # 1 kWh at 0.09 kW lasts 11.1 h, then nothing is left to lose
    assert idle.standby_loss_kwh == pytest.approx(1.0)
    assert idle.discharged_kwh == 0.0
    weak = integrate_battery(s, 0.0, 0.05, 1.0)  # inflow 0.045 < loss: empty stays empty
    assert weak.soc_kwh == 0.0 and weak.standby_loss_kwh == pytest.approx(0.045)


def _euler(s: BatterySpec, e: float, p: float, hours: float, n: int = 200_000) -> float:
    """Brute-force reference: small explicit steps of the same rules."""
    dt = hours / n
    for _ in range(n):
        if p > 0 and e < s.soc_max_kwh:
            e = min(e + (s.charge_efficiency * p - s.standby_loss_kw) * dt, s.soc_max_kwh)
        elif p < 0 and e > s.soc_min_kwh:
            e = max(e + (p / s.discharge_efficiency - s.standby_loss_kw) * dt, s.soc_min_kwh)
        else:
            e = max(e - s.standby_loss_kw * dt, 0.0)
    return e


@pytest.mark.parametrize(
    ("e0", "p", "hours"),
    [(5.0, 3.0, 0.7), (5.0, -3.0, 0.9), (8.9, 1.0, 0.5), (1.2, -2.0, 2.0), (4.0, 0.0, 3.0)],
)
def test_matches_a_brute_force_integration(e0: float, p: float, hours: float):
    s = spec(standby_loss_kw=0.02)
    exact = integrate_battery(s, e0, p, hours).soc_kwh
    # the Euler reference overshoots a bound by at most one step of 1e-5 h
    assert exact == pytest.approx(_euler(s, e0, p, hours, 20_000), abs=1e-3)


def test_energy_balance_closes_and_the_store_stays_in_bounds():
    s = spec(standby_loss_kw=0.03)
    bat, clock = battery(s, soc=5.0)
    rng = np.random.default_rng(7)
    for _ in range(300):
        bat.set_power_kw(float(rng.uniform(-s.max_discharge_kw, s.max_charge_kw)))
        clock.advance(timedelta(minutes=float(rng.uniform(0.0, 40.0))))
        assert 0.0 <= bat.soc_kwh <= s.soc_max_kwh
    bal = bat.energy_balance()
    assert bal.charged_kwh > 10 and bal.discharged_kwh > 10
    assert bal.residual_kwh == pytest.approx(0.0, abs=1e-9)
    assert bal.stored_kwh - bal.initial_kwh == pytest.approx(
        s.charge_efficiency * bal.charged_kwh
        - bal.discharged_kwh / s.discharge_efficiency
        - bal.standby_loss_kwh,
        abs=1e-9,
    )


def test_result_does_not_depend_on_how_often_it_is_advanced():
    s = spec(standby_loss_kw=0.05)
    coarse, c1 = battery(s, soc=8.0)
    fine, c2 = battery(s, soc=8.0)
    for p, minutes in [(5.0, 45), (-4.0, 100), (2.0, 30), (0.0, 60)]:
        coarse.set_power_kw(p)
        fine.set_power_kw(p)
        c1.advance(timedelta(minutes=minutes))
        for _ in range(minutes * 6):
            c2.advance(timedelta(seconds=10))
            fine.advance()
    assert fine.soc_kwh == pytest.approx(coarse.soc_kwh, abs=1e-9)
    assert fine.cumulative_charged_kwh == pytest.approx(coarse.cumulative_charged_kwh, abs=1e-9)


def test_state_changes_are_announced_also_when_a_bound_stops_the_battery():
    bat, clock = battery(soc=8.8)
    seen: list[set[str]] = []
    bat.on_change = seen.append
    bat.set_power_kw(3.0)
    assert seen == [{"state"}]
    clock.advance(timedelta(minutes=30))
    bat.advance()
    assert seen == [{"state"}, {"state"}] and bat.state is BatteryState.STANDBY


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity_kwh", 0.0),
        ("capacity_kwh", float("nan")),
        ("max_charge_kw", -1.0),
        ("charge_efficiency", 0.0),
        ("discharge_efficiency", 1.2),
        ("soc_min_share", 1.0),
        ("standby_loss_kw", -0.1),
    ],
)
def test_bad_spec_is_refused_naming_the_field(field: str, value: float):
    with pytest.raises(ValidationError, match=field):
        spec(**{field: value})


def test_bad_window_and_bad_orders_are_refused_without_changing_state():
    with pytest.raises(ValidationError, match="soc_min_share must be < soc_max_share"):
        spec(soc_min_share=0.6, soc_max_share=0.5)
    bat, _ = battery()
    bat.set_power_kw(1.0)
    for bad in (5.5, -4.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"power_kw must be finite and within \[-4, 5\]"):
            bat.set_power_kw(bad)
        assert bat.setpoint_kw == 1.0
    with pytest.raises(ValueError, match="initial_soc_kwh"):
        battery(soc=10.5)
    with pytest.raises(ValueError, match="duration_h"):
        integrate_battery(spec(), 5.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="soc_kwh"):
        integrate_battery(spec(), -0.1, 1.0, 0.1)


def test_default_start_is_the_middle_of_the_window():
    bat, _ = battery(soc=None)
    assert bat.soc_kwh == pytest.approx(5.0)
    assert bat.soc_share == pytest.approx(0.5)
