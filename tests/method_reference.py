"""A deliberately separate, minimal re-implementation of the DR-potential method, written from
``docs/dr-potential-method.md`` § 10 ("Reproducing the method") — not from ``drready.planning``,
which it must not import (issue 17 item 4).

Plain Python over one unit, no numpy vectorisation, no shared helpers: it reads a method vector's
``inputs`` (written by ``drready profile vectors``) and computes what the document defines — the
loss-free transform, the required and allowed paths, the lowest and highest feasible paths, the
window extremes, the per-slot power bounds, the baseline by the cost-ordered fill, and the
potential and accepted amount of each request — for ``tests/test_method_vectors.py`` to compare
with the vector's ``expected`` within its stated tolerances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Unit:
    """One unit's problem in the loss-free space (§ 10.1)."""

    n: int
    slot_h: float
    a_cum: list[float]  # A[0..T]
    weight: list[float]  # electricity per y-unit of slot s: A[s+1] / COP[s]
    price: list[float]
    lower: list[float]  # L[0..T]
    upper: list[float]  # U[0..T]
    lo: list[float]  # least y per slot (0, or the pinned value)
    cap: list[float]  # most y per slot
    defer: list[float]  # ℓ[t] + (k_d − 1) · over[t] / A[t]: the most the up-DR floor asks


def safety_bounds(b: dict[str, Any]) -> tuple[list[float], list[float]]:
    """§ 2 / § 10.2: the stored-heat bounds at every slot boundary from the forecast's spread.

    lower = (reserve + z·σ + early)·h40, upper = max(Q_max − z·σ·h40, lower); at the horizon
    end lower ≥ min((use after the horizon + reserve)·h40, 0.95·Q_max)."""
    h40, z, q_max = b["heat_kwh_per_l_at_40c"], b["z"], b["q_max_kwh"]
    lower = [
        (b["reserve_l"] + z * s + e) * h40
        for s, e in zip(b["cum_sigma_l"], b["early_use_l"], strict=True)
    ]
    end_need = min((b["after_end_l"] + b["reserve_l"]) * h40, 0.95 * q_max)
    lower[-1] = max(lower[-1], end_need)
    upper = [max(q_max - z * s * h40, lo) for s, lo in zip(b["cum_sigma_l"], lower, strict=True)]
    return lower, upper


def unit_from(inputs: dict[str, Any], slot_h: float) -> Unit:
    """§ 10.1: ``A``, the scaled draws ``D`` and the bounds on the running sum ``Y``."""
    a = inputs["retention"]
    cop = inputs["cop"]
    d = inputs["draw_kwh"]
    q0 = inputs["q0_kwh"]
    n = len(a)
    a_cum = [1.0]
    for t in range(n):
        a_cum.append(a_cum[-1] * a[t])
    scaled = [0.0]
    for t in range(n):
        scaled.append(scaled[-1] + d[t] / a_cum[t + 1])
    lower = [inputs["lower_kwh"][t] / a_cum[t] + scaled[t] - q0 for t in range(n + 1)]
    upper = [inputs["upper_kwh"][t] / a_cum[t] + scaled[t] - q0 for t in range(n + 1)]
    lower[0] = upper[0] = 0.0
    upper = [max(u, 0.0) for u in upper]  # no heating at all already stays above it: raised
    return Unit(
        n=n,
        slot_h=slot_h,
        a_cum=a_cum,
        weight=[a_cum[s + 1] / cop[s] for s in range(n)],
        price=list(inputs["price_yen_per_kwh"]),
        lower=lower,
        upper=upper,
        lo=[0.0] * n,
        cap=[inputs["heat_cap_kwh"][s] / a_cum[s + 1] for s in range(n)],
        defer=[
            lower[t] + (inputs["defer_margin"] - 1.0) * inputs["over_kwh"][t] / a_cum[t]
            for t in range(n + 1)
        ],
    )


def required(u: Unit) -> list[float]:
    """``R[t]``: the least ``Y[t]`` from which every later lower bound is still reachable."""
    r = list(u.lower)
    for t in range(u.n - 1, -1, -1):
        r[t] = max(r[t], r[t + 1] - u.cap[t])
    return r


def allowed(u: Unit) -> list[float]:
    """``F[t]``: the most ``Y[t]`` that keeps every later upper bound satisfiable."""
    f = list(u.upper)
    for t in range(u.n - 1, -1, -1):
        f[t] = min(f[t], f[t + 1] - u.lo[t])
    return f


def walk_low(u: Unit, r: list[float], start: int, y0: float, end: int) -> list[float]:
    """From ``Y[start] = y0``: the least heat each slot may take (``Y`` at ``start..end``)."""
    out = [y0]
    for t in range(start, end):
        out.append(max(out[-1] + u.lo[t], r[t + 1]))
    return out


def walk_high(u: Unit, f: list[float], start: int, y0: float, end: int) -> list[float]:
    """From ``Y[start] = y0``: the most heat each slot may take (``Y`` at ``start..end``)."""
    out = [y0]
    for t in range(start, end):
        out.append(min(out[-1] + u.cap[t], f[t + 1]))
    return out


@dataclass(frozen=True)
class Window:
    """§ 10.3: a window's extremes and per-slot power bounds [kWh, kW]."""

    baseline_kwh: float
    most_kwh: float
    least_kwh: float
    min_kw: list[float]
    max_kw: list[float]


def prefix(y: list[float]) -> list[float]:
    """``Y[0..T]``: the running sum of ``y`` from 0."""
    out = [0.0]
    for v in y:
        out.append(out[-1] + v)
    return out


def floored(u: Unit, keep: list[float]) -> Unit:
    """§ 10.2 up-DR floor: ``u`` with ``Y[t] ≥ min(keep[t], F[t])`` added to its lower bounds
    (``keep`` the baseline's running sum, ``-inf`` where no floor holds)."""
    f = allowed(u)
    lower = [max(lo, min(k, fv)) for lo, k, fv in zip(u.lower, keep, f, strict=True)]
    return Unit(u.n, u.slot_h, u.a_cum, u.weight, u.price, lower, u.upper, u.lo, u.cap, u.defer)


def up_floor(u: Unit, baseline_y: list[float]) -> list[float]:
    """§ 10.2 up-DR floor: the baseline's running sum, at most ``defer``."""
    return [min(b, d) for b, d in zip(prefix(baseline_y), u.defer, strict=True)]


def window(
    u: Unit,
    baseline_y: list[float],
    start: int,
    end: int,
    keep: list[float] | None = None,
) -> Window:
    """The most and least electricity of ``[start, end)`` and each slot's power bounds; the
    most heat (and each slot's most power) over the plans never below ``keep`` (default: the
    baseline's running sum, § 10.2)."""
    r, f = required(u), allowed(u)
    high = walk_high(u, f, 0, 0.0, u.n)
    uf = floored(u, up_floor(u, baseline_y) if keep is None else keep)
    low_f = walk_low(uf, required(uf), 0, 0.0, u.n)
    fill = walk_high(u, f, start, low_f[start], end)  # lowest path before, then full power
    keep_path = walk_low(u, r, start, high[start], end)  # highest path before, then R's
    most = sum((fill[k + 1] - fill[k]) * u.weight[start + k] for k in range(end - start))
    least = sum((keep_path[k + 1] - keep_path[k]) * u.weight[start + k] for k in range(end - start))
    min_kw, max_kw = [], []
    for t in range(start, end):
        hi = min(u.cap[t], f[t + 1] - low_f[t])
        lo = max(u.lo[t], r[t + 1] - high[t])
        lo = min(max(lo, u.lo[t]), u.cap[t])
        hi = min(max(hi, lo), u.cap[t])
        base_e = baseline_y[t] * u.weight[t]
        min_kw.append(min(lo * u.weight[t], base_e) / u.slot_h)
        max_kw.append(max(hi * u.weight[t], base_e) / u.slot_h)
    base = sum(baseline_y[t] * u.weight[t] for t in range(start, end))
    return Window(base, most, least, min_kw, max_kw)


def baseline(u: Unit) -> list[float]:
    """§ 10.2: the cost-ordered fill. Slots by ascending cost per y-unit (price × weight,
    rounded to 1e-9; ties: the later slot first); each adds what the largest later deficit
    still needs, net of what the slots before it must still add, at most its capacity and the
    smallest later headroom."""
    n = u.n
    order = sorted(range(n), key=lambda s: (round(u.price[s] * u.weight[s], 9), -s))
    y = list(u.lo)
    run = [0.0]
    for s in range(n):
        run.append(run[-1] + y[s])
    deficit = [u.lower[t] - run[t] for t in range(n + 1)]
    headroom = [u.upper[t] - run[t] for t in range(n + 1)]
    open_slot = [u.lo[s] != u.cap[s] for s in range(n)]
    for s in order:
        if u.lo[s] == u.cap[s]:
            continue
        need = max(deficit[s + 1 :])
        room = min(headroom[s + 1 :])
        if any(open_slot[:s]):
            pending = max(0.0, max(deficit[: s + 1]))
            need -= pending
            room -= pending
        open_slot[s] = False
        add = max(0.0, min(u.cap[s] - y[s], need, room))
        if add == 0.0:
            continue
        y[s] += add
        for t in range(s + 1, n + 1):
            deficit[t] -= add
            headroom[t] -= add
    return y


def pinned(u: Unit, start: int, end: int, electric_kwh: list[float]) -> Unit:
    """``u`` with slots ``[start, end)`` fixed at ``electric_kwh`` (a reported plan's)."""
    lo, cap = list(u.lo), list(u.cap)
    for t in range(start, end):
        lo[t] = cap[t] = electric_kwh[t] / u.weight[t]
    return Unit(u.n, u.slot_h, u.a_cum, u.weight, u.price, u.lower, u.upper, lo, cap, u.defer)


def requests(
    u: Unit, baseline_y: list[float], asked: list[dict[str, Any]], plan_kwh: list[float]
) -> list[tuple[float, float]]:
    """§ 10.4: (potential, accepted) of each request in order; a window in which something was
    accepted keeps the reported plan's profile (``plan_kwh``) for the later requests."""
    out = []
    cur = u
    # § 10.2: from the first up request asking something on, the up-DR floor, except after the
    # start of a down window in which something was asked
    keep = up_floor(u, baseline_y)
    none = [float("-inf")] * (u.n + 1)
    floor_on = False
    for req in asked:
        s, e = req["start_slot"], req["end_slot"]
        up = req["direction"] == "up"
        floor_on = floor_on or (up and req["amount_kwh"] > 1e-6)
        if not up and req["amount_kwh"] > 1e-6:
            keep = keep[: s + 1] + [float("-inf")] * (u.n - s)
        w = window(cur, baseline_y, s, e, keep if floor_on else none)
        pot = max(0.0, w.most_kwh - w.baseline_kwh if up else w.baseline_kwh - w.least_kwh)
        acc = min(req["amount_kwh"], pot)
        out.append((pot, acc))
        if acc > 1e-9:
            cur = pinned(cur, s, e, plan_kwh)
    return out


def stored_heat(inputs: dict[str, Any], electric_kwh: list[float]) -> list[float]:
    """§ 1: ``Q[t+1] = a[t]·Q[t] + COP[t]·e[t] − d[t]``."""
    q = [inputs["q0_kwh"]]
    for t, e in enumerate(electric_kwh):
        q.append(inputs["retention"][t] * q[-1] + inputs["cop"][t] * e - inputs["draw_kwh"][t])
    return q
