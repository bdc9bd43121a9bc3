"""Fleet planning on the fast path: baseline, DR potential (F1) and DR-aware plans (F3).

:class:`FleetPlanner` takes a :class:`~drready.planning.problem.PlanningProblem` for N units and
answers, as arrays over units:

* :meth:`FleetPlanner.baseline` — what each unit does with no DR: the least-cost plan under the
  tariff that keeps the stored heat inside its safety bounds (night heating sized to the need
  plus the confidence margin, daytime reheat only where the tank cannot hold the day's need).
* :meth:`FleetPlanner.potential` — the DR potential of a window: per slot the baseline, least and
  most power over all safe plans (the most over those keeping the up-DR floor:
  :func:`_keep_in_force`, :data:`DEFER_MARGIN`), the
  cumulative energy bounds, and the window totals ``up = most − baseline`` and
  ``down = baseline − least`` [kWh of electricity].
* :meth:`FleetPlanner.plan` — requests applied in order; each is accepted up to the potential
  left after the earlier ones, measured from the *baseline* (DR amounts are deviations from the
  baseline, the quantity settlement uses); the cheaper of two safe plans is kept: the greedy
  with the window target, or the window pinned to the matching mix of the current plan and the
  window's extreme plan (a convex mix of safe plans is safe) with the rest re-optimised.
  From the first up request that asks a unit something on, its re-plans hold at least the
  baseline's stored heat, but never more than the lower bound with twice its margin asks
  (:data:`DEFER_MARGIN`), except after the start of a down window something was asked in
  (there the down recovery floor takes over after the window): heat deferred to make room
  never leaves the tank below what a day twice as far beyond the forecast as the bound needs
  (issue 13 item 3).
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
    lowest_path,
    prefix,
    required_path,
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
DEFER_MARGIN = 2.0
"""Up-DR may hold less stored heat than the baseline only down to the lower bounds with this
multiple of their margin for use above the forecast (method §5, ``k_d``): heat deferred to
make room in a window leaves the tank able to serve a day whose use exceeds the forecast by
twice the confidence bound's margin."""
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
        self,
        problem: PlanningProblem,
        *,
        pinned_heat_kwh: FloatArray | None = None,
        in_force_heat_kwh: FloatArray | None = None,
    ) -> None:
        self.problem = problem
        self.bounds, self._a = problem.staircase()
        if in_force_heat_kwh is not None and in_force_heat_kwh.shape != (
            problem.n_units,
            problem.n_slots,
        ):
            raise ValueError(
                f"in_force_heat_kwh must be ({problem.n_units}, {problem.n_slots}), "
                f"got {in_force_heat_kwh.shape}"
            )
        self._in_force_heat = in_force_heat_kwh
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
        # the deferral floor's widened lower bounds, y-space (T+1, N); None: the baseline itself
        self._defer_y: FloatArray | None = None
        if problem.over_kwh is not None:
            self._defer_y = self.bounds.lower + (DEFER_MARGIN - 1.0) * problem.over_kwh / self._a
        self.order = self._cost_order()
        self._baseline_y: FloatArray | None = None
        self._baseline_fallback = 0
        self._paths: Paths | None = None
        self._up_paths: tuple[StaircaseBounds, Paths] | None = None

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

    def _in_force_y(self) -> FloatArray:
        """The no-DR plan the up-DR floor keeps, y-space time-major: the baseline, or the
        plan given as ``in_force_heat_kwh`` (the oracle keeps the unit's own baseline)."""
        if self._in_force_heat is None:
            return self.baseline_y()
        out: FloatArray = self._in_force_heat.T / self._a[1:]
        return out

    def up_paths(self) -> tuple[StaircaseBounds, Paths]:
        """The bounds of up-DR (the floor of :meth:`_floor`, :func:`_keep_in_force`) and their
        paths (cached)."""
        if self._up_paths is None:
            self._up_paths = _keep_in_force(
                self.bounds, self.paths, self._floor(self._in_force_y())
            )
        return self._up_paths

    def _floor(self, base_y: FloatArray) -> FloatArray:
        """The up-DR floor (T+1, N), y-space: the baseline's running sum, at most the lower
        bounds widened by :data:`DEFER_MARGIN`."""
        keep = prefix(base_y)
        if self._defer_y is not None:
            np.minimum(keep, self._defer_y, out=keep)
        return keep

    def _window_electric(self, y: FloatArray, start: int, end: int) -> FloatArray:
        return np.asarray((y[start:end] * self._weight[start:end]).sum(axis=0))

    def potential(self, start: int, end: int) -> WindowPotential:
        """DR potential of the slot window ``[start, end)`` relative to the baseline."""
        self._check_window(start, end)
        b = self.bounds
        y = self.baseline_y()
        b_up, p_up = self.up_paths()
        most_w, _ = window_extreme_slots(b_up, start, end, p_up)
        _, least_w = window_extreme_slots(b, start, end, self.paths)
        _, most_y = slot_power_bounds(b_up, p_up, start, end)
        least_y, _ = slot_power_bounds(b, self.paths, start, end)
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
        # from the first up request that asked the unit something on, the up-DR floor, except
        # after the start of an asked down window (cut); units never asked up stay free
        base_sum = self._floor(self._in_force_y())
        floored = np.zeros(n, dtype=bool)
        cut = np.zeros((self.problem.n_slots + 1, n), dtype=bool)
        accepted = np.zeros((len(requests), n))
        potential = np.zeros((len(requests), n))
        fallback = 0
        for k, req in enumerate(requests):
            self._check_window(req.start, req.end)
            if req.amount_kwh.shape != (n,):
                raise ValueError(f"amount_kwh must have shape ({n},), got {req.amount_kwh.shape}")
            s, e = req.start, req.end
            up = req.direction is Direction.UP
            if up:
                floored |= req.amount_kwh > ZERO_KWH
            else:
                # a down request goes below the baseline in its window and recovers after it
                cut[s + 1 :, req.amount_kwh > ZERO_KWH] = True
            p = Paths.of(b) if paths is None else paths
            b_req, p_req = b, p
            if floored.any() and b is self.bounds and not cut.any():
                # the first request: the floor of :meth:`potential`, for the units it holds for
                # (the paths of each unit depend on its own bounds only)
                b_up, p_up = self.up_paths()
                if floored.all():
                    b_req, p_req = b_up, p_up
                else:
                    b_req = StaircaseBounds(
                        np.where(floored, b_up.lower, b.lower), b.upper, b.lo, b.cap
                    )
                    p_req = Paths(
                        *(
                            np.where(floored, x_up, x)
                            for x_up, x in (
                                (p_up.required, p.required),
                                (p_up.allowed, p.allowed),
                                (p_up.low, p.low),
                                (p_up.high, p.high),
                            )
                        )
                    )
            elif floored.any():
                keep = np.where(cut | ~floored, -np.inf, base_sum)
                b_req, p_req = _keep_in_force(b, p, keep)
            if up:
                extreme = window_most(b_req, s, e, p_req)
            else:
                rec_floor, extreme = _recovery(
                    b_req,
                    p_req,
                    s,
                    e,
                    y,
                    window_least(b_req, s, e, p_req),
                    req.amount_kwh > ZERO_KWH,
                )
                # the recovery floor stays for later requests
                b = StaircaseBounds(np.maximum(b.lower, rec_floor), b.upper, b.lo, b.cap)
                paths = None
                b_req = StaircaseBounds(
                    np.maximum(b_req.lower, rec_floor), b_req.upper, b_req.lo, b_req.cap
                )
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
) -> tuple[FloatArray, FloatArray]:
    """The floor of a down-DR re-plan and its extreme plan, with the shed heat recovered early.

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
    potential of the window is unchanged. Returns the floor (T+1, N) in y-space (−inf where
    none) and the extreme plan (the least plan with the recovery).
    """
    least = prefix(least_y)
    rec = highest_path(b, p.allowed, start=end, y0=least[end])
    rec[: end + 1] = least[: end + 1]
    floor = np.minimum(prefix(plan_y), rec)
    out = np.full_like(floor, -np.inf)
    out[end + 1 :, asked] = floor[end + 1 :, asked]
    return out, np.diff(rec, axis=0)


def _keep_in_force(b: StaircaseBounds, p: Paths, keep: FloatArray) -> tuple[StaircaseBounds, Paths]:
    """The bounds of an up-DR potential or re-plan, ``Y ≥ keep`` (clipped to the allowed path),
    and their paths (the allowed and highest paths are ``p``'s: a raised lower bound changes
    neither).

    Up-DR makes room in the tank for the window's extra heat. Left free, the re-plan makes it
    by heating less before the window — through the night, or through the evening bath — so
    that a draw beyond the confidence bound runs the DR tank dry where the baseline, which
    kept heating, survives: a DR-caused shortage. ``keep`` (:meth:`FleetPlanner._floor`) is the
    baseline's running sum of heat, at most the lower bounds with their margin for use above
    the forecast widened ``DEFER_MARGIN`` times, −inf where no floor holds: the same draws on
    both sides, so where the floor is the baseline's it is on the heat added, independent of
    the forecast. Deferring heat across the morning into a daytime window stays possible
    (the tank keeps twice the margin the morning's use needs); deferring it across an evening
    bath mostly does not. The floor is at most feasible paths, so the bounds are feasible;
    where the baseline is not (the oracle's problem, planned on another forecast) the floor is
    cut to the allowed path, and dropped for a unit that still cannot meet it.
    """
    floor = np.minimum(keep, p.allowed)
    lower = np.maximum(b.lower, floor)
    out = StaircaseBounds(lower, b.upper, b.lo, b.cap)
    r = required_path(out)
    bad = (r - p.allowed).max(axis=0) > FEASIBILITY_TOL_KWH
    if bad.any():
        lower[:, bad] = b.lower[:, bad]
        r[:, bad] = p.required[:, bad]
    return out, Paths(r, p.allowed, lowest_path(out, r), p.high)


def _unit_major(x: FloatArray) -> FloatArray:
    """(T, N) → (N, T), the layout of results: a transposed view, no copy."""
    return x.T
