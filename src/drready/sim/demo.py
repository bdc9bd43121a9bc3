"""The in-process demo: a fleet's day with one up-DR and one down-DR (U2, F1–F4).

A fleet of simulated households is asked, day-ahead (23:00 the evening before), for its DR
potential (F1) in two windows: absorbing solar surplus 10:00–14:00 (上げDR) and shedding load
17:00–20:00 (下げDR). An in-process servicer splits each target over the units in proportion to
their potential (never above it), sends one DR request per unit (F2), each unit re-plans (F3)
and returns its plan and response (F4). The day is then simulated with stochastic hot-water use
for both the baseline and the DR plans, and the delivered energy and shortages are reported.
``drready engine-demo`` runs it; the whole ecosystem over the real protocols is ``drready demo``
(:mod:`drready.sim.day_demo`). This module computes and writes files; the command line prints
(:mod:`drready.cli.engine`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from drready.domain import DeviceId, Direction, DrRequest, DrResponse, SlotGrid
from drready.domain.time import zone
from drready.domain.tolerances import REL_TOL, ZERO_KWH
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.execution import execute_plan
from drready.planning.problem import (
    Fleet,
    build_problem,
    days_covering,
    default_initial_heat_kwh,
    draw_forecast,
)
from drready.sim.plots import plot_fleet_power

STEP_MINUTES = 5
PROGRESS_STEPS = 5
"""How often :func:`run_demo` calls its ``progress`` callback (plan, potentials, DR plan, two
simulated days)."""


@dataclass(frozen=True)
class DemoWindow:
    """A DR window of the demo and the servicer's target for the whole fleet."""

    label: str
    direction: Direction
    start: time
    end: time
    target_kwh_per_household: float


DEMO_WINDOWS = (
    DemoWindow("up-DR", Direction.UP, time(10, 0), time(14, 0), 2.0),
    DemoWindow("down-DR", Direction.DOWN, time(17, 0), time(20, 0), 0.5),
)


def run_demo(
    households: int,
    day: date,
    seed: int,
    out_dir: Path,
    progress: Callable[[], None] | None = None,
) -> dict[str, object]:
    """Run the demo; write ``fleet_power.png`` and ``summary.json`` into ``out_dir``.

    Returns the summary (what ``summary.json`` holds). ``progress`` is called
    :data:`PROGRESS_STEPS` times as the work advances.
    """
    advance = progress or (lambda: None)
    rng = np.random.default_rng(seed)
    grid = SlotGrid.day_ahead(day, n_slots=64)
    fleet = Fleet.random(rng, households)
    ids = [DeviceId(maker_code="000000", serial=f"SIM{k:07d}") for k in range(households)]
    q0 = default_initial_heat_kwh(fleet, grid) * rng.uniform(0.6, 1.4, households)
    problem = build_problem(fleet, grid, q0, draw_forecast(fleet, grid))
    planner = FleetPlanner(problem)
    baseline = planner.baseline()
    advance()

    tz = zone(grid.tz)
    windows = []
    requests: list[WindowRequest] = []
    declared = []
    targets = []
    for w in DEMO_WINDOWS:
        s, e = grid.window_indices(
            datetime.combine(day, w.start, tzinfo=tz), datetime.combine(day, w.end, tzinfo=tz)
        )
        pot = planner.potential(s, e)
        avail = pot.up_kwh if w.direction is Direction.UP else pot.down_kwh  # F1
        target = w.target_kwh_per_household * households
        share = avail / avail.sum() * min(target, avail.sum()) if avail.sum() > 0 else avail
        windows.append((w, s, e))
        requests.append(WindowRequest(w.direction, s, e, share))
        declared.append(avail)
        targets.append(target)
    advance()

    dr = planner.plan(requests)  # F2 → F3
    advance()

    days, offset = days_covering(grid)
    sample = sample_step_use_l(
        rng,
        fleet.persons,
        [day_type_for(d) for d in days],
        STEP_MINUTES,
        bathtub=fleet.bathtub,
    )
    k = 30 // STEP_MINUTES
    sl = slice(offset * k, (offset + grid.n_slots) * k)
    use = sample.use_l[:, sl]
    manual = sample.manual_reheat[:, sl]
    base_run = execute_plan(problem, baseline.heat_kwh, use, manual, fleet.reserve_l)
    advance()
    dr_run = execute_plan(problem, dr.heat_kwh, use, manual, fleet.reserve_l)
    advance()

    rows = []
    for j, (w, s, e) in enumerate(windows):
        sign = 1.0 if w.direction is Direction.UP else -1.0
        delivered = sign * (dr_run.electric_kwh[:, s:e] - base_run.electric_kwh[:, s:e]).sum(1)
        statuses: Counter[str] = Counter()
        for u in range(households):
            amount = float(requests[j].amount_kwh[u])
            if amount <= ZERO_KWH:
                statuses["not asked (no potential)"] += 1
                continue
            req = DrRequest(
                request_id=f"{w.direction.value}-{u}",
                direction=w.direction,
                start=grid.starts()[s],
                end=grid.starts()[e] if e < grid.n_slots else grid.end,
                amount_kwh=amount,
                issuer="demo-servicer",
                issued_at=grid.start,
            )
            acc = min(float(dr.accepted_kwh[j, u]), amount)
            reason = None if acc >= amount * (1 - REL_TOL) else "potential used by earlier request"
            resp = DrResponse.from_amounts(req, ids[u], acc, reason)
            statuses[resp.status.value] += 1
        rows.append(
            {
                "window": f"{w.label} {w.start:%H:%M}–{w.end:%H:%M}",
                "target_kwh": targets[j],
                "declared_kwh": float(declared[j].sum()),
                "requested_kwh": float(requests[j].amount_kwh.sum()),
                "accepted_kwh": float(dr.accepted_kwh[j].sum()),
                "delivered_kwh": float(delivered.sum()),
                "responses": dict(statuses),
            }
        )
    summary: dict[str, object] = {
        "households": households,
        "day": day.isoformat(),
        "seed": seed,
        "windows": rows,
        "shortages_baseline": int(base_run.has_shortage.sum()),
        "shortages_dr": int(dr_run.has_shortage.sum()),
        "dr_caused_shortages": int((dr_run.has_shortage & ~base_run.has_shortage).sum()),
        "cost_baseline_yen": float(baseline.cost_yen.sum()),
        "cost_dr_yen": float(dr.cost_yen.sum()),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    starts = grid.starts()
    png = plot_fleet_power(
        starts,
        {
            "baseline (planned)": baseline.power_kw().sum(0),
            "baseline (simulated)": base_run.electric_kwh.sum(0) / grid.slot_hours,
            "with DR (simulated)": dr_run.electric_kwh.sum(0) / grid.slot_hours,
            "with DR (planned)": dr.power_kw().sum(0),
        },
        [(w.label, starts[s], starts[e] if e < grid.n_slots else grid.end) for w, s, e in windows],
        out_dir / "fleet_power.png",
        f"{households} heat pump water heaters: fleet power vs baseline, {day}",
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    summary["files"] = [str(png), str(out_dir / "summary.json")]
    return summary
