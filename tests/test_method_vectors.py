"""The method vectors are reproduced by a separate re-implementation written from the document
(issue 17 item 4): ``tests/method_reference.py`` (no ``drready.planning``) recomputes every
vector of :mod:`drready.evaluation.method_vectors` within the tolerances the vector states, and
an exact LP (scipy's HiGHS, also independent of drready) confirms that the baseline is a
least-cost plan to within 1 % and that the window extremes are bounds no safe plan beats."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from drready.evaluation.method_vectors import TOLERANCES, method_vectors
from tests import method_reference as ref

VECTORS = method_vectors()


def test_the_reference_does_not_import_the_planner() -> None:
    tree = ast.parse(Path(ref.__file__).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.startswith("drready")], names


def _close(got: float | list[float], want: float | list[float], tol: float, what: str) -> None:
    g, w = np.atleast_1d(got), np.atleast_1d(want)
    assert g.shape == w.shape, what
    worst = float(np.max(np.abs(g - w)))
    assert worst <= tol, f"{what}: off by {worst:.6g} > {tol}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_reference_reproduces_the_vector(vector: dict[str, Any]) -> None:
    tol = vector["tolerances"]
    assert tol == TOLERANCES
    inputs, expected = vector["inputs"], vector["expected"]
    lower, upper = ref.safety_bounds(vector["bound_inputs"])
    _close(lower[1:], inputs["lower_kwh"][1:], 1e-6, "lower bounds (§ 2)")
    _close(upper[1:], inputs["upper_kwh"][1:], 1e-6, "upper bounds (§ 2)")
    u = ref.unit_from(inputs, vector["grid"]["slot_h"])
    base_y = ref.baseline(u)
    base_e = [y * w for y, w in zip(base_y, u.weight, strict=True)]
    _close(base_e, expected["baseline"]["electric_kwh"], tol["energy_kwh"], "baseline per slot")
    cost = sum(e * p for e, p in zip(base_e, u.price, strict=True))
    _close(cost, expected["baseline"]["cost_yen"], tol["cost_yen"], "baseline cost")
    q = ref.stored_heat(inputs, base_e)
    _close(q, expected["baseline"]["stored_heat_kwh"], tol["energy_kwh"] * 10, "stored heat")
    for w in expected["windows"]:
        got = ref.window(u, base_y, w["start_slot"], w["end_slot"])
        label = w["label"]
        _close(got.baseline_kwh, w["baseline_kwh"], tol["energy_kwh"], f"{label} baseline")
        _close(got.most_kwh, w["most_kwh"], tol["energy_kwh"], f"{label} most")
        _close(got.least_kwh, w["least_kwh"], tol["energy_kwh"], f"{label} least")
        _close(max(0.0, got.most_kwh - got.baseline_kwh), w["up_kwh"], tol["energy_kwh"], label)
        _close(max(0.0, got.baseline_kwh - got.least_kwh), w["down_kwh"], tol["energy_kwh"], label)
        _close(got.min_kw, w["min_kw"], tol["power_kw"], f"{label} min_kw")
        _close(got.max_kw, w["max_kw"], tol["power_kw"], f"{label} max_kw")
        # the cumulative bounds end at the window's extremes (their inner shape is informative)
        _close(w["cum_min_kwh"][-1], w["least_kwh"], tol["energy_kwh"], f"{label} cum_min")
        _close(w["cum_max_kwh"][-1], max(w["most_kwh"], w["least_kwh"]), tol["energy_kwh"], label)
    plan = expected["plan"]
    answers = ref.requests(u, base_y, expected["requests"], plan["electric_kwh"])
    _close([p for p, _ in answers], plan["potential_kwh"], tol["energy_kwh"], "potentials")
    _close([a for _, a in answers], plan["accepted_kwh"], tol["energy_kwh"], "accepted")
    # the plan delivers what it accepted, from the baseline, and stays inside the bounds
    for req, acc in zip(expected["requests"], plan["accepted_kwh"], strict=True):
        s, e = req["start_slot"], req["end_slot"]
        window_e = sum(plan["electric_kwh"][s:e]) - sum(base_e[s:e])
        sign = 1.0 if req["direction"] == "up" else -1.0
        assert sign * window_e >= acc - tol["energy_kwh"], req
    q_plan = ref.stored_heat(inputs, plan["electric_kwh"])
    assert min(np.array(q_plan[1:]) - inputs["lower_kwh"][1:]) >= -tol["energy_kwh"]
    assert max(np.array(q_plan[1:]) - inputs["upper_kwh"][1:]) <= tol["energy_kwh"]


def _lp(
    inputs: dict[str, Any], objective: np.ndarray, floor: list[float] | None = None
) -> np.ndarray:
    """Exact LP over electricity e[t] and stored heat Q[1..T] (the document's § 1–2); with
    ``floor``, Q[t] at least that too (the up-DR floor of § 10.2)."""
    a, c, d = (np.array(inputs[k]) for k in ("retention", "cop", "draw_kwh"))
    t = len(a)
    rows, cols, vals = [], [], []
    for k in range(t):
        rows += [k, k]
        cols += [t + k, k]
        vals += [1.0, -c[k]]
        if k:
            rows.append(k)
            cols.append(t + k - 1)
            vals.append(-a[k])
    b_eq = -d.copy()
    b_eq[0] += a[0] * inputs["q0_kwh"]
    cap = np.array(inputs["heat_cap_kwh"]) / c
    lower = np.array(inputs["lower_kwh"][1:])
    upper = np.array(inputs["upper_kwh"][1:])
    if floor is not None:  # 1e-6 kWh below: met exactly by the baseline, not by LP round-off
        lower = np.minimum(np.maximum(lower, np.array(floor[1:]) - 1e-6), upper)
    bounds = list(
        zip(
            np.r_[np.zeros(t), lower],
            np.r_[cap, upper],
            strict=True,
        )
    )
    res = linprog(
        np.r_[objective, np.zeros(t)],
        A_eq=sp.csr_array((vals, (rows, cols)), shape=(t, 2 * t)),
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
    )
    assert res.status == 0, res.message
    return np.asarray(res.x[:t])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_an_exact_lp_bounds_the_vector(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    price = np.array(inputs["price_yen_per_kwh"])
    best = float(_lp(inputs, price) @ price)
    cost = expected["baseline"]["cost_yen"]
    assert best - 1e-6 <= cost <= best * 1.01, (best, cost)
    t = len(price)
    for w in expected["windows"]:
        m = np.zeros(t)
        m[w["start_slot"] : w["end_slot"]] = 1.0
        # the up-DR floor of § 10.2: the baseline's stored heat, at most L + (k_d − 1)·over
        k_d = inputs["defer_margin"]
        floor = np.minimum(
            expected["baseline"]["stored_heat_kwh"],
            np.array(inputs["lower_kwh"]) + (k_d - 1.0) * np.array(inputs["over_kwh"]),
        )
        most = float(_lp(inputs, -m, list(floor)) @ m)
        least = float(_lp(inputs, m) @ m)
        # the closed forms are safe plans: never beyond the exact extremes, and close to them
        assert least - 1e-6 <= w["least_kwh"] <= w["most_kwh"] <= most + 1e-6
        assert most - w["most_kwh"] <= 0.03 * most + 0.01, (w["label"], most, w["most_kwh"])
        assert w["least_kwh"] - least <= 0.02 * w["baseline_kwh"] + 0.01, w["label"]
