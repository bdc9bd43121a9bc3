"""The ECHONET Lite energy-shift semantics (drready.device.energy_shift), pure: hand tables (U2).

The live unit's use of them (requests, re-plans, announcements) is tested in test_device.py and,
over the wire, in test_echonet_node.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drready.device.energy_shift import (
    ENERGY_SHIFT_ISSUER,
    MAX_WH,
    MAX_WH_PER_HOUR,
    MIN_SHIFT_REQUEST_KWH,
    ShiftState,
    allowed_shift_hours,
    check_energy_shifts,
    check_shift_number,
    check_standard_start_hour,
    energy_per_hour_wh,
    expected_energy_wh,
    shift_request,
    shift_window,
    target_day,
)
from drready.domain import DEFAULT_TZ, Direction

TZ = ZoneInfo(DEFAULT_TZ)


@pytest.mark.parametrize(
    ("now", "standard_start_hour", "day"),
    [
        (datetime(2026, 5, 12, 12, 0), 22, date(2026, 5, 13)),
        (datetime(2026, 5, 12, 21, 59), 22, date(2026, 5, 13)),
        (datetime(2026, 5, 12, 22, 0), 22, date(2026, 5, 14)),  # the 13th's heating has begun
        (datetime(2026, 5, 12, 19, 59), 20, date(2026, 5, 13)),
        (datetime(2026, 5, 12, 20, 0), 20, date(2026, 5, 14)),
        (datetime(2026, 5, 12, 23, 30), 24, date(2026, 5, 13)),  # 24 = midnight of the 13th
        (datetime(2026, 5, 12, 0, 30), 1, date(2026, 5, 12)),  # 01:00 of the 12th still ahead
        (datetime(2026, 5, 12, 1, 0), 1, date(2026, 5, 13)),
    ],
)
def test_target_day(now: datetime, standard_start_hour: int, day: date) -> None:
    assert target_day(now, standard_start_hour) == day


@pytest.mark.parametrize(
    ("n", "energy_shifts", "hours"),
    [
        (1, 1, (9, 10, 11, 12, 13, 14, 15, 16, 17)),
        (1, 2, (9, 10, 11, 12, 13, 14, 15, 16)),  # with two shifts, 17:00 is shift 2's only
        (2, 2, (10, 11, 12, 13, 14, 15, 16, 17)),
    ],
)
def test_allowed_shift_hours(n: int, energy_shifts: int, hours: tuple[int, ...]) -> None:
    assert allowed_shift_hours(n, energy_shifts) == hours


def test_range_checks_name_the_epc() -> None:
    check_standard_start_hour(1)
    check_energy_shifts(2)
    check_shift_number(2, 2)
    with pytest.raises(ValueError, match="0xC8"):
        check_standard_start_hour(19)
    with pytest.raises(ValueError, match="0xC9"):
        check_energy_shifts(3)
    with pytest.raises(ValueError, match="number_of_energy_shifts=1"):
        check_shift_number(2, 1)


def test_shift_window_cut_at_the_plan_end_or_none() -> None:
    day, slot = date(2026, 5, 13), datetime(2026, 5, 12, 12, 0, tzinfo=TZ)
    far = datetime(2026, 5, 15, tzinfo=TZ)
    start = datetime(2026, 5, 13, 13, tzinfo=TZ)
    assert shift_window(day, 13, TZ, slot, far) == (start, start + timedelta(hours=4))
    cut = datetime(2026, 5, 13, 15, tzinfo=TZ)
    assert shift_window(day, 13, TZ, slot, cut) == (start, cut)
    assert shift_window(day, 13, TZ, slot, start) is None  # nothing left of it in the plan
    assert shift_window(day, 13, TZ, start + timedelta(minutes=30), far) is None  # begun


@pytest.mark.parametrize(
    ("potential_kwh", "wh"),
    [(0.0, 0), (1.2344, 1234), (1.2346, 1235), (5e6, MAX_WH)],
)
def test_expected_energy_wh(potential_kwh: float, wh: int) -> None:
    assert expected_energy_wh(potential_kwh) == wh


@pytest.mark.parametrize(
    ("up_kwh", "extra_heat_kwh", "heat_output_kw", "wh_per_h"),
    [
        (1.0, 4.5, 4.5, 1000),  # 1 kWh in 1 h of heating
        (1.0, 2.25, 4.5, 2000),  # the same in half an hour
        (0.0, 4.5, 4.5, 0),  # no potential
        (1.0, 0.0, 4.5, 0),  # no run time
        (1.0, -1.0, 4.5, 0),
        (100.0, 0.001, 4.5, MAX_WH_PER_HOUR),  # clamped to the MRA's range
    ],
)
def test_energy_per_hour_wh(
    up_kwh: float, extra_heat_kwh: float, heat_output_kw: float, wh_per_h: int
) -> None:
    assert energy_per_hour_wh(up_kwh, extra_heat_kwh, heat_output_kw) == wh_per_h


def test_shift_request() -> None:
    window = (datetime(2026, 5, 13, 10, tzinfo=TZ), datetime(2026, 5, 13, 14, tzinfo=TZ))
    now = datetime(2026, 5, 12, 12, tzinfo=TZ)
    req = shift_request(2, date(2026, 5, 13), 10, window, 1.25, now)
    assert req.request_id == "shift2-20260513-10"
    assert (req.direction, req.start, req.end) == (Direction.UP, *window)
    assert req.amount_kwh == 1.25 and req.issuer == ENERGY_SHIFT_ISSUER and req.issued_at == now
    assert shift_request(1, date(2026, 5, 13), 10, window, 0.0, now).amount_kwh == (
        MIN_SHIFT_REQUEST_KWH
    )


def test_shift_state_transitions() -> None:
    t10 = datetime(2026, 5, 13, 10, tzinfo=TZ)
    t15 = datetime(2026, 5, 13, 15, tzinfo=TZ)
    state = ShiftState()
    assert state.set_participation(True) == set() and state.participation
    state.record(1, 10, t10, "shift1-20260513-10")
    state.record(2, 15, t15, "shift2-20260513-15")
    assert state.shift_time == {1: 10, 2: 15}
    # the first window begins: shift 1 cleared, participation kept while shift 2 is set
    state.on_slot_start(t10 - timedelta(minutes=30))
    assert state.shift_time == {1: 10, 2: 15}
    state.on_slot_start(t10)
    assert state.shift_time == {1: None, 2: 15} and state.participation
    assert state.shift_request == {2: "shift2-20260513-15"}
    # the last one begins: participation cleared too
    state.on_slot_start(t15)
    assert state.shift_time == {1: None, 2: None} and not state.participation
    # clearing withdraws the request; participation off withdraws every one
    state.set_participation(True)
    state.record(1, 10, t10, "a")
    assert state.clear(1) == {"a"} and state.clear(1) == set()
    state.record(1, 10, t10, "a")
    state.record(2, 15, t15, "b")
    assert state.set_participation(False) == {"a", "b"}
    assert state == ShiftState()
    # participation without a set shift time is not cleared at a slot start
    state.set_participation(True)
    state.on_slot_start(t15)
    assert state.participation
