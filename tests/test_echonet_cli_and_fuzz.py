"""`drready echonet serve|scan|get|set`, and a running node under random and mutated frames."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

from drready.echonet.controller import EchonetController
from drready.echonet.frame import ESV
from tests.echonet_helpers import HEATER, make_node, request


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drready.cli", "echonet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_scan_get_set_from_the_command_line():
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drready.cli",
            "echonet",
            "serve",
            "--address",
            "127.0.0.30",
            "--persons",
            "3",
            "--tank-l",
            "370",
            "--serial",
            "CLI0000001",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()  # the node prints once it is about to serve
        assert "127.0.0.30" in line, line
        found: list[dict[str, object]] = []
        for _ in range(20):  # wait until it answers
            r = cli("scan", "--json", "--window", "0.3")
            assert r.returncode == 0, r.stderr
            found = [n for n in json.loads(r.stdout) if n["address"] == "127.0.0.30"]
            if found:
                break
            time.sleep(0.3)
        assert found, "the served node was not discovered"
        node = found[0]
        assert node["maker_code"] == "000000"
        assert "026B01" in node["instances"]  # type: ignore[operator]
        props = node["objects"]["026B01"]  # type: ignore[index]
        assert props["0xE2"] == 370

        r = cli("get", "127.0.0.30", "0xE2")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"epc": "0xE2", "edt": "0172", "value": 370}
        r = cli("set", "127.0.0.30", "0xC7", "01")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["accepted"] is True
        r = cli("set", "127.0.0.30", "0xE2", "0001")  # read-only: refused
        assert r.returncode == 1 and "refused" in r.stderr
        conf = subprocess.run(
            [
                sys.executable,
                "-m",
                "drready.cli",
                "conformance",
                "echonet",
                "--address",
                "127.0.0.30",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert conf.returncode == 0, conf.stdout + conf.stderr
        assert json.loads(conf.stdout)["passed"] is True
        r = cli("get", "127.0.0.30", "0x12")
        assert r.returncode == 2 and "EPC" in r.stderr
        r = cli("get", "not-an-ip", "0xE2")
        assert r.returncode == 2 and "ADDRESS" in r.stderr
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()


def test_serve_refuses_every_interface_without_the_flag():
    r = cli("serve", "--address", "0.0.0.0")
    assert r.returncode == 2 and "--address" in r.stderr


def test_running_node_survives_random_and_mutated_frames():
    async def run() -> None:
        node, heater = make_node("127.0.0.31")
        await node.start()
        rng = random.Random(11)
        valid = [
            request(ESV.GET, [(0x80, b""), (0xE1, b"")]),
            request(ESV.SETC, [(0xC7, b"\x01"), (0xCA, b"\x0d")]),
            request(ESV.SETGET, [(0xB0, b"\x41")], get_props=[(0xF3, b""), (0xF4, b"")]),
            request(ESV.SETC, [(0xF0, bytes(13))]),
        ]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", 0))
        tx.setblocking(False)
        try:
            for i in range(1500):
                if i % 3 == 0:
                    data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
                else:
                    frame = bytearray(rng.choice(valid))
                    for _ in range(rng.randrange(1, 4)):
                        frame[rng.randrange(len(frame))] = rng.randrange(256)
                    data = bytes(frame[: rng.randrange(1, len(frame) + 1)])
                tx.sendto(data, ("127.0.0.31", 3610))
                if i % 100 == 0:
                    await asyncio.sleep(0.01)  # let the node drain its socket
            await asyncio.sleep(0.3)
            assert node.stats.malformed > 100
            # still answering, with a consistent state
            async with EchonetController(interface="127.0.0.1") as ctl:
                got = await ctl.get("127.0.0.31", HEATER, [0x80, 0xE2, 0x9F])
                assert got[0x80] == b"\x30" and got[0xE2] == (460).to_bytes(2, "big")
            assert heater.remaining_hot_water_l >= 0
            heater.heating_plan()  # the unit can still plan
        finally:
            tx.close()
            await node.close()

    asyncio.run(run())


def test_serve_checks_its_profile_and_answer_delay():
    for args, flag in (
        (["--profile", "standard-double"], "--profile"),
        (["--answer-delay-s", "21"], "--answer-delay-s"),
    ):
        r = cli("serve", "--address", "127.0.0.31", *args, timeout=30)
        assert r.returncode == 2 and flag in r.stderr, (args, r.stderr)
