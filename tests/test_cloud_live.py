"""The maker cloud's live fleet (drready.cloud.live) on a stepped clock: F1 at any hour for any
window starting within 36 h, requests carried across the nightly roll, the state continuous
from slot to slot, F5 counters that never jump, and the memory it keeps per unit (issue 11
item 3)."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from drready.cloud.fleet import GROUP_DEVICE_ID
from drready.cloud.live import FleetInterruptedError, LiveFleet
from drready.domain import DEFAULT_TZ, SLOT, Direction, DrRequest, ResponseStatus
from drready.domain.clock import SimClock
from drready.domain.time import zone
from drready.domain.tolerances import ENERGY_TOL_KWH, REL_TOL
from drready.planning.problem import draw_forecast

TZ = zone(DEFAULT_TZ)
W0, W1 = datetime(2026, 5, 13, 10, tzinfo=TZ), datetime(2026, 5, 13, 14, tzinfo=TZ)
TOL_KWH = 1e-4  # sums over units of amounts the greedy meets to 1e-9 kWh each, f32 plans


def jst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=TZ)


def fleet_at(at: datetime, n: int = 30, seed: int = 2, **kw: object) -> tuple[LiveFleet, SimClock]:
    clock = SimClock(at, speed=0.0)
    return LiveFleet.random(n, clock, seed=seed, **kw), clock  # type: ignore[arg-type]


def to(clock: SimClock, at: datetime) -> None:
    clock.advance(at - clock.now())


def req(
    rid: str, amount: float, start: datetime = W0, end: datetime = W1, **kw: object
) -> DrRequest:
    return DrRequest(
        request_id=rid,
        direction=kw.get("direction", Direction.UP),  # type: ignore[arg-type]
        start=start,
        end=end,
        amount_kwh=amount,
        issued_at=jst(11, 12),
    )


@pytest.mark.parametrize("hour", [(4, 45), (12, 0), (22, 30)])
def test_a_potential_for_tomorrow_daytime_is_answered_at_any_hour(hour: tuple[int, int]) -> None:
    """The issue's case: at 04:45 JST `cloud serve` had no answer for tomorrow 10:00–14:00."""
    fleet, _ = fleet_at(jst(12, *hour))
    assert fleet.at == jst(12, hour[0], 30 * (hour[1] // 30))
    env = fleet.group_envelope(W0, W1)
    assert env.device_id == GROUP_DEVICE_ID and env.n_slots == 8
    assert env.up_kwh > 0.5 * fleet.size
    units = fleet.envelopes(W0, W1, [0, 7])
    assert [str(e.device_id) for e in units] == ["000005:C0000001", "000005:C0000008"]
    assert all(e.up_kwh > 0 for e in units)


def test_windows_beyond_36_h_are_refused_naming_the_horizon() -> None:
    fleet, clock = fleet_at(jst(12, 4, 45))
    far0, far1 = jst(14, 10), jst(14, 14)
    with pytest.raises(ValueError, match="more than 36 h ahead: the rolling horizon"):
        fleet.group_envelope(far0, far1)
    group = fleet.group_request(req("far-g", 5.0, far0, far1))
    assert group.response.status is ResponseStatus.REJECTED
    assert "rolling horizon" in (group.response.reason or "")
    (answer, plan) = fleet.apply_requests({3: req("far-u", 1.0, far0, far1)})[3]
    assert answer.status is ResponseStatus.REJECTED and "36 h" in (answer.reason or "")
    assert plan.honours == ()
    again = fleet.apply_requests({3: req("far-u", 1.0, far0, far1)})[3][0]
    assert again == answer  # answered from memory
    passed = fleet.apply_requests({4: req("past", 1.0, jst(12, 4), jst(12, 5))})[4][0]
    assert "has passed" in (passed.reason or "")
    to(clock, jst(12, 22, 30))  # the same window is in reach 18 h later
    assert fleet.group_envelope(far0, far1).up_kwh > 0


def test_a_group_request_accepted_yesterday_is_honoured_after_the_roll() -> None:
    fleet, clock = fleet_at(jst(12, 15))
    env = fleet.group_envelope(W0, W1)
    out = fleet.group_request(req("g-1", 0.5 * env.up_kwh))
    assert out.response.status is ResponseStatus.ACCEPTED
    assert out.plan.honours == ("g-1",) and out.units == {}
    owed = fleet.accepted_kwh("g-1")
    assert owed.sum() == pytest.approx(0.5 * env.up_kwh, rel=REL_TOL)
    # over night: 36 slots executed against the households' use, re-planned at each boundary
    for hour in (18, 23, 3, 9):
        to(clock, clock.now() + timedelta(hours=(hour - clock.now().hour) % 24))
        line = fleet.advance()
        assert line is not None and "request window(s) held" in line
    assert fleet.at == jst(13, 9)
    np.testing.assert_allclose(fleet.accepted_kwh("g-1"), owed)  # still owed in full
    plan = fleet.group_plan(("g-1",))
    base = sum(fleet.baseline_plan(u).window_energy_kwh(W0, W1) for u in range(fleet.size))
    assert plan.window_energy_kwh(W0, W1) - base == pytest.approx(owed.sum(), abs=TOL_KWH)
    again = fleet.group_request(req("g-1", 0.5 * env.up_kwh))
    assert again.response == out.response  # answered from memory, not planned twice
    to(clock, jst(13, 14))
    fleet.advance()
    assert fleet.accepted_kwh("g-1").sum() == 0.0  # the window is over: nothing held
    assert (fleet.shortage_steps() == 0).all()


def test_stored_heat_and_energy_are_continuous_across_the_roll() -> None:
    fleet, clock = fleet_at(jst(12, 21, 10))
    before = fleet.units_state()
    assert before.at == jst(12, 21)
    assert (before.energy_kwh > 0).all()  # warmed up from 23:00 the evening before
    to(clock, jst(12, 21, 30))
    after = fleet.units_state()
    assert after.at == jst(12, 21, 30)
    np.testing.assert_array_equal(after.stored_heat_kwh, before.slot.end_heat_kwh)
    np.testing.assert_array_equal(after.energy_kwh, before.energy_kwh + before.slot.electric_kwh)
    # a fresh start would be a quarter-full tank: the state is the executed one, not that
    assert np.ptp(after.stored_heat_kwh) > 1.0


def test_the_energy_counter_never_jumps_over_slot_boundaries_or_requests() -> None:
    fleet, clock = fleet_at(jst(12, 22, 40), n=20)
    _, last_kwh = fleet.group_power(clock.now())
    at = clock.now()
    for _ in range(60):  # 5 h in 5-minute steps, through the night heating's start
        clock.advance(timedelta(minutes=5))
        power_w, kwh = fleet.group_power(clock.now())
        dt_h = (clock.now() - at).total_seconds() / 3600
        assert last_kwh <= kwh <= last_kwh + 20 * 1.2 * dt_h + ENERGY_TOL_KWH  # ≤ rated input
        at, last_kwh = clock.now(), kwh
        assert power_w >= 0.0
    assert last_kwh > 5.0  # it heated
    # at a boundary the counter is the sum of what was executed before it, exactly
    boundary = fleet.at + SLOT
    to(clock, boundary - timedelta(microseconds=1))
    _, left = fleet.group_power(clock.now())
    to(clock, boundary)
    _, right = fleet.group_power(boundary)
    assert right == pytest.approx(left, abs=1e-6)
    # a request in the slot in progress does not change it (the slot's heat is decided)
    to(clock, boundary + timedelta(minutes=10))
    before = fleet.power_samples(clock.now(), [0, 1])
    env = fleet.envelopes(boundary + SLOT, boundary + 3 * SLOT, [0, 1])
    fleet.apply_requests(
        {
            u: req(f"r{u}", 0.5 * e.up_kwh + 0.01, e.window_start, e.window_end)
            for u, e in enumerate(env)
        }
    )
    assert fleet.power_samples(clock.now(), [0, 1]) == before


def test_units_requests_accumulate_and_units_never_asked_keep_their_plan() -> None:
    fleet, _ = fleet_at(jst(12, 16), n=12)
    untouched = fleet.unit_plans(range(5, 12))
    up = {u: e.up_kwh for u, e in enumerate(fleet.envelopes(W0, jst(13, 12), [0, 1]))}
    first = fleet.apply_requests({0: req("a", 0.5 * up[0], W0, jst(13, 12))})
    assert first[0][0].status is ResponseStatus.ACCEPTED
    second = fleet.apply_requests({1: req("b", 0.5 * up[1], W0, jst(13, 12))})
    assert second[1][0].status is ResponseStatus.ACCEPTED
    later = fleet.apply_requests({0: req("c", 0.3, jst(13, 12), W1)})
    response, plan = later[0]
    assert response.accepted_kwh > 0 and plan.honours == ("a", "c")
    base = fleet.baseline_plan(0)
    extra = plan.window_energy_kwh(W0, jst(13, 12)) - base.window_energy_kwh(W0, jst(13, 12))
    assert extra == pytest.approx(0.5 * up[0], abs=1e-5)
    assert fleet.apply_requests({0: req("a", 0.5 * up[0], W0, jst(13, 12))})[0][0] == first[0][0]
    assert fleet.unit_plans(range(5, 12)) == untouched
    with pytest.raises(ValueError, match="out of range"):
        fleet.apply_requests({12: req("x", 1.0)})
    too_much = fleet.apply_requests({2: req("big", 50.0)})[2][0]
    assert too_much.status is ResponseStatus.PARTIAL and "potential" in (too_much.reason or "")


class Recorder:
    """A forecaster that learns nothing but records what it is shown."""

    def __init__(self) -> None:
        self.observed: list[datetime] = []
        self.forecasts = 0

    def forecast(self, fleet, grid, units):  # type: ignore[no-untyped-def]
        self.forecasts += 1
        return draw_forecast(fleet, grid)

    def observe(self, slot_start, units, use_l):  # type: ignore[no-untyped-def]
        assert use_l.shape == (5,) and (use_l >= 0).all()
        self.observed.append(slot_start)


def test_the_forecaster_sees_each_executed_slot_once() -> None:
    recorder = Recorder()
    clock = SimClock(jst(12, 1, 10), speed=0.0)
    fleet = LiveFleet.random(5, clock, seed=1)
    fleet = LiveFleet(fleet.fleet, clock, seed=1, forecaster=recorder)
    warm_up = [jst(11, 23) + k * SLOT for k in range(4)]  # 23:00–01:00 executed at start-up
    assert recorder.observed == warm_up
    to(clock, jst(12, 3))
    fleet.advance()
    assert recorder.observed == [*warm_up, *(jst(12, 1) + k * SLOT for k in range(4))]
    assert recorder.forecasts >= 3


def test_the_state_kept_per_unit_is_well_under_a_kilobyte() -> None:
    fleet, _ = fleet_at(jst(12, 15), n=50)
    fleet.group_request(req("g", 10.0))
    fleet.group_power(jst(12, 15, 5))
    # 96 float32 plan slots (384 B), a few float64 per unit, one held request (20 B)
    assert fleet.array_bytes_per_unit() < 700
    with pytest.raises(ValueError, match="step_minutes"):
        LiveFleet.random(3, SimClock(jst(12, 1), speed=0.0), step_minutes=7)


def test_names_and_ratings() -> None:
    fleet, _ = fleet_at(jst(12, 9), n=3)
    assert fleet.names == ["000005:C0000001", "000005:C0000002", "000005:C0000003"]
    assert [fleet.index_of(n) for n in fleet.names] == [0, 1, 2]
    for foreign in ("000005:C0000004", "000006:C0000001", "000005:X0000001", "FLEET", ""):
        assert fleet.index_of(foreign) is None
    rated = fleet.rated_inputs_kw()
    assert rated.shape == (3,) and (rated > 0.8).all() and (rated < 2.0).all()
    assert isinstance(fleet.at.date(), date)


def test_a_stopping_process_interrupts_a_long_operation_at_its_next_chunk() -> None:
    fleet, clock = fleet_at(jst(12, 9), n=60, chunk_units=1)  # 60 chunks of one unit
    to(clock, jst(12, 9, 30))
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fleet.advance()  # a roll over 60 chunks
        except FleetInterruptedError as err:
            errors.append(err)
        done.set()

    threading.Thread(target=work).start()
    fleet.interrupt()
    assert done.wait(5.0)
    assert errors and "stopping" in str(errors[0])
    with pytest.raises(FleetInterruptedError):
        fleet.group_envelope(W0, W1)
