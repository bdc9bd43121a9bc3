"""A balancing-market-like command for command-value following (U1): a seeded regulation signal.

A balancing-market-like command asks the servicer's resource group for a power every
``step_s`` (60 s by default): the group's planned consumption plus ``offered_kw × s(t)``, with
``s`` a regulation signal in [−1, 1] (:func:`command_signal`). It is what a transmission
operator would send; the simulations stand it in for one — the demo day
(:mod:`drready.sim.day_demo`) sends it to the live servicer, the offline reference run
(:mod:`drready.sim.following`) to the servicer's controller
(:class:`drready.servicer.core.following.FollowingController`).

Command model
-------------
``s`` is a discretised Ornstein–Uhlenbeck process — the AR(1) recursion
``x[k+1] = a x[k] + σ √(1 − a²) ε[k]``, ``a = exp(−step_s / time_constant_s)``, ``ε ~ N(0, 1)``,
``x[0] ~ N(0, σ²)`` — clipped to [−1, 1]: stationary, mean-reverting to 0 (the baseline) with
standard deviation ``σ`` (0.5 by default: the clip acts on about 5 % of the steps) and
autocorrelation ``exp(−lag / time_constant_s)`` (10 minutes by default). It stands in for a
normalised regulation signal: PJM's regulation signals are normalised to [−1, +1] of the
offered amount, and RegD is built to integrate to about zero for energy-limited resources. Our
convention is the consumption one of the heaters: ``s > 0`` asks the group to *consume* more.
Japan's balancing market (需給調整市場) sends its own instructions with product-specific
intervals; the step and the statistics of ``s`` are parameters.

References
----------
W. Kempton, University of Delaware V2G project, "Fast Regulation Data Explanation" (PJM RegD
signal normalised to −1…+1 of the offered kW), http://www.udel.edu/V2G/resources/; PJM,
issue "Regulation Performance Impacts" (RegD is programmed to integrate to zero for
energy-limited resources); EPRX, 需給調整市場の概要 (https://www.eprx.or.jp/outline/).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

from drready.domain import ensure_aware
from drready.domain.checks import finite_array, positive
from drready.servicer.core.following import DEFAULT_STEP_S

__all__ = ["CommandSignal", "command_signal", "regulation_signal"]

FloatArray = NDArray[np.float64]


def regulation_signal(
    n_steps: int,
    *,
    step_s: float = DEFAULT_STEP_S,
    time_constant_s: float = 600.0,
    sigma: float = 0.5,
    seed: int = 0,
) -> FloatArray:
    """A bounded, mean-reverting regulation signal ``s[k]`` ∈ [−1, 1] (module docstring).

    Parameters
    ----------
    n_steps : int
        Number of steps, ``>= 1``.
    step_s : float
        Update interval [s], > 0.
    time_constant_s : float
        Mean-reversion time constant [s], > 0.
    sigma : float
        Stationary standard deviation of the unclipped process [-], > 0.
    seed : int
        Seed of the random generator (same seed, same signal).
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    step = positive("step_s", step_s)
    tau = positive("time_constant_s", time_constant_s)
    sig = positive("sigma", sigma)
    rng = np.random.default_rng(seed)
    a = math.exp(-step / tau)
    eps = rng.standard_normal(n_steps)
    x = np.empty(n_steps)
    x[0] = sig * eps[0]
    scale = sig * math.sqrt(1.0 - a * a)
    for k in range(1, n_steps):  # a recursion: each value depends on the previous one
        x[k] = a * x[k - 1] + scale * eps[k]
    # the command band is ±offered: the signal saturates at ±1 (PJM-style normalisation)
    out: FloatArray = np.clip(x, -1.0, 1.0)
    return out


@dataclass(frozen=True)
class CommandSignal:
    """A command for the group: ``baseline_kw + offered_kw × regulation`` per step.

    ``command_kw[k]`` is the mean power asked for in ``[start + k·step, start + (k+1)·step)``.
    """

    start: datetime
    step_s: float
    baseline_kw: FloatArray
    offered_kw: float
    regulation: FloatArray

    def __post_init__(self) -> None:
        ensure_aware(self.start, "start")
        positive("step_s", self.step_s)
        positive("offered_kw", self.offered_kw)
        base = finite_array("baseline_kw", self.baseline_kw, ndim=1)
        reg = finite_array("regulation", self.regulation, ndim=1)
        if base.shape != reg.shape or base.size == 0:
            raise ValueError(
                f"baseline_kw and regulation must have the same non-zero length, got "
                f"{base.shape} and {reg.shape}"
            )
        if np.any(np.abs(reg) > 1.0):
            raise ValueError("regulation must lie within [-1, 1]")
        base.setflags(write=False)
        reg.setflags(write=False)
        object.__setattr__(self, "baseline_kw", base)
        object.__setattr__(self, "regulation", reg)

    @property
    def n_steps(self) -> int:
        return int(self.baseline_kw.size)

    @property
    def command_kw(self) -> FloatArray:
        """The power asked for in each step [kW]."""
        out: FloatArray = self.baseline_kw + self.offered_kw * self.regulation
        return out

    def times(self) -> list[datetime]:
        """Start of each step."""
        return [self.start + timedelta(seconds=k * self.step_s) for k in range(self.n_steps)]


def command_signal(
    baseline_kw: ArrayLike,
    offered_kw: float,
    *,
    start: datetime,
    step_s: float = DEFAULT_STEP_S,
    n_steps: int | None = None,
    time_constant_s: float = 600.0,
    sigma: float = 0.5,
    seed: int = 0,
) -> CommandSignal:
    """A seeded command around ``baseline_kw`` (per step, or a scalar with ``n_steps``).

    Parameters
    ----------
    baseline_kw : array_like
        The group's planned consumption per step [kW] (e.g.
        :func:`drready.sim.following.group_baseline_kw`), or one value repeated ``n_steps``
        times.
    offered_kw : float
        The offered amount: the command moves within ``baseline ± offered_kw`` [kW], > 0.
    start : datetime
        Start of the first step (timezone-aware).
    step_s, time_constant_s, sigma, seed
        See :func:`regulation_signal`.
    """
    base = np.asarray(baseline_kw, dtype=np.float64)
    if base.ndim == 0:
        if n_steps is None:
            raise ValueError("n_steps is required when baseline_kw is a scalar")
        base = np.full(n_steps, float(base))
    elif n_steps is not None and n_steps != base.size:
        raise ValueError(f"n_steps={n_steps} does not match len(baseline_kw)={base.size}")
    reg = regulation_signal(
        int(base.size), step_s=step_s, time_constant_s=time_constant_s, sigma=sigma, seed=seed
    )
    return CommandSignal(
        start=start, step_s=float(step_s), baseline_kw=base, offered_kw=offered_kw, regulation=reg
    )
