"""The ``drready`` command contract: JSON shapes, exit status 2 on bad arguments, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def drready(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drready.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_potential_json_contract():
    r = drready(
        "potential",
        "--persons",
        "4",
        "--tank-l",
        "460",
        "--date",
        "2026-05-12",
        "--window",
        "10:00-15:00",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {
        "device_id",
        "window_start",
        "window_end",
        "up_kwh",
        "down_kwh",
        "confidence",
        "slots",
    }
    assert out["window_start"] == "2026-05-12T10:00:00+09:00"
    assert out["window_end"] == "2026-05-12T15:00:00+09:00"
    assert len(out["slots"]) == 10
    assert set(out["slots"][0]) == {"start", "baseline_kw", "min_kw", "max_kw"}
    assert out["up_kwh"] > 0 and out["confidence"] == 0.95


def test_plan_json_contract_and_plot(tmp_path: Path):
    png = tmp_path / "plan.png"
    r = drready(
        "plan",
        "--persons",
        "4",
        "--tank-l",
        "460",
        "--date",
        "2026-05-12",
        "--request",
        "up:10:00-13:00:2.0",
        "--request",
        "down:01:00-05:00:50",
        "--json",
        "--plot",
        str(png),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"responses", "plan", "shortages", "cost_yen"}
    first, second = out["responses"]
    assert set(first) == {"request_id", "status", "accepted_kwh", "reason"}
    assert first["status"] == "accepted" and first["accepted_kwh"] == pytest.approx(2.0)
    assert second["status"] in {"partial", "rejected"} and second["reason"]
    assert len(out["plan"]["slots"]) == 64
    assert set(out["plan"]["slots"][0]) == {"start", "power_kw", "energy_kwh", "stored_heat_kwh"}
    assert out["shortages"] == 0
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["potential", "--persons", "7"], "--persons"),
        (["potential", "--persons", "x"], "--persons"),
        (["potential", "--tank-l", "20"], "--tank-l"),
        (["potential", "--date", "2026-13-01"], "--date"),
        (["potential", "--window", "10:15-12:00"], "--window"),
        (["potential", "--window", "12:00-10:00"], "--window"),
        (["potential", "--confidence", "1.5"], "--confidence"),
        (["plan", "--request", "sideways:10:00-12:00:1"], "--request"),
        (["plan", "--request", "up:10:00-12:00:-1"], "--request"),
        (["engine-demo", "--households", "0"], "--households"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(args: list[str], named: str):
    r = drready(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert named in lines[0]
    assert r.stdout == ""


def test_schema_writes_json_schemas(tmp_path: Path):
    r = drready("schema", str(tmp_path))
    assert r.returncode == 0, r.stderr
    names = {p.name for p in tmp_path.glob("*.schema.json")}
    assert {"DrRequest.schema.json", "FlexibilityEnvelope.schema.json"} <= names
    schema = json.loads((tmp_path / "DrRequest.schema.json").read_text())
    assert schema["title"] == "DrRequest"


def test_demo_prints_summary_and_writes_png(tmp_path: Path):
    r = drready("engine-demo", "--households", "30", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "delivered" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    up, down = summary["windows"]
    assert up["declared_kwh"] > 0
    assert up["accepted_kwh"] <= up["requested_kwh"] + 1e-6
    assert up["delivered_kwh"] >= 0.9 * up["accepted_kwh"]
    assert down["accepted_kwh"] <= down["declared_kwh"] + 1e-6
    assert summary["dr_caused_shortages"] == 0
    assert (tmp_path / "fleet_power.png").stat().st_size > 10_000
