"""Split-conformal bounds of a forecast's errors, vectorised over units (F1, E1; issue 13 item 2).

A unit that learns its household (:mod:`drready.planning.forecast`) states its confidence from
its own past errors instead of a model's normal bound. Given ``n`` past *scores* — here the
cumulative use a past day drew above (or below) what the forecast made without that day would
have said, at one slot boundary of the planning horizon — the split-conformal bound at level
``c`` is the ``k``-th smallest score with

    ``k = ⌈(n + 1) · c⌉``.

If the scores and the next day's error are exchangeable, the next error stays at or below that
bound with probability at least ``c``, whatever their distribution (Vovk et al. 2005; Lei et al.,
"Distribution-free predictive inference for regression", JASA 2018, §2.2). Exchangeability is
the assumption a trip or a week of guests breaks for a while; they enter the scores as soon as
they have happened, which is why a unit's bound widens after them.

The guarantee needs ``k ≤ n``, i.e. at least ``⌈c / (1 − c)⌉`` scores (19 at 95 %). With fewer,
:func:`conformal_upper` returns the largest score and flags the bound as not guaranteed; the
caller decides what to add (the forecast takes the larger of it and ``z`` times the scores' own
root mean square).

Scores are float arrays with NaN for a missing one (a day the unit did not observe); the bound
is taken along one axis, every other axis (units, boundaries) at once.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["conformal_bounds", "conformal_rank", "conformal_upper", "min_scores_for"]

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be within (0, 1), got {level}")
    return float(level)


def conformal_rank(n: npt.ArrayLike, level: float) -> IntArray:
    """``k = ⌈(n + 1) · level⌉``: the rank (1-based) of the split-conformal bound among ``n``
    scores. It exceeds ``n`` when there are too few scores for a guaranteed bound.

    >>> conformal_rank([9, 19, 27], 0.95).tolist()
    [10, 19, 27]
    """
    lv = _check_level(level)
    n_arr = np.asarray(n, dtype=np.int64)
    if np.any(n_arr < 0):
        raise ValueError("n must be ≥ 0")
    # the product is rounded to 1e-9 first: (19 + 1) · 0.95 is 19.000000000000004 in floats
    return np.ceil(np.round((n_arr + 1) * lv, 9)).astype(np.int64)


def min_scores_for(level: float) -> int:
    """Fewest scores for a guaranteed bound at ``level``: the least ``n`` with ``k ≤ n``.

    >>> min_scores_for(0.95), min_scores_for(0.9)
    (19, 9)
    """
    lv = _check_level(level)
    return math.ceil(round(lv / (1.0 - lv), 9))


def conformal_upper(
    scores: npt.ArrayLike, level: float, axis: int = -1
) -> tuple[npt.NDArray[np.float64], BoolArray, IntArray]:
    """The split-conformal upper bound of ``scores`` along ``axis`` at ``level``.

    Parameters
    ----------
    scores : array_like of float
        Past scores; NaN marks a missing one (not counted).
    level : float
        Confidence level, in (0, 1).
    axis : int
        The axis of the scores (e.g. days); the others are kept.

    Returns
    -------
    bound : float64 array
        The ``k``-th smallest score, ``k = ⌈(n + 1)·level⌉`` (:func:`conformal_rank`); the largest
        score where ``k > n``; NaN where there is no score.
    guaranteed : bool array
        Where ``k ≤ n`` (the distribution-free coverage holds).
    n : int64 array
        Scores counted.

    Examples
    --------
    The 19 scores 1…19 at 95 %: ``k = ⌈20 · 0.95⌉ = 19``, the largest.

    >>> b, ok, n = conformal_upper(np.arange(1.0, 20.0), 0.95)
    >>> float(b), bool(ok), int(n)
    (19.0, True, 19)
    """
    lv = _check_level(level)
    s = np.moveaxis(np.asarray(scores, dtype=np.float64), axis, -1)
    n = np.sum(~np.isnan(s), axis=-1).astype(np.int64)
    ordered = np.sort(s, axis=-1)  # NaN sort last
    k = conformal_rank(n, lv)
    guaranteed: BoolArray = (k <= n) & (n > 0)
    # clip: the rank falls back to the largest score (index n − 1) when there are too few, and
    # to index 0 of an all-NaN row, which yields NaN
    idx = np.clip(np.minimum(k, n) - 1, 0, None)
    bound = np.take_along_axis(ordered, idx[..., None], axis=-1)[..., 0]
    bound = np.where(n > 0, bound, np.nan)
    return bound, guaranteed, n


def conformal_bounds(
    scores: npt.NDArray[np.floating], level: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], BoolArray, IntArray]:
    """Both one-sided bounds of ``scores`` along the **last** axis with one sort: the upper
    bound of the scores and the upper bound of their negatives (the ``k``-th largest score,
    negated), each as :func:`conformal_upper` gives it.

    Returns ``(upper, upper_of_negatives, guaranteed, n)``.

    >>> up, down, ok, n = conformal_bounds(np.arange(1.0, 20.0), 0.95)
    >>> float(up), float(down), bool(ok)
    (19.0, -1.0, True)
    """
    lv = _check_level(level)
    ordered = np.sort(scores, axis=-1)  # NaN sort last
    n = np.sum(~np.isnan(ordered), axis=-1).astype(np.int64)
    k = conformal_rank(n, lv)
    guaranteed: BoolArray = (k <= n) & (n > 0)
    kk = np.minimum(k, n)
    # clip: the rank falls back to the extreme score when there are too few; an all-NaN row
    # reads index 0 (NaN)
    hi = np.take_along_axis(ordered, np.clip(kk - 1, 0, None)[..., None], axis=-1)[..., 0]
    lo = np.take_along_axis(ordered, np.clip(n - kk, 0, None)[..., None], axis=-1)[..., 0]
    none = n == 0
    upper = np.where(none, np.nan, hi).astype(np.float64)
    lower_neg = np.where(none, np.nan, -lo).astype(np.float64)
    return upper, lower_neg, guaranteed, n
