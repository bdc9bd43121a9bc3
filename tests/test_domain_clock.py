"""One clock for every process (issue 11 item 4): separate processes handed the same
ClockSpec agree on the simulated instant without talking to each other."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from drready.domain.clock import (
    ENV_CLOCK,
    ClockSpec,
    ScaledClock,
    SimClock,
    WallClock,
    clock_from_env,
)

START = datetime(2026, 5, 14, 7, 0, tzinfo=UTC)


def test_scaled_clock_hand_computed() -> None:
    spec = ClockSpec(sim_start=START, wall_start=1_000.0, scale=720.0)
    wall = [1_000.0]
    clock = ScaledClock(spec, wall_time=lambda: wall[0])
    assert clock.now() == START
    wall[0] = 1_005.0  # 5 wall seconds × 720 = 1 simulated hour
    assert clock.now() == START + timedelta(hours=1)
    wall[0] = 1_120.0  # 120 s × 720 = 24 h
    assert clock.now() == START + timedelta(days=1)
    assert clock.wall_seconds(10.0) == pytest.approx(10 / 720)


def test_clock_spec_rejects_what_cannot_run() -> None:
    for bad in (0.5, 0.0, 1001.0, float("inf")):
        with pytest.raises(ValueError, match="scale"):
            ClockSpec(sim_start=START, wall_start=0.0, scale=bad)
    with pytest.raises(ValueError, match="sim_start"):
        ClockSpec(sim_start=datetime(2026, 5, 14), wall_start=0.0, scale=10.0)  # naive


def test_clock_from_env() -> None:
    assert isinstance(clock_from_env({}), WallClock)
    spec = ClockSpec.starting_now(START, 100.0)
    clock = clock_from_env({ENV_CLOCK: spec.to_env()})
    assert isinstance(clock, ScaledClock)
    assert abs((clock.now() - START).total_seconds()) < 100.0 * 5  # within 5 wall seconds
    with pytest.raises(ValueError, match=f"^{ENV_CLOCK}: not a valid clock spec"):
        clock_from_env({ENV_CLOCK: "{"})
    with pytest.raises(ValueError, match="scale"):
        clock_from_env(
            {ENV_CLOCK: json.dumps({"sim_start": START.isoformat(), "wall_start": 0, "scale": 0})}
        )


def test_two_processes_on_one_spec_agree() -> None:
    spec = ClockSpec.starting_now(START, 500.0)
    code = (
        "import time; from drready.domain.clock import clock_from_env; c = clock_from_env(); "
        "w = time.time(); print(c.now().isoformat(), w)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={ENV_CLOCK: spec.to_env(), "PATH": "", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    theirs, their_wall = datetime.fromisoformat(out[0]), float(out[1])
    ours = ScaledClock(spec, wall_time=lambda: their_wall).now()
    assert abs((theirs - ours).total_seconds()) < 500.0 * 0.01  # same instant within 10 ms wall


def test_sim_clock_moves_only_when_told() -> None:
    clock = SimClock(START, speed=0)
    time.sleep(0.01)
    assert clock.now() == START
    assert clock.advance(timedelta(minutes=5)) == START + timedelta(minutes=5)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(timedelta(seconds=-1))
