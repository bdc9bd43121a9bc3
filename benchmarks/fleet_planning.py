"""Fleet-scale planning benchmark: the fast path against the per-unit LP reference.

What it measures, for each fleet size N (random households, ``Fleet.random``), on the
``SlotGrid.day_ahead(day, n_slots=48)`` grid (23:00 the evening before ``day`` to 23:00 of
``day``, Asia/Tokyo):

* **Fast path** — wall time and peak memory of: building the problem (``draw_forecast`` +
  ``build_problem``), the baseline, the DR potential of 10:00–14:00 (and of 01:00–05:00, needed
  to size the request below) and a DR plan with two requests per unit: up-DR of 80 % of its
  declared up potential in 10:00–14:00, then down-DR of 80 % of its declared down potential in
  01:00–05:00. The fleet is processed in chunks (``Fleet.subset``) by a pool of worker
  processes, so memory stays bounded; the time is the wall time from fleet generation to the
  last chunk's result. The workers are started (interpreter, imports) before the clock, as a
  planning service keeps its workers alive. Peak memory is the peak RSS
  (``resource.getrusage().ru_maxrss``) summed over the worker processes — each size gets a fresh
  pool, so this is the peak of that size's run; the worker RSS at start-up (interpreter and
  imports) is shown too. Linux keeps ``ru_maxrss`` across the fork+exec of a spawned worker,
  so each worker's figure is at least the main process's RSS at spawn: an upper bound. The
  per-phase times are sums over chunks (worker-seconds): with two workers they add up to about
  twice the wall time.
* **LP reference** — ``reference_plan`` (baseline + the same two requests, HiGHS) on ``--sample``
  random units of the first chunk: time per unit, that time extrapolated to N, and its ratio to
  the fast path's wall time (judged at 1e6 units, where fixed costs no longer dominate).
* **Agreement** — relative cost gap of the fast DR plan against the LP's, ``(fast − lp) / lp``
  over sampled units with an LP cost above 1 yen (mean and max), and the largest difference of
  the accepted amounts.
* **Safety** — units whose expected stored heat goes below −1e-6 kWh in the DR plan ("planned
  shortages") and in the baseline, units with an unavoidable shortfall (the reserve cannot be
  held whatever the plan, ``problem.unavoidable_shortfall_kwh > 1e-6``), and DR-caused
  shortages: planned shortages of the DR plan that the baseline does not have.

Each target gets a PASS/FAIL verdict in the last column.

Run it from the repository root::

    .venv/bin/python benchmarks/fleet_planning.py
    .venv/bin/python benchmarks/fleet_planning.py --sizes 10000,100000 --sample 50 --markdown

Options: ``--sizes`` (default ``10000,100000,1000000``), ``--sample`` (200), ``--seed`` (1),
``--day`` (2026-05-12), ``--chunk`` (units per chunk, 10000), ``--workers`` (2) and
``--markdown`` (also print a plain markdown table for the README).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime
from multiprocessing import get_context

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from drready.domain import Direction, SlotGrid
from drready.planning.engine import FleetPlanner, WindowRequest
from drready.planning.problem import (
    Fleet,
    PlanningProblem,
    build_problem,
    default_initial_heat_kwh,
    draw_forecast,
)
from drready.planning.reference import reference_plan

FloatArray = npt.NDArray[np.float64]

TZ = "Asia/Tokyo"
UP_HOURS = (10, 14)
DOWN_HOURS = (1, 5)
REQUEST_SHARE = 0.8
SHORTAGE_TOL_KWH = 1e-6
LP_COST_FLOOR_YEN = 1.0
ACCEPT_TOL_KWH = 0.01

TARGET_N = 1_000_000
TARGET_SECONDS = 30.0
TARGET_MEMORY_MB = 4096.0
TARGET_RATIO = 1000.0
TARGET_GAP_PCT = 2.0


@dataclass(frozen=True)
class Windows:
    """Slot index windows ``[start, end)`` of the up and the down request."""

    up: tuple[int, int]
    down: tuple[int, int]


def windows_for(grid: SlotGrid, day: date) -> Windows:
    """The 10:00–14:00 (up) and 01:00–05:00 (down) windows of ``day`` on ``grid``."""
    tz = grid.zoneinfo

    def at(hour: int) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=tz)

    return Windows(
        up=grid.window_indices(at(UP_HOURS[0]), at(UP_HOURS[1])),
        down=grid.window_indices(at(DOWN_HOURS[0]), at(DOWN_HOURS[1])),
    )


@dataclass
class SampleData:
    """What the LP comparison needs from the first chunk (the sampled units only)."""

    problem: PlanningProblem
    up_amount_kwh: FloatArray
    down_amount_kwh: FloatArray
    fast_cost_yen: FloatArray
    fast_accepted_kwh: FloatArray  # (2, S): up, down
    fast_potential_kwh: FloatArray  # (2, S): potential left when each request is applied
    fast_baseline_electric_kwh: FloatArray  # (S, T): DR amounts are deviations from it


@dataclass
class ChunkResult:
    """One chunk's timings [s], counts and the worker's memory."""

    n_units: int
    build_s: float
    baseline_s: float
    potential_s: float
    plan_s: float
    dr_shortage: int
    baseline_shortage: int
    unavoidable: int
    dr_caused: int
    fallback_baseline: int
    fallback_plan: int
    up_accepted_kwh: float
    down_accepted_kwh: float
    up_declared_kwh: float
    down_declared_kwh: float
    pid: int
    worker_start_rss_mb: float
    worker_peak_rss_mb: float
    sample: SampleData | None = None


_WORKER_START_RSS_MB = 0.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _init_worker() -> None:
    global _WORKER_START_RSS_MB
    _WORKER_START_RSS_MB = _maxrss_mb()


def _warm_up(_: int) -> int:
    """Keep a worker busy briefly, so that every worker of the pool gets started."""
    time.sleep(0.3)
    return os.getpid()


def run_chunk(
    fleet: Fleet, day: date, sample_idx: npt.NDArray[np.int64] | None = None
) -> ChunkResult:
    """Problem building, baseline, potentials and the DR plan of one chunk (in a worker)."""
    t0 = time.perf_counter()
    grid = SlotGrid.day_ahead(day, tz=TZ, n_slots=48)
    win = windows_for(grid, day)
    forecast = draw_forecast(fleet, grid)
    problem = build_problem(fleet, grid, default_initial_heat_kwh(fleet, grid), forecast)
    del forecast
    t1 = time.perf_counter()
    planner = FleetPlanner(problem)
    base = planner.baseline()
    t2 = time.perf_counter()
    pot_up = planner.potential(*win.up)
    pot_down = planner.potential(*win.down)
    up_amount = REQUEST_SHARE * pot_up.up_kwh
    down_amount = REQUEST_SHARE * pot_down.down_kwh
    del pot_up, pot_down
    t3 = time.perf_counter()
    plan = planner.plan(
        [
            WindowRequest(Direction.UP, *win.up, up_amount),
            WindowRequest(Direction.DOWN, *win.down, down_amount),
        ]
    )
    t4 = time.perf_counter()
    dr_short = plan.stored_heat_kwh.min(axis=1) < -SHORTAGE_TOL_KWH
    base_short = base.stored_heat_kwh.min(axis=1) < -SHORTAGE_TOL_KWH
    sample = None
    if sample_idx is not None:
        sample = SampleData(
            problem=problem.subset(sample_idx),
            up_amount_kwh=up_amount[sample_idx],
            down_amount_kwh=down_amount[sample_idx],
            fast_cost_yen=plan.cost_yen[sample_idx],
            fast_accepted_kwh=plan.accepted_kwh[:, sample_idx],
            fast_potential_kwh=plan.potential_kwh[:, sample_idx],
            fast_baseline_electric_kwh=base.electric_kwh[sample_idx],
        )
    return ChunkResult(
        n_units=fleet.size,
        build_s=t1 - t0,
        baseline_s=t2 - t1,
        potential_s=t3 - t2,
        plan_s=t4 - t3,
        dr_shortage=int(dr_short.sum()),
        baseline_shortage=int(base_short.sum()),
        unavoidable=int((problem.unavoidable_shortfall_kwh > SHORTAGE_TOL_KWH).sum()),
        dr_caused=int((dr_short & ~base_short).sum()),
        fallback_baseline=base.fallback_units,
        fallback_plan=plan.fallback_units,
        up_accepted_kwh=float(plan.accepted_kwh[0].sum()),
        down_accepted_kwh=float(plan.accepted_kwh[1].sum()),
        up_declared_kwh=float(up_amount.sum()) / REQUEST_SHARE,
        down_declared_kwh=float(down_amount.sum()) / REQUEST_SHARE,
        pid=os.getpid(),
        worker_start_rss_mb=_WORKER_START_RSS_MB,
        worker_peak_rss_mb=_maxrss_mb(),
        sample=sample,
    )


@dataclass
class SizeResult:
    """Everything measured for one fleet size."""

    n: int
    chunks: int
    chunk_size: int
    workers: int
    wall_s: float
    build_s: float = 0.0
    baseline_s: float = 0.0
    potential_s: float = 0.0
    plan_s: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0
    dr_shortage: int = 0
    baseline_shortage: int = 0
    unavoidable: int = 0
    dr_caused: int = 0
    fallback_baseline: int = 0
    fallback_plan: int = 0
    up_accepted_mwh: float = 0.0
    down_accepted_mwh: float = 0.0
    up_declared_mwh: float = 0.0
    down_declared_mwh: float = 0.0
    lp_units: int = 0
    lp_per_unit_s: float = float("nan")
    gap_units: int = 0
    gap_mean_pct: float = float("nan")
    gap_max_pct: float = float("nan")
    accept_diff_up_kwh: float = float("nan")
    accept_diff_down_kwh: float = float("nan")
    accept_differ_up: int = 0
    accept_differ_down: int = 0
    down_pot_fast_kwh: float = float("nan")
    down_pot_lp_kwh: float = float("nan")
    lp_failures: list[str] = field(default_factory=list)

    @property
    def lp_extrapolated_s(self) -> float:
        return self.lp_per_unit_s * self.n

    @property
    def ratio(self) -> float:
        return self.lp_extrapolated_s / self.wall_s


def run_size(
    n: int, args: argparse.Namespace, progress: Progress
) -> tuple[SizeResult, SampleData | None]:
    """The fast path over ``n`` units in chunks, in a fresh worker pool (timed)."""
    chunk = min(args.chunk, n)
    starts = list(range(0, n, chunk))
    task = progress.add_task(f"fast path N={n:,}", total=len(starts))
    pool = ProcessPoolExecutor(
        max_workers=args.workers, mp_context=get_context("spawn"), initializer=_init_worker
    )
    # start the workers (interpreter, imports) before the clock: a planning service keeps its
    # workers alive, so their start-up is not part of planning a fleet
    list(pool.map(_warm_up, range(args.workers)))
    t0 = time.perf_counter()
    fleet = Fleet.random(np.random.default_rng(args.seed), n)
    first_len = min(chunk, n)
    sample_idx = np.sort(
        np.random.default_rng(args.seed + 1).choice(
            first_len, size=min(args.sample, first_len), replace=False
        )
    ).astype(np.int64)
    results: list[ChunkResult] = []
    # spawn: workers start clean (no copy of this process's pages), so their RSS is their own
    with pool:
        futures = [
            pool.submit(
                run_chunk,
                fleet.subset(slice(s, s + chunk)),
                args.day,
                sample_idx if s == 0 else None,
            )
            for s in starts
        ]
        for fut in as_completed(futures):
            results.append(fut.result())
            progress.advance(task)
    wall = time.perf_counter() - t0
    progress.remove_task(task)

    res = SizeResult(n=n, chunks=len(starts), chunk_size=chunk, workers=args.workers, wall_s=wall)
    peak: dict[int, float] = {}
    start: dict[int, float] = {}
    sample = None
    for r in results:
        res.build_s += r.build_s
        res.baseline_s += r.baseline_s
        res.potential_s += r.potential_s
        res.plan_s += r.plan_s
        res.dr_shortage += r.dr_shortage
        res.baseline_shortage += r.baseline_shortage
        res.unavoidable += r.unavoidable
        res.dr_caused += r.dr_caused
        res.fallback_baseline += r.fallback_baseline
        res.fallback_plan += r.fallback_plan
        res.up_accepted_mwh += r.up_accepted_kwh / 1000.0
        res.down_accepted_mwh += r.down_accepted_kwh / 1000.0
        res.up_declared_mwh += r.up_declared_kwh / 1000.0
        res.down_declared_mwh += r.down_declared_kwh / 1000.0
        peak[r.pid] = max(peak.get(r.pid, 0.0), r.worker_peak_rss_mb)
        start[r.pid] = r.worker_start_rss_mb
        if r.sample is not None:
            sample = r.sample
    res.peak_rss_mb = sum(peak.values())
    res.start_rss_mb = sum(start.values())
    return res, sample


def compare_lp(res: SizeResult, sample: SampleData, day: date, progress: Progress) -> None:
    """``reference_plan`` on the sampled units; fills the LP and agreement fields of ``res``."""
    grid = SlotGrid.day_ahead(day, tz=TZ, n_slots=48)
    win = windows_for(grid, day)
    m = sample.problem.n_units
    lp_cost = np.full(m, np.nan)
    lp_acc = np.full((2, m), np.nan)
    lp_pot = np.full((2, m), np.nan)
    task = progress.add_task(f"LP reference N={res.n:,}", total=m)
    t0 = time.perf_counter()
    for i in range(m):
        requests = [
            (Direction.UP, *win.up, float(sample.up_amount_kwh[i])),
            (Direction.DOWN, *win.down, float(sample.down_amount_kwh[i])),
        ]
        try:
            # least-cost baselines can tie; DR amounts compare only against the same baseline
            ref = reference_plan(
                sample.problem,
                i,
                requests,
                baseline_electric_kwh=sample.fast_baseline_electric_kwh[i],
            )
        except RuntimeError as exc:  # InfeasibleProblemError; counted, never hidden
            res.lp_failures.append(str(exc))
        else:
            lp_cost[i] = ref.cost_yen
            lp_acc[:, i] = ref.accepted_kwh
            lp_pot[:, i] = ref.potential_kwh
        progress.advance(task)
    res.lp_units = m
    res.lp_per_unit_s = (time.perf_counter() - t0) / m
    progress.remove_task(task)
    ok = np.isfinite(lp_cost) & (lp_cost > LP_COST_FLOOR_YEN)
    gap = (sample.fast_cost_yen[ok] - lp_cost[ok]) / lp_cost[ok] * 100.0
    res.gap_units = int(ok.sum())
    if gap.size:
        res.gap_mean_pct = float(gap.mean())
        res.gap_max_pct = float(gap.max())
    solved = np.isfinite(lp_cost)
    if solved.any():
        diff = np.abs(sample.fast_accepted_kwh[:, solved] - lp_acc[:, solved])
        res.accept_diff_up_kwh = float(diff[0].max())
        res.accept_diff_down_kwh = float(diff[1].max())
        res.accept_differ_up = int((diff[0] > ACCEPT_TOL_KWH).sum())
        res.accept_differ_down = int((diff[1] > ACCEPT_TOL_KWH).sum())
        res.down_pot_fast_kwh = float(sample.fast_potential_kwh[1, solved].mean())
        res.down_pot_lp_kwh = float(lp_pot[1, solved].mean())


# --- report ----------------------------------------------------------------------------------


def fmt_int(v: float) -> str:
    return f"{int(v):,}".replace(",", " ")


def fmt(v: float, digits: int = 2) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:,.{digits}f}".replace(",", " ")


@dataclass(frozen=True)
class Row:
    """One metric: how to show it per size, and optionally a target and its test."""

    label: str
    show: Callable[[SizeResult], str]
    target: str = ""
    passes: Callable[[SizeResult], bool | None] | None = None  # None: target not applicable


def _at_scale(r: SizeResult) -> bool:
    return r.n >= TARGET_N


def rows() -> list[Row]:
    def scaled_time(r: SizeResult) -> bool | None:
        return r.wall_s * TARGET_N / r.n <= TARGET_SECONDS if _at_scale(r) else None

    return [
        Row(
            "chunks × units, workers",
            lambda r: f"{r.chunks} × {fmt_int(r.chunk_size)}, {r.workers}",
        ),
        Row(
            "fast path total, wall [s] (incl. build; warm workers)",
            lambda r: fmt(r.wall_s),
            f"≤ {TARGET_SECONDS:.0f} s at 1e6",
            scaled_time,
        ),
        Row("  problem build, Σ workers [s]", lambda r: fmt(r.build_s)),
        Row("  baseline, Σ workers [s]", lambda r: fmt(r.baseline_s)),
        Row("  potential, Σ workers [s]", lambda r: fmt(r.potential_s)),
        Row("  DR plan, Σ workers [s]", lambda r: fmt(r.plan_s)),
        Row(
            "peak RSS, Σ workers [MB] (ru_maxrss)",
            lambda r: fmt(r.peak_rss_mb, 0),
            f"≤ {TARGET_MEMORY_MB / 1024:.0f} GB",
            lambda r: r.peak_rss_mb <= TARGET_MEMORY_MB,
        ),
        Row(
            "  of which RSS at worker start [MB]",
            lambda r: fmt(r.start_rss_mb, 0),
        ),
        Row("LP sample units (failed)", lambda r: f"{r.lp_units} ({len(r.lp_failures)})"),
        Row("LP per unit [ms]", lambda r: fmt(r.lp_per_unit_s * 1e3)),
        Row("LP extrapolated to N [s]", lambda r: fmt(r.lp_extrapolated_s, 0)),
        Row(
            "LP extrapolated / fast",
            lambda r: f"{fmt(r.ratio, 0)}×",
            f"≥ {TARGET_RATIO:.0f}× at 1e6",
            # judged at fleet scale: at small N fixed costs (fleet generation, dispatch to the
            # workers) dominate the fast path's wall time
            lambda r: (r.ratio >= TARGET_RATIO) if r.n >= TARGET_N else None,
        ),
        Row(
            f"cost gap fast vs LP, mean [%] (LP > {LP_COST_FLOOR_YEN:.0f} ¥)",
            lambda r: f"{fmt(r.gap_mean_pct, 4)} (n={r.gap_units})",
            f"≤ {TARGET_GAP_PCT:.0f} %",
            lambda r: bool(np.isfinite(r.gap_mean_pct) and r.gap_mean_pct <= TARGET_GAP_PCT),
        ),
        Row("cost gap fast vs LP, max [%]", lambda r: fmt(r.gap_max_pct, 4)),
        Row(
            "accepted |fast − LP| max, up / down [kWh]",
            lambda r: f"{r.accept_diff_up_kwh:.1e} / {r.accept_diff_down_kwh:.1e}",
            f"agree (≤ {ACCEPT_TOL_KWH} kWh)",
            lambda r: bool(
                max(r.accept_diff_up_kwh, r.accept_diff_down_kwh) <= ACCEPT_TOL_KWH
                and not r.lp_failures
            ),
        ),
        Row(
            f"  sample units differing > {ACCEPT_TOL_KWH} kWh, up / down",
            lambda r: f"{r.accept_differ_up} / {r.accept_differ_down}",
        ),
        Row(
            "  down potential after the up request, mean fast / LP [kWh]",
            lambda r: f"{fmt(r.down_pot_fast_kwh, 3)} / {fmt(r.down_pot_lp_kwh, 3)}",
        ),
        Row(
            "declared potential, up / down [MWh]",
            lambda r: f"{fmt(r.up_declared_mwh, 1)} / {fmt(r.down_declared_mwh, 1)}",
        ),
        Row(
            "accepted, up / down [MWh]",
            lambda r: f"{fmt(r.up_accepted_mwh, 1)} / {fmt(r.down_accepted_mwh, 1)}",
        ),
        Row("planned shortages, DR plan [units]", lambda r: fmt_int(r.dr_shortage)),
        Row("planned shortages, baseline [units]", lambda r: fmt_int(r.baseline_shortage)),
        Row("unavoidable shortfall (no-DR too) [units]", lambda r: fmt_int(r.unavoidable)),
        Row(
            "DR-caused shortages [units]",
            lambda r: fmt_int(r.dr_caused),
            "0",
            lambda r: r.dr_caused == 0,
        ),
        Row(
            "greedy fallback units, baseline / plan",
            lambda r: f"{fmt_int(r.fallback_baseline)} / {fmt_int(r.fallback_plan)}",
        ),
    ]


def verdict(row: Row, results: list[SizeResult]) -> str:
    if row.passes is None:
        return ""
    judged = [(r, row.passes(r)) for r in results]
    judged = [(r, ok) for r, ok in judged if ok is not None]
    if not judged:
        return "n/a"
    failed = [fmt_int(r.n) for r, ok in judged if not ok]
    return "PASS" if not failed else "FAIL (N=" + ", ".join(failed) + ")"


def table_cells(results: list[SizeResult]) -> tuple[list[str], list[list[str]]]:
    header = ["metric", *[f"N = {fmt_int(r.n)}" for r in results], "target", "result"]
    body = [
        [row.label, *[row.show(r) for r in results], row.target, verdict(row, results)]
        for row in rows()
    ]
    return header, body


def rich_table(results: list[SizeResult], title: str) -> Table:
    header, body = table_cells(results)
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for cells in body:
        res = cells[-1]
        style = "green" if res == "PASS" else ("red" if res.startswith("FAIL") else "")
        table.add_row(*(Text(c) for c in cells[:-1]), Text(res, style=style))
    return table


def markdown_table(results: list[SizeResult]) -> str:
    header, body = table_cells(results)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated fleet sizes")
    p.add_argument("--sample", type=int, default=200, help="units of the first chunk for the LP")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--day", type=date.fromisoformat, default=date(2026, 5, 12))
    p.add_argument("--chunk", type=int, default=10_000, help="units per chunk")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = p.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes must be positive integers")
    if args.sample < 1 or args.chunk < 1 or args.workers < 1:
        p.error("--sample, --chunk and --workers must be ≥ 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or redirected: keep the table on one line per row
        console = Console(width=180)
    results: list[SizeResult] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for n in args.sizes:
            res, sample = run_size(n, args, progress)
            if sample is not None:
                compare_lp(res, sample, args.day, progress)
            results.append(res)
            console.log(
                f"N={n:,}: fast path {res.wall_s:.2f} s, peak RSS {res.peak_rss_mb:.0f} MB, "
                f"LP {res.lp_per_unit_s * 1e3:.1f} ms/unit"
            )
    title = (
        f"Fleet planning, {args.day.isoformat()} (48 slots from 23:00 the day before, {TZ}); "
        f"up-DR 10:00–14:00 and down-DR 01:00–05:00 at {REQUEST_SHARE:.0%} of the potential; "
        f"seed {args.seed}, {os.cpu_count()} CPUs"
    )
    console.print(rich_table(results, title))
    if args.markdown:
        console.print(markdown_table(results), markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
