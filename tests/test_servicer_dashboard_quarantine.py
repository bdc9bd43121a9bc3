"""The dashboard shows the servicer's quarantine of untrusted VEN reports (S1): counts by reason
and the latest five, from the store through :func:`build_snapshot` into the JSON API and the
report, with the peers' strings escaped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.servicer.service import Servicer
from drready.servicer.storage.db import QuarantineReason
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.dashboard import dashboard_router, render_report_html
from drready.servicer.web.snapshot import QUARANTINE_SHOWN, build_snapshot

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 14, 12, 0, tzinfo=TZ)
HOSTILE = '</script><img src=x onerror="alert(1)">&'


def _servicer() -> Servicer:
    store = ServicerStore.open("sqlite://")
    servicer = Servicer(None, store, clock=lambda: NOW)  # type: ignore[arg-type]
    q = store.quarantine
    reasons = [QuarantineReason.NOT_OWNER] * 4 + [QuarantineReason.IMPLAUSIBLE] * 3
    for i, reason in enumerate(reasons):
        q.record(
            report_id=f"rep-{i}", kind="power", client_id=HOSTILE if i == 6 else f"c{i}",
            resource_name=HOSTILE if i == 6 else None, reason=reason,
            detail="x", at=NOW - timedelta(minutes=10 - i),
        )  # fmt: skip
    return servicer


def test_snapshot_counts_by_reason_and_latest_five() -> None:
    snap = build_snapshot(_servicer(), (), None, run_state="running", now=NOW)
    counts = {c.reason: c.count for c in snap.quarantine_counts}
    assert counts["not_owner"] == 4 and counts["implausible"] == 3
    assert sum(counts.values()) == 7  # every other reason present with 0
    assert set(counts) == {r.value for r in QuarantineReason}
    latest = snap.quarantine_latest
    assert len(latest) == QUARANTINE_SHOWN == 5
    assert [q.client_id for q in latest] == [HOSTILE, "c5", "c4", "c3", "c2"]  # newest first
    assert latest[0].resource_name == HOSTILE and latest[0].reason == "implausible"
    assert latest[1].resource_name == ""
    assert latest[0].quarantined_at == NOW - timedelta(minutes=4)
    assert latest[0].quarantined_at.utcoffset() == timedelta(hours=9)  # shown in local time


def test_json_api_and_report_carry_it_escaped() -> None:
    snap = build_snapshot(_servicer(), (), None, run_state="finished", now=NOW)
    app = FastAPI()
    app.include_router(dashboard_router(lambda: snap))
    body = TestClient(app).get("/api/dashboard").json()
    assert body["quarantine_latest"][0]["client_id"] == HOSTILE
    assert {"reason": "not_owner", "count": 4} in body["quarantine_counts"]
    html = render_report_html(snap)
    assert HOSTILE not in html and "<img" not in html
    data = html.split('id="dashboard-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["quarantine_latest"][0]["resource_name"] == HOSTILE


def test_nothing_quarantined() -> None:
    store = ServicerStore.open("sqlite://")
    servicer = Servicer(None, store, clock=lambda: NOW)  # type: ignore[arg-type]
    snap = build_snapshot(servicer, (), None, run_state="finished", now=NOW)
    assert snap.quarantine_latest == ()
    assert all(c.count == 0 for c in snap.quarantine_counts)
