"""The maker cloud's fleet without the network: accumulation of requests, group split, F5."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drready.cloud.fleet import GROUP_DEVICE_ID, MakerFleet
from drready.domain import DEFAULT_TZ, Direction, DrRequest, ResponseStatus

TOKYO = ZoneInfo(DEFAULT_TZ)
DAY = date(2025, 5, 14)
AT = datetime(2025, 5, 14, 10, 0, tzinfo=TOKYO)


def _req(rid: str, start_h: int, end_h: int, amount: float) -> DrRequest:
    return DrRequest(
        request_id=rid,
        direction=Direction.UP,
        start=AT.replace(hour=start_h),
        end=AT.replace(hour=end_h),
        amount_kwh=amount,
        issued_at=AT - timedelta(days=1),
    )


def _extra(fleet: MakerFleet, unit: int, start_h: int, end_h: int) -> float:
    s, e = AT.replace(hour=start_h), AT.replace(hour=end_h)
    return fleet.unit_plan(unit).window_energy_kwh(s, e) - fleet.baseline_plan(
        unit
    ).window_energy_kwh(s, e)


def test_requests_accumulate_and_a_later_event_honours_the_first() -> None:
    fleet = MakerFleet.random(4, DAY, seed=7)
    up = [e.up_kwh for e in fleet.envelopes(AT, AT.replace(hour=12))]
    a = fleet.apply_requests({0: _req("a", 10, 12, 0.5 * up[0])})
    assert a[0][0].status is ResponseStatus.ACCEPTED
    # another unit, same window, a later call: joins the window, unit 0 keeps its answer
    b = fleet.apply_requests({1: _req("b", 10, 12, 0.5 * up[1])})
    assert b[1][0].status is ResponseStatus.ACCEPTED
    assert _extra(fleet, 0, 10, 12) == pytest.approx(0.5 * up[0], abs=1e-6)
    assert _extra(fleet, 1, 10, 12) == pytest.approx(0.5 * up[1], abs=1e-6)
    # unit 0 again, later window: planned honouring the first request
    c = fleet.apply_requests({0: _req("c", 12, 14, 0.5)})
    response, plan = c[0]
    assert response.accepted_kwh > 0
    assert plan.honours == ("a", "c")
    assert _extra(fleet, 0, 10, 12) == pytest.approx(0.5 * up[0], abs=1e-6)
    assert _extra(fleet, 0, 12, 14) == pytest.approx(response.accepted_kwh, abs=1e-6)
    # the same request id again: answered from memory, not planned twice
    again = fleet.apply_requests({0: _req("a", 10, 12, 0.5 * up[0])})
    assert again[0][0] == a[0][0]
    assert fleet.unit_plan(0).honours == ("a", "c")
    # units never asked keep their baseline
    assert _extra(fleet, 3, 10, 14) == pytest.approx(0.0, abs=1e-6)


def test_unplannable_requests_are_rejected_with_the_reason() -> None:
    fleet = MakerFleet.random(2, DAY, seed=8)
    late = fleet.apply_requests({0: _req("late", 10, 12, 1.0)}, now=AT.replace(hour=11))
    assert late[0][0].status is ResponseStatus.REJECTED
    assert "has passed" in (late[0][0].reason or "")
    far = _req("far", 10, 12, 1.0).model_copy(
        update={"start": AT + timedelta(days=3), "end": AT + timedelta(days=3, hours=2)}
    )
    out = fleet.apply_requests({1: far})
    assert out[1][0].status is ResponseStatus.REJECTED
    assert "outside the planning horizon" in (out[1][0].reason or "")
    with pytest.raises(ValueError, match="out of range"):
        fleet.apply_requests({5: _req("x", 10, 12, 1.0)})


def test_group_request_beyond_the_potential_is_partial_and_capped() -> None:
    fleet = MakerFleet.random(20, DAY, seed=9)
    units = fleet.envelopes(AT, AT.replace(hour=14))
    group = fleet.group_envelope(AT, AT.replace(hour=14))
    assert group.device_id == GROUP_DEVICE_ID
    assert group.up_kwh == pytest.approx(sum(e.up_kwh for e in units))
    outcome = fleet.group_request(_req("g", 10, 14, 2 * group.up_kwh))
    assert outcome.response.status is ResponseStatus.PARTIAL
    assert outcome.response.accepted_kwh == pytest.approx(group.up_kwh, rel=1e-6)
    for u, env in enumerate(units):
        assert outcome.units[u][0].requested_kwh <= env.up_kwh + 1e-9
    assert outcome.plan.honours == ("g",)


def test_power_samples_come_from_the_simulated_meter() -> None:
    fleet = MakerFleet.random(5, DAY, seed=10)
    samples = fleet.power_samples(AT, [0, 1])
    assert [s.device_id for s in samples] == fleet.device_ids[:2]
    later = fleet.power_samples(AT + timedelta(hours=3), [0, 1])
    for a, b in zip(samples, later, strict=True):
        assert b.cumulative_energy_kwh >= a.cumulative_energy_kwh >= 0
    total_w, total_kwh = fleet.group_power(AT)
    assert total_w == pytest.approx(sum(s.power_w for s in fleet.power_samples(AT)))
    assert total_kwh > 0
    with pytest.raises(ValueError, match="outside the grid"):
        fleet.power_samples(AT + timedelta(days=2))
