"""`drready vtn serve` delivers subscriptions (issue 16 item 1): a real VTN child process over
HTTPS calls a real HTTPS callback — the echo GET before the subscription exists, notifications
on event create, update and delete signed with the subscriber's key (checked here with
``hmac.compare_digest`` over the raw body, not with drready's own verifier), each operation
notified exactly once with two worker processes; callback URLs on private addresses refused
without ``--allow-private-callbacks``."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from drready.security.tokens import ClientRegistry
from tests.https_helpers import free_port, serve

SECRETS = {"bl": "bl-secret-0123456789abcdef", "ven-a": "ven-a-secret-0123456789abcdef"}
WEBHOOK_KEY = "webhook-master-key-" + "x" * 40


class Callback:
    """An HTTPS webhook receiver that records what it gets, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, dict[str, str], bytes]] = []  # (kind, path, headers, body)
        app = FastAPI()

        @app.get("/{path}")
        def echo(path: str, request: Request) -> Response:
            with self.lock:
                self.log.append(("GET", path, dict(request.headers), b""))
            if path == "moved":  # a redirect to a loopback address: must not be followed
                return RedirectResponse("https://127.0.0.1:9/steal", status_code=302)
            return PlainTextResponse(request.query_params.get("echo", ""))

        @app.post("/{path}")
        async def take(path: str, request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.log.append(("POST", path, dict(request.headers), body))
            return Response(status_code=204)

        self.app = app

    def posts(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return [(p, h, b) for kind, p, h, b in self.log if kind == "POST"]

    def echoes(self) -> list[str]:
        with self.lock:
            return [p for kind, p, _, _ in self.log if kind == "GET"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_bundle(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def callback(certs: Any):
    rec = Callback()
    with serve(rec.app, **uvicorn_ssl_kwargs(certs.server_cert, certs.server_key)) as port:
        yield rec, f"https://localhost:{port}"


class Vtn:
    def __init__(self, tmp_path: Path, certs: Any, *extra: str) -> None:
        key = secrets.token_urlsafe(48)
        registry = ClientRegistry(signing_key=key.encode())
        registry.add_client("bl", SECRETS["bl"], role="bl")
        registry.add_client("ven-a", SECRETS["ven-a"], role="ven")
        clients = tmp_path / "clients.toml"
        registry.save(clients)
        self.port = free_port()
        self.base = f"https://localhost:{self.port}"
        env = {
            **os.environ,
            "DRREADY_TOKEN_KEY": key,
            "DRREADY_CLIENTS_FILE": str(clients),
            "DRREADY_WEBHOOK_KEY": WEBHOOK_KEY,
        }
        command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(self.port)]
        command += ["--cert", str(certs.server_cert), "--key", str(certs.server_key)]
        command += ["--database", f"sqlite:///{tmp_path / 'vtn.db'}", "--base-url", self.base]
        self.proc = subprocess.Popen(
            [*command, *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # no keep-alive: every request is a new connection, dealt to the workers in turn
        self.http = httpx.Client(
            verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        for _ in range(300):
            try:
                if self.http.get(f"{self.base}/auth/server").status_code == 200:
                    break
            except httpx.HTTPError:
                assert self.proc.poll() is None, self.proc.stderr and self.proc.stderr.read()
                time.sleep(0.05)
        self.h = {c: self._headers(c) for c in SECRETS}

    def _headers(self, client: str) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_id": client,
            "client_secret": SECRETS[client],
        }
        token = self.http.post(f"{self.base}/auth/token", data=form).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, f"{self.base}{path}", headers=self.h[who], json=body)

    def stop(self) -> str:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def _subscription(url: str, bearer: str = "tok-ven-a") -> dict[str, Any]:
    return {
        "clientName": "ven-a",
        "objectOperations": [
            {
                "objects": ["EVENT"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "callbackUrl": url,
                "bearerToken": bearer,
            }
        ],
    }


def _wait(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)


def test_vtn_serve_with_two_workers_delivers_each_event_operation_once_signed(
    tmp_path: Path, certs: Any, callback: Any
) -> None:
    rec, cb = callback
    vtn = Vtn(
        tmp_path,
        certs,
        "--workers",
        "2",
        "--allow-private-callbacks",
        "--callback-ca",
        str(certs.ca_cert),
    )
    try:
        ven = {"objectType": "BL_VEN_REQUEST", "clientID": "ven-a", "venName": "ven-a"}
        assert vtn.call("POST", "/vens", "bl", {**ven, "targets": ["unit-1"]}).status_code == 201
        program = vtn.call("POST", "/programs", "bl", {"programName": "p"}).json()

        # a callback that redirects (to loopback) fails the echo: nothing is stored
        refused = vtn.call("POST", "/subscriptions", "ven-a", _subscription(f"{cb}/moved"))
        assert refused.status_code == 400 and "callbackUrl" in refused.json()["detail"]
        assert rec.echoes() == ["moved"]
        assert vtn.call("GET", "/subscriptions", "ven-a").json() == []

        created = vtn.call("POST", "/subscriptions", "ven-a", _subscription(f"{cb}/ven-a"))
        assert created.status_code == 201, created.text
        assert rec.echoes() == ["moved", "ven-a"]  # the echo GET came before the 201

        event = {"programID": program["id"], "eventName": "dr-1", "targets": ["unit-1", "x"]}
        ev = vtn.call("POST", "/events", "bl", event).json()
        other = {"programID": program["id"], "eventName": "dr-2", "targets": ["unit-9"]}
        assert vtn.call("POST", "/events", "bl", other).status_code == 201  # not ven-a's
        assert vtn.call("PUT", f"/events/{ev['id']}", "bl", {**event, "priority": 3}).is_success
        assert vtn.call("DELETE", f"/events/{ev['id']}", "bl").is_success
        _wait(lambda: len(rec.posts()) >= 3)
        time.sleep(0.5)  # a second copy from the other worker would arrive by now
        posts = rec.posts()
    finally:
        vtn.stop()

    assert [json.loads(body)["operation"] for _, _, body in posts] == [
        "CREATE",
        "UPDATE",
        "DELETE",
    ]
    client_key = hmac.new(
        WEBHOOK_KEY.encode(), b"drready-webhook-v1:ven-a", hashlib.sha256
    ).digest()
    for path, headers, body in posts:
        assert path == "ven-a"
        assert headers["authorization"] == "Bearer tok-ven-a"
        stamp = headers["x-drready-timestamp"]
        assert abs(int(stamp) - time.time()) < 60
        mac = hmac.new(client_key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest("sha256=" + mac, headers["x-drready-signature"])
        note = json.loads(body)
        assert note["objectType"] == "EVENT"
        assert note["object"]["id"] == ev["id"]
        assert note["object"]["targets"] == ["unit-1"]  # target hiding: "x" is not ven-a's


def test_private_callback_urls_are_refused_without_the_option(
    tmp_path: Path, certs: Any, callback: Any
) -> None:
    rec, cb = callback
    port = cb.rsplit(":", 1)[1]
    vtn = Vtn(tmp_path, certs, "--callback-ca", str(certs.ca_cert))
    try:
        for url in (
            f"{cb}/ven-a",  # localhost
            f"https://127.0.0.1:{port}/ven-a",
            f"https://[::ffff:127.0.0.1]:{port}/ven-a",
            "https://10.1.2.3/cb",
            "https://169.254.169.254/latest",
            "https://[fe80::1]/cb",
            "https://0.0.0.0/cb",
        ):
            refused = vtn.call("POST", "/subscriptions", "ven-a", _subscription(url))
            assert refused.status_code == 400, (url, refused.text)
            detail = refused.json()["detail"]
            assert "callbackUrl" in detail and "non-public" in detail, detail
        assert vtn.call("GET", "/subscriptions", "ven-a").json() == []
        assert rec.echoes() == []  # refused before any request left the VTN
    finally:
        vtn.stop()
