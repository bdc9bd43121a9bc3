"""`drready echonet serve` and `drready gateway serve` are services a supervisor can run (issue 11
items 4 and 6): SIGTERM stops them within 10 s with exit status 0, and a node follows the process
clock every party of a stack shares (DRREADY_CLOCK), not its own wall time.

Run as an operator runs them: the CLI as child processes on loopback addresses of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from drready.domain.clock import ENV_CLOCK, ClockSpec
from drready.domain.time import DEFAULT_TZ, zone
from drready.echonet import extension as ext

DRREADY = str(Path(sys.executable).parent / "drready")
STOP_WITHIN_S = 10.0
GATEWAY_OPTIONS = ["--vtn", "https://127.0.0.1:9", "--host", "127.0.9.14"]
GATEWAY_OPTIONS += ["--interface", "127.0.9.15", "--interval", "1"]


def _stop(proc: subprocess.Popen[str]) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_WITHIN_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("still running 20 s after SIGTERM") from None
    return code, time.monotonic() - t0


def _serve_node(address: str, env: dict[str, str]) -> subprocess.Popen[str]:
    node = subprocess.Popen(
        [DRREADY, "echonet", "serve", "--address", address],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert node.stdout is not None
    assert address in node.stdout.readline()  # printed once it is about to serve
    return node


def _get(address: str, epc: str) -> dict[str, object]:
    for _ in range(20):
        r = subprocess.run(
            [DRREADY, "echonet", "get", address, epc],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode == 0:
            answer: dict[str, object] = json.loads(r.stdout)
            return answer
        time.sleep(0.3)
    raise AssertionError(f"{address} did not answer {epc}: {r.stderr}")


def test_a_node_runs_on_the_shared_clock_and_stops_with_exit_0() -> None:
    tz = zone(DEFAULT_TZ)
    sim_start = datetime(2026, 5, 14, 6, 0, tzinfo=tz)  # far from today: the node must use it
    spec = ClockSpec.starting_now(sim_start, scale=100.0)
    node = _serve_node("127.0.9.12", {**os.environ, ENV_CLOCK: spec.to_env()})
    try:
        plan = _get("127.0.9.12", "0xF4")
        start, minutes, _, _ = ext.decode_plan(bytes.fromhex(str(plan["edt"])), tz)
        # the plan in force starts at the slot in progress on the shared clock (a few simulated
        # minutes after sim_start at 100x), not on the wall clock's date
        assert minutes == 30
        assert sim_start - timedelta(hours=1) <= start <= sim_start + timedelta(hours=2), start
    finally:
        code, took_s = _stop(node)
    assert code == 0
    assert took_s < STOP_WITHIN_S


def test_a_gateway_stops_with_exit_0_while_its_vtn_is_unreachable() -> None:
    node = _serve_node("127.0.9.14", dict(os.environ))
    gateway = subprocess.Popen(
        [DRREADY, "gateway", "serve", *GATEWAY_OPTIONS],
        env={**os.environ, "DRREADY_CLIENT_SECRET": "gateway-secret-0123456789"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(5)  # discovered its unit, now backing off from the VTN
        assert gateway.poll() is None, gateway.stdout.read() if gateway.stdout else ""
        code, took_s = _stop(gateway)
        assert code == 0
        assert took_s < STOP_WITHIN_S
    finally:
        if gateway.poll() is None:
            gateway.kill()
        node_code, _ = _stop(node)
    assert node_code == 0
