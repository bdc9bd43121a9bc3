"""Method test vectors: a household's planning inputs → its expected baseline, envelope and plan
(E1, issue 17 items 3 and 4).

``docs/dr-potential-method.md`` defines the DR potential precisely enough to be re-implemented;
these vectors are what a re-implementation must reproduce, within the tolerances of
:data:`TOLERANCES` (the document's § "Reproducing the method"). Each vector holds:

* ``inputs`` — the problem of the document's §§ 1–2 at slot level: the start's stored heat,
  retention ``a[t]``, ``COP[t]``, price, heat capacity and expected draw heat per slot, and the
  stored-heat bounds of § 2 at every slot boundary. The physics that produces ``a``, ``COP`` and
  the draws (weather, the national method's heat pump, the national schedule) is checked
  separately against the national calculation method (``tests/national_method.py``); the
  bounds' own inputs (the forecast's mean use, the standard deviation of cumulative use, the
  use that may come an hour early, the reserve, ``z``, ``Q_max``, the use after the horizon)
  are given beside them under ``bound_inputs``, so § 2's formula can be checked too.
* ``expected`` — the baseline (electricity per slot, cost), for each window the baseline, most and
  least energy, up- and down-DR potential and per-slot least and most power, and for a sequence
  of requests the accepted amounts and the plan's cost and window energies.

Only households whose bounds need no loosening are published (the relaxation of § 2 is a
fallback for infeasible starts, reported as a shortfall, and is not part of the reproducible
contract). Values come from :mod:`drready.planning` (the fast path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any

import numpy as np

from drready.domain import DeviceId, Direction
from drready.physics.water import HEAT_KWH_PER_L_K, USE_TEMP_C
from drready.planning.engine import DEFER_MARGIN, WindowRequest
from drready.planning.problem import default_initial_heat_kwh, draw_forecast
from drready.planning.unit import UnitConfig, UnitPlanner

__all__ = ["METHOD_CASES", "TOLERANCES", "MethodCase", "method_vector", "method_vectors"]

TOLERANCES: dict[str, float] = {
    "energy_kwh": 0.005,
    "power_kw": 0.01,
    "cost_yen": 0.5,
}
"""Within these a re-implementation reproduces a vector: every energy (window totals,
potentials, accepted amounts, baseline electricity per slot) ±5 Wh, every per-slot power
±10 W, every cost ±0.5 yen."""

N_SLOTS = 64
"""The day-ahead horizon: 23:00 of the day before to 07:00 of the day after (32 h)."""


@dataclass(frozen=True)
class MethodCase:
    """One household, day and tank state, with the windows and requests it is asked."""

    name: str
    persons: int
    tank_l: float
    day: date
    fill: float
    windows: tuple[tuple[Direction, int, int], ...]
    requests: tuple[tuple[Direction, int, int, float], ...]
    """(direction, start hour, end hour, amount as a share of that window's potential)."""


_UP_NOON = (Direction.UP, 10, 14)
_DOWN_NIGHT = (Direction.DOWN, 0, 4)
_UP_AFTERNOON = (Direction.UP, 13, 17)
_DOWN_EVENING = (Direction.DOWN, 17, 20)

METHOD_CASES: tuple[MethodCase, ...] = (
    MethodCase(
        "4p-460L-winter-quarter",
        4,
        460.0,
        date(2026, 1, 14),
        0.25,
        (_UP_NOON, _DOWN_NIGHT, _UP_AFTERNOON, _DOWN_EVENING),
        ((Direction.UP, 10, 14, 0.5), (Direction.DOWN, 0, 4, 1.5)),
    ),
    MethodCase(
        "2p-370L-spring-quarter",
        2,
        370.0,
        date(2026, 4, 15),
        0.25,
        (_UP_NOON, _DOWN_NIGHT, _UP_AFTERNOON),
        ((Direction.UP, 10, 14, 1.0),),
    ),
    MethodCase(
        "3p-460L-summer-half",
        3,
        460.0,
        date(2026, 8, 5),
        0.5,
        (_UP_NOON, _DOWN_NIGHT, _UP_AFTERNOON),
        ((Direction.UP, 13, 17, 0.8), (Direction.UP, 10, 14, 2.0)),
    ),
    MethodCase(
        "1p-370L-autumn-empty",
        1,
        370.0,
        date(2026, 10, 21),
        0.05,
        (_UP_NOON, _DOWN_NIGHT),
        ((Direction.DOWN, 0, 4, 0.5),),
    ),
)


def _slot(hour: int) -> int:
    """Slot index of ``hour`` (local) of the served day on the 23:00 grid."""
    return 2 * (hour + 1)


def _r(x: Any, digits: int = 9) -> Any:
    """Floats rounded for publication (arrays to lists)."""
    if isinstance(x, np.ndarray):
        return [round(float(v), digits) for v in x.ravel()]
    return round(float(x), digits)


def method_vector(case: MethodCase) -> dict[str, Any]:
    """The vector of ``case`` (see the module docstring)."""
    config = UnitConfig(
        device_id=DeviceId(maker_code="000005", serial=f"VEC-{case.name}"[:13]),
        persons=case.persons,
        tank_l=case.tank_l,
    )
    fleet = config.fleet()
    probe = UnitPlanner.day_ahead(config, case.day, n_slots=N_SLOTS)
    q0 = float(default_initial_heat_kwh(fleet, probe.grid, fill=case.fill)[0])
    unit = UnitPlanner.day_ahead(config, case.day, initial_heat_kwh=q0, n_slots=N_SLOTS)
    prob = unit.problem
    if float(prob.unavoidable_shortfall_kwh[0]) > 0.0:
        raise ValueError(f"{case.name}: bounds were loosened; choose another case")
    forecast = draw_forecast(fleet, prob.grid)
    per_l = float(HEAT_KWH_PER_L_K * (USE_TEMP_C - prob.mains_temp_c[0]))
    planner = unit.planner
    base = planner.baseline()
    h = prob.slot_h
    windows = []
    for direction, h0, h1 in case.windows:
        s, e = _slot(h0), _slot(h1)
        pot = planner.potential(s, e)
        windows.append(
            {
                "label": f"{direction.value} {h0:02d}-{h1:02d} h",
                "start_slot": s,
                "end_slot": e,
                "baseline_kwh": _r(pot.baseline_kwh[0]),
                "most_kwh": _r(pot.most_kwh[0]),
                "least_kwh": _r(pot.least_kwh[0]),
                "up_kwh": _r(pot.up_kwh[0]),
                "down_kwh": _r(pot.down_kwh[0]),
                "min_kw": _r(pot.min_kw[0]),
                "max_kw": _r(pot.max_kw[0]),
                "cum_min_kwh": _r(pot.cum_min_kwh[0]),
                "cum_max_kwh": _r(pot.cum_max_kwh[0]),
            }
        )
    requests = []
    for direction, h0, h1, share in case.requests:
        s, e = _slot(h0), _slot(h1)
        pot = planner.potential(s, e)
        avail = float(pot.up_kwh[0] if direction is Direction.UP else pot.down_kwh[0])
        amount = round(max(share * avail, 0.1), 3)
        requests.append((direction, s, e, amount))
    plan = planner.plan([WindowRequest(d, s, e, np.array([a])) for d, s, e, a in requests])
    return {
        "name": case.name,
        "household": {
            "persons": case.persons,
            "tank_l": case.tank_l,
            "bathtub": True,
            "served_day": case.day.isoformat(),
            "initial_fill_of_q_max": case.fill,
            "heat_pump": "rated-efficiency 3.3 class, 4.5 kW heat (method § 9)",
            "climate": "Tokyo typical year (JMA normals 1991-2020)",
            "tariff": "night TOU: 23:00-07:00 27 yen/kWh, 07:00-23:00 38 yen/kWh",
        },
        "grid": {
            "start": prob.grid.start.isoformat(),
            "n_slots": prob.n_slots,
            "slot_h": h,
            "slot_of_hour": "slot index of local hour H of the served day = 2 (H + 1)",
        },
        "inputs": {
            "q0_kwh": _r(prob.q0_kwh[0]),
            "retention": _r(prob.retention[:, 0]),
            "cop": _r(prob.cop[:, 0]),
            "heat_cap_kwh": _r(prob.heat_cap_kwh[:, 0]),
            "price_yen_per_kwh": _r(prob.price_yen_per_kwh),
            "draw_kwh": _r(prob.draw_kwh[:, 0]),
            "lower_kwh": _r(prob.lower_kwh[:, 0]),
            "upper_kwh": _r(prob.upper_kwh[:, 0]),
            "over_kwh": _r(prob.over_kwh[:, 0]) if prob.over_kwh is not None else None,
            "defer_margin": DEFER_MARGIN,
        },
        "bound_inputs": {
            "q_max_kwh": _r(prob.q_max_kwh[0]),
            "confidence": prob.confidence,
            "z": _r(NormalDist().inv_cdf(prob.confidence)),
            "reserve_l": float(fleet.reserve_l),
            "heat_kwh_per_l_at_40c": _r(per_l),
            "mains_temp_c": _r(prob.mains_temp_c[0]),
            "after_end_l": _r(forecast.after_end_l[0]),
            "mean_use_l": _r(forecast.mean_l[:, 0]),
            "cum_sigma_l": _r(forecast.cum_sigma_l[:, 0]),
            "early_use_l": _r(
                np.zeros(prob.n_slots + 1) if forecast.early_l is None else forecast.early_l[:, 0]
            ),
        },
        "expected": {
            "baseline": {
                "electric_kwh": _r(base.electric_kwh[0]),
                "stored_heat_kwh": _r(base.stored_heat_kwh[0]),
                "cost_yen": _r(base.cost_yen[0]),
            },
            "windows": windows,
            "requests": [
                {"direction": d.value, "start_slot": s, "end_slot": e, "amount_kwh": a}
                for d, s, e, a in requests
            ],
            "plan": {
                "accepted_kwh": _r(plan.accepted_kwh[:, 0]),
                "potential_kwh": _r(plan.potential_kwh[:, 0]),
                "electric_kwh": _r(plan.electric_kwh[0]),
                "cost_yen": _r(plan.cost_yen[0]),
            },
        },
        "tolerances": dict(TOLERANCES),
    }


def method_vectors() -> list[dict[str, Any]]:
    """Every published method vector."""
    return [method_vector(c) for c in METHOD_CASES]
