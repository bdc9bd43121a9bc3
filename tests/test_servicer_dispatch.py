"""Dispatch (U2, D5, D3): hand-computed splits, the fairness rule, cumulative coupling, price
targets, minimum request size, re-dispatch after rejections, and random instances checked
against an independent dense LP written per resource in physical power variables."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import TypeAdapter, ValidationError
from scipy.optimize import linprog

from drready.domain import (
    DeviceId,
    Direction,
    DrResponse,
    EnvelopeSlot,
    FlexibilityEnvelope,
    ResponseStatus,
)
from drready.domain.time import zone
from drready.servicer.core import dispatch as dispatch_module
from drready.servicer.core.dispatch import (
    Commitments,
    DispatchPlan,
    EnergyTarget,
    PowerTarget,
    PriceTarget,
    ResourcePotentials,
    Target,
    commitments_from_responses,
    dispatch,
    redispatch,
)

FloatArray = npt.NDArray[np.float64]
TZ = zone("Asia/Tokyo")
H = 0.5  # slot length [h]
UP, DOWN = Direction.UP, Direction.DOWN
Method = Literal["auto", "full"]
METHODS: list[Method] = ["auto", "full"]


def flat(
    declared_kwh: list[float],
    n_slots: int = 4,
    room_kw: float | list[float] = 10.0,
    cum_room_kwh: list[list[float]] | None = None,
) -> ResourcePotentials:
    """Up-DR resources with baseline 0, ``max_kw = room_kw`` and (unless given) no binding
    cumulative bound: the declared amount is the only limit."""
    r = len(declared_kwh)
    zero = np.zeros((r, n_slots))
    room = np.broadcast_to(np.asarray(room_kw, dtype=float).reshape(-1, 1), (r, 1))
    cum = np.full((r, n_slots), 1e3) if cum_room_kwh is None else np.asarray(cum_room_kwh, float)
    return ResourcePotentials(
        names=tuple(f"r{i}" for i in range(r)),
        baseline_kw=zero,
        min_kw=zero,
        max_kw=np.broadcast_to(room, (r, n_slots)),
        cum_min_kwh=zero,
        cum_max_kwh=cum,
        up_kwh=np.asarray(declared_kwh, dtype=float),
        down_kwh=np.zeros(r),
    )


def random_potentials(rng: np.random.Generator, n_res: int, n_slots: int) -> ResourcePotentials:
    """Random envelopes whose baseline lies inside its own bounds; cumulative bounds often bind
    before the per-slot ones and the declared amounts are below the envelopes' reach."""
    base = rng.uniform(0.0, 1.5, (n_res, n_slots))
    up_room = rng.uniform(0.0, 2.0, (n_res, n_slots)) * (rng.random((n_res, n_slots)) > 0.2)
    mx = base + up_room
    mn = base * rng.uniform(0.0, 1.0, (n_res, n_slots))
    base_cum = np.cumsum(base, axis=1) * H
    cmax = base_cum + np.cumsum(up_room, axis=1) * H * rng.uniform(0.3, 1.0, (n_res, 1))
    cmax = np.maximum.accumulate(cmax, axis=1)
    cmin = base_cum - np.cumsum(base - mn, axis=1) * H * rng.uniform(0.3, 1.0, (n_res, 1))
    cmin = np.maximum.accumulate(cmin, axis=1)
    up = (cmax[:, -1] - base_cum[:, -1]) * rng.uniform(0.3, 1.2, n_res)
    down = (base_cum[:, -1] - cmin[:, -1]) * rng.uniform(0.3, 1.2, n_res)
    up[rng.random(n_res) < 0.1] = 0.0  # some declare nothing
    return ResourcePotentials(
        names=tuple(f"u{i}" for i in range(n_res)),
        baseline_kw=base,
        min_kw=mn,
        max_kw=mx,
        cum_min_kwh=cmin,
        cum_max_kwh=cmax,
        up_kwh=up,
        down_kwh=down,
    )


def assert_within_potential(
    pot: ResourcePotentials, plan: DispatchPlan, profile_kw: FloatArray | None = None
) -> None:
    """Every request lies inside the envelope and never above declared − committed."""
    x = plan.deviation_kw + (0.0 if profile_kw is None else profile_kw)
    declared = pot.declared_kwh(plan.direction)
    assert np.all(plan.requested_kwh >= 0)
    assert np.all(plan.committed_kwh + plan.requested_kwh <= declared + 1e-9)
    np.testing.assert_allclose(plan.deviation_kw.sum(axis=1) * H, plan.requested_kwh, atol=1e-9)
    base_cum = np.cumsum(pot.baseline_kw, axis=1) * H
    if plan.direction is UP:
        assert np.all(pot.baseline_kw + x <= pot.max_kw + 1e-7)
        assert np.all(base_cum + np.cumsum(x, axis=1) * H <= pot.cum_max_kwh + 1e-6)
    else:
        assert np.all(pot.baseline_kw - x >= pot.min_kw - 1e-7)
        assert np.all(base_cum - np.cumsum(x, axis=1) * H >= pot.cum_min_kwh - 1e-6)


# --- hand-computed cases -----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_energy_target_split_in_proportion_to_declared(method: Method) -> None:
    # declared 2, 4, 6 kWh and 6 kWh to place: utilisation 6 / 12 = 0.5 each → 1, 2, 3 kWh
    plan = dispatch(
        flat([2.0, 4.0, 6.0]), EnergyTarget(direction=UP, energy_kwh=6.0), method=method
    )
    np.testing.assert_allclose(plan.requested_kwh, [1.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(plan.utilisation, [0.5, 0.5, 0.5], atol=1e-6)
    assert plan.max_utilisation == pytest.approx(0.5, abs=1e-6)
    assert plan.total_requested_kwh == pytest.approx(6.0, abs=1e-6)
    assert plan.shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert plan.n_solves >= 1 and plan.solve_time_s > 0


@pytest.mark.parametrize("method", METHODS)
def test_fairness_rule_levels_the_others_when_one_is_capped(method: Method) -> None:
    # three resources declare 4 kWh each, but r0's cumulative bound allows only 1 kWh in the
    # window. 6 kWh: r0 takes min(1, 4u), the others 4u each → 1 + 8u = 6 → u = 0.625 →
    # 1, 2.5, 2.5 (not e.g. 1, 4, 1 — equally optimal for delivery but piled onto r1)
    cum = [[1.0] * 4, [1e3] * 4, [1e3] * 4]
    plan = dispatch(
        flat([4.0, 4.0, 4.0], cum_room_kwh=cum),
        EnergyTarget(direction=UP, energy_kwh=6.0),
        method=method,
    )
    np.testing.assert_allclose(plan.requested_kwh, [1.0, 2.5, 2.5], atol=1e-6)
    assert plan.max_utilisation == pytest.approx(0.625, abs=1e-6)


def test_stage_one_alone_would_allow_piling() -> None:
    """The fairness rule matters: a delivery-only optimum can put everything on one resource.

    Witness, independently of the module: the allocation (6, 0, 0) of a 6 kWh target over
    declared 2, 4, 6 is feasible and delivers as much as (1, 2, 3); only the fairness stage
    rules it out (max utilisation 1.0 instead of 0.5)."""
    plan = dispatch(flat([2.0, 4.0, 6.0]), EnergyTarget(direction=UP, energy_kwh=6.0))
    piled = np.array([0.0, 0.0, 6.0])
    assert piled.sum() == pytest.approx(plan.total_requested_kwh, abs=1e-6)
    assert np.max(piled / [2.0, 4.0, 6.0]) == 1.0 > plan.max_utilisation + 0.4


def test_power_target_per_slot_by_hand() -> None:
    # A: ≤ 1 kW per slot, declared 1 kWh; B: ≤ 3 kW, declared 3 kWh; 2 slots; 2 kW in each slot
    # = 2 kWh. Fair: a ≤ 1·u, b ≤ 3·u, a + b = 2 → u = 0.5, a = 0.5 kWh, b = 1.5 kWh.
    pot = flat([1.0, 3.0], n_slots=2, room_kw=[1.0, 3.0])
    plan = dispatch(pot, PowerTarget(direction=UP, power_kw=2.0))
    np.testing.assert_allclose(plan.delivered_kw, [2.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(plan.requested_kwh, [0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(plan.shortfall_kw, [0.0, 0.0], atol=1e-6)
    assert_within_potential(pot, plan)


def test_power_target_shortfall_per_slot() -> None:
    # 5 kW asked in slot 0, nothing in slot 1: at most 1 + 3 = 4 kW in slot 0 → 1 kW short
    # (0.5 kWh); nothing is placed in slot 1 (never more than asked)
    pot = flat([1.0, 3.0], n_slots=2, room_kw=[1.0, 3.0])
    plan = dispatch(pot, PowerTarget(direction=UP, power_kw=(5.0, 0.0)))
    np.testing.assert_allclose(plan.deviation_kw, [[1.0, 0.0], [3.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(plan.shortfall_kw, [1.0, 0.0], atol=1e-6)
    assert plan.shortfall_kwh == pytest.approx(0.5, abs=1e-6)
    assert plan.target_kwh == pytest.approx(2.5)


@pytest.mark.parametrize("method", METHODS)
def test_cumulative_coupling_binds_below_the_slot_maxima(method: Method) -> None:
    # up over a 1 kW baseline, max 5, 5, 2, 2 kW: the slots alone would allow
    # (4 + 4 + 1 + 1) kW × 0.5 h = 5 kWh extra, but the tank takes at most cum_max = 2.0, 2.5,
    # 4.0, 4.5 kWh, i.e. (baseline 0.5 kWh per slot) 1.5, 1.5, 2.5, 2.5 kWh extra
    # cumulatively: the first two slots together ≤ 1.5 kWh, the last two ≤ 2 × 0.5 kWh → 2.5 kWh
    one = np.ones((1, 4))
    pot = ResourcePotentials(
        names=("tank",),
        baseline_kw=one,
        min_kw=0 * one,
        max_kw=np.array([[5.0, 5.0, 2.0, 2.0]]),
        cum_min_kwh=0 * one,
        cum_max_kwh=np.array([[2.0, 2.5, 4.0, 4.5]]),
        up_kwh=np.array([5.0]),  # declared above what the tank can take
        down_kwh=np.array([0.0]),
    )
    plan = dispatch(pot, EnergyTarget(direction=UP, energy_kwh=100.0), method=method)
    assert plan.requested_kwh[0] == pytest.approx(2.5, abs=1e-6)
    assert plan.shortfall_kwh == pytest.approx(97.5, abs=1e-6)
    extra_cum = np.cumsum(plan.deviation_kw[0]) * H
    assert np.all(extra_cum <= np.array([1.5, 1.5, 2.5, 2.5]) + 1e-6)
    np.testing.assert_allclose(plan.deviation_kw[0, 2:], [1.0, 1.0], atol=1e-6)
    assert_within_potential(pot, plan)


def test_cumulative_coupling_down() -> None:
    # down: baseline 2 kW in 2 slots (2 kWh), but at least 1.5 kWh must be used by the end:
    # shed ≤ 0.5 kWh although min_kw = 0 would allow 2 kWh
    two = np.full((1, 2), 2.0)
    pot = ResourcePotentials(
        names=("tank",),
        baseline_kw=two,
        min_kw=0 * two,
        max_kw=two,
        cum_min_kwh=np.array([[0.0, 1.5]]),
        cum_max_kwh=np.array([[1.0, 2.0]]),
        up_kwh=np.array([0.0]),
        down_kwh=np.array([3.0]),
    )
    plan = dispatch(pot, EnergyTarget(direction=DOWN, energy_kwh=2.0), method="full")
    assert plan.requested_kwh[0] == pytest.approx(0.5, abs=1e-6)
    assert_within_potential(pot, plan)


@pytest.mark.parametrize("method", METHODS)
def test_target_above_total_potential_reports_the_shortfall(method: Method) -> None:
    plan = dispatch(
        flat([2.0, 4.0, 6.0]), EnergyTarget(direction=UP, energy_kwh=20.0), method=method
    )
    np.testing.assert_allclose(plan.requested_kwh, [2.0, 4.0, 6.0], atol=1e-6)
    assert plan.shortfall_kwh == pytest.approx(20.0 - 12.0, abs=1e-6)
    np.testing.assert_allclose(plan.utilisation, 1.0, atol=1e-6)


def test_price_target_up_takes_the_cheap_slots() -> None:
    # up-DR, value per kWh = −price − compensation (reference 0): slot values −12, 3, −5, 18 →
    # only slots 1 and 3, at the full 2 kW each: 2 kWh worth 0.5·2·3 + 0.5·2·18 = 21 yen
    pot = flat([10.0], room_kw=2.0)
    prices = (10.0, -5.0, 3.0, -20.0)
    plan = dispatch(
        pot,
        PriceTarget(direction=UP, price_yen_per_kwh=prices, compensation_yen_per_kwh=2.0),
    )
    np.testing.assert_allclose(plan.deviation_kw, [[0.0, 2.0, 0.0, 2.0]], atol=1e-6)
    assert plan.value_yen == pytest.approx(21.0, abs=1e-5)
    assert plan.target_kwh == pytest.approx(2.0, abs=1e-6)
    # capped at 1 kWh: the best slot only (18 yen/kWh)
    capped = dispatch(
        pot,
        PriceTarget(
            direction=UP,
            price_yen_per_kwh=prices,
            compensation_yen_per_kwh=2.0,
            max_energy_kwh=1.0,
        ),
    )
    np.testing.assert_allclose(capped.deviation_kw, [[0.0, 0.0, 0.0, 2.0]], atol=1e-6)
    assert capped.value_yen == pytest.approx(18.0, abs=1e-5)


def test_price_target_down_takes_the_expensive_slots_and_uses_the_reference() -> None:
    # down-DR: baseline 2 kW; value = price − reference − compensation
    two = np.full((1, 4), 2.0)
    pot = ResourcePotentials(
        names=("a",),
        baseline_kw=two,
        min_kw=0 * two,
        max_kw=two,
        cum_min_kwh=np.zeros((1, 4)),
        cum_max_kwh=np.cumsum(two, axis=1) * H,
        up_kwh=np.array([0.0]),
        down_kwh=np.array([10.0]),
    )
    prices = (10.0, 30.0, 5.0, 50.0)
    plan = dispatch(
        pot, PriceTarget(direction=DOWN, price_yen_per_kwh=prices, compensation_yen_per_kwh=12.0)
    )  # values −2, 18, −7, 38
    np.testing.assert_allclose(plan.deviation_kw, [[0.0, 2.0, 0.0, 2.0]], atol=1e-6)
    ref = dispatch(
        pot,
        PriceTarget(
            direction=DOWN,
            price_yen_per_kwh=prices,
            compensation_yen_per_kwh=12.0,
            reference_price_yen_per_kwh=20.0,
        ),
    )  # values −22, −2, −27, 18
    np.testing.assert_allclose(ref.deviation_kw, [[0.0, 0.0, 0.0, 2.0]], atol=1e-6)
    assert ref.value_yen == pytest.approx(18.0, abs=1e-5)


def test_price_target_nothing_worth_it() -> None:
    plan = dispatch(
        flat([5.0]),
        PriceTarget(direction=UP, price_yen_per_kwh=(1.0,) * 4, compensation_yen_per_kwh=0.0),
    )
    assert plan.total_requested_kwh == 0.0 and plan.n_solves == 0 and plan.requests() == []


# --- minimum request size ----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_min_request_drops_small_shares_and_respreads_them(method: Method) -> None:
    # declared 0.02, 1, 1 and 0.5 kWh to place: u = 0.5 / 2.02, r0's fair share 0.00495 kWh
    # < 0.01 → left out and solved again: 0.25 + 0.25
    plan = dispatch(
        flat([0.02, 1.0, 1.0]), EnergyTarget(direction=UP, energy_kwh=0.5), method=method
    )
    np.testing.assert_allclose(plan.requested_kwh, [0.0, 0.25, 0.25], atol=1e-6)
    assert plan.dropped == ("r0",)
    assert plan.n_solves == (2 if method == "auto" else 4)  # two rounds
    assert plan.shortfall_kwh == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_min_request_keeps_enough_resources(method: Method) -> None:
    # 3 × 0.2 kWh fair shares with a 0.3 kWh minimum: one is left out, two carry 0.3 each
    plan = dispatch(
        flat([1.0, 1.0, 1.0]),
        EnergyTarget(direction=UP, energy_kwh=0.6),
        min_request_kwh=0.3,
        method=method,
    )
    assert sorted(np.round(plan.requested_kwh, 6)) == [0.0, 0.3, 0.3]
    assert len(plan.dropped) == 1
    assert plan.shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert all(r.requested_kwh >= 0.3 - 1e-6 for r in plan.requests())


def test_min_request_leaves_out_resources_without_room_before_solving() -> None:
    # r1's cumulative bound leaves 0.004 kWh: it can never take a 0.01 kWh request
    cum = [[1e3] * 4, [0.004] * 4]
    plan = dispatch(flat([1.0, 1.0], cum_room_kwh=cum), EnergyTarget(direction=UP, energy_kwh=2.0))
    np.testing.assert_allclose(plan.requested_kwh, [1.0, 0.0], atol=1e-6)
    assert plan.dropped == ("r1",)
    assert plan.shortfall_kwh == pytest.approx(1.0, abs=1e-6)


# --- re-dispatch (D3) --------------------------------------------------------------------------


def responses_for(
    plan: DispatchPlan, accepted: dict[str, float | None]
) -> dict[str, DrResponse | None]:
    """Answer each request of ``plan``: an amount (accepted, partial, rejected) or None (silent)."""
    reqs = plan.dr_requests(
        issued_at=datetime(2026, 5, 12, 8, 0, tzinfo=TZ),
        request_id_prefix="t",
        start=datetime(2026, 5, 12, 10, 0, tzinfo=TZ),
        end=datetime(2026, 5, 12, 12, 0, tzinfo=TZ),
    )
    out: dict[str, DrResponse | None] = {}
    for name, req in reqs.items():
        amount = accepted.get(name, req.amount_kwh)
        out[name] = (
            None
            if amount is None
            else DrResponse.from_amounts(
                req, DeviceId.model_validate("000005:HW0000001"), amount, reason="test"
            )
        )
    return out


@pytest.mark.parametrize("method", METHODS)
def test_redispatch_after_a_rejection_covers_the_shortfall(method: Method) -> None:
    pot = flat([2.0, 4.0, 6.0])
    target = EnergyTarget(direction=UP, energy_kwh=5.0)
    first = dispatch(pot, target, method=method)
    # u = 5/12 → 0.8333, 1.6667, 2.5
    np.testing.assert_allclose(first.requested_kwh, np.array([2.0, 4.0, 6.0]) * 5 / 12, atol=1e-6)
    answers = responses_for(first, {"r2": 0.0})  # r2 rejects
    assert answers["r2"] is not None and answers["r2"].status is ResponseStatus.REJECTED
    c = commitments_from_responses(first, answers)
    np.testing.assert_array_equal(c.excluded, [False, False, True])
    remaining = c.remaining(target)
    assert isinstance(remaining, EnergyTarget)
    assert remaining.energy_kwh == pytest.approx(2.5, abs=1e-6)
    second = redispatch(
        pot,
        remaining,
        committed_kwh=c.committed_kwh,
        excluded=c.excluded,
        committed_kw=c.committed_kw,
        method=method,
    )
    # the two left level at u = 5 / (2 + 4): 0.8333 + a = 2u, 1.6667 + b = 4u → a, b = 0.833, 1.667
    np.testing.assert_allclose(second.requested_kwh, [5 / 6, 5 / 3, 0.0], atol=1e-6)
    np.testing.assert_allclose(second.utilisation[:2], [5 / 6, 5 / 6], atol=1e-6)
    assert second.shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert second.requested_kwh[2] == 0.0  # never asked again
    assert_within_potential(pot, second, profile_kw=c.committed_kw)


def test_redispatch_partial_and_silent() -> None:
    pot = flat([2.0, 4.0, 6.0])
    target = EnergyTarget(direction=UP, energy_kwh=5.0)
    first = dispatch(pot, target)
    # r1 accepts 1 of 1.667 kWh (partial → not asked again), r2 stays silent
    c = commitments_from_responses(first, responses_for(first, {"r1": 1.0, "r2": None}))
    np.testing.assert_allclose(c.committed_kwh, [5 / 6, 1.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(c.excluded, [False, True, True])
    second = redispatch(
        pot, c.remaining(target), committed_kwh=c.committed_kwh, excluded=c.excluded
    )
    # only r0 is left, with 2 − 0.8333 = 1.1667 kWh; 5 − 0.8333 − 1 − 1.1667 = 2 kWh stay short
    np.testing.assert_allclose(second.requested_kwh, [2 - 5 / 6, 0.0, 0.0], atol=1e-6)
    assert second.shortfall_kwh == pytest.approx(2.0, abs=1e-6)
    assert second.utilisation[0] == pytest.approx(1.0, abs=1e-6)


def test_redispatch_accepts_names() -> None:
    pot = flat([2.0, 4.0, 6.0])
    plan = redispatch(
        pot,
        EnergyTarget(direction=UP, energy_kwh=3.0),
        committed_kwh={"r0": 1.0},
        excluded=["r2"],
    )
    # (1 + a)/2 = b/4 = u, a + b = 3 → 6u = 4 → u = 2/3: a = 1/3, b = 8/3
    np.testing.assert_allclose(plan.requested_kwh, [1 / 3, 8 / 3, 0.0], atol=1e-6)


def test_redispatch_power_target_with_committed_profile() -> None:
    # 2 slots; r0, r1 ≤ 2 kW and declared 2 kWh, r2 ≤ 1 kW and 1 kWh; 3 kW in both slots
    # (3 kWh). Fair: 5u = 3 → 1.2, 1.2, 0.6 kWh. r0 rejects; r1 and r2 accept, their profiles
    # are committed; what r0 was to do per slot is exactly the room r1 and r2 have left
    # (2 + 1 − their profiles) and their declared energy left (0.8 + 0.4 = 1.2 kWh)
    pot = flat([2.0, 2.0, 1.0], n_slots=2, room_kw=[2.0, 2.0, 1.0])
    target = PowerTarget(direction=UP, power_kw=3.0)
    first = dispatch(pot, target)
    np.testing.assert_allclose(first.delivered_kw, [3.0, 3.0], atol=1e-6)
    c = commitments_from_responses(first, responses_for(first, {"r0": 0.0}))
    remaining = c.remaining(target)
    assert isinstance(remaining, PowerTarget)
    second = redispatch(
        pot,
        remaining,
        committed_kwh=c.committed_kwh,
        excluded=c.excluded,
        committed_kw=c.committed_kw,
    )
    total_kw = c.committed_kw.sum(axis=0) + second.delivered_kw
    np.testing.assert_allclose(first.requested_kwh, [1.2, 1.2, 0.6], atol=1e-6)
    np.testing.assert_allclose(total_kw, [3.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(second.requested_kwh, [0.0, 0.8, 0.4], atol=1e-6)
    assert second.requested_kwh[0] == 0.0
    assert_within_potential(pot, second, profile_kw=c.committed_kw)


def test_d3_loop_converges_without_an_operator() -> None:
    """Simulated rounds: units hide their true capacity, some are offline. Dispatch, answer,
    re-dispatch until covered or nobody is left: the committed total reaches
    min(target, Σ true capacity of the online units), and no unit is ever asked above its
    declared amount."""
    rng = np.random.default_rng(7)
    n = 25
    declared = rng.uniform(0.5, 3.0, n)
    pot = flat(list(declared))
    true_cap = declared * rng.uniform(0.3, 1.0, n) * (rng.random(n) > 0.3)  # 0: rejects
    offline = rng.random(n) < 0.15
    target = EnergyTarget(direction=UP, energy_kwh=0.8 * float(declared.sum()))
    c = Commitments.none(pot)
    plan = dispatch(pot, target)
    for _ in range(30):
        assert np.all(c.committed_kwh + plan.requested_kwh <= declared + 1e-9)
        accepted: dict[str, float | None] = {}
        for i in np.flatnonzero(plan.requested_kwh > 0):
            left = max(true_cap[i] - c.committed_kwh[i], 0.0)
            accepted[pot.names[i]] = None if offline[i] else min(plan.requested_kwh[i], left)
        c = commitments_from_responses(plan, responses_for(plan, accepted), c)
        remaining = c.remaining(target)
        assert isinstance(remaining, EnergyTarget)
        if remaining.energy_kwh <= 1e-6:
            break
        plan = redispatch(pot, remaining, committed_kwh=c.committed_kwh, excluded=c.excluded)
        if plan.total_requested_kwh == 0.0:
            break
    best = min(target.energy_kwh, float(np.where(offline, 0.0, true_cap).sum()))
    # a last remainder below the minimum request size (0.01 kWh) is not sent
    assert best - 0.01 <= c.total_kwh <= best + 1e-6


# --- against an independent formulation ----------------------------------------------------------


def dense_reference(
    pot: ResourcePotentials, target: EnergyTarget | PowerTarget
) -> tuple[float, float]:
    """(most deliverable kWh, least max utilisation) from a dense LP in physical power.

    Variables: power ``p[r,s]`` [kW] and, for the second solve, ``u``. Built with a loop over
    resources and slots; both sides of every envelope bound are written out (the module writes
    only the side that can bind), deviations are ``±(p − baseline)``.
    """
    n_r, n_s = pot.n_resources, pot.n_slots
    sign = 1.0 if target.direction is UP else -1.0
    declared = pot.declared_kwh(target.direction)
    n = n_r * n_s + 1
    rows: list[np.ndarray] = []
    rhs: list[float] = []
    bounds: list[tuple[float, float]] = []

    def row() -> np.ndarray:
        return np.zeros(n)

    for r in range(n_r):
        for s in range(n_s):
            b = pot.baseline_kw[r, s]
            # deviation in the target's direction only: p ≥ b (up) / p ≤ b (down)
            if sign > 0:
                bounds.append((b, max(pot.max_kw[r, s], b)))
            else:
                bounds.append((min(pot.min_kw[r, s], b), b))
            a = row()
            a[r * n_s : r * n_s + s + 1] = H  # energy to the end of slot s
            rows.append(a.copy())
            rhs.append(pot.cum_max_kwh[r, s])
            rows.append(-a)
            rhs.append(-pot.cum_min_kwh[r, s])
        a = row()
        a[r * n_s : (r + 1) * n_s] = sign * H  # Σ deviation·h ≤ declared
        rows.append(a)
        rhs.append(declared[r] + sign * pot.baseline_kw[r].sum() * H)
    bounds.append((0.0, 0.0))  # u unused in the first solve
    if isinstance(target, EnergyTarget):
        a = row()
        a[: n_r * n_s] = sign * H
        rows.append(a)
        rhs.append(target.energy_kwh + sign * pot.baseline_kw.sum() * H)
    else:
        power = target.per_slot_kw(n_s)
        for s in range(n_s):
            a = row()
            a[s : n_r * n_s : n_s] = sign
            rows.append(a)
            rhs.append(power[s] + sign * pot.baseline_kw[:, s].sum())
    c = np.zeros(n)
    c[: n_r * n_s] = -sign * H  # maximise the delivered deviation
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    delivered = float(sign * (res.x[: n_r * n_s].sum() - pot.baseline_kw.sum()) * H)
    # second solve: keep the delivery, minimise u ≥ (Σ dev·h) / declared
    keep = np.zeros(n)
    keep[: n_r * n_s] = -sign * H
    rows2, rhs2 = [*rows, keep], [*rhs, -(delivered - 1e-7) - sign * pot.baseline_kw.sum() * H]
    for r in range(n_r):
        a = row()
        a[r * n_s : (r + 1) * n_s] = sign * H
        a[-1] = -declared[r]
        rows2.append(a)
        rhs2.append(sign * pot.baseline_kw[r].sum() * H)
    bounds[-1] = (0.0, np.inf)
    c2 = np.zeros(n)
    c2[-1] = 1.0
    res2 = linprog(c2, A_ub=np.array(rows2), b_ub=np.array(rhs2), bounds=bounds, method="highs")
    assert res2.status == 0, res2.message
    return delivered, float(res2.fun)


@pytest.mark.parametrize("seed", range(12))
def test_random_instances_match_the_dense_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pot = random_potentials(rng, n_res=int(rng.integers(2, 6)), n_slots=int(rng.integers(2, 7)))
    direction = UP if seed % 2 == 0 else DOWN
    declared_total = float(pot.declared_kwh(direction).sum())
    targets: list[EnergyTarget | PowerTarget] = [
        EnergyTarget(direction=direction, energy_kwh=declared_total * rng.uniform(0.2, 1.5)),
        PowerTarget(
            direction=direction,
            power_kw=tuple(rng.uniform(0.0, 1.5 * pot.n_resources, pot.n_slots)),
        ),
    ]
    for target in targets:
        best_kwh, best_util = dense_reference(pot, target)
        methods: list[Method] = METHODS if isinstance(target, EnergyTarget) else ["full"]
        for method in methods:
            # min request tiny, so that both solve the same problem
            plan = dispatch(pot, target, min_request_kwh=1e-5, method=method)
            assert plan.total_requested_kwh == pytest.approx(best_kwh, abs=1e-4), (target, method)
            assert plan.max_utilisation == pytest.approx(best_util, abs=1e-4), (target, method)
            assert plan.shortfall_kwh == pytest.approx(plan.target_kwh - best_kwh, abs=1e-4)
            assert_within_potential(pot, plan)


@pytest.mark.parametrize("seed", range(4))
def test_interior_solution_without_crossover(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large LPs skip the crossover to a vertex; the interior solution must be as good."""
    monkeypatch.setattr(dispatch_module, "_CROSSOVER_MAX_X", 0)
    rng = np.random.default_rng(50 + seed)
    pot = random_potentials(rng, n_res=5, n_slots=6)
    target = PowerTarget(direction=UP, power_kw=tuple(rng.uniform(0.0, 6.0, 6)))
    best_kwh, best_util = dense_reference(pot, target)
    plan = dispatch(pot, target, min_request_kwh=1e-5)
    assert plan.total_requested_kwh == pytest.approx(best_kwh, abs=1e-4)
    assert plan.max_utilisation == pytest.approx(best_util, abs=1e-4)
    assert_within_potential(pot, plan)


@pytest.mark.parametrize("seed", range(6))
def test_auto_and_full_agree_on_energy_targets(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    pot = random_potentials(rng, n_res=40, n_slots=8)
    target = EnergyTarget(direction=UP, energy_kwh=float(pot.up_kwh.sum()) * rng.uniform(0.1, 0.9))
    auto = dispatch(pot, target, method="auto")
    full = dispatch(pot, target, method="full")
    # the fair split of an energy target is unique (module docstring)
    np.testing.assert_allclose(auto.requested_kwh, full.requested_kwh, atol=1e-5)
    assert auto.dropped == full.dropped


def test_never_above_declared_potential_random() -> None:
    """Property over random instances, targets, commitments and exclusions."""
    rng = np.random.default_rng(2024)
    for k in range(30):
        pot = random_potentials(
            rng, n_res=int(rng.integers(1, 30)), n_slots=int(rng.integers(1, 9))
        )
        direction = UP if k % 2 else DOWN
        declared = pot.declared_kwh(direction)
        committed = (
            declared * rng.uniform(0.0, 1.0, pot.n_resources) * (rng.random(pot.n_resources) < 0.4)
        )
        excluded = rng.random(pot.n_resources) < 0.2
        kind = k % 3
        target: EnergyTarget | PowerTarget | PriceTarget
        if kind == 0:
            target = EnergyTarget(
                direction=direction, energy_kwh=float(declared.sum()) * rng.uniform(0, 2)
            )
        elif kind == 1:
            target = PowerTarget(
                direction=direction, power_kw=float(rng.uniform(0, 2 * pot.n_resources))
            )
        else:
            target = PriceTarget(
                direction=direction,
                price_yen_per_kwh=tuple(rng.uniform(-30, 30, pot.n_slots)),
                compensation_yen_per_kwh=float(rng.uniform(0, 5)),
            )
        plan = redispatch(pot, target, committed_kwh=committed, excluded=excluded)
        assert_within_potential(pot, plan)
        assert np.all(plan.requested_kwh[excluded] == 0.0)
        used = plan.requested_kwh > 0
        assert np.all(plan.requested_kwh[used] >= 0.01 - 1e-6)
        if isinstance(target, EnergyTarget):
            assert plan.total_requested_kwh <= target.energy_kwh + 1e-6
        if isinstance(target, PowerTarget):
            assert np.all(plan.delivered_kw <= target.per_slot_kw(pot.n_slots) + 1e-6)


# --- envelopes, outputs and errors -------------------------------------------------------------


def envelope(serial: str, start: datetime, n_slots: int, up_kwh: float) -> FlexibilityEnvelope:
    slots = tuple(
        EnvelopeSlot(
            start=start + k * timedelta(minutes=30),
            baseline_kw=0.5,
            min_kw=0.0,
            max_kw=1.5,
            cum_min_kwh=0.0,
            cum_max_kwh=0.25 * (k + 1) + 0.5 * (k + 1),
        )
        for k in range(n_slots)
    )
    return FlexibilityEnvelope(
        device_id=DeviceId.model_validate(f"000005:{serial}"),
        computed_at=start - timedelta(hours=12),
        window_start=start,
        window_end=start + n_slots * timedelta(minutes=30),
        confidence=0.9,
        up_kwh=up_kwh,
        down_kwh=0.5,
        slots=slots,
    )


def test_from_envelopes_and_dr_requests() -> None:
    start = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
    envs = [envelope("HW1", start, 8, 1.0), envelope("HW2", start, 8, 3.0)]
    pot = ResourcePotentials.from_envelopes(envs)
    assert pot.names == ("000005:HW1", "000005:HW2")
    assert pot.n_slots == 8 and pot.window_start == start
    plan = dispatch(pot, EnergyTarget(direction=UP, energy_kwh=2.0))
    # room 1 kW per slot (0.5 kWh), cumulative extra ≤ 0.5 kWh per slot, so up to 4 kWh each;
    # the fair split of 2 kWh over declared 1 and 3 → 0.5 and 1.5
    np.testing.assert_allclose(plan.requested_kwh, [0.5, 1.5], atol=1e-6)
    issued = start - timedelta(hours=2)
    reqs = plan.dr_requests(issued_at=issued, request_id_prefix="ev-20260512")
    assert set(reqs) == {"000005:HW1", "000005:HW2"}
    r = reqs["000005:HW2"]
    assert (r.start, r.end, r.direction) == (start, start + timedelta(hours=4), UP)
    assert r.amount_kwh == pytest.approx(1.5, abs=1e-6) and r.request_id == "ev-20260512.1"
    items = plan.requests()
    assert [i.name for i in items] == ["000005:HW1", "000005:HW2"]
    assert len(items[0].deviation_kw) == 8
    json.dumps(plan.summary())


def test_from_envelopes_refuses_different_windows() -> None:
    start = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
    envs = [envelope("HW1", start, 8, 1.0), envelope("HW2", start, 6, 1.0)]
    with pytest.raises(ValueError, match=r"envelopes\[1\]\.window_end must equal envelopes\[0\]"):
        ResourcePotentials.from_envelopes(envs)


def test_targets_validate_and_parse() -> None:
    with pytest.raises(ValidationError, match="energy_kwh must be finite and >= 0"):
        EnergyTarget(direction=UP, energy_kwh=-1.0)
    with pytest.raises(ValidationError, match="energy_kwh must be finite"):
        EnergyTarget(direction=UP, energy_kwh=float("nan"))
    with pytest.raises(ValidationError, match="power_kw must be finite and >= 0"):
        PowerTarget(direction=DOWN, power_kw=(1.0, -2.0))
    with pytest.raises(ValidationError, match="compensation_yen_per_kwh must be finite and >= 0"):
        PriceTarget(direction=UP, price_yen_per_kwh=(1.0,), compensation_yen_per_kwh=-1.0)
    with pytest.raises(ValidationError, match="price_yen_per_kwh must be finite"):
        PriceTarget(direction=UP, price_yen_per_kwh=(float("inf"),), compensation_yen_per_kwh=1)
    parsed = TypeAdapter(Target).validate_json(
        '{"kind": "power", "direction": "down", "power_kw": [1000, 1000]}'
    )
    assert isinstance(parsed, PowerTarget) and parsed.power_kw == (1000.0, 1000.0)
    with pytest.raises(
        ValueError, match=r"power_kw must have one value per slot of the window \(4\), got 2"
    ):
        dispatch(flat([1.0]), parsed)
    with pytest.raises(ValueError, match=r"price_yen_per_kwh must have one value per slot"):
        dispatch(
            flat([1.0]),
            PriceTarget(direction=UP, price_yen_per_kwh=(1.0,), compensation_yen_per_kwh=0),
        )


def test_potentials_validate() -> None:
    good = flat([1.0, 2.0])
    fields: dict[str, Any] = {
        "names": good.names,
        "baseline_kw": good.baseline_kw,
        "min_kw": good.min_kw,
        "max_kw": good.max_kw,
        "cum_min_kwh": good.cum_min_kwh,
        "cum_max_kwh": good.cum_max_kwh,
        "up_kwh": good.up_kwh,
        "down_kwh": good.down_kwh,
    }
    nan = good.max_kw.copy()
    nan[1, 2] = np.nan
    cases: list[tuple[dict[str, Any], str]] = [
        ({"max_kw": nan}, r"max_kw must be finite, got nan at index \(1, 2\)"),
        ({"max_kw": good.max_kw[:, :3]}, r"max_kw must have shape \(2, 4\), got \(2, 3\)"),
        ({"up_kwh": np.array([1.0, -1.0])}, r"up_kwh must be >= 0, got -1.0 at index \(1,\)"),
        ({"min_kw": np.full((2, 4), 1.0)}, r"min_kw must be <= baseline_kw"),
        ({"names": ("a", "a")}, r"names must be unique, got 'a'"),
        ({"cum_max_kwh": np.array([[2.0, 1.0, 3, 4]] * 2)}, r"cum_max_kwh must never decrease"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            ResourcePotentials(**{**fields, **change})
    with pytest.raises(ValueError, match=r"min_request_kwh must be finite and in \(0, 1e\+06\]"):
        dispatch(good, EnergyTarget(direction=UP, energy_kwh=1.0), min_request_kwh=0.0)
    with pytest.raises(ValueError, match="excluded must name known resources, got unknown 'x'"):
        redispatch(good, EnergyTarget(direction=UP, energy_kwh=1.0), excluded=["x"])
    with pytest.raises(ValueError, match=r"committed_kwh must be >= 0"):
        redispatch(good, EnergyTarget(direction=UP, energy_kwh=1.0), committed_kwh=[-1.0, 0.0])
    with pytest.raises(ValueError, match=r"committed_kw must have shape \(2, 4\)"):
        redispatch(good, EnergyTarget(direction=UP, energy_kwh=1.0), committed_kw=np.zeros((2, 3)))
    # the potentials are a snapshot: changing the caller's array afterwards changes nothing
    arr = np.array([1.0, 2.0])
    pot = ResourcePotentials(**{**fields, "up_kwh": arr})
    arr[0] = 100.0
    assert pot.up_kwh[0] == 1.0 and not pot.up_kwh.flags.writeable
