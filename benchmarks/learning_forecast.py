"""Cost of units that learn (issue 13 item 2): the learned forecast of one chunk of the live
fleet, and the state per unit.

Prints a table: for a chunk of ``--units`` units (the live fleet's chunk, 10 000) with a full
28-day history, the time of :func:`drready.planning.forecast.learned_forecast` on the rolling
96-slot horizon and on the 64-slot day-ahead grid, against the national schedule's forecast
(:func:`drready.planning.problem.draw_forecast`), the bytes kept per unit, and what that
makes for 10⁶ units (a roll re-forecasts every chunk once per 30-minute slot).

    .venv/bin/python benchmarks/learning_forecast.py [--units 10000] [--repeat 3]

Times are wall-clock and process CPU (the machine is shared: CPU is what the forecast costs).
With ``--live N`` it runs instead the live fleet (:class:`drready.cloud.live.LiveFleet`, in
process, on a clock stopped at 04:40 JST as ``benchmarks/cloud_scale.py``'s) of N units with
``--forecast learning|national``: start-up, the whole fleet's F1 answer for tomorrow
10:00–14:00, one roll (to 05:00), the same F1 answer again after it, and the process's peak RSS
(``VmHWM``) — one forecast per process, so that the RSS is its own. A learning fleet keeps the
forecast each roll derived for the answers until the next roll
(:mod:`drready.planning.forecast_cache`); the bytes it keeps per unit are printed too::

    .venv/bin/python benchmarks/learning_forecast.py --live 1000000 --forecast learning
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from drready.cloud.live import LiveFleet
from drready.domain import DEFAULT_TZ, SlotGrid
from drready.domain.clock import SimClock
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.planning.forecast import (
    HISTORY_DAYS,
    LearningForecaster,
    UsageHistory,
    learned_forecast,
)
from drready.planning.problem import Fleet, draw_forecast
from drready.planning.rolling import rolling_grid


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def live(n: int, learning: bool) -> None:
    """The live fleet's start-up, F1 answer and roll at ``n`` units (see the module)."""
    zone = ZoneInfo(DEFAULT_TZ)
    clock = SimClock(datetime(2026, 10, 29, 4, 40, tzinfo=zone), speed=0.0)
    cpu, wall = time.process_time(), time.perf_counter()
    fleet = LiveFleet.random(n, clock, learning=learning)
    rows = [("start-up", time.perf_counter() - wall, time.process_time() - cpu)]
    window = (
        datetime(2026, 10, 30, 10, 0, tzinfo=zone),
        datetime(2026, 10, 30, 14, 0, tzinfo=zone),
    )
    cpu, wall = time.process_time(), time.perf_counter()
    fleet.group_envelope(*window)
    rows.append(("F1 answer, whole fleet", time.perf_counter() - wall, time.process_time() - cpu))
    cpu, wall = time.process_time(), time.perf_counter()
    fleet.advance(datetime(2026, 10, 29, 5, 0, tzinfo=zone))
    rows.append(("roll (05:00)", time.perf_counter() - wall, time.process_time() - cpu))
    cpu, wall = time.process_time(), time.perf_counter()
    fleet.group_envelope(*window)
    rows.append(("F1 answer after the roll", time.perf_counter() - wall, time.process_time() - cpu))
    name = "learning" if learning else "national"
    print(f"| live fleet, {n} units, --forecast {name} | wall [s] | CPU [s] |")
    print("|---|---:|---:|")
    for what, w, c in rows:
        print(f"| {what} | {w:.1f} | {c:.1f} |")
    print(f"| peak RSS (VmHWM) [MB] | {_vm_hwm_mb():.0f} | |")
    if isinstance(fleet.forecaster, LearningForecaster):
        kept = fleet.forecaster.kept.nbytes
        print(f"| learned forecasts kept [B per unit] | {kept / n:.0f} | |")
    print(f"\nload average (1, 5, 15 min) at the end: {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--live", type=int, default=0, help="units of a live fleet (0: off)")
    ap.add_argument("--forecast", choices=["learning", "national"], default="learning")
    args = ap.parse_args()
    if args.live:
        live(args.live, args.forecast == "learning")
        return
    rng = np.random.default_rng(1)
    n = args.units
    fleet = Fleet.random(rng, n)
    first = date(2026, 10, 1)
    days = [first + timedelta(days=d) for d in range(HISTORY_DAYS)]
    use = sample_step_use_l(rng, fleet.persons, [day_type_for(d) for d in days], 30).use_l
    hist = UsageHistory(n)
    hist.load(first, use.reshape(n, HISTORY_DAYS, 48))
    grids = {
        "rolling 96 slots": rolling_grid(
            datetime(2026, 10, 29, 13, 0, tzinfo=SlotGrid.day_ahead(first).zoneinfo), DEFAULT_TZ
        ),
        "day-ahead 64 slots": SlotGrid.day_ahead(date(2026, 10, 29)),
    }
    print(
        "| grid | national schedule [s] | learned, wall [s] | learned, CPU [s] "
        "| per 10⁶ units, CPU [s] |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, grid in grids.items():
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            prior = draw_forecast(fleet, grid)
        t_prior = (time.perf_counter() - t0) / args.repeat
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.repeat):
            hist.derived = None  # as in a roll: the history changed since the last forecast
            learned_forecast(hist, slice(None), grid, 0.95, prior)
        t_learn = (time.perf_counter() - t0) / args.repeat
        c_learn = (time.process_time() - c0) / args.repeat
        print(
            f"| {name} | {t_prior:.3f} | {t_learn:.3f} | {c_learn:.3f} | {c_learn * 1e6 / n:.0f} |"
        )
    print(
        f"\nstate per unit: {hist.bytes_per_unit} B ({HISTORY_DAYS} days × 48 slots × 1 B); "
        f"10⁶ units: {hist.bytes_per_unit * 1e6 / 1e9:.2f} GB"
    )
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
