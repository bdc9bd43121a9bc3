"""The servicer dashboard (U1, U2, D3, D5, D6): snapshot model, router, page and HTML report.

The run shown is built here from first principles: per-event amounts summed per route and per
window, per-slot kW profiles that integrate to the window totals, a 60-minute command-following
trace whose statistics are computed here with numpy. The page is then loaded in real headless
Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright, never a downloaded browser) from a
uvicorn server on loopback, and what it *displays* is read back and compared with those numbers.
The standalone report is opened from ``file://`` and must display the same.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from drready.servicer.web.dashboard import (
    ASSET_MEDIA_TYPES,
    DashboardSnapshot,
    EventRow,
    QuarantineCount,
    QuarantineRow,
    ResourceRow,
    SummaryRow,
    TrackingPanel,
    TrackingStats,
    WindowRow,
    asset_bytes,
    dashboard_router,
    render_report_html,
    write_report,
)
from tests.https_helpers import serve

TZ = ZoneInfo("Asia/Tokyo")
DAY = datetime(2026, 5, 12, tzinfo=TZ)
CHROMIUM = Path("/usr/bin/chromium")
SLOT_H = 0.5


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


# ---------------------------------------------------------------------------------------------
# A finished run, computed here
# ---------------------------------------------------------------------------------------------

ROUTE_OF = {
    "gw-0001": "gateway",
    "gw-0002": "gateway",
    "gw-0003": "gateway",
    "gw-0004": "gateway",
    "gw-0005": "gateway",
    "acme-group-kanto": "cloud",
    "acme-unit-0042": "cloud",
}

# (event id, window, resource, round, requested kWh, status, accepted kWh, delivered kWh)
_UP = ("up-DR 10:00–14:00", "up", at(10), at(14))
_DOWN = ("down-DR 17:00–19:00", "down", at(17), at(19))
EVENTS: list[
    tuple[str, tuple[str, str, datetime, datetime], str, int, float, str, float | None, float]
] = [
    ("ev-up-gw-0001", _UP, "gw-0001", 1, 2.0, "accepted", 2.0, 2.05),
    ("ev-up-gw-0002", _UP, "gw-0002", 1, 2.0, "accepted", 2.0, 2.01),
    ("ev-up-gw-0003", _UP, "gw-0003", 1, 1.8, "rejected", None, 0.0),
    ("ev-up-gw-0005", _UP, "gw-0005", 1, 2.0, "partial", 1.2, 0.9),  # shortage
    ("ev-up-acme-group", _UP, "acme-group-kanto", 1, 40.0, "accepted", 40.0, 40.6),
    ("ev-up-acme-0042", _UP, "acme-unit-0042", 1, 2.0, "accepted", 2.0, 2.1),
    # round 2: the 1.8 rejected by gw-0003 and the 0.8 gw-0005 could not take, re-dispatched
    ("ev-up-acme-group-r2", _UP, "acme-group-kanto", 2, 2.6, "accepted", 2.6, 2.5),  # shortage
    ("ev-down-acme-group", _DOWN, "acme-group-kanto", 1, 20.0, "accepted", 20.0, 19.4),  # short
    ("ev-down-gw-0001", _DOWN, "gw-0001", 1, 1.0, "accepted", 1.0, 1.02),
    ("ev-down-gw-0002", _DOWN, "gw-0002", 1, 1.0, "silent", None, 0.0),
]
SHORTAGE_TOL_KWH = 1e-6


def _summary() -> list[SummaryRow]:
    rows = []
    for route in ("gateway", "cloud", "all"):
        mine = [e for e in EVENTS if route == "all" or ROUTE_OF[e[2]] == route]
        rows.append(
            SummaryRow(
                route=route,
                requested_kwh=sum(e[4] for e in mine),
                accepted_kwh=sum(e[6] or 0.0 for e in mine),
                delivered_kwh=sum(e[7] for e in mine),
                shortages=sum(1 for e in mine if e[7] < (e[6] or 0.0) - SHORTAGE_TOL_KWH),
            )
        )
    return rows


def _profile_kw(total_kwh: float, shape: np.ndarray) -> np.ndarray:
    """Per-slot mean power [kW] with the given shape that integrates to ``total_kwh``."""
    return np.asarray(total_kwh * shape / (shape.sum() * SLOT_H), dtype=float)


def _windows() -> list[WindowRow]:
    out = []
    for (label, direction, start, end), potential_factor in ((_UP, 1.25), (_DOWN, 1.6)):
        mine = [e for e in EVENTS if e[1][0] == label]
        n = int((end - start) / timedelta(minutes=30))
        k = np.arange(n)
        requested = sum(e[4] for e in mine)
        delivered = sum(e[7] for e in mine)
        potential = requested * potential_factor
        pot_kw = _profile_kw(potential, 1.0 + 0.3 * np.sin(np.pi * (k + 0.5) / n))
        req_kw = _profile_kw(requested, np.ones(n))
        del_kw = _profile_kw(delivered, 1.0 + 0.08 * np.cos(2.1 * k))
        out.append(
            WindowRow(
                label=label,
                direction=direction,
                window_start=start,
                window_end=end,
                route="all",
                potential_kwh=potential,
                requested_kwh=requested,
                accepted_kwh=sum(e[6] or 0.0 for e in mine),
                delivered_kwh=delivered,
                shortages=sum(1 for e in mine if e[7] < (e[6] or 0.0) - SHORTAGE_TOL_KWH),
                slot_starts=tuple(start + i * timedelta(minutes=30) for i in range(n)),
                potential_kw=tuple(pot_kw.tolist()),
                requested_kw=tuple(req_kw.tolist()),
                delivered_kw=tuple(del_kw.tolist()),
            )
        )
    return out


def _events() -> list[EventRow]:
    return [
        EventRow(
            event_id=eid,
            label=w[0],
            direction=w[1],
            window_start=w[2],
            window_end=w[3],
            resource_name=res,
            round=rnd,
            requested_kwh=req,
            status=status,
            accepted_kwh=acc,
        )
        for eid, w, res, rnd, req, status, acc, _ in EVENTS
    ]


def _resources() -> list[ResourceRow]:
    seen = at(19, 2)
    rows = []
    for i, (name, route) in enumerate(ROUTE_OF.items()):
        group = name == "acme-group-kanto"
        offline = name == "gw-0004"
        rows.append(
            ResourceRow(
                resource_name=name,
                ven_name=name if route == "gateway" else "acme-cloud",
                route=route,
                kind="group" if group else "unit",
                n_units=60 if group else 1,
                state="offline" if offline else "active",
                last_seen_at=at(6, 40) if offline else seen - timedelta(seconds=7 * i),
                last_power_kw=None if offline else (41.3 if group else 0.35 + 0.1 * i),
            )
        )
    return rows


@dataclass(frozen=True)
class Trace:
    panel: TrackingPanel
    within: np.ndarray  # per sample: |output − command| ≤ tolerance


def _tracking() -> Trace:
    """60 one-minute samples: heaters lag a stepped command, a ±10 kW battery fills the gap
    using the heaters' reported power (F5); without F5 it must assume the heaters' plan."""
    rng = np.random.default_rng(7)
    n, tol_kw, batt_max_kw = 60, 1.5, 10.0
    command = np.repeat([20.0, 34.0, 12.0, 26.0], 15)
    heater = np.empty(n)
    level = 20.0
    for k in range(n):  # first-order lag + on/off duty noise of individual units
        level += 0.35 * (command[k] - level)
        heater[k] = max(0.0, level + rng.normal(0.0, 0.9))
    battery = np.clip(command - heater, -batt_max_kw, batt_max_kw)
    output = heater + battery + rng.normal(0.0, 0.3, n)
    soc = 10.0 + np.concatenate([[0.0], np.cumsum(battery[:-1] / 60.0)])
    planned_heater = np.full(n, 20.0)  # without F5: only the plan is known
    output_nof5 = heater + np.clip(command - planned_heater, -batt_max_kw, batt_max_kw)

    def stats(out: np.ndarray) -> TrackingStats:
        err = np.abs(out - command)
        return TrackingStats(
            mean_abs_error_kw=float(err.mean()),
            max_abs_error_kw=float(err.max()),
            share_within_tolerance=float((err <= tol_kw).sum() / n),
        )

    panel = TrackingPanel(
        offered_kw=30.0,
        tolerance_kw=tol_kw,
        times=tuple(at(15) + timedelta(minutes=k) for k in range(n)),
        command_kw=tuple(command.tolist()),
        output_kw=tuple(output.tolist()),
        heater_kw=tuple(heater.tolist()),
        battery_kw=tuple(battery.tolist()),
        soc_kwh=tuple(soc.tolist()),
        stats=stats(output),
        stats_without_f5=stats(output_nof5),
    )
    return Trace(panel, np.abs(output - command) <= tol_kw)


def finished_run_snapshot(*, run_state: str = "finished") -> DashboardSnapshot:
    return DashboardSnapshot(
        generated_at=at(19, 5),
        run_state=run_state,
        summary=tuple(_summary()),
        windows=tuple(_windows()),
        events=tuple(_events()),
        resources=tuple(_resources()),
        tracking=_tracking().panel,
    )


def test_the_run_built_here_is_consistent() -> None:
    """The fixture's own invariants, so the browser checks compare against sound numbers."""
    snap = finished_run_snapshot()
    by = {r.route: r for r in snap.summary}
    for key in ("requested_kwh", "accepted_kwh", "delivered_kwh", "shortages"):
        total = getattr(by["gateway"], key) + getattr(by["cloud"], key)
        assert getattr(by["all"], key) == pytest.approx(total)
        assert sum(getattr(w, key) for w in snap.windows) == pytest.approx(total)
    for w in snap.windows:
        assert sum(w.requested_kw) * SLOT_H == pytest.approx(w.requested_kwh)
        assert sum(w.delivered_kw) * SLOT_H == pytest.approx(w.delivered_kwh)
        assert sum(w.potential_kw) * SLOT_H == pytest.approx(w.potential_kwh)
    assert by["all"].shortages == 3
    assert by["all"].requested_kwh == pytest.approx(74.4)
    assert len(snap.events) == 10 and len(snap.resources) == 7
    tr = _tracking()
    assert 0.5 < tr.panel.stats.share_within_tolerance < 1.0
    assert tr.panel.stats_without_f5 is not None
    assert tr.panel.stats_without_f5.share_within_tolerance < tr.panel.stats.share_within_tolerance


# ---------------------------------------------------------------------------------------------
# Model validation
# ---------------------------------------------------------------------------------------------


def _window_kwargs(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        label="up-DR 10:00–11:00",
        direction="up",
        window_start=at(10),
        window_end=at(11),
        potential_kwh=3.0,
        requested_kwh=2.0,
        accepted_kwh=2.0,
        delivered_kwh=1.9,
        slot_starts=(at(10), at(10, 30)),
        potential_kw=(3.0, 3.0),
        requested_kw=(2.0, 2.0),
        delivered_kw=(1.9, 1.9),
    )
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"delivered_kw": (1.9,)}, "delivered_kw has 1 values but slot_starts has 2"),
        ({"potential_kw": (1.0, 2.0, 3.0)}, "potential_kw has 3 values but slot_starts has 2"),
        ({"slot_starts": (at(10, 30), at(10))}, "slot_starts must strictly increase"),
        ({"window_end": at(10)}, "window_end must be after window_start"),
        ({"requested_kwh": -1.0}, "requested_kwh must be finite and >= 0"),
        ({"potential_kw": (float("nan"), 1.0)}, "must be finite"),
        ({"window_start": datetime(2026, 5, 12, 10)}, "window_start must be timezone-aware"),
        ({"route": "both"}, "route"),
    ],
)
def test_window_row_refuses_bad_input_naming_the_field(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        WindowRow(**_window_kwargs(**over))


def test_valid_window_row_and_json_round_trip() -> None:
    row = WindowRow(**_window_kwargs())
    assert WindowRow.model_validate_json(row.model_dump_json()) == row
    snap = finished_run_snapshot()
    assert DashboardSnapshot.model_validate_json(snap.model_dump_json()) == snap


def test_tracking_panel_lengths_and_order() -> None:
    good = _tracking().panel.model_dump()
    with pytest.raises(ValidationError, match="soc_kwh has 59 values but times has 60"):
        TrackingPanel(**{**good, "soc_kwh": good["soc_kwh"][:-1]})
    with pytest.raises(ValidationError, match="times must strictly increase"):
        TrackingPanel(**{**good, "times": good["times"][::-1]})


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"status": "accepted", "accepted_kwh": None}, "accepted_kwh is required"),
        ({"status": "silent", "accepted_kwh": 1.0}, "accepted_kwh must be None"),
        ({"status": "done"}, "status"),
        ({"round": 0}, "round"),
    ],
)
def test_event_row_status_rules(over: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = dict(
        event_id="e1",
        label="up",
        direction="up",
        window_start=at(10),
        window_end=at(11),
        resource_name="gw-0001",
        requested_kwh=1.0,
        status="partial",
        accepted_kwh=0.5,
    )
    EventRow(**kwargs)
    with pytest.raises(ValidationError, match=message):
        EventRow(**{**kwargs, **over})


def test_resource_and_summary_rules() -> None:
    with pytest.raises(ValidationError, match="n_units must be 1 for kind 'unit', got 5"):
        ResourceRow(
            resource_name="x", ven_name="v", route="gateway", kind="unit", n_units=5, state="active"
        )
    row = SummaryRow(route="all", requested_kwh=1.0, accepted_kwh=1.0, delivered_kwh=1.0)
    with pytest.raises(ValidationError, match="at most one row per route"):
        DashboardSnapshot(generated_at=at(12), summary=(row, row))


def test_tracking_stats_from_series_hand_computed() -> None:
    # errors 0, 1, 2, 0.5 with tolerance 1: mean 0.875, max 2, within 3 of 4
    stats = TrackingStats.from_series([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 1.0, 4.5], 1.0)
    assert stats.mean_abs_error_kw == pytest.approx(0.875)
    assert stats.max_abs_error_kw == 2.0
    assert stats.share_within_tolerance == 0.75
    with pytest.raises(ValueError, match="output_kw has 1 values but command_kw has 2"):
        TrackingStats.from_series([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(ValidationError, match="must not exceed max_abs_error_kw"):
        TrackingStats(mean_abs_error_kw=2.0, max_abs_error_kw=1.0, share_within_tolerance=0.5)


# ---------------------------------------------------------------------------------------------
# Router without a browser
# ---------------------------------------------------------------------------------------------


def _app(provider: Any, poll_interval_s: float = 3.0, prefix: str = "") -> FastAPI:
    app = FastAPI()
    app.include_router(dashboard_router(provider, poll_interval_s=poll_interval_s), prefix=prefix)
    return app


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_api_returns_the_snapshot(kind: str) -> None:
    snap = finished_run_snapshot()

    async def provide_async() -> DashboardSnapshot:
        await asyncio.sleep(0)
        return snap

    provider = (lambda: snap) if kind == "sync" else provide_async
    with TestClient(_app(provider, prefix="/dashboard")) as client:
        r = client.get("/dashboard/api/dashboard")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert DashboardSnapshot.model_validate_json(r.content) == snap
        body = r.json()
        assert body["summary"][2]["route"] == "all"
        assert body["windows"][0]["slot_starts"][0] == "2026-05-12T10:00:00+09:00"
        assert "DashboardSnapshot" in json.dumps(client.get("/openapi.json").json())


def test_page_and_static_assets() -> None:
    with TestClient(_app(finished_run_snapshot, poll_interval_s=0.5)) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert 'data-poll-s="0.5"' in page.text and "{{" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        for name, suffix in (("dashboard.js", ".js"), ("dashboard.css", ".css")):
            r = client.get(f"/static/{name}")
            assert r.status_code == 200
            assert r.headers["content-type"] == ASSET_MEDIA_TYPES[suffix]
            assert r.content == asset_bytes(name)
            assert (
                r.content
                == (Path(__file__).parents[1] / "src/drready/data/web" / name).read_bytes()
            )
        for bad in (
            "nothing.js",
            "dashboard.exe",
            ".hidden.css",
            "..%2F..%2Fservicer%2Fdashboard.py",
            "..%2F__init__.py",
            "%2E%2E%2Fpy.typed",
            "%2E%2E",
        ):
            r = client.get(f"/static/{bad}")
            assert r.status_code == 404, bad
            assert b"import" not in r.content
        assert client.get("/static/sub/dashboard.js").status_code == 404
    for bad in ("../__init__.py", "..", "a/b.js", "dashboard.py", "", "x.js\x00"):
        with pytest.raises(FileNotFoundError):
            asset_bytes(bad)


def test_static_route_over_raw_http_refuses_traversal() -> None:
    """Paths sent byte for byte (an HTTP client library would normalise the dots away)."""
    app = _app(finished_run_snapshot)
    with serve(app) as port:
        for target, expected in (
            ("/static/dashboard.css", 200),
            ("/static/../../../pyproject.toml", 404),
            ("/static/..%2F..%2F..%2Fpyproject.toml", 404),
            ("/static/%2e%2e%2fservicer%2fdashboard.py", 404),
            ("/static/..%5c..%5cpyproject.toml", 404),
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            status = int(reply.split(b" ", 2)[1])
            assert status == expected, (target, reply[:200])
            if expected == 404:
                assert b"[project]" not in reply and b"import" not in reply


def test_router_refuses_bad_poll_interval() -> None:
    for bad in (0.0, 0.1, float("nan"), 1e9):
        with pytest.raises(ValueError, match="poll_interval_s must be in"):
            dashboard_router(finished_run_snapshot, poll_interval_s=bad)


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.urls: list[str] = []
        self._in: str | None = None
        self._attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag in ("script", "style"):
            self._in, self._attrs = tag, a
            if tag == "script":
                self.scripts.append((a, ""))
            else:
                self.styles.append("")

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            a, text = self.scripts[-1]
            self.scripts[-1] = (a, text + data)
        elif self._in == "style":
            self.styles[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_report_is_self_contained_and_escapes_hostile_text(tmp_path: Path) -> None:
    hostile = '</script><script>alert("x")</script><img src=http://evil.example/a>'
    snap = finished_run_snapshot().model_copy(
        update={
            "resources": (
                *finished_run_snapshot().resources,
                ResourceRow(
                    resource_name=hostile,
                    ven_name="v&<>",
                    route="cloud",
                    kind="unit",
                    state="retired",
                ),
            )
        }
    )
    html = render_report_html(snap)
    parsed = _Scripts()
    parsed.feed(html)
    assert parsed.urls == ["data:,"]  # the empty favicon; nothing else is referenced
    assert len(parsed.scripts) == 2 and len(parsed.styles) == 1
    (data_attrs, data), (_, js) = parsed.scripts
    assert data_attrs == {"type": "application/json", "id": "dashboard-data"}
    assert "<" not in data and ">" not in data
    assert DashboardSnapshot.model_validate_json(data) == snap
    assert js == asset_bytes("dashboard.js").decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    assert f"script-src {_sha(js)};" in csp.group(1)
    assert f"style-src {_sha(parsed.styles[0])};" in csp.group(1)
    # outside the (escaped) data, the only URL is the SVG namespace name
    assert re.findall(r"https?://[^\s\"']+", html.replace(data, "")) == [
        "http://www.w3.org/2000/svg"
    ]
    out = write_report(snap, tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8") == html


# ---------------------------------------------------------------------------------------------
# In headless Chromium
# ---------------------------------------------------------------------------------------------

_INSTALL = (
    "the dashboard test needs Debian's Chromium and the playwright package: "
    "`sudo apt-get install chromium chromium-driver` and `pip install -e '.[test]'` "
    "(no browser download: Playwright is pointed at /usr/bin/chromium)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} missing; {_INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"playwright not importable; {_INSTALL}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    page: Any
    requests: list[str]
    errors: list[str]


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    w = Watched(page, [], [])
    page.on("request", lambda r: w.requests.append(r.url))
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    try:
        yield w
    finally:
        context.close()


def _shown(page: Any, testid: str) -> float:
    """The number a cell displays (text, unit stripped), checked against its data-value."""
    loc = page.get_by_test_id(testid)
    text = loc.inner_text().replace("kWh", "").replace("kW", "").replace("%", "").strip()
    assert loc.is_visible(), testid
    return float(text)


def _check_displayed_run(page: Any, snap: DashboardSnapshot) -> None:
    for row in snap.summary:
        for key, digits in (("requested_kwh", 1), ("accepted_kwh", 1), ("delivered_kwh", 1)):
            expected = getattr(row, key)
            assert _shown(page, f"summary-{row.route}-{key}") == pytest.approx(
                expected, abs=0.5 * 10**-digits + 1e-9
            ), (row.route, key)
        pct = 100 * row.delivered_kwh / row.requested_kwh
        assert _shown(page, f"summary-{row.route}-delivered_pct") == pytest.approx(pct, abs=0.051)
        assert _shown(page, f"summary-{row.route}-shortages") == row.shortages
    total = next(r for r in snap.summary if r.route == "all")
    assert _shown(page, "total-requested_kwh") == pytest.approx(total.requested_kwh, abs=0.051)
    assert _shown(page, "total-shortages") == total.shortages
    assert snap.tracking is not None and snap.tracking.stats_without_f5 is not None
    share_pct = 100 * snap.tracking.stats.share_within_tolerance
    assert _shown(page, "tracking-share_pct") == pytest.approx(share_pct, abs=0.051)
    assert _shown(page, "total-tracking_pct") == pytest.approx(share_pct, abs=0.051)
    nof5 = 100 * snap.tracking.stats_without_f5.share_within_tolerance
    assert _shown(page, "tracking-nof5-share_pct") == pytest.approx(nof5, abs=0.051)
    # exact values travel in data-value
    cell = page.get_by_test_id("summary-gateway-delivered_kwh")
    assert float(cell.get_attribute("data-value")) == snap.summary[0].delivered_kwh

    for i, w in enumerate(snap.windows):
        assert page.get_by_test_id(f"window-{i}-label").inner_text() == w.label
        assert _shown(page, f"window-{i}-potential_kwh") == pytest.approx(
            w.potential_kwh, abs=0.051
        )
        assert _shown(page, f"window-{i}-shortages") == w.shortages
        chart = page.get_by_test_id(f"window-{i}-chart")
        assert chart.locator("path.series").count() == 3
        keys = chart.locator("path.series").evaluate_all("ps => ps.map(p => p.dataset.series)")
        assert keys == ["potential_kw", "requested_kw", "delivered_kw"]
        d = chart.locator('path[data-series="delivered_kw"]').get_attribute("d")
        assert d.count("H") == len(w.slot_starts)  # one horizontal step per slot
        assert w.label in chart.locator("title").first.text_content()

    series = {"tracking-power-chart": 3, "tracking-battery-chart": 1, "tracking-soc-chart": 1}
    for testid, n in series.items():
        chart = page.get_by_test_id(testid)
        assert chart.locator("path.series").count() == n, testid
        d = chart.locator("path.series").first.get_attribute("d")
        assert d.count("L") == len(snap.tracking.times) - 1
    assert page.get_by_test_id("tracking-power-chart").locator("polygon.band").count() == 1
    # every chart is an image with a title and a description it is labelled by
    charts = page.locator("svg.chart").evaluate_all(
        """svgs => svgs.map(s => [s.getAttribute("role"),
            s.getAttribute("aria-labelledby").split(" ").map(
                i => (document.getElementById(i) || {}).textContent || "")])"""
    )
    assert len(charts) == len(snap.windows) + 3
    for role, (title, desc) in charts:
        assert role == "img" and title and desc
    assert page.locator("table th[scope=col]").count() >= 6 + 9 + 8

    rows = page.get_by_test_id("event-row")
    assert rows.count() == len(snap.events)
    statuses = page.get_by_test_id("event-status").all_inner_texts()
    assert statuses == [e.status for e in snap.events]
    assert page.locator('[data-testid="event-row"][data-round="2"]').count() == 1
    resources = page.get_by_test_id("resource-row")
    assert resources.count() == len(snap.resources)
    offline = page.locator('[data-testid="resource-row"][data-state="offline"]')
    assert offline.count() == 1
    assert offline.get_by_test_id("resource-name").inner_text() == "gw-0004"
    assert offline.get_by_test_id("resource-state").inner_text() == "offline"


def _png_pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(io.BytesIO(png), format="png"))


def _check_screenshot(png: bytes, path: Path) -> None:
    path.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 30_000, len(png)
    px = _png_pixels(png)
    assert px.shape[1] == 1280 and px.shape[0] >= 900, px.shape
    rgb = px[..., :3]
    assert float(rgb.std()) > 0.05  # not a blank page
    rgb8 = (rgb * 255).round().astype(np.uint32)
    colours = np.unique((rgb8[..., 0] << 16) | (rgb8[..., 1] << 8) | rgb8[..., 2])
    assert colours.size > 100, colours.size  # text, charts, badges: not a flat fill


def test_live_dashboard_in_chromium(watched: Watched, tmp_path: Path) -> None:
    running = finished_run_snapshot(run_state="running").model_copy(
        update={"generated_at": at(19, 4)}
    )
    finished = finished_run_snapshot()
    current = {"snap": running}
    app = _app(lambda: current["snap"], poll_interval_s=0.3, prefix="/dashboard")
    page = watched.page
    with serve(app) as port:
        base = f"http://127.0.0.1:{port}/dashboard/"
        page.goto(base)
        page.wait_for_selector(f'body[data-rendered="{running.generated_at.isoformat()}"]')
        assert page.get_by_test_id("run-state").inner_text() == "running"
        current["snap"] = finished  # the run ends; the page must follow without a reload
        page.wait_for_selector(
            f'body[data-rendered="{finished.generated_at.isoformat()}"]', timeout=5000
        )
        assert page.get_by_test_id("run-state").inner_text() == "finished"
        assert page.get_by_test_id("generated-at").inner_text() == "2026-05-12 19:05:00 (UTC+09:00)"
        _check_displayed_run(page, finished)
        png = page.screenshot(full_page=True)
        _check_screenshot(png, tmp_path / "dashboard.png")
        assert page.evaluate("Number(document.body.dataset.renderCount)") == 2
    assert watched.errors == []
    for url in watched.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or (
            parts.scheme == "http" and parts.netloc == f"127.0.0.1:{port}"
        ), url
    assert f"{base}api/dashboard" in watched.requests
    assert f"{base}static/dashboard.js" in watched.requests


def test_report_from_file_renders_the_same(watched: Watched, tmp_path: Path) -> None:
    hostile = '<img src="http://evil.example/x.png" onerror="alert(1)">'
    snap = finished_run_snapshot()
    snap = snap.model_copy(
        update={
            "title": "run <b>report</b>",
            "resources": (
                *snap.resources,
                ResourceRow(
                    resource_name=hostile, ven_name="v", route="cloud", kind="unit", state="retired"
                ),
            ),
            "quarantine_counts": (
                QuarantineCount(reason="not_owner", count=2),
                QuarantineCount(reason="implausible", count=0),
            ),
            "quarantine_latest": (
                QuarantineRow(
                    quarantined_at=snap.generated_at,
                    kind="power",
                    client_id=hostile,
                    resource_name="<script>alert(2)</script>",
                    reason="not_owner",
                ),
            ),
        }
    )
    path = write_report(snap, tmp_path / "report.html")
    page = watched.page
    page.on("dialog", lambda d: watched.errors.append(f"dialog {d.message}"))
    page.goto(path.as_uri())
    page.wait_for_selector(f'body[data-rendered="{snap.generated_at.isoformat()}"]')
    _check_displayed_run(page, snap)
    # hostile text is shown as text, never parsed as markup
    assert page.get_by_test_id("resource-name").last.inner_text() == hostile
    assert page.locator("#title").inner_text() == "run <b>report</b>"
    assert page.get_by_test_id("quarantine-client").inner_text() == hostile
    assert page.get_by_test_id("quarantine-resource").inner_text() == "<script>alert(2)</script>"
    counts = page.get_by_test_id("quarantine-count")
    assert counts.count() == 2
    shown = page.locator('[data-testid="quarantine-count"][data-reason="not_owner"]')
    assert shown.get_by_test_id("quarantine-count-n").inner_text().strip() == "2"
    assert page.locator("img").count() == 0
    _check_screenshot(page.screenshot(full_page=True), tmp_path / "report.png")
    assert watched.errors == []
    assert {urlsplit(u).scheme for u in watched.requests} <= {"file", "data"}
    assert [u for u in watched.requests if u.startswith("file:")] == [path.as_uri()]
