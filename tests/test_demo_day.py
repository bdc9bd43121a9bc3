"""`drready demo` as a user runs it: the issue's acceptance figures, the dashboard in Chromium,
and every process it started stopped (U1, U2, D3, D5).

One run of the default demo (1 000 units, 5 ECHONET Lite homes, a battery) with ``--json
--keep-serving``: the summary arrives as JSON on stdout while the dashboard stays up; the test
reads the dashboard in headless Chromium and compares its numbers with the JSON, then stops
the demo with Ctrl-C (SIGINT) and checks that the VTN and the dashboard are gone. Only the
shareable results land in ``--out``; keys, credentials and databases are in the run's private
state directory (here under the test's ``XDG_STATE_HOME``), which the summary names.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drready.domain.time import DEFAULT_TZ
from drready.servicer.core.settlement import read_settlement_csv
from drready.sim.day_demo import SHAREABLE_OUTPUTS

CHROMIUM = "/usr/bin/chromium"


def _read_json(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    """The JSON document the demo prints on stdout (it keeps running afterwards)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data, deadline = b"", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
            if data.rstrip().endswith(b"}"):
                try:
                    return json.loads(data)  # type: ignore[no-any-return]
                except json.JSONDecodeError:
                    continue
        elif proc.poll() is not None:
            break
    raise AssertionError(f"no summary within {timeout_s} s; stdout so far:\n{data.decode()}")


def _port_open(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _shown(page: Any, testid: str) -> float:
    text = page.get_by_test_id(testid).inner_text()
    return float(text.replace("kWh", "").replace("kW", "").replace("%", "").strip())


@pytest.mark.slow
def test_the_demo_meets_the_issue_figures_and_stops_everything(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium: apt-get install chromium chromium-driver")
    playwright = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "demo"
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drready.cli",
            "demo",
            "--json",
            "--keep-serving",
            "--out",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    try:
        summary = _read_json(proc, timeout_s=240)
        wall_s = time.monotonic() - started
        # the issue: within 3 minutes on this 2-core machine
        assert summary["wall_time_s"] < 180 and wall_s < 200, (summary["wall_time_s"], wall_s)
        rows = {(r["window"].split(" ")[0], r["route"]): r for r in summary["rows"]}
        for window in ("up-DR", "down-DR"):
            total = rows[(window, "all")]
            assert total["requested_kwh"] > 100, total
            # delivered ≥ 90 % of the requested energy, no DR-caused shortage
            assert total["delivered_kwh"] >= 0.9 * total["requested_kwh"], total
            assert all(r["dr_caused_shortages"] == 0 for r in summary["rows"])
            routes = rows[(window, "gateway")], rows[(window, "cloud")]
            assert sum(r["accepted_kwh"] for r in routes) == pytest.approx(
                total["accepted_kwh"], abs=1e-2
            )
        assert rows[("up-DR", "gateway")]["accepted_kwh"] > 0  # route i took part
        t = summary["tracking"]
        assert t["minutes"] == 60
        assert t["with_f5"]["share_within_tolerance"] >= 0.95
        assert t["without_f5"]["share_within_tolerance"] < 0.95  # without F5 it fails
        assert t["heaters_only"]["share_within_tolerance"] < 0.5
        # the settlement CSVs read back
        for tag in ("up", "down"):
            settled = read_settlement_csv(out / f"settlement-{tag}.csv", DEFAULT_TZ)
            assert settled.portfolio is not None
            # only resources that accepted the event are settled (issue 11: homes that refused
            # the evening event were credited with the noon shift), accepted apart from requested
            for res in settled.resources:
                assert res.accepted_kwh is not None and sum(res.accepted_kwh) > 0, res.resource_id
        down_homes = rows[("down-DR", "gateway")]
        down = read_settlement_csv(out / "settlement-down.csv", DEFAULT_TZ)
        if down_homes["accepted_kwh"] == 0:
            assert [r.resource_id for r in down.resources] == ["FLEET-000005"]

        url = summary["dashboard_url"]
        assert url and _port_open(url)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(ignore_https_errors=True)  # the demo's own local CA
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            # behind the operators' login (issue 12 item 6): the run's operator and password
            # are in its private state directory
            login = dict(
                line.split(": ", 1)
                for line in (Path(summary["state_dir"]) / "dashboard-login.txt")
                .read_text()
                .splitlines()
            )
            assert page.url.startswith(url.split("/dashboard/")[0] + "/login")
            page.get_by_label("Operator").fill(login["operator"])
            page.get_by_label("Password").fill(login["password"])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector('[data-testid="summary-row"]')
            all_rows = [r for r in summary["rows"] if r["route"] == "all"]
            requested = sum(r["requested_kwh"] for r in all_rows)
            delivered = sum(r["delivered_kwh"] for r in all_rows)
            assert _shown(page, "summary-all-requested_kwh") == pytest.approx(requested, abs=0.06)
            assert _shown(page, "summary-all-delivered_kwh") == pytest.approx(delivered, abs=0.06)
            assert _shown(page, "tracking-share_pct") == pytest.approx(
                100 * t["with_f5"]["share_within_tolerance"], abs=0.06
            )
            assert page.get_by_test_id("event-row").count() >= 6
            assert page.get_by_test_id("resource-row").count() == 6  # FLEET + 5 homes
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert (tmp_path / "dashboard.png").stat().st_size > 30_000
            assert not errors, errors
            browser.close()
        assert (out / "report.html").stat().st_size > 10_000
        # --out holds what may be shared; the secrets are in the private state directory
        assert sorted(p.name for p in out.iterdir()) == sorted(SHAREABLE_OUTPUTS)
        state = Path(summary["state_dir"])
        assert state.is_relative_to(tmp_path / "state" / "drready" / "runs"), state
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for secret in (
            "vtn/clients.toml",
            "vtn/certs/ca-key.pem",
            "vtn/vtn.db",
            "servicer.db",
            "dashboard-login.txt",
            "dashboard/operators.toml",
            "dashboard/session.key",
        ):
            assert stat.S_IMODE((state / secret).stat().st_mode) == 0o600, secret
        assert json.loads((out / "summary.json").read_text()) == summary
        # market registration data: in the servicer's registry only, sealed
        with sqlite3.connect(state / "servicer.db") as db:
            (n_sealed,) = db.execute("SELECT count(*) FROM market_registration").fetchone()
            columns = {row[1] for row in db.execute("PRAGMA table_info(market_registration)")}
        assert n_sealed == 5
        assert "supply_point_id" not in columns and "ciphertext" in columns
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    # everything it started is gone: the dashboard, the VTN child and the ECHONET Lite nodes
    assert not _port_open(summary["dashboard_url"])
    vtn_log = (state / "vtn" / "vtn.log").read_text()
    assert "Uvicorn running" in vtn_log or "Application startup complete" in vtn_log
    found = subprocess.run(
        ["pgrep", "-f", f"--database sqlite:///{state}/vtn/vtn.db"], capture_output=True, text=True
    )
    assert found.stdout.strip() == "", found.stdout
    for host in ("127.0.0.2", "127.0.0.20"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 3610))  # free again: the node that held it is closed
