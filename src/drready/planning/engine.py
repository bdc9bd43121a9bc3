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
  Once planned, a window keeps its slot-by-slot profile for the later requests (that plan has
  been reported, F4), so a later request may find less potential than a planner free to
  reshape earlier windows would.

The LP reference (:mod:`drready.planning.reference`) answers the same questions exactly per unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drready.domain import Direction
from drready.planning.fast import (
    StaircaseBounds,
    WindowTarget,
    greedy_min_cost,
    lowest_path,
    required_path,
    slot_power_bounds,
    violation,
    window_extremes,
)
from drready.planning.problem import PlanningProblem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEASIBILITY_TOL_KWH = 1e-6


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
    """Fast-path planner for one :class:`PlanningProblem` (all units at once)."""

    def __init__(self, problem: PlanningProblem) -> None:
        self.problem = problem
        self.bounds, self._a = problem.staircase()
        # electricity per y-unit of each slot: y · A[s+1] / cop
        self._weight = self._a[:, 1:] / problem.cop
        self.order = self._cost_order()
        self._baseline_y: FloatArray | None = None
        self._baseline_fallback = 0

    def _cost_order(self) -> IntArray:
        """Slots by ascending mean cost per unit of y-heat; ties go to the later slot."""
        cost = (self.problem.price_yen_per_kwh[None, :] * self._weight).mean(axis=0)
        idx = np.arange(cost.shape[0])
        return np.lexsort((-idx, np.round(cost, 9))).astype(np.int64)

    def _solve(self, b: StaircaseBounds) -> tuple[FloatArray, int]:
        """Least-cost y under ``b``; units where the greedy fails fall back to the lowest path."""
        y = greedy_min_cost(b, self.order)
        bad = violation(b, y) > FEASIBILITY_TOL_KWH
        if bad.any():
            low = lowest_path(b, required_path(b))
            y[bad] = np.diff(low, axis=1)[bad]
        return y, int(bad.sum())

    def _result(
        self, y: FloatArray, accepted: FloatArray, potential: FloatArray, fallback: int
    ) -> FleetPlan:
        heat = y * self._a[:, 1:]
        elec = self.problem.electric_kwh(heat)
        return FleetPlan(
            heat_kwh=heat,
            electric_kwh=elec,
            stored_heat_kwh=self.problem.stored_heat_kwh(heat),
            cost_yen=(elec * self.problem.price_yen_per_kwh).sum(axis=1),
            accepted_kwh=accepted,
            potential_kwh=potential,
            fallback_units=fallback,
        )

    def baseline_y(self) -> FloatArray:
        """The baseline in y-space (cached)."""
        if self._baseline_y is None:
            self._baseline_y, self._baseline_fallback = self._solve(self.bounds)
        return self._baseline_y

    def baseline(self) -> FleetPlan:
        """The no-DR plan of every unit."""
        y = self.baseline_y()
        n = self.problem.n_units
        return self._result(y, np.zeros((0, n)), np.zeros((0, n)), self._baseline_fallback)

    def _window_electric(self, y: FloatArray, start: int, end: int) -> FloatArray:
        return np.asarray((y[:, start:end] * self._weight[:, start:end]).sum(axis=1))

    def potential(self, start: int, end: int) -> WindowPotential:
        """DR potential of the slot window ``[start, end)`` relative to the baseline."""
        self._check_window(start, end)
        return self._potential(self.bounds, self.baseline_y(), start, end)

    def _check_window(self, start: int, end: int) -> None:
        if not 0 <= start < end <= self.problem.n_slots:
            raise ValueError(
                f"window slots must satisfy 0 ≤ start < end ≤ {self.problem.n_slots}, "
                f"got {start}..{end}"
            )

    def _potential(
        self, b: StaircaseBounds, y: FloatArray, start: int, end: int
    ) -> WindowPotential:
        ext = window_extremes(b, start, end)
        least_y, most_y = slot_power_bounds(b)
        w = self._weight[:, start:end]
        h = self.problem.slot_h
        base_e = y[:, start:end] * w
        most_e = ext.most[:, start:end] * w
        least_e = ext.least[:, start:end] * w
        min_kw = np.minimum(least_y[:, start:end] * w, base_e) / h
        max_kw = np.maximum(most_y[:, start:end] * w, base_e) / h
        return WindowPotential(
            start=start,
            end=end,
            baseline_kw=base_e / h,
            min_kw=min_kw,
            max_kw=max_kw,
            cum_min_kwh=np.cumsum(least_e, axis=1),
            cum_max_kwh=np.maximum(np.cumsum(most_e, axis=1), np.cumsum(least_e, axis=1)),
            baseline_kwh=base_e.sum(axis=1),
            most_kwh=most_e.sum(axis=1),
            least_kwh=least_e.sum(axis=1),
        )

    def plan(self, requests: list[WindowRequest]) -> FleetPlan:
        """Apply ``requests`` in order; see the module docstring."""
        n = self.problem.n_units
        b = self.bounds
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
            ext = window_extremes(b, s, e)
            extreme = ext.most if req.direction is Direction.UP else ext.least
            sign = 1.0 if req.direction is Direction.UP else -1.0
            base_e = self._window_electric(base, s, e)  # DR amounts are from the baseline
            now_e = self._window_electric(y, s, e)
            ext_e = self._window_electric(extreme, s, e)
            pot = np.maximum(sign * (ext_e - base_e), 0.0)
            acc = np.minimum(req.amount_kwh, pot)
            target_e = base_e + sign * acc
            # share of the way from the current plan to the extreme plan that hits the target
            gap = ext_e - now_e
            beta = np.divide(
                target_e - now_e, gap, out=np.zeros(n), where=np.abs(gap) > 1e-12
            ).clip(0.0, 1.0)[:, None]
            # candidate 1: the greedy with the window target (cheapest slots of the window)
            tgt = WindowTarget(
                s,
                e,
                self._weight,
                min_kwh=target_e - 1e-9 if req.direction is Direction.UP else None,
                max_kwh=target_e + 1e-9 if req.direction is Direction.DOWN else None,
            )
            y_tgt = greedy_min_cost(b, self.order, tgt)
            win_e = self._window_electric(y_tgt, s, e)
            ok = violation(b, y_tgt) <= FEASIBILITY_TOL_KWH
            ok &= (
                win_e >= target_e - 1e-6
                if req.direction is Direction.UP
                else (win_e <= target_e + 1e-6)
            )
            # candidate 2: the window pinned to a convex mix of two safe plans (always safe),
            # the rest re-optimised
            mix = (1.0 - beta) * y + beta * extreme
            b_mix = b.with_fixed(s, e, mix[:, s:e])
            y_mix, fb = self._solve(b_mix)
            price = self.problem.price_yen_per_kwh
            cost_tgt = np.where(ok, (y_tgt * self._weight * price).sum(axis=1), np.inf)
            cost_mix = (y_mix * self._weight * price).sum(axis=1)
            pick = cost_tgt < cost_mix
            y = np.where(pick[:, None], y_tgt, y_mix)
            # later requests keep this window's slots as planned
            b = b.with_fixed(s, e, y[:, s:e])
            fallback += fb
            accepted[k] = acc
            potential[k] = pot
        return self._result(y, accepted, potential, fallback)
