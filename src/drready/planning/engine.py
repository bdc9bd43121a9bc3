"""Fleet planning on the fast path: baseline, DR potential (F1) and DR-aware plans (F3).

:class:`FleetPlanner` takes a :class:`~drready.planning.problem.PlanningProblem` for N units and
answers, as arrays over units:

* :meth:`FleetPlanner.baseline` — what each unit does with no DR: the least-cost plan under the
  tariff that keeps the stored heat inside its safety bounds (night heating sized to the need
  plus the confidence margin, daytime reheat only where the tank cannot hold the day's need).
* :meth:`FleetPlanner.potential` — the DR potential of a window: per slot the baseline, least and
  most power over all safe plans, the cumulative energy bounds, and the window totals
  ``up = most − baseline`` and ``down = baseline − least`` [kWh of electricity].
* :meth:`FleetPlanner.plan` — requests applied in order; each is accepted up to the potential
  left after the earlier ones, measured from the *baseline* (DR amounts are deviations from the
  baseline, the quantity settlement uses); the cheaper of two safe plans is kept: the greedy
  with the window target, or the window pinned to the matching mix of the current plan and the
  window's extreme plan (a convex mix of safe plans is safe) with the rest re-optimised.
  Once planned, a window keeps its slot-by-slot profile for the later requests in the units
  that accepted something in it (that plan has been reported, F4), so a later request may find
  less potential than a planner free to reshape earlier windows would; a unit that was not
  asked (amount 0) or had no potential there promised nothing and stays free.

The LP reference (:mod:`drready.planning.reference`) answers the same questions exactly per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drready.domain import Direction
from drready.domain.tolerances import ENERGY_TOL_KWH, ROUNDOFF, ZERO_KWH
from drready.planning.fast import (
    Paths,
    StaircaseBounds,
    WindowTarget,
    greedy_min_cost,
    highest_path,
    prefix,
    slot_power_bounds,
    violation,
    window_extreme_slots,
    window_least,
    window_most,
)
from drready.planning.problem import PlanningProblem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEASIBILITY_TOL_KWH = 1e-6
_NO_GAP_KWH = 1e-12
"""Below this the current and the extreme plan do the same in the window [kWh]: no mix to
weigh (a pure float round-off guard on a difference of two window sums)."""


@dataclass(frozen=True)
class WindowRequest:
    """A DR request in array form: one window for the fleet, an amount per unit [kWh]."""

    direction: Direction
    start: int
    end: int
    amount_kwh: FloatArray

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"window must satisfy 0 ≤ start < end, got {self.start}, {self.end}")
        if np.any(~np.isfinite(self.amount_kwh)) or np.any(self.amount_kwh < 0):
            raise ValueError("amount_kwh must be finite and ≥ 0")


@dataclass(frozen=True)
class FleetPlan:
    """A plan per unit: heat and electricity per slot (N, T) [kWh], stored heat (N, T+1)."""

    heat_kwh: FloatArray
    electric_kwh: FloatArray
    stored_heat_kwh: FloatArray
    cost_yen: FloatArray
    accepted_kwh: FloatArray
    potential_kwh: FloatArray
    fallback_units: int

    def power_kw(self, slot_h: float = 0.5) -> FloatArray:
        """Average electric power per slot [kW]."""
        return self.electric_kwh / slot_h


@dataclass(frozen=True)
class WindowPotential:
    """DR potential of a window ``[start, end)`` per unit; slot arrays are (N, W)."""

    start: int
    end: int
    baseline_kw: FloatArray
    min_kw: FloatArray
    max_kw: FloatArray
    cum_min_kwh: FloatArray
    cum_max_kwh: FloatArray
    baseline_kwh: FloatArray
    most_kwh: FloatArray
    least_kwh: FloatArray

    @property
    def up_kwh(self) -> FloatArray:
        """Extra consumption the window can absorb (上げDR) [kWh]."""
        return np.maximum(self.most_kwh - self.baseline_kwh, 0.0)

    @property
    def down_kwh(self) -> FloatArray:
        """Consumption the window can shed (下げDR) [kWh]."""
        return np.maximum(self.baseline_kwh - self.least_kwh, 0.0)


class FleetPlanner:
    """Fast-path planner for one :class:`PlanningProblem` (all units at once).

    Internally everything is time-major, (T, N), as in :mod:`drready.planning.fast`; results
    are returned unit-major, (N, T), like the problem's arrays.

    Parameters
    ----------
    problem : PlanningProblem
    pinned_heat_kwh : float array (k, N), optional
        Heat of the first ``k`` slots, fixed [kWh]: slots already decided (the slot in
        progress of a running unit, :mod:`drready.planning.rolling`). The baseline, the
        potentials and every plan keep them as given; a plan that only fits with other heat
        there falls back as any infeasible unit does (``fallback_units``).
    """

    def __init__(
        self, problem: PlanningProblem, *, pinned_heat_kwh: FloatArray | None = None
    ) -> None:
        self.problem = problem
        self.bounds, self._a = problem.staircase()
        if pinned_heat_kwh is not None:
            k = pinned_heat_kwh.shape[0]
            if pinned_heat_kwh.shape != (k, problem.n_units) or not 0 < k <= problem.n_slots:
                raise ValueError(
                    f"pinned_heat_kwh must be (k, {problem.n_units}) with 1 ≤ k ≤ "
                    f"{problem.n_slots}, got {pinned_heat_kwh.shape}"
                )
            self.bounds = self.bounds.with_fixed(0, k, pinned_heat_kwh / self._a[1 : k + 1])
        # electricity per y-unit of each slot: y · A[s+1] / cop   (T, N)
        self._weight = self._a[1:] / problem.cop
        self._price = problem.price_yen_per_kwh[:, None]
        self.order = self._cost_order()
        self._baseline_y: FloatArray | None = None
        self._baseline_fallback = 0
        self._paths: Paths | None = None

    def _cost_order(self) -> IntArray:
        """Slots by ascending mean cost per unit of y-heat; ties go to the later slot."""
        cost = (self._price * self._weight).mean(axis=1)
        idx = np.arange(cost.shape[0])
        return np.lexsort((-idx, np.round(cost, 9))).astype(np.int64)

    @property
    def paths(self) -> Paths:
        """Feasible-path envelope of the unconstrained problem (cached)."""
        if self._paths is None:
            self._paths = Paths.of(self.bounds)
        return self._paths

    def _solve(
        self, b: StaircaseBounds, target: WindowTarget | None = None
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Least-cost y under ``b`` (and ``target``), and which units broke a bound."""
        y = greedy_min_cost(b, self.order, target)
        return y, violation(b, y, box=False) > FEASIBILITY_TOL_KWH

    def _result(
        self, y: FloatArray, accepted: FloatArray, potential: FloatArray, fallback: int
    ) -> FleetPlan:
        heat = y * self._a[1:]
        elec = self.problem.electric_kwh(heat)
        return FleetPlan(
            heat_kwh=_unit_major(heat),
            electric_kwh=_unit_major(elec),
            stored_heat_kwh=_unit_major(self.problem.stored_heat_kwh(heat)),
            cost_yen=(elec * self._price).sum(axis=0),
            accepted_kwh=accepted,
            potential_kwh=potential,
            fallback_units=fallback,
        )

    def baseline_y(self) -> FloatArray:
        """The baseline in y-space, time-major (cached); the lowest path where the greedy
        fails (counted in ``fallback_units``)."""
        if self._baseline_y is None:
            y, bad = self._solve(self.bounds)
            if bad.any():
                y[:, bad] = np.diff(self.paths.low, axis=0)[:, bad]
            self._baseline_y, self._baseline_fallback = y, int(bad.sum())
        return self._baseline_y

    def baseline_electric_kwh(self) -> FloatArray:
        """The baseline's electricity per slot, time-major (T, N) [kWh] (without the rest of
        :meth:`baseline`: no stored-heat pass)."""
        out: FloatArray = self.baseline_y() * self._weight
        return out

    def baseline(self) -> FleetPlan:
        """The no-DR plan of every unit."""
        y = self.baseline_y()
        n = self.problem.n_units
        return self._result(y, np.zeros((0, n)), np.zeros((0, n)), self._baseline_fallback)

    def _window_electric(self, y: FloatArray, start: int, end: int) -> FloatArray:
        return np.asarray((y[start:end] * self._weight[start:end]).sum(axis=0))

    def potential(self, start: int, end: int) -> WindowPotential:
        """DR potential of the slot window ``[start, end)`` relative to the baseline."""
        self._check_window(start, end)
        b = self.bounds
        y = self.baseline_y()
        most_w, least_w = window_extreme_slots(b, start, end, self.paths)
        least_y, most_y = slot_power_bounds(b, self.paths, start, end)
        w = self._weight[start:end]
        h = self.problem.slot_h
        base_e = y[start:end] * w
        most_e = most_w * w
        least_e = least_w * w
        cum_least = np.cumsum(least_e, axis=0)
        return WindowPotential(
            start=start,
            end=end,
            baseline_kw=(base_e / h).T,
            min_kw=(np.minimum(least_y * w, base_e) / h).T,
            max_kw=(np.maximum(most_y * w, base_e) / h).T,
            cum_min_kwh=cum_least.T,
            cum_max_kwh=np.maximum(np.cumsum(most_e, axis=0), cum_least).T,
            baseline_kwh=base_e.sum(axis=0),
            most_kwh=most_e.sum(axis=0),
            least_kwh=least_e.sum(axis=0),
        )

    def _check_window(self, start: int, end: int) -> None:
        if not 0 <= start < end <= self.problem.n_slots:
            raise ValueError(
                f"window slots must satisfy 0 ≤ start < end ≤ {self.problem.n_slots}, "
                f"got {start}..{end}"
            )

    def plan(self, requests: list[WindowRequest]) -> FleetPlan:
        """Apply ``requests`` in order; see the module docstring."""
        n = self.problem.n_units
        b = self.bounds
        paths: Paths | None = self.paths
        base = self.baseline_y()
        y = base.copy()
        accepted = np.zeros((len(requests), n))
        potential = np.zeros((len(requests), n))
        fallback = 0
        for k, req in enumerate(requests):
            self._check_window(req.start, req.end)
            if req.amount_kwh.shape != (n,):
                raise ValueError(f"amount_kwh must have shape ({n},), got {req.amount_kwh.shape}")
            s, e = req.start, req.end
            up = req.direction is Direction.UP
            p = Paths.of(b) if paths is None else paths
            extreme = window_most(b, s, e, p) if up else window_least(b, s, e, p)
            b_req = b
            if not up:
                b_req, extreme = _recovery(b, p, s, e, y, extreme, req.amount_kwh > ZERO_KWH)
            sign = 1.0 if up else -1.0
            base_e = self._window_electric(base, s, e)  # DR amounts are from the baseline
            now_e = self._window_electric(y, s, e)
            ext_e = self._window_electric(extreme, s, e)
            pot = np.maximum(sign * (ext_e - base_e), 0.0)
            acc = np.minimum(req.amount_kwh, pot)
            target_e = base_e + sign * acc
            # the greedy with the window target: the window's cheapest slots reach the target
            tgt = WindowTarget(
                s,
                e,
                self._weight,
                # ROUNDOFF: aim a hair inside the target so summing the slots cannot land
                # on the wrong side of it by float round-off alone
                min_kwh=target_e - ROUNDOFF if up else None,
                max_kwh=None if up else target_e + ROUNDOFF,
            )
            y_new, bad = self._solve(b_req, tgt)
            win_e = self._window_electric(y_new, s, e)
            bad |= (
                (win_e < target_e - ENERGY_TOL_KWH) if up else (win_e > target_e + ENERGY_TOL_KWH)
            )
            if bad.any():
                # where it fails: pin the window to the mix of the current plan and the extreme
                # plan that hits the target (a convex mix of safe plans is safe) and
                # re-optimise the rest; failing that too, keep the mix itself
                idx = np.flatnonzero(bad)
                gap = (ext_e - now_e)[idx]
                beta = np.divide(
                    (target_e - now_e)[idx],
                    gap,
                    out=np.zeros(idx.size),
                    where=np.abs(gap) > _NO_GAP_KWH,  # no gap: stay on the plan
                ).clip(0.0, 1.0)  # clip: a mix weight; round-off may put it a hair outside
                mix = (1.0 - beta) * y[:, idx] + beta * extreme[:, idx]
                b_sub = b_req.take(idx).with_fixed(s, e, mix[s:e])
                y_sub, bad_sub = self._solve(b_sub)
                y_sub[:, bad_sub] = mix[:, bad_sub]
                y_new[:, idx] = y_sub
                fallback += int(bad.sum())
            y = y_new
            # later requests keep this window's slots as planned where something was accepted
            # (a unit not asked, or with no potential, promised nothing there)
            committed = acc > ZERO_KWH
            b = b_req
            if committed.any():
                b = b.with_fixed(s, e, y[s:e], None if committed.all() else committed)
                paths = None
            accepted[k] = acc
            potential[k] = pot
        return self._result(y, accepted, potential, fallback)


def _recovery(
    b: StaircaseBounds,
    p: Paths,
    start: int,
    end: int,
    plan_y: FloatArray,
    least_y: FloatArray,
    asked: npt.NDArray[np.bool_],
) -> tuple[StaircaseBounds, FloatArray]:
    """The bounds of a down-DR re-plan and its extreme plan, with the shed heat recovered early.

    Left to the least-cost greedy, the heat shed in a down window is made up where it is
    cheapest — in winter often just before the evening's draws (the night's frosting COP costs
    more than the evening's warmer air) — so the tank meets the evening with only the
    confidence margin where the baseline had a full night's heat: a draw beyond that margin
    (a bath an hour early and twice its size) then runs it dry with DR and not without, a
    DR-caused shortage. Instead, from the window's end the asked units must hold at least
    ``min(plan, recovery)``: the recovery path heats at full power from the window's end
    (the highest feasible path after the least plan's window) until it catches up with the
    plan in force before the request (the baseline, or the plan after earlier requests), and
    from then on the plan never holds less than that plan would. Both are feasible paths, so
    their minimum is (monotone, slopes within capacity, inside the bounds): the least plan with
    that recovery meets the new bounds, and so does any mix of it with the plan in force — the
    potential of the window is unchanged. Returns the bounds and the
    extreme plan (the least plan with the recovery) in y-space.
    """
    least = prefix(least_y)
    rec = highest_path(b, p.allowed, start=end, y0=least[end])
    rec[: end + 1] = least[: end + 1]
    floor = np.minimum(prefix(plan_y), rec)
    lower = b.lower.copy()
    lower[end + 1 :, asked] = np.maximum(lower[end + 1 :, asked], floor[end + 1 :, asked])
    return StaircaseBounds(lower, b.upper, b.lo, b.cap), np.diff(rec, axis=0)


def _unit_major(x: FloatArray) -> FloatArray:
    """(T, N) → (N, T), the layout of results: a transposed view, no copy."""
    return x.T
