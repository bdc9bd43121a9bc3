"""Forecasters, bounds and safeguards tried on the scenario library and not kept (issue 13
item 3; docs/dr-potential-method.md §11, §12).

Runs the scenario library (:func:`drready.evaluation.scenarios.build_library`, every class ×
tariff × 16 windows) with the units' learned forecast replaced by a variant, and prints per
class: deliverability, declared/oracle (Σ declared / Σ oracle), DR-caused shortages and the
(tariff, window, target) cells that miss, then the cells missed in all, the DR-caused
shortages (window, home, tariff, scored day) and, at the 21:00 boundary, the conformal bounds
over ``z·RMS`` of the units' own errors. With no option it reproduces the library as built
(``drready evaluate potential --scenarios``) to the digit.

Variants (dense numpy over units × past days × boundaries: for the library's 70 homes per
tariff, not for a fleet):

* ``--periods 14x2,1x3`` — *periodic analogs* beside the day-class mean: per slot, the mean of
  the ``M`` most recent days ``P``, ``2P``, … back that were observed before the planning time
  (``PxM``); each past day's score is the analog's own one-step error (only what was observed
  before that day's 23:00). The unit chooses one forecaster on its past scores
  (``--choice band``: the narrowest conformal band summed over the horizon's boundaries;
  ``squares``: the least squared error; ``always``: no choice, the first analog for every
  unit, its scores where it had a forecast and the class mean's before; ``--prefer F``: an
  analog only where its criterion is below ``F`` × the class mean's; ``--sequential`` with
  ``squares``: each past day's score from the forecaster the unit would have chosen before
  that day; ``--loo`` with ``squares``: from the forecaster chosen without that day); its
  bounds come from the chosen forecaster's scores, with the same ``z·RMS`` floor.
* ``--national-until-guaranteed`` — never below the national schedule's margin at a boundary
  with fewer scores than a guaranteed bound needs (19 at 95 %).
* ``--no-cold-start-union`` — the learned forecast as it was before issue 13 item 3's
  experiment; without it (as built since), at a boundary with fewer scores than a guaranteed
  bound needs, the use's upper curve (expected cumulative use + ``over``) is never below the
  cold start's (the national schedule's expected cumulative use + ``z·σ`` + timing) and the
  lower curve never above the cold start's: the unit no less careful than the cold start until
  its own errors can vouch for it. The method doc's figures for the other variants were
  measured before it was built (add this option to reproduce them).
* ``--few-inflate`` — at a boundary with fewer scores than a guaranteed bound needs, the bound
  (there the largest of the ``n`` errors, or the ``z·RMS`` floor) × ``(n + 1)/n``, a
  finite-sample correction; with ``--no-cold-start-union`` instead of the cold start's curves,
  without it before them.
* ``--symmetric-until-guaranteed`` — the bound above never below the bound below at a boundary
  with fewer scores than a guaranteed bound needs (a regime that flips either way).
* ``--class-union`` — the larger of the bound over all past days and the bound over the past
  days of the forecast day's class (workday or day off).
* ``--blend λ`` (with ``--periods``) — each analog is ``λ`` × itself + (1 − ``λ``) × the class
  mean (its leave-one-out forecast of the same slots in the scores).
* ``--safe-union`` (with ``--periods``) — where an analog is chosen, the use's upper curve
  (expected cumulative use + ``over``) is never below the class mean's: the analog narrows
  only the room side (``under``).
* ``--safeguard beyond|both|deficit`` — the DR run (not the baseline's) reheats at full output
  when, while its plan holds less heat than the baseline plan (``ΔQ > 0``, the heat deferred,
  with standby retention), its stored heat falls below: ``beyond`` the DR plan's expected
  stored heat less the lower bound's margin (the household is beyond its bound); ``both`` the
  lower of that and the reserve + ``ΔQ``; ``deficit`` the reserve + ``ΔQ``. Counted as executed:
  its heat in a down window is not delivered.

    .venv/bin/python benchmarks/library_forecasters.py --seed 7 [--periods 14x2] [--safeguard both]
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

import drready.evaluation.households as households
from drready.evaluation import scenarios
from drready.evaluation.scorecard import MIN_DECLARED_KWH, TOLERANCE
from drready.planning import execution
from drready.planning import forecast as learning
from drready.planning.conformal import conformal_bounds, conformal_rank
from drready.planning.problem import NIGHT_START_HOUR, DrawForecast

BOUNDARY_21H = 44  # boundaries after 23:00: 21:00 the next day


@dataclass(frozen=True)
class Variant:
    periods: tuple[tuple[int, int], ...] = ()
    choice: str = "band"
    prefer: float = 1.0
    sequential: bool = False
    loo: bool = False
    national_until_guaranteed: bool = False
    cold_start_union: bool = True
    few_inflate: bool = False
    class_union: bool = False
    symmetric_until_guaranteed: bool = False
    safe_union: bool = False
    blend: float = 1.0
    safeguard: str = "none"


RATIOS: list[np.ndarray] = []


def _analog(flat_use: np.ndarray, a: int, length: int, period: int, m: int) -> np.ndarray:
    """(n, length) forecast of the positions ``a …`` from the ``m`` most recent observed
    (before ``a``) of the same slot ``period``, ``2·period``, … days back; NaN where none."""
    g = a + np.arange(length)
    m0 = np.maximum(1, -(-(g - a + 1) // (48 * period)))
    src = g[:, None] - 48 * period * (m0[:, None] + np.arange(m)[None, :])
    vals = np.where((src >= 0)[None], flat_use[:, np.clip(src, 0, None)], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out: np.ndarray = np.nanmean(vals, axis=2)
    return out


def _bounds(sc: np.ndarray, confidence: float, z: float) -> tuple[np.ndarray, ...]:
    """Conformal bounds of scores (days, t + 1, n) with the ``z·RMS`` floor, and the RMS."""
    over, under, _, _ = conformal_bounds(np.moveaxis(sc, 0, -1), confidence)
    cnt = np.isfinite(sc).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rms = np.where(cnt > 0, np.sqrt(np.nansum(sc**2, axis=0) / np.maximum(cnt, 1)), np.nan)
    return np.fmax(over, z * rms), np.fmax(under, z * rms), rms, over, under


def make_forecast(v: Variant) -> Any:
    """A drop-in for :func:`drready.planning.forecast.learned_forecast` under variant ``v``."""

    def forecast(
        history: learning.UsageHistory,
        units: Any,
        grid: Any,
        confidence: float,
        prior: DrawForecast,
    ) -> DrawForecast:
        days, n, dm, resid = learning._derived(history, units)
        t = grid.n_slots
        over_p, under_p = prior.margins_l(confidence)
        learned = dm.n_days >= learning.MIN_HISTORY_DAYS
        if not days or not learned.any():
            return learning._with_margins(prior, over_p, under_p, confidence)
        flat_use = history.series(units)[1].astype(np.float64).reshape(n, -1)
        n_days = len(days)
        start = grid.start.astimezone(ZoneInfo(grid.tz))
        offset = start.hour * 2 + start.minute // 30
        end = offset + t
        night = NIGHT_START_HOUR * 2
        stop = (end // 48 + (0 if end % 48 < night else 1)) * 48 + night
        horizon = [start.date() + timedelta(days=i) for i in range(stop // 48 + 1)]
        cls_of = np.array([learning.is_day_off(d) for d in horizon], dtype=np.int64)
        class_mean = dm.means[:, cls_of, :].reshape(n, -1)[:, offset:stop]
        pad = np.full((n, t + 1), np.nan)
        zero = np.zeros((n, 1))
        r_cls = np.concatenate([zero, np.cumsum(resid.reshape(n, -1), axis=1), pad], axis=1)
        r_use = np.concatenate([zero, np.cumsum(flat_use, axis=1), pad], axis=1)
        loo_fc = np.concatenate([flat_use - resid.reshape(n, -1), pad], axis=1)
        c = 1 + len(v.periods)
        scores = np.full((c, n_days, t + 1, n), np.nan)
        j = np.arange(t + 1)
        for w in range(n_days):
            a = 48 * w + offset
            scores[0, w] = (r_cls[:, a + j] - r_cls[:, a : a + 1]).T
            for ci, (period, m) in enumerate(v.periods, 1):
                fa = _analog(flat_use, a, t, period, m)
                if v.blend < 1.0:  # with the class mean's leave-one-out forecast of the same slots
                    fa = v.blend * fa + (1.0 - v.blend) * loo_fc[:, a : a + t]
                fc = np.concatenate([zero, np.cumsum(fa, 1)], 1)
                scores[ci, w] = (r_use[:, a + j] - r_use[:, a : a + 1] - fc).T
        z = NormalDist().inv_cdf(confidence)
        full = np.all(np.isfinite(scores), axis=(0, 2))  # (days, n): every forecaster scored
        crit = np.zeros((c, n))
        for ci in range(c):
            sc = np.where(full[:, None, :], scores[ci], np.nan)
            if v.choice == "band":
                o, u = _bounds(sc, confidence, z)[:2]
                crit[ci] = np.nansum(o + u, axis=0)
            else:
                crit[ci] = np.nansum(sc**2, axis=(0, 1))
        crit[1:] /= v.prefer
        final = np.where(full.sum(axis=0) >= 5, np.argmin(crit, axis=0), 0)
        if v.choice == "always" and c > 1:
            # no choice: the first analog for every unit, the class mean's score on the past
            # days the analog could not forecast yet (what the unit would have done then)
            final = np.ones(n, np.int64)
            has = np.all(np.isfinite(scores[1]), axis=1)  # (days, n)
            chosen = np.where(has[:, None, :], scores[1], scores[0])
        elif v.loo and c > 1:
            # each past day's score from the forecaster chosen without that day (squares)
            sq = np.where(full[None, :, None, :], np.nan_to_num(scores) ** 2, 0.0).sum(axis=2)
            without = sq.sum(axis=1, keepdims=True) - sq  # (c, days, n)
            each = np.argmin(without / np.r_[1.0, [v.prefer] * (c - 1)][:, None, None], axis=0)
            each[:, full.sum(axis=0) < 6] = 0
            chosen = np.take_along_axis(scores, each[None, :, None, :], axis=0)[0]
        elif v.sequential and c > 1:
            sq = np.where(full[None, :, None, :], np.nan_to_num(scores) ** 2, 0.0).sum(axis=2)
            before = np.cumsum(sq, axis=1) - sq  # (c, days, n): past days' squares
            each = np.argmin(before / np.r_[1.0, [v.prefer] * (c - 1)][:, None, None], axis=0)
            each[before.sum(axis=0) == 0] = 0
            chosen = np.take_along_axis(scores, each[None, :, None, :], axis=0)[0]
        else:
            chosen = np.take_along_axis(scores, final[None, None, None, :], axis=0)[0]
        over, under, rms, o_raw, u_raw = _bounds(chosen, confidence, z)
        if v.class_union:
            off = np.array(
                [learning.is_day_off(days[0] + timedelta(days=w + 1)) for w in range(n_days)]
            )
            same = off == learning.is_day_off(start.date() + timedelta(days=1))
            o2, u2 = _bounds(np.where(same[:, None, None], chosen, np.nan), confidence, z)[:2]
            over, under = np.fmax(over, o2), np.fmax(under, u2)
        if v.national_until_guaranteed:
            cnt = np.isfinite(chosen).sum(axis=0)
            few = conformal_rank(cnt, confidence) > cnt
            over = np.where(few, np.fmax(over, over_p), over)
            under = np.where(few, np.fmax(under, under_p), under)
        if v.symmetric_until_guaranteed:
            cnt = np.isfinite(chosen).sum(axis=0)
            few = conformal_rank(cnt, confidence) > cnt
            over = np.where(few, np.fmax(over, under), over)
        k = BOUNDARY_21H
        RATIOS.append(
            np.stack(
                [
                    o_raw[k] / (z * rms[k]),
                    u_raw[k] / (z * rms[k]),
                    under[k],
                    z * rms[k],
                    under_p[k],
                ],
                1,
            )
        )
        a_now = 48 * (start.date() - days[0]).days + offset
        ahead = class_mean.copy()
        for ci, (period, m) in enumerate(v.periods, 1):
            pick = final == ci
            if pick.any():
                fc = _analog(flat_use[pick], a_now, stop - offset, period, m)
                fc = v.blend * fc + (1.0 - v.blend) * class_mean[pick]
                ahead[pick] = np.where(np.isnan(fc), class_mean[pick], fc)
        if v.few_inflate:
            # below a guaranteed bound's scores: the bound (the largest of n errors) × (n + 1)/n
            cnt = np.isfinite(chosen).sum(axis=0)
            few = (conformal_rank(cnt, confidence) > cnt) & (cnt > 0)
            grow = (cnt + 1) / np.maximum(cnt, 1)
            over = np.where(few, over * grow, over)
            under = np.where(few, under * grow, under)
        if v.cold_start_union:
            # below a guaranteed bound's scores: the use's curves never inside the cold start's
            # (the national schedule's expected cumulative use ± its margins, same time)
            cnt = np.isfinite(chosen).sum(axis=0)
            few = conformal_rank(cnt, confidence) > cnt
            zero_row = np.zeros((1, n))
            cum_l = np.concatenate([zero_row, np.cumsum(ahead[:, :t].T, axis=0)])
            cum_p = np.concatenate([zero_row, np.cumsum(prior.mean_l, axis=0)])
            over = np.where(few, np.fmax(over, cum_p + over_p - cum_l), over)
            under = np.where(few, np.fmax(under, cum_l - cum_p + under_p), under)
        if v.safe_union and v.periods:
            # the use's upper curve never below the class mean's: the analog narrows the room
            # side (under) only
            o0 = _bounds(scores[0], confidence, z)[0]
            zero_row = np.zeros((1, n))
            cum_a = np.concatenate([zero_row, np.cumsum(ahead[:, :t].T, axis=0)])
            cum_c = np.concatenate([zero_row, np.cumsum(class_mean[:, :t].T, axis=0)])
            union = np.fmax(cum_c + o0, cum_a + over) - cum_a
            over = np.where(final[None, :] > 0, union, over)
        over_l = np.clip(np.where(np.isnan(over), over_p, over), 0.0, None)
        under_l = np.clip(np.where(np.isnan(under), under_p, under), 0.0, None)
        keep = learned[None, :]
        return DrawForecast(
            mean_l=np.ascontiguousarray(np.where(keep, ahead[:, :t].T, prior.mean_l)),
            cum_sigma_l=np.where(
                keep, np.where(np.isnan(rms), prior.cum_sigma_l, rms), prior.cum_sigma_l
            ),
            after_end_l=np.where(learned, ahead[:, t:].sum(axis=1), prior.after_end_l),
            over_l=np.where(keep, over_l, over_p),
            under_l=np.where(keep, under_l, under_p),
            confidence=confidence,
        )

    return forecast


def make_execute(mode: str) -> Any:
    """A drop-in for :func:`drready.planning.execution.execute_plan` whose second call on the
    same problem (the evaluation's DR run, after the baseline's) adds the safeguard ``mode``."""
    seen: dict[str, Any] = {}  # the problem of the last baseline (held: ids are reused)

    def execute(
        problem: Any, heat: np.ndarray, use: np.ndarray, manual: np.ndarray, reserve_l: float
    ) -> Any:
        if seen.get("problem") is not problem:
            seen.update(problem=problem, heat=heat)
            return execution.execute_plan(problem, heat, use, manual, reserve_l)
        n, t = heat.shape
        a = problem.retention.T
        deferred = np.zeros((n, t + 1))
        for s in range(t):
            deferred[:, s + 1] = a[:, s] * deferred[:, s] + seen["heat"][:, s] - heat[:, s]
        deferred = np.maximum(deferred, 0.0)
        hp = execution._heat_per_l(problem)
        res = (reserve_l * hp)[:, None]
        on = np.maximum(deferred[:, :-1], deferred[:, 1:]) > 1e-6
        by_deficit = res + np.maximum(deferred[:, :-1], deferred[:, 1:])
        plan_q = np.empty((n, t + 1))
        plan_q[:, 0] = problem.q0_kwh
        d = problem.draw_kwh.T
        for s in range(t):
            plan_q[:, s + 1] = np.clip(
                a[:, s] * plan_q[:, s] + heat[:, s] - d[:, s], 0.0, problem.q_max_kwh
            )
        over = problem.over_kwh.T
        beyond = np.minimum(plan_q[:, :-1], plan_q[:, 1:]) - np.maximum(over[:, :-1], over[:, 1:])
        level = {"beyond": beyond, "both": np.minimum(beyond, by_deficit), "deficit": by_deficit}[
            mode
        ]
        threshold = np.where(on, np.maximum(level, res), res)  # (n, t) [kWh]
        return execution.execute_plan(problem, heat, use, manual, 0.0, reheat_below_kwh=threshold)

    return execute


def run(v: Variant, seed: int, per_class: int, days: int) -> None:
    RATIOS.clear()
    households.learned_forecast = make_forecast(v)
    households.execute_plan = (
        execution.execute_plan if v.safeguard == "none" else make_execute(v.safeguard)
    )
    t0 = time.perf_counter()
    homes = scenarios.build_library(per_class, days, seed)
    sc = households.evaluate_households(homes, windows=scenarios.ALL_WINDOWS, seed=seed)
    res = scenarios.LibraryResult(sc, homes, time.perf_counter() - t0)
    targets = scenarios.library_targets(res)
    group = np.array(homes.group)
    print(
        f"seed {seed}, {v}: {sum(not x.passed for x in targets)} of {len(targets)} cells "
        f"missed, {res.runtime_s:.1f} s"
    )
    print(f"  {'class':14s} deliverable  declared/oracle  DR-caused shortages  cells missed")
    for cls in dict.fromkeys(homes.group or ()):
        m = np.tile(group == cls, len(sc.days))
        asked = ok = short = 0
        declared = oracle = 0.0
        for j in range(len(sc.windows)):
            o = scenarios._take(sc.outcomes[("ours", j)], m)
            a = o.declared_kwh >= MIN_DECLARED_KWH
            asked += int(a.sum())
            ok += int((a & (o.delivered_kwh >= (1 - TOLERANCE) * o.declared_kwh)).sum())
            declared += float(o.declared_kwh.sum())
            oracle += float(o.oracle_kwh.sum())
            short += int(o.dr_caused_shortage.sum())
        missed = sum(1 for x in targets if x.cls == cls and not x.passed)
        print(
            f"  {cls:14s} {100 * ok / asked:10.1f} % {100 * declared / oracle:14.1f} % "
            f"{short:20d} {missed:9d} / 144"
        )
    cases = []
    for j, w in enumerate(sc.windows):
        o = sc.outcomes[("ours", j)]
        for i in np.flatnonzero(o.dr_caused_shortage):
            h = i % homes.size
            cases.append(
                f"{scenarios.window_label(w)} {homes.names[h]} {homes.tariff[h]} "
                f"day {o.day_index[i]}"
            )
    print("  DR-caused shortages:", "; ".join(cases) or "none")
    r = np.concatenate(RATIOS)
    r = r[np.isfinite(r).all(axis=1)]
    print(
        f"  21:00: conformal over / z·RMS median {np.median(r[:, 0]):.2f}, under / z·RMS "
        f"{np.median(r[:, 1]):.2f}; the z·RMS floor binds over "
        f"{100 * np.mean(r[:, 0] < 1):.0f} %, under {100 * np.mean(r[:, 1] < 1):.0f} % of "
        f"unit-days; median under {np.median(r[:, 2]):.0f} L, z·RMS {np.median(r[:, 3]):.0f} L, "
        f"the national z·σ {np.median(r[:, 4]):.0f} L"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--households", type=int, default=10, help="homes per class and tariff")
    p.add_argument("--days", type=int, default=14, help="scored days")
    p.add_argument("--periods", default="", help="analogs PxM, comma-separated, e.g. 14x2,1x3")
    p.add_argument("--choice", choices=("band", "squares", "always"), default="band")
    p.add_argument("--prefer", type=float, default=1.0)
    p.add_argument("--sequential", action="store_true")
    p.add_argument("--loo", action="store_true")
    p.add_argument("--national-until-guaranteed", action="store_true")
    p.add_argument("--no-cold-start-union", dest="cold_start_union", action="store_false")
    p.add_argument("--few-inflate", action="store_true")
    p.add_argument("--class-union", action="store_true")
    p.add_argument("--symmetric-until-guaranteed", action="store_true")
    p.add_argument("--safe-union", action="store_true")
    p.add_argument("--blend", type=float, default=1.0, help="analog weight against the mean")
    p.add_argument("--safeguard", choices=("none", "beyond", "both", "deficit"), default="none")
    args = p.parse_args()
    periods = tuple(tuple(int(x) for x in s.split("x")) for s in args.periods.split(",") if s)
    v = Variant(
        periods=periods,  # type: ignore[arg-type]
        choice=args.choice,
        prefer=args.prefer,
        sequential=args.sequential,
        loo=args.loo,
        national_until_guaranteed=args.national_until_guaranteed,
        cold_start_union=args.cold_start_union,
        few_inflate=args.few_inflate,
        class_union=args.class_union,
        symmetric_until_guaranteed=args.symmetric_until_guaranteed,
        safe_union=args.safe_union,
        blend=args.blend,
        safeguard=args.safeguard,
    )
    run(v, args.seed, args.households, args.days)


if __name__ == "__main__":
    main()
