"""F5 of the maker cloud's fleet is instantaneous power (U1): on/off units, not slot means.

A heat pump delivers a slot's metered energy by running at its rated electric input for part of
the slot (:mod:`drready.physics.duty`). These tests check the reported power and counter against
things computed independently of :meth:`MakerFleet._meter_at`: the rated input from the heat-pump
model (:func:`drready.physics.heatpump.electric_input_kw`), the metered slot energies (the
settlement quantity, which must not change), numerical integration, and the variance that
independent on/off units must show.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from drready.cloud.fleet import MakerFleet
from drready.domain import DEFAULT_TZ, Direction, DrRequest
from drready.physics.heatpump import electric_input_kw
from drready.planning.problem import seasonal_boil_temp_c

DAY = date(2025, 5, 14)
MINUTE = timedelta(minutes=1)
MINUTE_H = 1.0 / 60.0


def _unit_power_w(fleet: MakerFleet, at: datetime) -> np.ndarray:
    return np.array([s.power_w for s in fleet.power_samples(at)])


def _counter_kwh(fleet: MakerFleet, at: datetime) -> np.ndarray:
    return np.array([s.cumulative_energy_kwh for s in fleet.power_samples(at)])


def _rated_w(fleet: MakerFleet) -> np.ndarray:
    """Rated electric input (N, T) [W] from the heat-pump model, not from the fleet's arrays:
    4.5 kW of heat over the COP at the slot's air, the unit's boil-up and mains temperature."""
    prob = fleet.problem
    mains = prob.mains_temp_c
    assert fleet.fleet.boil_temp_c is None  # the seasonal default
    boil = seasonal_boil_temp_c(mains)
    kw = electric_input_kw(
        fleet.fleet.heat_pump, prob.air_temp_c[None, :], boil[:, None], mains[:, None]
    )
    return np.asarray(kw) * 1000.0


def _partial_slots(fleet: MakerFleet, least_units: int) -> list[int]:
    """Slots in which at least ``least_units`` units run for only part of the slot."""
    duty = fleet._meter() / (_rated_w(fleet) / 1000.0 * fleet.problem.slot_h)
    partial = ((duty > 1e-6) & (duty < 1 - 1e-6)).sum(axis=0)
    return [int(k) for k in np.flatnonzero(partial >= least_units)]


@pytest.fixture(scope="module")
def fleet() -> MakerFleet:
    """40 units with an up-DR event 10:00–14:00 (the fleet's own planning) on top of night
    heating: slots with full, partial and no heating, and automatic reheats in between."""
    f = MakerFleet.random(40, DAY, seed=11)
    start = datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=ZoneInfo(DEFAULT_TZ))
    end = start.replace(hour=14)
    up = f.group_envelope(start, end).up_kwh
    f.group_request(
        DrRequest(
            request_id="up",
            direction=Direction.UP,
            start=start,
            end=end,
            amount_kwh=0.5 * up,
            issued_at=start - timedelta(days=1),
        )
    )
    return f


def test_the_rated_input_is_what_the_heat_pump_draws_while_it_runs(fleet: MakerFleet) -> None:
    # the fleet's arrays (heat capacity / COP per slot hour) and the heat-pump model agree
    prob = fleet.problem
    from_problem = (prob.heat_cap_kwh / prob.cop).T / prob.slot_h * 1000.0
    np.testing.assert_allclose(from_problem, _rated_w(fleet), rtol=1e-12)
    assert 800.0 < from_problem.min() < from_problem.max() < 1200.0  # 4.5 kW heat, COP ≈ 4-5


def test_power_is_zero_or_the_rated_input(fleet: MakerFleet) -> None:
    rated = _rated_w(fleet)
    metered = fleet._meter()
    seen_on = seen_off = 0
    for k, start in enumerate(fleet.grid.starts()):
        e = metered[:, k]
        full = e >= rated[:, k] / 1000.0 * fleet.problem.slot_h * (1 - 1e-12)
        full_level_w = e / fleet.problem.slot_h * 1000.0
        for j in range(30):
            p = _unit_power_w(fleet, start + j * MINUTE + timedelta(seconds=17))
            on = np.isclose(p, rated[:, k], rtol=1e-9)
            off = p == 0.0
            assert np.all(on | off | (full & np.isclose(p, full_level_w, rtol=1e-9)))
            assert np.all(~full | (e <= 0) | (p > 0))  # a unit that needs the whole slot runs
            assert np.all(p[e <= 0] == 0.0)  # no energy in the slot, never on
            seen_on += int((on & ~full).sum())
            seen_off += int((off & (e > 0)).sum())
    assert seen_on > 100 and seen_off > 100  # partial duties really switch


def test_power_integrated_over_a_slot_is_the_metered_energy(fleet: MakerFleet) -> None:
    # 1-minute left Riemann sum: each of the (at most) two switching edges of the unit's on
    # block inside the slot costs at most one minute at the running level
    rated = _rated_w(fleet)
    metered = fleet._meter()
    starts = fleet.grid.starts()
    assert len(_partial_slots(fleet, 3)) >= 4  # night heating's ends, the DR window's edges
    for k in range(fleet.grid.n_slots):
        e = metered[:, k]
        level_w = np.maximum(rated[:, k], e / fleet.problem.slot_h * 1000.0)
        energy = sum(_unit_power_w(fleet, starts[k] + j * MINUTE) for j in range(30)) / 1000.0
        energy *= MINUTE_H
        bound = 2.0 * level_w / 1000.0 * MINUTE_H + 1e-9
        assert np.all(np.abs(energy - e) <= bound), k


def test_the_counter_is_the_integral_of_the_power(fleet: MakerFleet) -> None:
    # over 1 ms the counter grows by power × 1 ms (an edge inside 1 ms has probability ~1e-6)
    rng = np.random.default_rng(0)
    span = fleet.grid.end - fleet.grid.start
    delta = timedelta(milliseconds=1)
    for share in rng.random(60):
        at = fleet.grid.start + timedelta(seconds=round(share * (span.total_seconds() - 1), 3))
        p = _unit_power_w(fleet, at)
        grew = _counter_kwh(fleet, at + delta) - _counter_kwh(fleet, at)
        np.testing.assert_allclose(grew, p / 1000.0 * (1e-3 / 3600.0), rtol=1e-6, atol=1e-15)


def test_the_counter_never_decreases_and_keeps_the_slot_energies(fleet: MakerFleet) -> None:
    metered = fleet._meter()
    starts = fleet.grid.starts()
    before = np.zeros(fleet.size)
    for k, start in enumerate(starts):
        at_boundary = _counter_kwh(fleet, start)
        # settlement is unchanged: the counter at every slot boundary is the metered sum
        np.testing.assert_allclose(at_boundary, metered[:, :k].sum(axis=1), atol=1e-9)
        for j in range(30):
            now = _counter_kwh(fleet, start + j * MINUTE + timedelta(seconds=31))
            assert np.all(now >= before)
            before = now
    end = _counter_kwh(fleet, fleet.grid.end - timedelta(microseconds=1))
    np.testing.assert_allclose(end, metered.sum(axis=1), atol=1e-6)


def test_group_power_fluctuates_around_the_planned_slot_mean() -> None:
    fleet = MakerFleet.random(400, DAY, seed=4)
    prob = fleet.problem
    rated_kw = _rated_w(fleet) / 1000.0
    metered = fleet._meter()
    plan_kw = np.array([s.power_kw for s in fleet.group_plan().slots])
    duty = np.clip(metered / (rated_kw * prob.slot_h), 0.0, 1.0)
    time_var = ensemble_var = 0.0
    changing = 0
    for k, start in enumerate(fleet.grid.starts()):
        group_kw = np.array(
            [fleet.group_power(start + j * MINUTE + timedelta(seconds=30))[0] for j in range(30)]
        )
        group_kw /= 1000.0
        partial = (duty[:, k] > 0) & (duty[:, k] < 1)
        # midpoint rule: at most two edges per partially running unit, each ≤ one minute
        bound_kw = 2.0 * rated_kw[partial, k].sum() / 30.0 + 1e-9
        assert abs(group_kw.mean() - metered[:, k].sum() / prob.slot_h) <= bound_kw
        if plan_kw[k] > 0.1 * plan_kw.max():  # heating slots: the meter follows the plan
            assert group_kw.mean() == pytest.approx(plan_kw[k], rel=0.01)
        changing += int(np.count_nonzero(np.diff(group_kw)))
        time_var += float(group_kw.var())
        # independent phases: variance Σ p² d (1 − d) at any instant, which a slot's time
        # variance equals in expectation (its mean is the fixed slot mean)
        ensemble_var += float((rated_kw[:, k] ** 2 * duty[:, k] * (1 - duty[:, k])).sum())
    assert changing > 100  # group power changes minute by minute
    # not a slot mean (ratio 0) and not all in step (ratio ≈ √(units running part of a slot));
    # within [0.7, 1.35] over 16 seeds of 200 and 400 units
    assert 0.5 < np.sqrt(time_var / ensemble_var) < 2.0


def test_samples_are_reproducible_and_phases_stable() -> None:
    a = MakerFleet.random(30, DAY, seed=5)
    b = MakerFleet.random(30, DAY, seed=5)
    other = MakerFleet.random(30, DAY, seed=6)
    instants = [a.grid.start + timedelta(minutes=7 * i + 3) for i in range(0, 270)]
    differ = 0
    for at in instants:
        first = a.power_samples(at)
        assert first == b.power_samples(at) == a.power_samples(at)
        assert a.group_power(at) == b.group_power(at)
        differ += [s.power_w for s in first] != [s.power_w for s in other.power_samples(at)]
    assert differ > 10  # another seed, other households and phases
    # a request to unit 0 re-plans; the other units' power and counters do not move
    start = datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=ZoneInfo(DEFAULT_TZ))
    up = a.envelopes(start, start.replace(hour=12), [0])[0].up_kwh
    req = DrRequest(
        request_id="r0",
        direction=Direction.UP,
        start=start,
        end=start.replace(hour=12),
        amount_kwh=0.5 * up,
        issued_at=start - timedelta(days=1),
    )
    before = [a.power_samples(at)[1:] for at in instants]
    a.apply_requests({0: req})
    assert [a.power_samples(at)[1:] for at in instants] == before


def test_the_simulated_meter_with_and_without_dr_differs_by_the_accepted_amounts() -> None:
    fleet = MakerFleet.random(60, DAY, seed=2)
    tz = ZoneInfo(DEFAULT_TZ)
    start, end = datetime(2025, 5, 14, 10, 0, tzinfo=tz), datetime(2025, 5, 14, 14, 0, tzinfo=tz)
    before = fleet.simulated_meter()
    np.testing.assert_array_equal(before.electric_kwh, before.baseline_electric_kwh)
    envs = fleet.envelopes(start, end)
    asked = {
        u: DrRequest(
            request_id=f"m-{u}",
            direction=Direction.UP,
            start=start,
            end=end,
            amount_kwh=0.5 * envs[u].up_kwh,
            issuer="test",
            issued_at=fleet.grid.start,
        )
        for u in range(0, 60, 3)
        if envs[u].up_kwh > 0.05
    }
    answers = fleet.apply_requests(asked)
    meter = fleet.simulated_meter()
    s, e = fleet.grid.window_indices(start, end)
    extra = (meter.electric_kwh - meter.baseline_electric_kwh)[:, s:e].sum(axis=1)
    for u, answer in answers.items():
        # the heat pump uses what the plan asks unless a safeguard or a full tank intervenes
        assert extra[u] == pytest.approx(answer[0].accepted_kwh, abs=0.05)
    untouched = [u for u in range(60) if u not in asked]
    np.testing.assert_allclose(extra[untouched], 0.0, atol=1e-9)
    assert meter.shortage_steps.shape == (60,)
