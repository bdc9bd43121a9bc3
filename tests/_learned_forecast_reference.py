"""The learned forecast as first written (sort-based conformal bounds over a gathered
(units, boundaries, days) score array), kept verbatim as the reference the fleet-vectorised
:func:`drready.planning.forecast.learned_forecast` is tested against (issue 13 item 2) — but for
the cold-start union below a guaranteed bound (issue 13 item 3), added in its own terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from drready.domain import SlotGrid
from drready.planning.conformal import conformal_bounds
from drready.planning.forecast import (
    MIN_CLASS_DAYS,
    MIN_HISTORY_DAYS,
    UsageHistory,
    is_day_off,
)
from drready.planning.problem import NIGHT_START_HOUR, DrawForecast

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Units = IntArray | slice


@dataclass(frozen=True)
class _DayMeans:
    """Per unit: the mean use per slot of workdays and of days off (n, 2, 48) and the days
    observed (n,) (the day of the planning time counts: it is observed up to it)."""

    means: FloatArray
    n_days: IntArray


def _class_means(use: Float32Array, off: BoolArray) -> tuple[_DayMeans, Float32Array]:
    """Class means and the leave-one-out forecast of every past day (n, D, 48) (NaN where the
    day is incomplete)."""
    complete: BoolArray = np.asarray(~np.isnan(use).any(axis=2))  # (n, D)
    x = np.where(complete[:, :, None], use, np.float32(0.0))
    n_all = complete.sum(axis=1)
    observed = (~np.isnan(use)).any(axis=2).sum(axis=1)  # days with any slot observed
    s_all = x.sum(axis=1, dtype=np.float64)  # (n, 48)
    cls = np.stack([~off, off])  # (2, D)
    s_c = np.einsum("cd,nds->ncs", cls.astype(np.float32), x, dtype=np.float64)
    n_c = (complete[:, None, :] & cls[None, :, :]).sum(axis=2)  # (n, 2)
    use_cls = n_c >= MIN_CLASS_DAYS
    mean_all = s_all / np.maximum(n_all, 1)[:, None]
    means = np.where(
        use_cls[:, :, None], s_c / np.maximum(n_c, 1)[:, :, None], mean_all[:, None, :]
    )
    # leave-one-out: each complete day's forecast from the others
    day_cls = off.astype(np.int64)  # (D,)
    s_own = s_c.astype(np.float32)[:, day_cls, :]  # (n, D, 48)
    n_own = n_c[:, day_cls]  # (n, D)
    loo_cls_ok = (n_own - 1) >= MIN_CLASS_DAYS
    loo_cls = (s_own - x) / np.maximum(n_own - 1, 1).astype(np.float32)[:, :, None]
    loo_all = (s_all.astype(np.float32)[:, None, :] - x) / np.maximum(n_all - 1, 1).astype(
        np.float32
    )[:, None, None]
    loo = np.where(loo_cls_ok[:, :, None], loo_cls, loo_all)
    loo[~complete] = np.nan
    return _DayMeans(means, observed.astype(np.int64)), loo


def reference_learned_forecast(
    history: UsageHistory,
    units: Units,
    grid: SlotGrid,
    confidence: float,
    prior: DrawForecast,
) -> DrawForecast:
    """The forecast of the units at ``units`` over ``grid`` from their own history (see the
    module), the cold-start ``prior`` (the national schedule's, same units and grid) for units
    with fewer than :data:`MIN_HISTORY_DAYS` days observed (the day in progress counts).

    Returns a :class:`~drready.planning.problem.DrawForecast` with ``over_l``/``under_l`` at
    ``confidence`` (for :func:`~drready.planning.problem.build_problem` at the same
    confidence).
    """
    if not 0.5 <= confidence <= 0.999:
        raise ValueError(f"confidence must be within 0.5–0.999, got {confidence}")
    days, use = history.series(units)
    n, t = use.shape[0], grid.n_slots
    if prior.mean_l.shape != (t, n):
        raise ValueError(f"prior.mean_l must be ({t}, {n}), got {prior.mean_l.shape}")
    over_p, under_p = prior.margins_l(confidence)
    if not days:
        return _with_margins(prior, over_p, under_p, confidence)
    off = np.array([is_day_off(d) for d in days])
    dm, loo = _class_means(use, off)
    learned = dm.n_days >= MIN_HISTORY_DAYS
    if not learned.any():
        return _with_margins(prior, over_p, under_p, confidence)
    zone = ZoneInfo(grid.tz)
    start = grid.start.astimezone(zone)
    offset = start.hour * 2 + start.minute // 30
    # expected use over the grid and until the next 23:00 after its end, by each date's class
    # (the end condition of days_covering: the next 23:00 strictly after the end's hour)
    end = offset + t
    night = NIGHT_START_HOUR * 2
    stop = (end // 48 + (0 if end % 48 < night else 1)) * 48 + night
    horizon_days = [start.date() + timedelta(days=i) for i in range(stop // 48 + 1)]
    cls_of = np.array([is_day_off(d) for d in horizon_days], dtype=np.int64)
    ahead = dm.means[:, cls_of, :].reshape(n, -1)  # (n, H·48) from 00:00 of the start's date
    mean = ahead[:, offset:end]
    after = ahead[:, end:stop].sum(axis=1)
    # scores: for every past day, the cumulative error over the horizon's span from the same
    # time of day (NaN from the first slot not observed on), as (n, boundary, day) float32 so
    # that one sort along the contiguous last axis gives both bounds
    resid = (use - loo.astype(np.float32)).reshape(n, -1)
    d_count = len(days)
    running = np.zeros((n, resid.shape[1] + t + 1), np.float32)
    np.cumsum(resid, axis=1, out=running[:, 1 : resid.shape[1] + 1])
    running[:, resid.shape[1] + 1 :] = np.nan  # past the history: no score
    starts = np.arange(d_count) * 48 + offset  # (W,)
    scores = running[:, starts[None, :] + np.arange(t + 1)[:, None]]  # (n, t+1, W)
    scores -= running[:, starts][:, None, :]
    over, under, guaranteed, count = conformal_bounds(scores, confidence)
    z = NormalDist().inv_cdf(confidence)
    filled = np.nan_to_num(scores, nan=0.0, copy=False)  # the scores are not used after this
    sum_sq = np.einsum("ntw,ntw->nt", filled, filled, dtype=np.float64)
    rms = np.where(count > 0, np.sqrt(sum_sq / np.maximum(count, 1)), np.nan)
    # never below z times the errors' own root mean square: with fewer than 39 scores the
    # conformal rank at 95 % is the largest score, whose coverage n/(n+1) is only just the
    # target at each boundary, while a plan must hold at all of them at once
    over = np.fmax(over, z * rms)
    under = np.fmax(under, z * rms)
    # boundaries no past day reached: the prior's margin
    over_l = np.clip(np.where(np.isnan(over), over_p.T, over), 0.0, None)
    under_l = np.clip(np.where(np.isnan(under), under_p.T, under), 0.0, None)
    # (added with issue 13 item 3) where the conformal rank is beyond the scores (no
    # guaranteed bound): the cumulative use's upper and lower curves never inside the cold
    # start's, both as absolute curves
    cum_mean = np.concatenate([np.zeros((n, 1)), np.cumsum(mean, axis=1)], axis=1)
    cum_prior = np.concatenate([np.zeros((n, 1)), np.cumsum(prior.mean_l.T, axis=1)], axis=1)
    upper = np.fmax(cum_mean + over_l, cum_prior + over_p.T)
    lower = np.fmin(cum_mean - under_l, cum_prior - under_p.T)
    over_l = np.where(guaranteed, over_l, upper - cum_mean)
    under_l = np.where(guaranteed, under_l, cum_mean - lower)
    sigma = np.where(np.isnan(rms), prior.cum_sigma_l.T, rms)
    # units still cold: the prior throughout
    keep = learned[:, None]
    return DrawForecast(
        mean_l=_tm(np.where(keep, mean, prior.mean_l.T)),
        cum_sigma_l=_tm(np.where(keep, sigma, prior.cum_sigma_l.T)),
        after_end_l=np.where(learned, after, prior.after_end_l),
        over_l=_tm(np.where(keep, over_l, over_p.T)),
        under_l=_tm(np.where(keep, under_l, under_p.T)),
        confidence=confidence,
    )


def _with_margins(
    f: DrawForecast, over: FloatArray, under: FloatArray, confidence: float
) -> DrawForecast:
    return DrawForecast(
        f.mean_l, f.cum_sigma_l, f.after_end_l, over_l=over, under_l=under, confidence=confidence
    )


def _tm(x: FloatArray) -> FloatArray:
    return np.ascontiguousarray(x.T, dtype=np.float64)
