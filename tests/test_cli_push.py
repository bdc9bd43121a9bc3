"""`drready cloud serve --push webhook` and `drready gateway serve --push webhook` against
`drready vtn serve`, all as a user runs them (issue 16 item 1): the VEN subscribes, and a
potential request is answered by push — it never reads the events again after its first poll;
the `--push` options are checked before anything starts. The gateway's test binds UDP 3610 on
loopback addresses of its own: run it under `flock /tmp/drready-3610.lock`."""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.openadr import profile
from drready.openadr.models import to_wire
from drready.security.certs import write_bundle
from drready.security.tokens import ClientRegistry
from tests.https_helpers import free_port

CLI = (sys.executable, "-m", "drready.cli")
BL_SECRET = "bl-secret-0123456789abcdef"
VEN_SECRET = "ven-secret-0123456789abcdef"


@pytest.mark.parametrize(
    ("party", "options", "named"),
    [
        ("cloud", ["--push", "webhook"], "--callback-cert"),
        ("gateway", ["--push", "carrier-pigeon"], "--push"),
        ("cloud", ["--push", "mqtt", "--safety-poll", "1"], "--safety-poll"),
        ("gateway", ["--push", "webhook", "--callback-url", "http://x/cb"], "--callback-cert"),
    ],
)
def test_push_options_are_checked_first(party: str, options: list[str], named: str) -> None:
    result = CliRunner().invoke(
        app, [party, "serve", "--vtn", "https://localhost:1", *options], env={}
    )
    assert result.exit_code == 2, result.output
    assert named in result.output, result.output


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


StartVen = Callable[[str, Path, dict[str, str]], "subprocess.Popen[str]"]
"""Starts the VEN under test: (the VTN's base URL, the certificate bundle's directory, the
environment with the VTN's keys) → its process."""


def _answered_by_push(tmp_path: Path, ven_client_id: str, start_ven: StartVen) -> None:
    """`vtn serve` as a child; the VEN (``start_ven``) subscribes by webhook and reads its
    events once; a potential request created then is answered (a report) with no second
    ``GET /events`` at the VTN: it came by push."""
    bundle = write_bundle(tmp_path / "certs")
    key = secrets.token_urlsafe(48)
    registry = ClientRegistry(signing_key=key.encode())
    registry.add_client("bl", BL_SECRET, role="bl")
    registry.add_client(ven_client_id, VEN_SECRET, role="ven")
    clients = tmp_path / "clients.toml"
    registry.save(clients)
    port = free_port()
    base = f"https://localhost:{port}"
    env = {**os.environ, "DRREADY_TOKEN_KEY": key, "DRREADY_CLIENTS_FILE": str(clients)}
    vtn_log = tmp_path / "vtn.log"
    vtn_options = ["--port", str(port), "--base-url", base, "--cert", str(bundle.server_cert)]
    vtn_options += ["--key", str(bundle.server_key), "--database", f"sqlite:///{tmp_path / 'v.db'}"]
    vtn_options += ["--allow-private-callbacks", "--callback-ca", str(bundle.ca_cert)]
    with vtn_log.open("w") as sink:
        vtn = subprocess.Popen(
            [*CLI, "vtn", "serve", *vtn_options],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            text=True,
        )
    ven = None
    http = httpx.Client(verify=ssl.create_default_context(cafile=str(bundle.ca_cert)))
    try:
        for _ in range(300):
            try:
                if http.get(f"{base}/auth/server").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        form = {"grant_type": "client_credentials", "client_id": "bl", "client_secret": BL_SECRET}
        token = http.post(f"{base}/auth/token", data=form).json()["access_token"]
        bl = {"Authorization": f"Bearer {token}"}
        program = http.post(f"{base}/programs", headers=bl, json=to_wire(profile.program()))
        assert program.status_code == 201, program.text
        ven = start_ven(base, tmp_path / "certs", {**env, "DRREADY_CLIENT_SECRET": VEN_SECRET})
        # subscribed, and its first (full) poll has read the events
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            subscribed = http.get(f"{base}/subscriptions", headers=bl).json()
            if subscribed and "GET /events" in vtn_log.read_text():
                break
            assert ven.poll() is None, "the VEN ended"
            time.sleep(0.1)
        assert len(subscribed) == 1, subscribed
        time.sleep(0.5)  # that poll is over

        now = datetime.now(zone(DEFAULT_TZ))
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
        request = profile.potential_request(program.json()["id"], start, start + timedelta(hours=1))
        event = http.post(f"{base}/events", headers=bl, json=to_wire(request))
        assert event.status_code == 201, event.text
        reports: list[object] = []
        deadline = time.monotonic() + 20
        while not reports and time.monotonic() < deadline:
            time.sleep(0.1)
            params = {"eventID": event.json()["id"]}
            reports = http.get(f"{base}/reports", headers=bl, params=params).json()
    finally:
        http.close()
        if ven is not None:
            _stop(ven)
        _stop(vtn)
    assert reports, "the pushed potential request was not answered"
    assert vtn_log.read_text().count("GET /events") == 1  # answered by push, not by a poll


def _push_options(certs: Path) -> list[str]:
    options = ["--ca", str(certs / "ca.pem"), "--interval", "3600", "--push", "webhook"]
    options += ["--safety-poll", "3600", "--callback-cert", str(certs / "server.pem")]
    return [*options, "--callback-key", str(certs / "server-key.pem")]


def test_cloud_serve_answers_a_pushed_event_without_polling(tmp_path: Path) -> None:
    def cloud(base: str, certs: Path, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "cloud", "serve", "--vtn", base, "--units", "3", *_push_options(certs)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    _answered_by_push(tmp_path, "maker-cloud", cloud)


NODE_ADDRESS = "127.0.9.42"
GATEWAY_INTERFACE = "127.0.9.43"


def test_gateway_serve_answers_a_pushed_event_without_polling(tmp_path: Path) -> None:
    """The same with `gateway serve --push webhook` and a water heater node of its own (an
    `echonet serve` child on a loopback address of this test; UDP 3610: run under the lock)."""
    node = subprocess.Popen(
        [*CLI, "echonet", "serve", "--address", NODE_ADDRESS],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert node.stdout is not None
        assert NODE_ADDRESS in node.stdout.readline()  # printed once it is about to serve

        def gateway(base: str, certs: Path, env: dict[str, str]) -> subprocess.Popen[str]:
            options = ["--vtn", base, "--host", NODE_ADDRESS, "--interface", GATEWAY_INTERFACE]
            return subprocess.Popen(
                [*CLI, "gateway", "serve", *options, *_push_options(certs)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )

        _answered_by_push(tmp_path, "home-gateway", gateway)
    finally:
        _stop(node)
