"""The hostile-input probes of ``drready conformance openadr`` (S1; issue 12 item 8).

* Our VTN (in process, SQLite) passes the five probes, and the probes leave nothing behind.
* Broken fixtures — our VTN behind a small ASGI fake, or with one guard patched out — each make
  exactly its probe FAIL and leave the other four PASS: (a) a posted report's event looked up
  among all events, as for BL (a report on an invisible event is accepted), (b) VEN A's
  resource and ven names suffixed (a squatting name is accepted), (c) NaN/Infinity/1e400/U+0000
  rewritten to harmless values (a lenient parser), (d) a 500 for nesting past 500 or a
  1 000-digit number (an old parser), (e) ``load_owned`` answering 403 for another VEN's object
  (an existence oracle).
* ``--ven-credentials``: a file others may read is refused; ``client_id=secret`` lines.
* ``drready conformance openadr --probes-only`` against ``drready vtn serve`` as a child process
  on SQLite and PostgreSQL: every probe passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from drready.cli.conformance import read_ven_credentials
from drready.evaluation.conformance import Report, Verdict
from drready.evaluation.conformance_openadr import check_openadr
from drready.evaluation.openadr_probes import (
    DEEP_JSON,
    EXISTENCE_ORACLE,
    INVISIBLE_EVENT,
    NAME_SQUATTING,
    PROBES,
    STRICT_JSON,
)
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.errors import ApiError
from drready.openadr.vtn.routes import reports, resources, vens
from drready.openadr.vtn.service import owner_filter
from drready.openadr.vtn.store import get_object
from drready.security.certs import write_bundle
from drready.security.tls import client_ssl_context, uvicorn_ssl_kwargs
from drready.security.tokens import ClientRegistry
from tests.https_helpers import free_port, serve
from tests.test_vtn_api import SECRETS, make_registry

VENS = [("ven-a", SECRETS["ven-a"]), ("ven-b", SECRETS["ven-b"])]
CLI = [sys.executable, "-m", "drready.cli", "conformance", "openadr"]
Wrap = Callable[[Any], Any]


# --- ASGI fakes around our VTN ----------------------------------------------------------------


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_body(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}


def _client_of(scope: dict[str, Any]) -> str:
    for key, value in scope["headers"]:
        if key == b"authorization" and value.startswith(b"Bearer "):
            claims = jwt.decode(value[7:], options={"verify_signature": False})
            return str(claims.get("client_id", ""))
    return ""


class _SuffixedNames:
    """(b) VEN ``ven-a``'s resource and ven names get ``-x`` appended: a squatting name is
    answered 201 (as if names were unique per VEN only)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT")
            and scope["path"].startswith(("/resources", "/vens"))
            and _client_of(scope) == "ven-a"
        ):
            data = json.loads(await _body(receive))
            for key in ("resourceName", "venName"):
                if key in data:
                    data[key] += "-x"
            body = json.dumps(data).encode()
            scope, receive = _with_body(scope, body), _replay(body)
        await self.app(scope, receive, send)


_NON_FINITE = re.compile(rb"(?<=[\[,:\s])(-?Infinity|NaN|1e400)(?=[\],}\s])")


class _LenientNumbers:
    """(c) A lenient parser: NaN/±Infinity/1e400 become 0 and U+0000 disappears, so such
    bodies are stored."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT"):
            body = _NON_FINITE.sub(b"0", await _body(receive)).replace(b"\\u0000", b"")
            scope, receive = _with_body(scope, body), _replay(body)
        await self.app(scope, receive, send)


class _CrashOnDeepJson:
    """(d) An old parser: nesting past 500 or a 1 000-digit number is a 500 with a traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT"):
            body = await _body(receive)
            if body.count(b"[") > 500 or re.search(rb"\d{1000}", body):
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"RecursionError: ..."})
                return
            receive = _replay(body)
        await self.app(scope, receive, send)


def _leaky_load_owned(*, session: Any, principal: Any, object_type: Any, object_id: str) -> Any:
    """(e) 403 for another VEN's object, 404 for none: the answers tell them apart."""
    row = get_object(session=session, object_type=object_type.value, object_id=object_id)
    if row is None:
        raise ApiError(404, f"no {object_type.value.lower()} with id {object_id!r}")
    owner = owner_filter(principal)
    if owner is not None and row.client_id != owner:
        raise ApiError(403, "this object belongs to another VEN")
    return row


# --- running the checker --------------------------------------------------------------------------


@contextlib.contextmanager
def _vtn(tmp_path: Path, wrap: Wrap | None = None) -> Iterator[tuple[str, str]]:
    bundle = write_bundle(tmp_path / "certs")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    registry: ClientRegistry = make_registry()
    tokens = registry.token_service(url, ttl_s=300)
    settings = VtnSettings(database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url=url)
    app: Any = create_app(settings, registry, tokens)
    if wrap is not None:
        app = wrap(app)
    with serve(app, port=port, **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)):
        yield url, str(bundle.ca_cert)


def _probe(url: str, ca_file: str) -> Report:
    return asyncio.run(
        check_openadr(
            url,
            client_id="bl",
            client_secret=SECRETS["bl"],
            ca_file=ca_file,
            ven_credentials=VENS,
            probes_only=True,
        )
    )


def _verdicts(report: Report) -> dict[str, Verdict]:
    return {c.name: c.verdict for c in report.checks if c.name in PROBES}


def _leftovers(url: str, ca_file: str) -> dict[str, list[Any]]:
    with httpx.Client(base_url=url, verify=client_ssl_context(ca_file)) as http:
        form = {"grant_type": "client_credentials", "client_id": "bl"}
        token = http.post("/auth/token", data={**form, "client_secret": SECRETS["bl"]})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        kinds = ("vens", "resources", "events", "reports", "subscriptions")
        return {k: http.get(f"/{k}", headers=headers).json() for k in kinds}


def test_our_vtn_passes_every_probe_and_they_leave_nothing(tmp_path: Path) -> None:
    with _vtn(tmp_path) as (url, ca_file):
        report = _probe(url, ca_file)
        left = _leftovers(url, ca_file)
    assert _verdicts(report) == dict.fromkeys(PROBES, Verdict.PASS), report.to_json(indent=2)
    assert report.exit_code == 0
    assert left == {k: [] for k in left}, left
    strict = next(c for c in report.checks if c.name == STRICT_JSON)
    assert len(strict.evidence) == 8  # 4 refused numbers + NUL in a report, 2 + NUL in an event


def _any_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """(a) A posted report's event is looked up among all events, as for BL."""
    monkeypatch.setattr(reports, "is_bl", lambda principal: True)


def _oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """(e) ``load_owned`` tells another VEN's object (403) from none (404)."""
    for module in (vens, resources, reports):
        monkeypatch.setattr(module, "load_owned", _leaky_load_owned)


@pytest.mark.parametrize(
    ("patch", "wrap", "failing"),
    [
        (_any_event, None, INVISIBLE_EVENT),
        (None, _SuffixedNames, NAME_SQUATTING),
        (None, _LenientNumbers, STRICT_JSON),
        (None, _CrashOnDeepJson, DEEP_JSON),
        (_oracle, None, EXISTENCE_ORACLE),
    ],
    ids=["invisible-event", "squatting", "lenient-json", "deep-json-500", "oracle-403"],
)
def test_a_broken_vtn_fails_exactly_its_probe(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    patch: Callable[[pytest.MonkeyPatch], None] | None,
    wrap: Wrap | None,
    failing: str,
) -> None:
    if patch is not None:
        patch(monkeypatch)
    with _vtn(tmp_path, wrap) as (url, ca_file):
        report = _probe(url, ca_file)
    expected = {name: Verdict.FAIL if name == failing else Verdict.PASS for name in PROBES}
    assert _verdicts(report) == expected, report.to_json(indent=2)
    assert report.exit_code == 1
    if failing == EXISTENCE_ORACLE:
        oracle = next(c for c in report.checks if c.name == EXISTENCE_ORACLE)
        assert any("403" in line for line in oracle.evidence)


def test_with_one_ven_the_cross_ven_probes_are_not_observable(tmp_path: Path) -> None:
    with _vtn(tmp_path) as (url, ca_file):
        report = asyncio.run(
            check_openadr(
                url,
                client_id="bl",
                client_secret=SECRETS["bl"],
                ca_file=ca_file,
                ven_credentials=VENS[:1],
                probes_only=True,
            )
        )
    verdicts = _verdicts(report)
    for name in (INVISIBLE_EVENT, NAME_SQUATTING, EXISTENCE_ORACLE):
        assert verdicts[name] is Verdict.NOT_OBSERVABLE
    # what needs no VEN still runs: events with refused values (BL), /auth/token
    assert verdicts[STRICT_JSON] is Verdict.PASS and verdicts[DEEP_JSON] is Verdict.PASS


# --- the command line ---------------------------------------------------------------------------


def test_ven_credentials_file_must_be_private_and_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "vens"
    path.write_text("# two VENs\nven-a=s3cret-a\n\nven-b = s3cret=b\n")
    path.chmod(0o600)
    assert read_ven_credentials(path) == [("ven-a", "s3cret-a"), ("ven-b", "s3cret=b")]
    for text, mode, message in (
        ("ven-a=x\n", 0o644, "mode 0644"),
        ("ven-a\n", 0o600, "line 1: expected client_id=secret"),
        ("", 0o600, "one or two"),
    ):
        path.write_text(text)
        path.chmod(mode)
        r = subprocess.run(
            [
                *CLI,
                "--vtn",
                "https://127.0.0.1:1",
                "--client-id",
                "bl",
                "--ven-credentials",
                str(path),
            ],
            env={**os.environ, "DRREADY_CLIENT_SECRET": "x"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, r.stderr
        assert "--ven-credentials" in r.stderr and message in r.stderr, r.stderr


def _serve_vtn(tmp_path: Path, database: str) -> tuple[subprocess.Popen[str], str, Path]:
    """``drready vtn serve`` over HTTPS with BL ``bl`` and VENs ``ven-a``, ``ven-b``."""
    bundle = write_bundle(tmp_path / "certs")
    key = secrets.token_urlsafe(48)
    registry = ClientRegistry(signing_key=key.encode())
    for cid, secret in SECRETS.items():
        registry.add_client(cid, secret, role="bl" if cid == "bl" else "ven")
    clients = tmp_path / "clients.toml"
    registry.save(clients)
    port = free_port()
    env = {**os.environ, "DRREADY_TOKEN_KEY": key, "DRREADY_CLIENTS_FILE": str(clients)}
    command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(port)]
    command += ["--cert", str(bundle.server_cert), "--key", str(bundle.server_key)]
    command += ["--database", database]
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"https://127.0.0.1:{port}", bundle.ca_cert


def test_the_command_probes_our_served_vtn(tmp_path: Path, db_url: str) -> None:
    creds = tmp_path / "vens.secret"
    creds.write_text("".join(f"{cid}={secret}\n" for cid, secret in VENS))
    creds.chmod(0o600)
    options = ["--ven-credentials", str(creds), "--probes-only", "--json"]
    proc, url, ca_file = _serve_vtn(tmp_path, db_url)
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(verify=ctx, timeout=5) as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{url}/auth/server").status_code == 200:
                        break
                time.sleep(0.1)
        r = subprocess.run(
            [*CLI, "--vtn", url, "--client-id", "bl", "--ca", str(ca_file), *options],
            env={**os.environ, "DRREADY_CLIENT_SECRET": SECRETS["bl"]},
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    doc = json.loads(r.stdout)
    verdicts = {c["name"]: c["verdict"] for c in doc["checks"]}
    assert {n: verdicts.get(n) for n in PROBES} == dict.fromkeys(PROBES, "pass"), r.stdout
    assert r.returncode == 0 and doc["passed"] is True, r.stdout + r.stderr
    assert "Traceback" not in err, err[-3000:]
