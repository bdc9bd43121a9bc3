"""`drready cloud serve` as an operator runs it (issue 11 items 3, 4, 6): at 04:45 JST it answers
a potential request for tomorrow 10:00–14:00, it follows the process clock, SIGTERM and SIGINT
let the poll under way finish and exit 0 within 10 s, and in units mode resources are
registered in batches while the cloud keeps polling."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from drready.cloud import service
from drready.cloud.live import LiveFleet
from drready.cloud.service import MakerCloud, wall_seconds
from drready.domain import DEFAULT_TZ, Direction, DrRequest, ResponseStatus
from drready.domain.clock import ENV_CLOCK, ClockSpec, ScaledClock, SimClock, WallClock
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import BlVenCreate, to_wire
from tests.test_cli_vtn_cloud import CLOUD_SECRET, _bl_headers, _serve_vtn, _wait_until_up
from tests.test_cloud_end_to_end import GROUP, _reports
from tests.test_ven_client import VEN_ID, serve_vtn

TZ = zone(DEFAULT_TZ)


def test_waits_follow_the_clock() -> None:
    spec = ClockSpec(sim_start=datetime(2026, 5, 12, 4, 45, tzinfo=TZ), wall_start=0, scale=720)
    assert wall_seconds(ScaledClock(spec), 10.0) == pytest.approx(10.0 / 720)
    assert wall_seconds(WallClock(), 10.0) == 10.0
    assert wall_seconds(SimClock(spec.sim_start, speed=0.0), 10.0) == 10.0  # stepped by hand
    assert wall_seconds(None, 10.0) == 10.0


def _cloud(base: str, ca: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "drready.cli", "cloud", "serve", "--vtn", base]
    command += ["--ca", str(ca), "--interval", "1", *extra]
    return subprocess.Popen(
        command,
        env={**env, "DRREADY_CLIENT_SECRET": CLOUD_SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, float, str]:
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return -1, time.monotonic() - started, err
    return proc.returncode, time.monotonic() - started, err


def test_serve_answers_tomorrow_at_04_45_and_stops_on_sigterm(tmp_path: Path) -> None:
    served = _serve_vtn(tmp_path)
    base = f"https://127.0.0.1:{served.port}"
    cloud = None
    try:
        with httpx.Client(
            verify=ssl.create_default_context(cafile=served.ca_file), timeout=10
        ) as http:
            _wait_until_up(http, base)
            bl = _bl_headers(http, base)
            program = http.post(
                f"{base}/programs", headers=bl, json={"programName": "DRREADY-HPWH"}
            )
            program_id = program.json()["id"]
            # the shared clock says 04:45 JST (the hour the issue tried), running at wall pace
            at = datetime(2026, 5, 12, 4, 45, tzinfo=TZ)
            spec = ClockSpec.starting_now(at, 1.0)
            env = {**served.env, ENV_CLOCK: spec.to_env()}
            cloud = _cloud(base, served.ca_file, env, "--units", "40", "--mode", "group")
            w0, w1 = datetime(2026, 5, 13, 10, tzinfo=TZ), datetime(2026, 5, 13, 14, tzinfo=TZ)
            ask = profile.potential_request(program_id, w0, w1)
            event = http.post(f"{base}/events", headers=bl, json=to_wire(ask)).json()
            reports: list[dict[str, object]] = []
            deadline = time.monotonic() + 40
            while not reports and time.monotonic() < deadline and cloud.poll() is None:
                got = http.get(f"{base}/reports", headers=bl, params={"eventID": event["id"]})
                reports = [r for r in got.json() if r["reportName"] == profile.POTENTIAL_REPORT]
                time.sleep(0.3)
            assert reports, "no potential report for tomorrow 10:00–14:00"
            (resource,) = reports[0]["resources"]  # type: ignore[misc]
            assert resource["resourceName"] == GROUP
        code, took, err = _stop(cloud, signal.SIGTERM)
        assert code == 0 and took < 10, (code, took, err[-2000:])
        assert "stopping after the current poll" in err and "maker cloud stopped" in err
        assert "state at 2026-05-12T04:30:00+09:00" in err  # the fleet started at the clock's now
    finally:
        for proc in (cloud, served.proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_with_a_time_scale_stops_on_sigint(tmp_path: Path) -> None:
    served = _serve_vtn(tmp_path)
    base = f"https://127.0.0.1:{served.port}"
    cloud = None
    try:
        with httpx.Client(
            verify=ssl.create_default_context(cafile=served.ca_file), timeout=10
        ) as http:
            _wait_until_up(http, base)
            bl = _bl_headers(http, base)
            http.post(f"{base}/programs", headers=bl, json={"programName": "DRREADY-HPWH"})
            env = {k: v for k, v in served.env.items() if k != ENV_CLOCK}
            # at 600× a slot passes every 3 s: the fleet rolls (polls at least 0.1 s apart)
            cloud = _cloud(base, served.ca_file, env, "--units", "5", "--time-scale", "600")
            deadline = time.monotonic() + 30
            rolled = False
            assert cloud.stderr is not None
            lines: list[str] = []
            while time.monotonic() < deadline and cloud.poll() is None:
                line = cloud.stderr.readline()
                lines.append(line)
                if "fleet rolled" in line:
                    rolled = True
                    break
            assert rolled, "".join(lines[-20:])
        code, took, err = _stop(cloud, signal.SIGINT)
        assert code == 0 and took < 10, (code, took, err[-2000:])
    finally:
        for proc in (cloud, served.proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_time_scale_must_agree_with_the_shared_clock() -> None:
    spec = ClockSpec.starting_now(datetime(2026, 5, 12, 4, 45, tzinfo=TZ), 720.0)
    command = [sys.executable, "-m", "drready.cli", "cloud", "serve", "--vtn", "https://x:1"]
    env = {"DRREADY_CLIENT_SECRET": "s" * 20, ENV_CLOCK: spec.to_env(), "PATH": "/usr/bin"}
    r = subprocess.run(
        [*command, "--time-scale", "60"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "--time-scale" in r.stderr and "720" in r.stderr, r.stderr
    r = subprocess.run(
        [*command, "--time-scale", "5000"],
        env={**env, ENV_CLOCK: ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--time-scale" in r.stderr and "1–1000" in r.stderr, r.stderr


def test_units_are_registered_in_batches_while_the_cloud_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "REGISTER_BATCH", 10)
    monkeypatch.setattr(service, "REGISTER_BUDGET_S", 0.0)  # one batch per poll
    clock = SimClock(datetime(2026, 5, 12, 9, tzinfo=TZ), speed=0.0)
    fleet = LiveFleet.random(25, clock, seed=1)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            bl.post("/programs", profile.program())

            async def main() -> list[list[str]]:
                async with vtn.ven() as ven:
                    cloud = MakerCloud(fleet, ven, clock=clock)
                    logs = []
                    counts = []
                    for _ in range(4):
                        logs.append(await cloud.poll_once(clock.now()))
                        counts.append(len(cloud.resource_names))
                        clock.advance(timedelta(minutes=20))
                    assert counts == [10, 20, 25, 25]
                    assert cloud.registered
                    return logs

            logs = asyncio.run(main())
            assert "10 of 25 resource(s), 15 to go" in logs[0][0]
            assert any("25 of 25 resource(s)" in line for line in logs[2])
            assert any("fleet rolled 1 slot(s)" in line for line in logs[1] + logs[2])
            names = sorted(r["resourceName"] for r in bl.get("/resources", limit=50))
            assert names == fleet.names
        finally:
            bl.close()


def test_a_poll_registers_batches_until_its_time_budget_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polling the whole registered fleet after every batch made registering quadratic: a poll
    goes on registering batches while its budget lasts (here: every batch of the 25 units)."""
    monkeypatch.setattr(service, "REGISTER_BATCH", 10)
    monkeypatch.setattr(service, "REGISTER_BUDGET_S", 60.0)
    clock = SimClock(datetime(2026, 5, 12, 9, tzinfo=TZ), speed=0.0)
    fleet = LiveFleet.random(25, clock, seed=1)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            bl.post("/programs", profile.program())

            async def main() -> list[str]:
                async with vtn.ven() as ven:
                    cloud = MakerCloud(fleet, ven, clock=clock)
                    log = await cloud.poll_once(clock.now())
                    assert cloud.registered and len(cloud.resource_names) == 25
                    return log

            log = asyncio.run(main())
            assert "25 of 25 resource(s) (25 in" in log[0], log
            names = sorted(r["resourceName"] for r in bl.get("/resources", limit=50))
            assert names == fleet.names
        finally:
            bl.close()


def test_sigterm_during_a_large_fleets_start_up_exits_0() -> None:
    command = [sys.executable, "-m", "drready.cli", "cloud", "serve"]
    command += ["--vtn", "https://127.0.0.1:9", "--units", "300000", "--mode", "group"]
    env = {k: v for k, v in os.environ.items() if k != ENV_CLOCK}
    proc = subprocess.Popen(
        command,
        env={**env, "DRREADY_CLIENT_SECRET": "s" * 20},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4.0)  # imported, building the fleet (≈ 12 s for 300 000 units)
    assert proc.poll() is None
    code, took, err = _stop(proc, signal.SIGTERM)
    assert code == 0 and took < 10, (code, took, err[-2000:])
    assert "stopped during its start-up" in err


def test_the_live_fleet_answers_a_day_ahead_event_through_the_vtn(tmp_path: Path) -> None:
    """Group mode against the VTN: at 15:00 a potential and a DR event for tomorrow
    10:00–14:00; the cloud rolls through the night and reports power inside the window from
    the plan it still honours."""
    clock = SimClock(datetime(2026, 5, 12, 15, tzinfo=TZ), speed=0.0)
    fleet = LiveFleet.random(40, clock, seed=3)
    w0, w1 = datetime(2026, 5, 13, 10, tzinfo=TZ), datetime(2026, 5, 13, 14, tzinfo=TZ)
    with serve_vtn(tmp_path) as vtn:
        bl = vtn.bl()
        try:
            program_id = bl.post("/programs", profile.program())["id"]

            async def main() -> None:
                async with vtn.ven() as ven:
                    cloud = MakerCloud(fleet, ven, mode="group", clock=clock)
                    await cloud.register()
                    ven_obj = bl.get("/vens", venName=VEN_ID)[0]
                    grant = BlVenCreate(client_id=VEN_ID, ven_name=VEN_ID, targets=(GROUP,))
                    bl.put(f"/vens/{ven_obj['id']}", grant)
                    ask = bl.post("/events", profile.potential_request(program_id, w0, w1))
                    await cloud.poll_once(clock.now())
                    (report,) = _reports(bl, ask["id"], profile.POTENTIAL_REPORT)
                    (env,) = profile.envelopes_from_report(report, computed_at=clock.now())
                    assert env.up_kwh == pytest.approx(fleet.group_envelope(w0, w1).up_kwh)
                    req = DrRequest(
                        request_id="x",
                        direction=Direction.UP,
                        start=w0,
                        end=w1,
                        amount_kwh=0.5 * env.up_kwh,
                        issued_at=clock.now(),
                    )
                    dr = profile.dr_event(program_id, req, [GROUP])
                    ev = bl.post("/events", dr)
                    await cloud.poll_once(clock.now())
                    (plan_report,) = _reports(bl, ev["id"], profile.PLAN_REPORT)
                    (answer,) = profile.answers_from_report(plan_report, req)
                    assert answer.response.status is ResponseStatus.ACCEPTED
                    # through the night, every 30 minutes, to 11:00 inside the window
                    rolled = 0
                    while clock.now() < datetime(2026, 5, 13, 11, tzinfo=TZ):
                        clock.advance(timedelta(minutes=30))
                        log = await cloud.poll_once(clock.now())
                        rolled += sum("fleet rolled 1 slot(s)" in line for line in log)
                    assert rolled == 40
                    powers = _reports(bl, ev["id"], profile.POWER_REPORT)
                    assert len(powers) == 3  # 10:00, 10:30 and 11:00
                    owed = fleet.accepted_kwh(answer.response.request_id).sum()
                    assert owed == pytest.approx(answer.response.accepted_kwh, rel=1e-6)

            asyncio.run(main())
        finally:
            bl.close()
