"""``drready echonet serve-battery``: the ECHONET Lite storage battery node (class 0x027D) as a
service a supervisor runs (issue 11 item 5: the stack's battery node), run through the CLI as an
operator runs it and spoken to over UDP by our controller.

The battery follows the shared process clock (DRREADY_CLOCK) — at 1000× a wall second is 1000
simulated seconds — so charging at a designated 100 kW for two wall seconds raises the stored
energy by 100 kW × η_c (0.95) × the simulated hours, which the node's own 0xE2 shows; SIGTERM
stops it within 10 s with exit status 0. Bad ratings exit 2 naming the option.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from drready.domain.clock import ENV_CLOCK, ClockSpec
from drready.domain.time import DEFAULT_TZ, zone
from drready.echonet.controller import EchonetController, EchonetTimeoutError
from drready.echonet.frame import EOJ
from drready.echonet.mra import class_spec
from drready.echonet.values import decode_value

ADDRESS = "127.0.9.40"
CLI = [sys.executable, "-m", "drready.cli", "echonet"]
RATINGS = ["--capacity-kwh", "1000", "--power-kw", "200"]
SCALE = 1000.0
BATTERY = EOJ(0x02, 0x7D, 0x01)
SPEC = class_spec(0x027D).properties


async def _read(ctl: EchonetController, *epcs: int) -> dict[int, object]:
    for _ in range(20):  # until the node answers
        try:
            got = await ctl.get(ADDRESS, BATTERY, list(epcs))
            break
        except EchonetTimeoutError:
            await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"{ADDRESS} never answered")
    return {e: decode_value(SPEC[e], edt) for e, edt in got.items() if edt is not None}


async def _session() -> tuple[dict[int, object], dict[int, object], dict[int, object], float]:
    async with EchonetController(interface="127.0.0.1") as ctl:
        before = await _read(ctl, 0xD0, 0xC8, 0xCF, 0xE2)
        accepted = await ctl.set(ADDRESS, BATTERY, {0xEB: (100_000).to_bytes(4, "big")})
        accepted |= await ctl.set(ADDRESS, BATTERY, {0xDA: bytes([0x42])})  # charging
        assert accepted == {0xEB: True, 0xDA: True}
        first = await _read(ctl, 0xE2)
        t0 = time.monotonic()
        await asyncio.sleep(2.0)
        after = await _read(ctl, 0xE2, 0xCF, 0xD3)
        return before, first, after, time.monotonic() - t0


def test_serve_battery_charges_on_the_shared_clock_and_stops_with_exit_0() -> None:
    spec = ClockSpec.starting_now(datetime(2026, 5, 14, 6, 0, tzinfo=zone(DEFAULT_TZ)), SCALE)
    node = subprocess.Popen(
        [*CLI, "serve-battery", "--address", ADDRESS, *RATINGS, "--serial", "BT0000042"],
        env={**os.environ, ENV_CLOCK: spec.to_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        assert ADDRESS in node.stdout.readline()
        before, first, after, wall_s = asyncio.run(_session())
    finally:
        node.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        code = node.wait(20)
        took_s = time.monotonic() - t0
    assert before[0xD0] == 1_000_000  # Wh
    assert before[0xC8] == {"minValue": 0, "maxValue": 200_000}  # W
    assert before[0xCF] == "standby"
    assert after[0xCF] == "charging" and after[0xD3] == 100_000
    # 100 kW × 0.95 for at least the 2 wall seconds slept, at most the time between the reads
    # plus their own round trips (a tenth of a wall second is 100 simulated seconds)
    gained_kwh = (int(str(after[0xE2])) - int(str(first[0xE2]))) / 1000.0
    least_h, most_h = 2.0 * SCALE / 3600.0, (wall_s + 0.1) * SCALE / 3600.0
    assert 100.0 * 0.95 * least_h - 0.01 <= gained_kwh <= 100.0 * 0.95 * most_h, gained_kwh
    assert code == 0
    assert took_s < 10.0


def test_serve_battery_refuses_bad_ratings_naming_the_option() -> None:
    for args, option in (
        (["--capacity-kwh", "0"], "--capacity-kwh"),
        (["--serial", "x y"], "--serial"),
    ):
        done = subprocess.run(
            [*CLI, "serve-battery", "--address", ADDRESS, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert f"drready: error: {option}" in done.stderr, done.stderr
