"""The balancing-market-like command of U1: a bounded, seeded regulation signal, plus a baseline."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from drready.domain.time import DEFAULT_TZ, zone
from drready.sim.command_signal import CommandSignal, command_signal, regulation_signal

TZ = zone(DEFAULT_TZ)
START = datetime(2026, 5, 12, 13, 0, tzinfo=TZ)


def test_regulation_signal_is_bounded_seeded_and_has_the_stated_statistics():
    s = regulation_signal(60, seed=4)
    assert s.shape == (60,) and np.all(np.abs(s) <= 1.0)
    assert np.array_equal(s, regulation_signal(60, seed=4))
    assert not np.array_equal(s, regulation_signal(60, seed=5))
    # unclipped regime (σ = 0.2): mean 0, std σ, lag-1 autocorrelation exp(−60/600)
    long = regulation_signal(200_000, sigma=0.2, seed=1)
    assert abs(long.mean()) < 0.01  # standard error of the mean ≈ 0.2 √(2·10/200000) = 0.002
    assert long.std() == pytest.approx(0.2, rel=0.03)
    rho = np.corrcoef(long[:-1], long[1:])[0, 1]
    assert rho == pytest.approx(math.exp(-0.1), abs=0.005)
    # σ = 0.5 clips about P(|Z| > 2) ≈ 4.6 % of the steps
    clipped = np.mean(np.abs(regulation_signal(200_000, seed=2)) == 1.0)
    assert clipped == pytest.approx(0.0455, abs=0.006)


def test_command_is_baseline_plus_offered_times_signal():
    cmd = command_signal([10.0, 12.0, 11.0], 5.0, start=START, seed=3)
    np.testing.assert_allclose(cmd.command_kw, cmd.baseline_kw + 5.0 * cmd.regulation)
    np.testing.assert_allclose(cmd.regulation, regulation_signal(3, seed=3))
    assert cmd.times()[2] == datetime(2026, 5, 12, 13, 2, tzinfo=TZ)
    flat = command_signal(7.0, 2.0, start=START, n_steps=4, step_s=30.0)
    assert flat.n_steps == 4 and np.all(flat.baseline_kw == 7.0)
    assert flat.times()[1] == datetime(2026, 5, 12, 13, 0, 30, tzinfo=TZ)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_kw": 5.0, "offered_kw": 1.0}, "n_steps is required"),
        ({"baseline_kw": [1.0, 2.0], "offered_kw": 0.0}, "offered_kw must be finite and > 0"),
        ({"baseline_kw": [1.0, np.nan], "offered_kw": 1.0}, "baseline_kw must be finite"),
        ({"baseline_kw": [1.0], "offered_kw": 1.0, "step_s": -60.0}, "step_s"),
        ({"baseline_kw": [1.0], "offered_kw": 1.0, "n_steps": 3}, "does not match"),
    ],
)
def test_bad_command_input_is_refused(kwargs: dict[str, object], match: str):
    with pytest.raises(ValueError, match=match):
        command_signal(start=START, **kwargs)  # type: ignore[arg-type]


def test_command_signal_refuses_naive_start_and_out_of_band_regulation():
    with pytest.raises(ValueError, match="start"):
        command_signal([1.0], 1.0, start=datetime(2026, 5, 12, 13))
    with pytest.raises(ValueError, match=r"within \[-1, 1\]"):
        CommandSignal(START, 60.0, np.array([1.0]), 1.0, np.array([1.5]))
