"""Exact reference planner: one linear programme per unit, solved by HiGHS (F1, F3).

Written in the physical variables — electricity per slot ``e[t]`` [kWh] and stored heat
``Q[t]`` [kWh] linked by ``Q[t+1] = a[t]·Q[t] + cop[t]·e[t] − d[t]`` — independently of the
fast path's y-space transformation, so that it checks that path (cost, potential and
acceptance) rather than repeating it. Slow (a few ms per unit and question) and exact; used in
tests and in the benchmark, never at fleet scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog

from drready.domain import Direction
from drready.planning.engine import DEFER_MARGIN
from drready.planning.problem import PlanningProblem

FloatArray = npt.NDArray[np.float64]


class InfeasibleProblemError(RuntimeError):
    """The LP has no solution (only happens with bounds that were not relaxed)."""


@dataclass(frozen=True)
class WindowConstraint:
    """``sum(e[start:end]) ≥ value`` (sense ``"ge"``) or ``≤ value`` (``"le"``) [kWh]."""

    start: int
    end: int
    sense: str
    value_kwh: float


@dataclass(frozen=True)
class ReferencePlan:
    """One unit's exact plan: electricity per slot, stored heat, cost and per-request figures."""

    electric_kwh: FloatArray
    stored_heat_kwh: FloatArray
    cost_yen: float
    accepted_kwh: tuple[float, ...]
    potential_kwh: tuple[float, ...]


class UnitLP:
    """The LP of unit ``i`` of ``problem``."""

    def __init__(self, problem: PlanningProblem, i: int) -> None:
        self.p = problem
        self.i = i
        t = problem.n_slots
        self.t = t
        u = problem.unit(i)
        a = u["retention"]
        c = u["cop"]
        d = u["draw_kwh"]
        # variables: e[0..T-1], Q[1..T]
        rows = []
        cols = []
        vals = []
        for k in range(t):
            rows += [k, k]
            cols += [t + k, k]
            vals += [1.0, -c[k]]
            if k > 0:
                rows.append(k)
                cols.append(t + k - 1)
                vals.append(-a[k])
        self.a_eq = sp.csr_array((vals, (rows, cols)), shape=(t, 2 * t))
        b_eq = -d.copy()
        b_eq[0] += a[0] * problem.q0_kwh[i]
        self.b_eq = b_eq
        e_lo = u["heat_min_kwh"] / c
        e_hi = u["heat_cap_kwh"] / c
        q_lo = u["lower_kwh"][1:]
        q_hi = u["upper_kwh"][1:]
        self.bounds = list(zip(np.r_[e_lo, q_lo], np.r_[e_hi, q_hi], strict=True))
        self.price = problem.price_yen_per_kwh

    def solve(
        self,
        objective: FloatArray,
        windows: list[WindowConstraint],
        *,
        full: bool = False,
        floor_kwh: FloatArray | None = None,
    ) -> FloatArray:
        """Minimise ``objective · e`` (``objective · (e, Q[1..T])`` if ``full``) subject to the
        windows (and, for this solve only, stored heat at least ``floor_kwh`` (T+1,) at every
        boundary 1 … T); returns the full variable vector."""
        t = self.t
        a_ub = None
        b_ub = None
        if windows:
            m = np.zeros((len(windows), 2 * t))
            b = np.zeros(len(windows))
            for j, w in enumerate(windows):
                sign = -1.0 if w.sense == "ge" else 1.0
                m[j, w.start : w.end] = sign
                b[j] = sign * w.value_kwh
            a_ub, b_ub = m, b
        res = linprog(
            objective if full else np.r_[objective, np.zeros(t)],
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=self.a_eq,
            b_eq=self.b_eq,
            bounds=self.bounds if floor_kwh is None else self._floored(floor_kwh),
            method="highs",
        )
        if res.status != 0:
            raise InfeasibleProblemError(f"unit {self.i}: {res.message}")
        x: FloatArray = np.asarray(res.x)
        return x

    def _floored(self, floor_kwh: FloatArray) -> list[tuple[float, float]]:
        out = list(self.bounds)
        for k in range(1, self.t + 1):
            lo, hi = out[self.t + k - 1]
            # 1e-6 kWh below: the floor is met exactly by the baseline, not by LP round-off
            out[self.t + k - 1] = (max(lo, min(float(floor_kwh[k]) - 1e-6, hi)), hi)
        return out

    def up_floor(self, baseline_electric_kwh: FloatArray) -> FloatArray:
        """The up-DR floor (T+1,) in physical terms: the baseline's stored heat, at most the
        lower bounds with their margin for use above the forecast widened ``DEFER_MARGIN``
        times (engine.FleetPlanner._floor)."""
        q = self.stored_heat(baseline_electric_kwh)
        over = self.p.over_kwh
        if over is None:
            return q
        lower = self.p.lower_kwh[:, self.i]
        return np.minimum(q, lower + (DEFER_MARGIN - 1.0) * over[:, self.i])

    def stored_heat(self, plan_electric_kwh: FloatArray) -> FloatArray:
        """Expected stored heat (T+1,) of a plan given as electricity per slot."""
        u = self.p.unit(self.i)
        a, c, d = u["retention"], u["cop"], u["draw_kwh"]
        q = np.empty(self.t + 1)
        q[0] = self.p.q0_kwh[self.i]
        for k in range(self.t):
            q[k + 1] = a[k] * q[k] + c[k] * plan_electric_kwh[k] - d[k]
        return q

    def raise_stored_floor(self, floor_kwh: FloatArray, after: int) -> None:
        """Stored heat at boundaries ``after+1 … T`` at least ``floor_kwh`` there ((T+1,))."""
        for k in range(after + 1, self.t + 1):
            lo, hi = self.bounds[self.t + k - 1]
            # 1e-6 kWh below: the floor is met exactly by the recovery plan, not by LP round-off
            self.bounds[self.t + k - 1] = (max(lo, min(float(floor_kwh[k]) - 1e-6, hi)), hi)

    def recovery_floor(
        self,
        start: int,
        end: int,
        plan_electric_kwh: FloatArray,
        windows: list[WindowConstraint],
        floor_kwh: FloatArray | None = None,
    ) -> FloatArray:
        """``min(plan, recovery)`` stored heat (T+1,) after a down window, in physical terms
        (``plan``: the plan in force before the request); the recovery is the plan with the
        least window energy that holds the most heat at every later boundary (one LP maximising
        the sum of the later stored heats: the feasible plans' stored heats form a lattice, so
        its solution is the highest at each of them)."""
        t = self.t
        least = self.solve(self.window_vector(start, end, 1.0), windows, floor_kwh=floor_kwh)
        keep = WindowConstraint(start, end, "le", float(least[start:end].sum()) + 1e-7)
        objective = np.zeros(2 * t)
        objective[t + end :] = -1.0  # maximise Q[end+1 … T]
        x = self.solve(objective, [*windows, keep], full=True, floor_kwh=floor_kwh)
        rec = np.r_[self.p.q0_kwh[self.i], x[t:]]
        return np.minimum(self.stored_heat(plan_electric_kwh), rec)

    def cost_vector(self) -> FloatArray:
        return np.asarray(self.price, dtype=float)

    def window_vector(self, start: int, end: int, sign: float) -> FloatArray:
        v = np.zeros(self.t)
        v[start:end] = sign
        return v


def reference_plan(
    problem: PlanningProblem,
    i: int,
    requests: list[tuple[Direction, int, int, float]],
    tol_kwh: float = 1e-7,
    baseline_electric_kwh: FloatArray | None = None,
) -> ReferencePlan:
    """Exact plan of unit ``i``: baseline, then each request accepted up to its potential.

    Mirrors :meth:`drready.planning.engine.FleetPlanner.plan`: request ``k``'s potential is the
    most (up) or least (down) window energy over plans that keep the earlier accepted amounts,
    measured from the baseline's window energy. The baseline is the LP's own least-cost plan,
    or ``baseline_electric_kwh`` (T,) when given — least-cost plans can tie, and DR amounts are
    only comparable against the same baseline. After a down request the stored heat stays at
    least ``min(plan before it, recovery)`` (:meth:`UnitLP.recovery_floor`), as the fast path's;
    from the first up request asking something on, the stored heat stays at least the up-DR floor
    (:meth:`UnitLP.up_floor`) at every boundary except after the start of an asked down window,
    as the fast path's.
    """
    lp = UnitLP(problem, i)
    t = lp.t
    x = lp.solve(lp.cost_vector(), [])
    base = x[:t] if baseline_electric_kwh is None else np.asarray(baseline_electric_kwh, float)
    windows: list[WindowConstraint] = []
    current = base
    accepted: list[float] = []
    potentials: list[float] = []
    # from the first up request asking something on, never below the up-DR floor, except after
    # the start of an asked down window (FleetPlanner.plan, engine._keep_in_force)
    keep = lp.up_floor(base)
    floor: FloatArray | None = None
    for direction, s, e, amount in requests:
        now = float(base[s:e].sum())
        up = direction is Direction.UP
        sign = -1.0 if up else 1.0
        if not up and amount > 0.0:
            keep[s + 1 :] = -np.inf
        if (up and amount > 0.0) or floor is not None:
            floor = keep
        ext = lp.solve(lp.window_vector(s, e, sign), windows, floor_kwh=floor)
        pot = max(0.0, -sign * (float(ext[s:e].sum()) - now))
        acc = min(amount, pot)
        if direction is Direction.DOWN and amount > 0.0:
            # the shed heat is recovered early (FleetPlanner.plan, engine._recovery)
            lp.raise_stored_floor(lp.recovery_floor(s, e, current, windows, floor), e)
        target = now + acc if direction is Direction.UP else now - acc
        target = target - tol_kwh if direction is Direction.UP else target + tol_kwh
        windows.append(WindowConstraint(s, e, "ge" if direction is Direction.UP else "le", target))
        x = lp.solve(lp.cost_vector(), windows, floor_kwh=floor)
        current = x[:t]
        accepted.append(acc)
        potentials.append(pot)
    elec = x[:t]
    q = np.r_[problem.q0_kwh[i], x[t:]]
    return ReferencePlan(
        electric_kwh=elec,
        stored_heat_kwh=q,
        cost_yen=float(elec @ lp.price),
        accepted_kwh=tuple(accepted),
        potential_kwh=tuple(potentials),
    )


def reference_window_potential(
    problem: PlanningProblem,
    i: int,
    start: int,
    end: int,
    baseline_electric_kwh: FloatArray | None = None,
) -> tuple[float, float, float]:
    """(baseline, most, least) electricity in ``[start, end)`` for unit ``i`` [kWh], exact;
    ``most`` over the plans keeping the up-DR floor (:meth:`UnitLP.up_floor`), the baseline
    the LP's own or ``baseline_electric_kwh`` (T,)."""
    lp = UnitLP(problem, i)
    t = lp.t
    x = lp.solve(lp.cost_vector(), [])
    base = x[:t] if baseline_electric_kwh is None else np.asarray(baseline_electric_kwh, float)
    most = lp.solve(lp.window_vector(start, end, -1.0), [], floor_kwh=lp.up_floor(base))
    least = lp.solve(lp.window_vector(start, end, 1.0), [])
    return float(base[start:end].sum()), float(most[start:end].sum()), float(least[start:end].sum())
