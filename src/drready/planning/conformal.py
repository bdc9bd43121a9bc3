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

**Without sorting** (:class:`StreamedBounds`): the bound at level ``c`` among ``n`` scores is
the ``(n − k + 1)``-th *largest*, and ``n − k + 1`` is small — 1 (the largest) for every
``n ≤ 38`` at 95 %, so for a unit's 27 past days. The fleet's forecast streams its scores one
past day at a time into a running top-``m`` and bottom-``m`` (``m`` = :func:`order_depth`,
``m`` max/min updates per day, no (units × boundaries × days) array, no sort), and reads both
bounds from them: the same order statistics as :func:`conformal_bounds`, exactly.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "StreamedBounds",
    "conformal_bounds",
    "conformal_rank",
    "conformal_upper",
    "min_scores_for",
    "order_depth",
]

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


def order_depth(level: float, max_n: int) -> int:
    """The most ranks from either end a bound at ``level`` reads among at most ``max_n``
    scores: ``max(n − min(k, n) + 1)`` over ``n ≤ max_n`` (1: the bounds are the extremes).

    >>> order_depth(0.95, 38), order_depth(0.95, 39), order_depth(0.9, 27)
    (1, 2, 2)
    """
    n = np.arange(1, max(int(max_n), 1) + 1)
    k = conformal_rank(n, level)
    return int((n - np.minimum(k, n) + 1).max())


class StreamedBounds:
    """Both one-sided split-conformal bounds of scores that arrive one past day at a time,
    without keeping or sorting them (see the module): a running top-``depth`` and
    bottom-``depth`` per element, NaN scores skipped.

    ``StreamedBounds(shape, level, max_n)``, then :meth:`add` each day's scores (an array of
    ``shape``), then :meth:`bounds` with the scores counted per element: the same
    ``(upper, upper_of_negatives)`` as :func:`conformal_bounds` on the stacked scores.

    >>> sb = StreamedBounds((1,), 0.9, 19)
    >>> for x in [3.0, np.nan, 1.0, 2.0, 5.0, 4.0]:
    ...     sb.add(np.array([x], np.float32))
    >>> [b.tolist() for b in sb.bounds(np.array([5]))]
    [[5.0], [-1.0]]
    """

    def __init__(self, shape: tuple[int, ...], level: float, max_n: int) -> None:
        self.level = _check_level(level)
        self.depth = order_depth(self.level, max_n)
        # top[0] ≥ top[1] ≥ …, bottom[0] ≤ bottom[1] ≤ … ; ±inf (depth > 1) or NaN (depth 1)
        # where fewer scores have come
        fill_top = np.nan if self.depth == 1 else -np.inf
        fill_bottom = np.nan if self.depth == 1 else np.inf
        self.top = np.full((self.depth, *shape), fill_top, np.float32)
        self.bottom = np.full((self.depth, *shape), fill_bottom, np.float32)
        self._hold = np.empty(shape, np.float32)

    def add(self, scores: npt.NDArray[np.float32]) -> None:
        """One score per element (NaN: none)."""
        if self.depth == 1:  # fmax/fmin skip NaN: the extremes in one update each
            np.fmax(self.top[0], scores, out=self.top[0])
            np.fmin(self.bottom[0], scores, out=self.bottom[0])
            return
        missing = np.isnan(scores)
        for ranks, fill, keep, drop in (
            (self.top, -np.inf, np.maximum, np.minimum),
            (self.bottom, np.inf, np.minimum, np.maximum),
        ):
            x = np.where(missing, np.float32(fill), scores)
            for r in ranks:  # insertion into the sorted ranks: the displaced value moves on
                np.copyto(self._hold, r)
                keep(r, x, out=r)
                drop(self._hold, x, out=x)

    def bounds(
        self, n: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(upper, upper_of_negatives)`` given ``n`` scores counted per element (NaN where
        ``n`` is 0), as :func:`conformal_bounds` returns them."""
        k = conformal_rank(n, self.level)
        # the (n − min(k, n) + 1)-th from either end; clip: an element without scores reads
        # rank 1 and is masked below
        j = np.clip(n - np.minimum(k, n), 0, self.depth - 1)[None, ...]
        hi = np.take_along_axis(self.top, j, axis=0)[0]
        lo = np.take_along_axis(self.bottom, j, axis=0)[0]
        none = n == 0
        upper = np.where(none, np.nan, hi).astype(np.float64)
        lower_neg = np.where(none, np.nan, -lo).astype(np.float64)
        return upper, lower_neg
