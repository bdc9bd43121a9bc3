"""``drready servicer run`` as an operator runs it (issue 11 items 2, 4, 6): a child process over
HTTPS against a ``drready vtn serve`` child and a ``drready cloud serve`` child (20 units, one
resource each, reporting F5 power in the window), all on one scaled clock (``DRREADY_CLOCK``,
720×: an hour in 5 s).

One order goes through the north-bound API from placement to settlement: dispatched to the
cloud's resources, answered, delivering in its window, delivered, then — once a meter data
provider posted the 30-minute history — settled for the resources that accepted, with what was
requested and what was accepted in separate CSV columns; before that, delivered so far comes
from the F5 energy counters, after it from the meter. Along the way: idempotency, 401/403,
the portfolio's potential for the window (404 before), JSON-line logs naming the order,
Prometheus metrics parsed by prometheus_client, and a SIGTERM that ends the process with status
0 within 10 s although a TLS keep-alive client sits idle on it."""

from __future__ import annotations

import csv
import io
import json
import signal
import socket
import ssl
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drready.domain import DEFAULT_TZ
from drready.domain.clock import ClockSpec, ScaledClock
from drready.domain.time import zone
from tests.servicer_run_helpers import Stack, stack, wait_until

TZ = zone(DEFAULT_TZ)
SCALE = 720.0
STOP_WITHIN_S = 10.0
HISTORY_DAYS = 16
#: Accepted amounts travel as kW rounded to 1e-6 (profile.WIRE_DECIMALS) per event: over 20
#: resources and two slots their sum may differ from the order's 4 kWh by some µWh.
WIRE_KWH = 1e-4
#: Least share of the accepted energy the F5 counters must show delivered (measured 1.01).
F5_SHARE = 0.7
BASE_KWH = 0.3  # every metered slot of the history: a flat load, so the baseline is exactly it
ARGS = [
    "--tick", "120",  # simulated seconds between order steps (0.17 s of wall time)
    "--power-every", "120",
    "--potential-wait", "1800",
    "--response-timeout", "3600",
    "--settle-at", ",".join(f"{h:02d}:15" for h in range(24)),  # hourly: no waiting a day
    "--log-format", "json",
]  # fmt: skip


#: The maker cloud on the same clock: polls every 72 simulated seconds (0.1 s of wall time).
CLOUD_ARGS = ["--units", "20", "--mode", "units", "--interval", "72"]


def _ceil_slot(t: datetime) -> datetime:
    t = t.astimezone(TZ)
    floor = t.replace(minute=30 if t.minute >= 30 else 0, second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=30)


def _window(now: datetime) -> tuple[datetime, datetime]:
    """An hour starting 80–110 simulated minutes from now (7–9 s of wall time: room for the
    potential request, the dispatch and the answers, one cloud poll a second, on a busy
    machine), within one local day."""
    start = _ceil_slot(now + timedelta(minutes=80))
    end = start + timedelta(hours=1)
    if end.date() != start.date() and end.time() != datetime.min.time():
        start = datetime.combine(end.date(), datetime.min.time(), tzinfo=TZ)
        end = start + timedelta(hours=1)
    return start, end


def _status(s: Stack, http: Any, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = http.get(f"/api/v1/orders/{order_id}?detail=resources", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _meter_post(
    names: list[str], accepted: dict[str, float], start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """The history of every resource of the order: BASE_KWH per slot from HISTORY_DAYS days
    before the window's day up to the last ended slot, plus its accepted amount spread over the
    window's slots (an up-DR delivered exactly)."""
    first = datetime.combine(
        start.date() - timedelta(days=HISTORY_DAYS), datetime.min.time(), tzinfo=TZ
    )
    n = int((_ceil_slot(now) - first) / timedelta(minutes=30))
    if _ceil_slot(now) > now:
        n -= 1  # the slot now running has not ended
    w0 = int((start - first) / timedelta(minutes=30))
    w_n = int((end - start) / timedelta(minutes=30))
    series = []
    for name in names:
        values = [BASE_KWH] * n
        for k in range(w0, w0 + w_n):
            values[k] = BASE_KWH + accepted.get(name, 0.0) / w_n
        series.append({"resource": name, "start": first.isoformat(), "energy_kwh": values})
    return {"series": series}


def test_an_order_placed_through_the_api_is_dispatched_delivered_and_settled(
    tmp_path: Path,
) -> None:
    spec = ClockSpec.starting_now(datetime.now(TZ), SCALE)
    clock = ScaledClock(spec)
    with (
        stack(tmp_path, servicer_args=ARGS, cloud_args=CLOUD_ARGS, clock_env=spec.to_env()) as s,
        s.client() as http,
    ):
        desk, meter, viewer = (s.headers(http, c) for c in ("desk", "meter-provider", "auditor"))
        health = http.get("/healthz").json()
        assert health["database"] == "ok" and health["clock"]["scale"] == SCALE
        start, end = _window(clock.now())
        q = f"start={start.isoformat()}&end={end.isoformat()}".replace("+", "%2B")
        before = http.get(f"/api/v1/portfolio/potential?{q}", headers=viewer)
        assert before.status_code == 404 and "no potential collected" in before.json()["detail"]

        # the order: 401 without a token, 403 with the meter provider's, idempotent for the desk
        body = {
            "direction": "up",
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "energy_kwh": 4.0,
        }
        assert http.post("/api/v1/orders", json=body).status_code == 401
        assert http.post("/api/v1/orders", json=body, headers=meter).status_code == 403
        placed = http.post("/api/v1/orders", json=body, headers={**desk, "Idempotency-Key": "o1"})
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        again = http.post("/api/v1/orders", json=body, headers={**desk, "Idempotency-Key": "o1"})
        assert (again.status_code, again.json()["id"]) == (200, order_id)
        changed = {**body, "energy_kwh": 5.0}
        conflict = http.post(
            "/api/v1/orders", json=changed, headers={**desk, "Idempotency-Key": "o1"}
        )
        assert conflict.status_code == 409
        bad = http.post("/api/v1/orders", json={**body, "colour": "red"}, headers=desk)
        assert bad.status_code == 400 and "colour: unknown field" in bad.json()["detail"]

        # dispatched to the cloud's resources and answered before the window
        seen: list[str] = []

        def reached(*statuses: str) -> bool:
            status = _status(s, http, order_id, desk)["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            return status in statuses

        wait_until(lambda: reached("accepted", "delivering", "delivered"), 30, "an answer")
        answered = _status(s, http, order_id, desk)
        assert clock.now() < end
        routes = {r["route"]: r for r in answered["figures"]["routes"]}
        assert routes["cloud"]["n_resources"] > 0 and routes["gateway"]["n_resources"] == 0
        assert routes["cloud"]["accepted_kwh"] == pytest.approx(4.0, abs=WIRE_KWH)
        assert answered["figures"]["shortfall_kwh"] == pytest.approx(0.0, abs=WIRE_KWH)
        potential = http.get(f"/api/v1/portfolio/potential?{q}", headers=viewer)
        assert potential.status_code == 200, potential.text
        pot = potential.json()["potential"]
        assert pot["n_answered"] == 20 and pot["up_kwh"] >= 4.0 and pot["missing"] == []

        # through its window: delivering, then delivered once the window is over
        wait_until(lambda: reached("delivered"), 40, "the end of the window")
        assert clock.now() >= end
        assert seen[-3:] == ["accepted", "delivering", "delivered"] or seen[-2:] == [
            "delivering",
            "delivered",
        ], seen
        done = _status(s, http, order_id, desk)
        # before any meter reading: delivered so far from the F5 energy counters the cloud
        # reported in the window, against the baseline each unit declared (the fleet executes
        # its plans against the households' sampled use, so not to the last Wh)
        cloud = next(r for r in done["figures"]["routes"] if r["route"] == "cloud")
        assert all(r["measured_slots"] == 2 for r in done["figures"]["resources"])
        assert cloud["delivered_kwh"] >= F5_SHARE * cloud["accepted_kwh"], cloud
        resources = done["figures"]["resources"]
        accepted = {r["resource_name"]: r["accepted_kwh"] for r in resources}
        assert sum(accepted.values()) == pytest.approx(4.0, abs=WIRE_KWH)

        # the meter data provider posts the history; delivered so far follows the meter
        post = _meter_post(list(accepted), accepted, start, end, clock.now())
        answer = http.post("/api/v1/meter-readings", json=post, headers=meter)
        assert answer.status_code == 200, answer.text
        measured = _status(s, http, order_id, desk)
        for r in measured["figures"]["resources"]:
            assert r["measured_slots"] == 2
            # energy in the window minus the baseline the unit declared with its potential
            expected = 2 * BASE_KWH + r["accepted_kwh"] - r["baseline_kwh"]
            assert r["delivered_kwh"] == pytest.approx(expected, abs=1e-9)

        # the hourly settlement settles the accepting resources from the meter history
        wait_until(lambda: reached("settled"), 30, "the settlement")
        day = start.date().isoformat()
        settled = http.get(f"/api/v1/settlements/{day}", headers=viewer)
        assert settled.status_code == 200, settled.text
        (event,) = settled.json()["events"]
        assert event["order_id"] == order_id
        assert {r["resource_name"] for r in event["resources"]} == {
            n for n, kwh in accepted.items() if kwh > 0
        }
        for r in event["resources"]:  # flat history: baseline = BASE_KWH, delivered = accepted
            assert r["delivered_kwh"] == pytest.approx(r["accepted_kwh"], abs=1e-9)
        assert event["delivered_kwh"] == pytest.approx(4.0, abs=WIRE_KWH)
        table = http.get(f"/api/v1/settlements/{day}", headers={**viewer, "Accept": "text/csv"})
        rows = [r for r in csv.DictReader(io.StringIO(table.text)) if r["level"] == "resource"]
        assert len(rows) == 2 * len(event["resources"])
        assert sum(float(r["accepted_kwh"]) for r in rows) == pytest.approx(4.0, abs=WIRE_KWH)
        assert sum(float(r["requested_kwh"]) for r in rows) == pytest.approx(
            sum(r["requested_kwh"] for r in event["resources"]), rel=1e-9
        )
        assert _status(s, http, order_id, desk)["settled_kwh"] == pytest.approx(4.0, abs=WIRE_KWH)

        # metrics, as Prometheus reads them
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        orders = {x.labels["status"]: x.value for x in families["drready_servicer_orders"].samples}
        assert orders["settled"] == 1 and sum(orders.values()) == 1
        runs = {
            x.labels["job"]: x.value
            for x in families["drready_servicer_job_runs"].samples
            if x.name.endswith("_total")
        }
        assert runs["orders"] > 10 and runs["settlement"] >= 1 and runs["sync"] >= 1
        latency = families["drready_servicer_vtn_request_duration_seconds"].samples
        assert sum(x.value for x in latency if x.name.endswith("_count")) > 20
        delivered = {
            x.labels["route"]: x.value for x in families["drready_servicer_delivered_kwh"].samples
        }
        assert delivered["cloud"] > 0 and delivered["gateway"] == 0
        assert families["drready_servicer_silent_resources"].samples[0].value == 0

        # SIGTERM with an idle TLS keep-alive client on the API: exit 0 within 10 s
        servicer = s.child("servicer")
        port = int(s.api_url.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(s.bundle.ca_cert))
        idle = context.wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost"
        )
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        servicer.proc.send_signal(signal.SIGTERM)
        try:
            code = servicer.proc.wait(STOP_WITHIN_S + 10)
        except subprocess.TimeoutExpired:
            pytest.fail("the servicer still runs 20 s after SIGTERM")
        took = time.monotonic() - t0
        idle.close()
        assert code == 0 and took < STOP_WITHIN_S, (code, took)
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))

    # structured logs: JSON lines, the order followed by its id
    lines = [json.loads(line) for line in servicer.text().splitlines() if line.startswith("{")]
    assert lines and all({"timestamp", "level", "logger", "message"} <= set(x) for x in lines)
    about = [x for x in lines if x.get("order_id") == order_id]
    assert any("dispatched" in x["message"] for x in about)
    assert any(x.get("sim_time") for x in lines)
    assert any(x["message"] == "servicer stopped" for x in lines)
