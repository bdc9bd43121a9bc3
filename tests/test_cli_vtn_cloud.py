"""`drready vtn serve` and `drready cloud serve` as a user runs them: HTTPS, a client file
outside the repo, secrets from the environment; the cloud registers itself at the VTN."""

from __future__ import annotations

import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from drready.security.certs import write_bundle
from drready.security.tokens import ClientRegistry
from tests.https_helpers import free_port

BL_SECRET = "bl-secret-0123456789abcdef"
CLOUD_SECRET = "cloud-secret-0123456789abcdef"


@dataclass
class ServedVtn:
    proc: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    ca_file: Path


def _serve_vtn(tmp_path: Path, *extra: str, port: int | None = None) -> ServedVtn:
    """`drready vtn serve` over HTTPS with a fresh CA, a client file (BL ``bl``, VEN
    ``maker-cloud``) outside the repo and the signing key in the environment."""
    bundle = write_bundle(tmp_path / "certs")
    key = secrets.token_urlsafe(48)
    registry = ClientRegistry(signing_key=key.encode())
    registry.add_client("bl", BL_SECRET, role="bl")
    registry.add_client("maker-cloud", CLOUD_SECRET, role="ven")
    clients = tmp_path / "clients.toml"
    registry.save(clients)
    port = port or free_port()
    env = {**os.environ, "DRREADY_TOKEN_KEY": key, "DRREADY_CLIENTS_FILE": str(clients)}
    command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(port)]
    command += ["--cert", str(bundle.server_cert), "--key", str(bundle.server_key)]
    command += ["--database", f"sqlite:///{tmp_path / 'vtn.db'}", *extra]
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return ServedVtn(proc=proc, port=port, env=env, ca_file=bundle.ca_cert)


def _wait_until_up(http: httpx.Client, base: str) -> None:
    for _ in range(200):
        try:
            if http.get(f"{base}/auth/server").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


def _bl_headers(http: httpx.Client, base: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": "bl", "client_secret": BL_SECRET}
    token = http.post(f"{base}/auth/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_vtn_and_cloud_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    base = f"https://localhost:{port}"
    served = _serve_vtn(tmp_path, "--base-url", base, port=port)
    cloud = None
    ctx = ssl.create_default_context(cafile=str(served.ca_file))
    try:
        with httpx.Client(verify=ctx, timeout=5) as http:
            _wait_until_up(http, base)
            assert http.get(f"{base}/auth/server").json()["tokenURL"].startswith(base)
            # TLS only: a plain-HTTP request to the same port does not get an answer
            try:
                plain = httpx.get(f"http://localhost:{port}/auth/server", timeout=2)
                assert plain.status_code >= 400
            except httpx.HTTPError:
                pass
            bl = _bl_headers(http, base)
            created = http.post(
                f"{base}/programs", headers=bl, json={"programName": "DRREADY-HPWH"}
            )
            assert created.status_code == 201
            cloud = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "drready.cli",
                    "cloud",
                    "serve",
                    "--vtn",
                    base,
                    "--units",
                    "20",
                    "--ca",
                    str(served.ca_file),
                    "--interval",
                    "1",
                ],
                env={**served.env, "DRREADY_CLIENT_SECRET": CLOUD_SECRET},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            names: list[str] = []
            for _ in range(150):
                vens = http.get(f"{base}/vens", headers=bl).json()
                res = http.get(f"{base}/resources", headers=bl).json()
                names = [r["resourceName"] for r in res]
                if vens and len(names) >= 20:
                    break
                time.sleep(0.2)
            assert len(names) == 20 and all(n.startswith("000005:C") for n in names), names
    finally:
        for proc in (cloud, served.proc):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_cloud_without_secret_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DRREADY_CLIENT_SECRET"}
    r = subprocess.run(
        [sys.executable, "-m", "drready.cli", "cloud", "serve", "--vtn", "https://localhost:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "DRREADY_CLIENT_SECRET" in r.stderr


def test_vtn_serve_with_several_workers_shares_tokens_and_data(tmp_path: Path) -> None:
    """`--workers 2`: two processes serve one port; a token issued by one is accepted by the
    other and an object created through one connection is read through every other one."""
    served = _serve_vtn(tmp_path, "--workers", "2")
    vtn = served.proc
    base = f"https://127.0.0.1:{served.port}"
    ctx = ssl.create_default_context(cafile=str(served.ca_file))
    try:
        with httpx.Client(verify=ctx, timeout=5) as http:
            _wait_until_up(http, base)
            bl = _bl_headers(http, base)
            created = http.post(f"{base}/programs", headers=bl, json={"programName": "P-W"})
            assert created.status_code == 201, created.text
        # fresh connections land on either worker: every one accepts the token and sees the data
        for _ in range(20):
            with httpx.Client(verify=ctx, timeout=5) as fresh:
                got = fresh.get(f"{base}/programs", headers=bl)
                assert got.status_code == 200, got.text
                assert [p["programName"] for p in got.json()] == ["P-W"]
                assert fresh.get(f"{base}/programs", headers={}).status_code in (401, 403)
    finally:
        vtn.send_signal(signal.SIGINT)
        try:
            _, err = vtn.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            vtn.kill()
            _, err = vtn.communicate()
    workers = set(re.findall(r"Started server process \[(\d+)\]", err))
    assert len(workers) == 2, err[-2000:]


def test_vtn_serve_rejects_a_worker_count_out_of_range() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "drready.cli", "vtn", "serve", "--insecure-http", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "--workers" in r.stderr + r.stdout and "1–64" in r.stderr + r.stdout


def test_run_checks_the_worker_settings_before_serving(tmp_path: Path) -> None:
    from drready.openadr.vtn import VtnSettings
    from drready.openadr.vtn.notify import NullNotifier
    from drready.openadr.vtn.server import run

    registry = ClientRegistry(signing_key=secrets.token_urlsafe(48))
    settings = VtnSettings(database_url=f"sqlite:///{tmp_path / 'v.db'}")
    with pytest.raises(ValueError, match=r"workers: must be within 1–64, got 65"):
        run(settings, registry, insecure_http=True, workers=65)
    with pytest.raises(ValueError, match="notifier: a custom notifier needs workers=1"):
        run(settings, registry, insecure_http=True, workers=2, notifier=NullNotifier())
    memory = VtnSettings(database_url="sqlite://")
    with pytest.raises(ValueError, match="database_url: an in-memory SQLite database"):
        run(memory, registry, insecure_http=True, workers=2)
    binary = ClientRegistry(signing_key=b"\xff" * 48)
    with pytest.raises(ValueError, match="registry: several workers need a text signing key"):
        run(settings, binary, insecure_http=True, workers=2)
    with pytest.raises(ValueError, match=re.escape("host: '0.0.0.0'")):
        run(settings, registry, host="0.0.0.0", insecure_http=True, workers=2)
    assert not (tmp_path / "v.db").exists()  # nothing was created before the checks


@pytest.mark.parametrize("strict", [False, True])
def test_vtn_serve_strict_input_option(tmp_path: Path, strict: bool) -> None:
    """Unknown properties (a 3.0-era `programType`) are ignored and not stored by default, and
    refused with a 400 naming the property under --strict-input (issue 16 item 3)."""
    port = free_port()
    base = f"https://localhost:{port}"
    extra = ["--base-url", base, *(["--strict-input"] if strict else [])]
    served = _serve_vtn(tmp_path, *extra, port=port)
    try:
        with httpx.Client(verify=str(served.ca_file), timeout=10) as http:
            _wait_until_up(http, base)
            headers = _bl_headers(http, base)
            body = {"objectType": "PROGRAM", "programName": "p-1", "programType": "PRICING"}
            answer = http.post(f"{base}/programs", json=body, headers=headers)
            if strict:
                assert answer.status_code == 400, answer.text
                assert "programType" in answer.json()["detail"]
            else:
                assert answer.status_code == 201, answer.text
                assert "programType" not in answer.json()
                stored = http.get(f"{base}/programs/{answer.json()['id']}", headers=headers)
                assert "programType" not in stored.json()
    finally:
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(15) == 0
