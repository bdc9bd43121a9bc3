"""`drready gateway serve` and `drready gateway inspect` as a user runs them: help, argument
checks, no heater found, and the installer's view of a DR-ready, a standard-only and an unusable
unit."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from drready.cli import app
from tests.echonet_helpers import HEATER, TZ, make_node

runner = CliRunner()


def test_help_explains_every_flag() -> None:
    result = runner.invoke(app, ["gateway", "serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--vtn", "--host", "--interface", "--client-id", "--ca", "--power-interval"):
        assert flag in result.output


def test_bad_arguments_name_the_flag() -> None:
    env = {"DRREADY_CLIENT_SECRET": "s3cret"}
    bad = [
        (["--vtn", "https://localhost:1", "--interval", "0"], "--interval"),
        (["--vtn", "ftp://x"], "--vtn"),
        (["--vtn", "https://localhost:1", "--host", "not-an-ip"], "--host"),
        (["--vtn", "https://localhost:1", "--discovery-window", "60"], "--discovery-window"),
    ]
    for args, flag in bad:
        result = runner.invoke(app, ["gateway", "serve", *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert flag in result.output
    result = runner.invoke(app, ["gateway", "serve", "--vtn", "https://localhost:1"], env={})
    assert result.exit_code == 2 and "DRREADY_CLIENT_SECRET" in result.output


def test_no_water_heater_at_the_host_is_a_clear_error() -> None:
    result = runner.invoke(
        app,
        [
            "gateway",
            "serve",
            "--vtn",
            "https://localhost:1",
            "--host",
            "127.0.0.93",
            "--discovery-window",
            "0.2",
        ],
        env={"DRREADY_CLIENT_SECRET": "s3cret"},
    )
    assert result.exit_code == 2, result.output
    assert "no water heater" in result.output


def test_inspect_lists_each_unit_with_its_level_potential_and_power() -> None:
    """`drready gateway inspect` against a DR-ready, a standard-only and an unusable unit."""
    now = datetime.now(TZ).replace(second=0, microsecond=0)
    start = now.replace(minute=now.minute // 30 * 30)
    nodes = [
        make_node("127.0.3.81", profile="dr-ready", serial="INS0000081", start=start),
        make_node("127.0.3.82", profile="standard", serial="INS0000082", start=start),
        make_node("127.0.3.83", profile="standard", serial="INS0000083", start=start),
    ]
    broken = next(o for o in nodes[2][0].core.objects if o.eoj == HEATER)
    del broken.slots[0xCA]  # no shift time: the standard energy shift is not there
    day = nodes[1][1].target_day()

    async def run() -> Any:
        for node, _ in nodes:
            await node.start()
        try:
            return await asyncio.to_thread(
                runner.invoke,
                app,
                [
                    "gateway",
                    "inspect",
                    "--interface",
                    "127.0.3.80",
                    "--window",
                    "10:00-14:00",
                    "--date",
                    day.isoformat(),
                    "--host",
                    "127.0.3.81",
                    "--discovery-window",
                    "1",
                    "--json",
                ],
            )
        finally:
            for node, _ in nodes:
                await node.close()

    result = asyncio.run(run())
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    w0 = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
    assert doc["window"] == {
        "start": w0.isoformat(),
        "end": (w0 + timedelta(hours=4)).isoformat(),
    }
    units = {u["address"]: u for u in doc["units"]}
    ready, std, bad = (units[f"127.0.3.8{k}"] for k in (1, 2, 3))
    heater = nodes[0][1]
    assert ready["device_id"] == str(heater.device_id) and ready["level"] == "dr-ready"
    own = heater.flexibility_envelope(w0, w0 + timedelta(hours=4))
    assert ready["up_kwh"] == pytest.approx(own.up_kwh, abs=2e-3)
    assert ready["down_kwh"] == pytest.approx(own.down_kwh, abs=2e-3)
    assert ready["power_source"] == "measured"
    assert ready["power_kw"] == pytest.approx(heater.instantaneous_power_w / 1000, abs=1e-3)
    assert std["level"] == "standard" and std["power_source"] == "estimated"
    assert std["up_kwh"] == pytest.approx(
        nodes[1][1].expected_energy_at_shift_wh(1)[10] / 1000, abs=1e-3
    )
    assert std["down_kwh"] == 0.0
    assert bad["level"] == "unusable" and "0x9E lacks 0xCA" in bad["reason"]
    assert bad["device_id"] == str(nodes[2][1].device_id)


def test_inspect_checks_its_window() -> None:
    for window in ("10-14", "10:15-14:00", "25:00-26:00"):
        result = runner.invoke(app, ["gateway", "inspect", "--window", window])
        assert result.exit_code == 2 and "--window" in result.output, window
