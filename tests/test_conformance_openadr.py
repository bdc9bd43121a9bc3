"""E1, OpenADR half: the conformance checker against our VTN and a maker cloud (S1, F1–F6, C1).

The real VTN (app factory, SQLite, uvicorn with TLS from ``write_bundle``) and a
:class:`~drready.cloud.service.MakerCloud` of a few units polling in a background thread; the
checker acts as BL through HTTPS. The cloud's clock sits two hours before the window until it
has answered a DR event, then inside the window, so the power reports (F5) come at once.

Broken fixtures, each failing exactly the check it breaks: (a) the VTN over plain HTTP → the
TLS check; (b) a middleware that hands a VEN's ``GET /reports`` a BL token → object privacy;
(c) a maker cloud that reads an event without amount as a request for a token 0.05 kWh (a VEN
that does not implement F2 by start time alone) → the start-time check.
The hostile-input probes run in every full check too (they pass here, with the cloud polling
as one of the VENs); their own broken fixtures are in ``tests/test_conformance_openadr_probes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from drready.cli.conformance import openadr_conformance_command
from drready.cloud.fleet import MakerFleet
from drready.cloud.service import MakerCloud
from drready.evaluation.conformance import Report, Verdict
from drready.evaluation.conformance_openadr import (
    START_TIME_CHECK,
    WIRE_CHECK,
    check_openadr,
    default_window,
)
from drready.evaluation.openadr_probes import PROBES
from drready.openadr import ven_core as vc
from drready.openadr.ven import VenClient
from drready.openadr.vtn import VtnSettings, create_app
from drready.security.certs import write_bundle
from drready.security.tls import PlainHttpWarning, client_ssl_context, uvicorn_ssl_kwargs
from drready.security.tokens import BL_SCOPES, ClientRegistry
from tests.https_helpers import free_port, serve
from tests.test_vtn_api import SECRETS, make_registry

START, END = default_window()
BEFORE = START - timedelta(hours=2)
DURING = START + timedelta(hours=1)
EXPECTED = {
    ("S1", "TLS only"),
    ("S1", "request without a token refused"),
    ("S1", "forged token refused"),
    ("S1", "scope enforcement"),
    ("S1", "object privacy across VENs"),
    ("F6", "resources named by DeviceId"),
    ("F1", "potential request answered"),
    ("F2", "DR event answered"),
    ("F3", "accepted ≤ requested"),
    ("F4", "DR-aware plan"),
    ("F5", "power reports"),
    ("F2", START_TIME_CHECK),
    ("C1", WIRE_CHECK),
    *(("S1", name) for name in PROBES),
}


class _LeakReports:
    """Broken VTN (b): a ``GET /reports`` listing is served with a BL token, so a VEN sees
    every report."""

    def __init__(self, app: Any, bl_token: str) -> None:
        self.app = app
        self.header = f"Bearer {bl_token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/reports":
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", self.header)]}
        await self.app(scope, receive, send)


@contextlib.contextmanager
def _vtn(tmp_path: Path, *, tls: bool = True, leak: bool = False) -> Iterator[tuple[str, str]]:
    """Run a VTN; yield its URL and CA file."""
    bundle = write_bundle(tmp_path / "certs")
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    registry: ClientRegistry = make_registry()
    tokens = registry.token_service(url, ttl_s=300)
    settings = VtnSettings(database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url=url)
    app: Any = create_app(settings, registry, tokens)
    if leak:
        app = _LeakReports(app, tokens.issue("bl", BL_SCOPES, role="bl")[0])
    ssl: dict[str, Any] = (
        dict(uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)) if tls else {}
    )
    with serve(app, port=port, **ssl):
        yield url, str(bundle.ca_cert)


class _NoOpenRequests(MakerCloud):
    """Broken VEN (c): an event without amount is read as a request for a token 0.05 kWh."""

    def _apply(self, action: vc.ApplyRequests) -> vc.RequestsAnswered:
        asks = tuple(
            replace(
                ask,
                request=ask.request.model_copy(update={"open_amount": False, "amount_kwh": 0.05}),
            )
            if ask.request.open_amount
            else ask
            for ask in action.asks
        )
        return super()._apply(replace(action, asks=asks))


@contextlib.contextmanager
def _cloud(
    url: str, ca_file: str, units: int, cloud_type: type[MakerCloud] = MakerCloud
) -> Iterator[MakerCloud]:
    """A maker cloud (VEN ``ven-a``) polling every 0.1 s in a background thread."""
    fleet = MakerFleet.random(units, START.date(), seed=7)
    https = url.startswith("https")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlainHttpWarning)  # broken fixture (a) only
        ven = VenClient(
            url,
            "ven-a",
            SECRETS["ven-a"],
            verify=ca_file if https else False,
            ven_name="ven-a",
            allow_insecure_http=not https,
        )
    cloud = cloud_type(fleet, ven, power_interval_s=1)
    clock: Callable[[], datetime] = lambda: DURING if cloud.windows_answered else BEFORE  # noqa: E731
    loop = asyncio.new_event_loop()

    async def main() -> None:
        async with ven:
            await cloud.run(0.1, now=clock)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not cloud.registered:
        assert time.monotonic() < deadline, "the maker cloud did not register"
        time.sleep(0.05)
    try:
        yield cloud
    finally:
        loop.call_soon_threadsafe(cloud.stop)
        thread.join(10)
        loop.close()


def _check(url: str, ca_file: str | None, wait_s: float = 15.0) -> Report:
    return asyncio.run(
        check_openadr(
            url,
            client_id="bl",
            client_secret=SECRETS["bl"],
            ca_file=ca_file,
            wait_s=wait_s,
            ven_credentials=[("ven-a", SECRETS["ven-a"]), ("ven-b", SECRETS["ven-b"])],
            poll_s=0.1,
        )
    )


def _verdicts(report: Report) -> dict[tuple[str, str], Verdict]:
    return {(c.requirement, c.name): c.verdict for c in report.checks}


def test_our_vtn_and_cloud_pass_every_check(tmp_path: Path) -> None:
    with _vtn(tmp_path) as (url, ca_file), _cloud(url, ca_file, units=10):
        report = _check(url, ca_file)
    verdicts = _verdicts(report)
    assert set(verdicts) == EXPECTED, report.to_json(indent=2)
    assert all(v is Verdict.PASS for v in verdicts.values()), report.to_json(indent=2)
    assert report.exit_code == 0
    f1 = next(c for c in report.checks if c.requirement == "F1")
    assert "10 of 10 resource(s) answered" in f1.evidence
    f5 = next(c for c in report.checks if c.requirement == "F5")
    assert "measured (DIRECT_READ)" in f5.evidence
    start_time = next(c for c in report.checks if c.name == START_TIME_CHECK)
    assert any(": accepted " in line for line in start_time.evidence), start_time.evidence


def test_events_are_deleted_afterwards(tmp_path: Path) -> None:
    with _vtn(tmp_path) as (url, ca_file), _cloud(url, ca_file, units=2):
        report = _check(url, ca_file)
        assert report.exit_code == 0, report.to_json(indent=2)
        with httpx.Client(base_url=url, verify=client_ssl_context(ca_file)) as http:
            token = http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "bl",
                    "client_secret": SECRETS["bl"],
                },
            ).json()["access_token"]
            events = http.get("/events", headers={"Authorization": f"Bearer {token}"}).json()
    assert events == []


def test_command_prints_json_or_a_table_and_returns_the_exit_code(tmp_path: Path) -> None:
    with _vtn(tmp_path) as (url, ca_file):
        with _cloud(url, ca_file, units=2):
            console = Console(record=True, width=200)
            code = openadr_conformance_command(
                url, "bl", SECRETS["bl"], Path(ca_file), json_out=True, console=console
            )
        doc = json.loads(console.export_text())
        assert code == 0 and doc["passed"] is True, doc
        # no VEN credentials: privacy and three probes need two VENs; strict JSON (events, as
        # BL) and deep JSON (/auth/token) need none
        assert doc["counts"] == {"pass": 14, "fail": 0, "not observable": 4}
        with _cloud(url, ca_file, units=2):  # a fresh cloud: its clock is before the window
            console = Console(record=True, width=200)
            code = openadr_conformance_command(
                url, "bl", SECRETS["bl"], Path(ca_file), json_out=False, console=console
            )
        assert code == 0
        assert "object privacy across VENs" in console.export_text()


@pytest.mark.parametrize(
    ("broken", "failing"),
    [("plain-http", ("S1", "TLS only")), ("leak", ("S1", "object privacy across VENs"))],
)
def test_a_broken_vtn_fails_exactly_its_check(
    tmp_path: Path, broken: str, failing: tuple[str, str]
) -> None:
    tls = broken != "plain-http"
    with (
        _vtn(tmp_path, tls=tls, leak=broken == "leak") as (url, ca_file),
        _cloud(url, ca_file, units=3),
    ):
        report = _check(url, ca_file if tls else None)
    verdicts = _verdicts(report)
    assert set(verdicts) == EXPECTED, report.to_json(indent=2)
    failed = {k for k, v in verdicts.items() if v is Verdict.FAIL}
    assert failed == {failing}, report.to_json(indent=2)
    assert report.exit_code == 1


def test_a_ven_without_start_time_requests_fails_exactly_that_check(tmp_path: Path) -> None:
    """Broken VEN (c): it answers the event without amount 'accepted' with 0.05 kWh — far from
    what its unit could move into the window — and everything else as before."""
    with _vtn(tmp_path) as (url, ca_file), _cloud(url, ca_file, 3, _NoOpenRequests):
        report = _check(url, ca_file)
    verdicts = _verdicts(report)
    assert set(verdicts) == EXPECTED, report.to_json(indent=2)
    failed = {k for k, v in verdicts.items() if v is Verdict.FAIL}
    assert failed == {("F2", START_TIME_CHECK)}, report.to_json(indent=2)
    check = next(c for c in report.checks if c.name == START_TIME_CHECK)
    assert any("accepted 0.050000 kWh, not what the unit can move" in e for e in check.evidence)
