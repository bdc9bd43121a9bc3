"""Cost of units that learn (issue 13 item 2): the learned forecast of one chunk of the live
fleet, and the state per unit.

Prints a table: for a chunk of ``--units`` units (the live fleet's chunk, 10 000) with a full
28-day history, the time of :func:`drready.planning.forecast.learned_forecast` on the rolling
96-slot horizon and on the 64-slot day-ahead grid, against the national schedule's forecast
(:func:`drready.planning.problem.draw_forecast`), the bytes kept per unit, and what that
makes for 10⁶ units (a roll re-forecasts every chunk once per 30-minute slot).

    .venv/bin/python benchmarks/learning_forecast.py [--units 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta

import numpy as np

from drready.domain import DEFAULT_TZ, SlotGrid
from drready.physics.draws import day_type_for, sample_step_use_l
from drready.planning.forecast import HISTORY_DAYS, UsageHistory, learned_forecast
from drready.planning.problem import Fleet, draw_forecast
from drready.planning.rolling import rolling_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
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
    print("| grid | national schedule [s] | learned [s] | per 10⁶ units, learned [s] |")
    print("|---|---:|---:|---:|")
    for name, grid in grids.items():
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            prior = draw_forecast(fleet, grid)
        t_prior = (time.perf_counter() - t0) / args.repeat
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            learned_forecast(hist, slice(None), grid, 0.95, prior)
        t_learn = (time.perf_counter() - t0) / args.repeat
        print(f"| {name} | {t_prior:.3f} | {t_learn:.3f} | {t_learn * 1e6 / n:.0f} |")
    print(
        f"\nstate per unit: {hist.bytes_per_unit} B ({HISTORY_DAYS} days × 48 slots × 1 B); "
        f"10⁶ units: {hist.bytes_per_unit * 1e6 / 1e9:.2f} GB"
    )


if __name__ == "__main__":
    main()
