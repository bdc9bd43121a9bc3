"""Start ``drready vtn serve``, ``drready cloud serve`` and ``drready servicer run`` as child
processes the way an operator (or a process supervisor) does: HTTPS with a fresh local CA, client
registries with scrypt hashes outside the repository, secrets and signing keys in each child's
own environment, one shared clock in ``DRREADY_CLOCK``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from drready.security.certs import CertBundle, write_bundle
from drready.security.tls import client_ssl_context
from drready.security.tokens import ClientRegistry
from drready.servicer.web.auth import SERVICER_POLICY
from tests.https_helpers import free_port

BL_ID = "dr-servicer"
CLOUD_ID = "maker-cloud"
#: The API's clients: id → role (secrets made per run).
API_CLIENTS = {"desk": "trader", "meter-provider": "meter", "auditor": "viewer"}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


@dataclass
class Stack:
    """The children and what a client needs to reach them."""

    work: Path
    bundle: CertBundle
    vtn_url: str
    api_url: str
    api_secrets: dict[str, str]
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def client(self, timeout_s: float = 10.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            verify=client_ssl_context(str(self.bundle.ca_cert)),
            timeout=timeout_s,
        )

    def token(self, http: httpx.Client, client_id: str, scope: str | None = None) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": self.api_secrets[client_id],
        }
        if scope is not None:
            form["scope"] = scope
        answer = http.post("/auth/token", data=form)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def headers(self, http: httpx.Client, client_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(http, client_id)}"}

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)


def _spawn(name: str, command: Sequence[str], env: dict[str, str], work: Path) -> Child:
    log = work / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(command), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    return Child(name, proc, log)


def wait_until(check: object, timeout_s: float, what: str, step_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _up(url: str, ca: Path, path: str) -> bool:
    try:
        with httpx.Client(verify=client_ssl_context(str(ca)), timeout=2.0) as http:
            return http.get(url + path).status_code < 500
    except httpx.HTTPError:
        return False


def start_vtn(work: Path, bundle: CertBundle) -> tuple[Child, str, dict[str, str]]:
    """``drready vtn serve`` with a BL client for the servicer and a VEN client for the cloud."""
    secrets_by_id = {BL_ID: secrets.token_urlsafe(24), CLOUD_ID: secrets.token_urlsafe(24)}
    key = secrets.token_urlsafe(48)
    registry = ClientRegistry(signing_key=key.encode())
    registry.add_client(BL_ID, secrets_by_id[BL_ID], role="bl")
    registry.add_client(CLOUD_ID, secrets_by_id[CLOUD_ID], role="ven")
    registry.save(work / "vtn-clients.toml")
    port = free_port()
    url = f"https://localhost:{port}"
    env = {
        **os.environ,
        "DRREADY_TOKEN_KEY": key,
        "DRREADY_CLIENTS_FILE": str(work / "vtn-clients.toml"),
    }
    command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(port)]
    command += ["--cert", str(bundle.server_cert), "--key", str(bundle.server_key)]
    command += ["--database", f"sqlite:///{work / 'vtn.db'}", "--base-url", url]
    child = _spawn("vtn", command, env, work)
    wait_until(lambda: _up(url, bundle.ca_cert, "/auth/server"), 30, "the VTN")
    return child, url, secrets_by_id


def start_cloud(
    work: Path, vtn_url: str, secret: str, ca: Path, *extra: str, env: dict[str, str] | None = None
) -> Child:
    command = [sys.executable, "-m", "drready.cli", "cloud", "serve", "--vtn", vtn_url]
    command += ["--ca", str(ca), "--client-id", CLOUD_ID, *extra]
    return _spawn("cloud", command, {**(env or os.environ), "DRREADY_CLIENT_SECRET": secret}, work)


def servicer_command(
    port: int, vtn_url: str, bundle: CertBundle, database: str, clients: Path, *extra: str
) -> list[str]:
    command = [sys.executable, "-m", "drready.cli", "servicer", "run", "--vtn", vtn_url]
    command += ["--ca", str(bundle.ca_cert), "--port", str(port), "--database", database]
    command += ["--cert", str(bundle.server_cert), "--key", str(bundle.server_key)]
    command += ["--clients-file", str(clients), *extra]
    return command


def api_registry(work: Path) -> tuple[Path, dict[str, str], str]:
    """The API's client registry (hashes only) and the secrets and signing key for it."""
    api_secrets = {cid: secrets.token_urlsafe(24) for cid in API_CLIENTS}
    key = secrets.token_urlsafe(48)
    registry = ClientRegistry(signing_key=key.encode(), policy=SERVICER_POLICY)
    for cid, role in API_CLIENTS.items():
        registry.add_client(cid, api_secrets[cid], role=role)
    path = work / "servicer-clients.toml"
    registry.save(path, overwrite=True)
    return path, api_secrets, key


@contextmanager
def stack(
    work: Path,
    *,
    servicer_args: Sequence[str] = (),
    cloud_args: Sequence[str] = ("--units", "20", "--mode", "units", "--interval", "1"),
    clock_env: str | None = None,
    database: str | None = None,
) -> Iterator[Stack]:
    """A VTN, a maker cloud and a servicer as children; every child stopped at the end."""
    work.mkdir(parents=True, exist_ok=True)
    bundle = write_bundle(work / "certs")
    children: list[Child] = []
    try:
        vtn, vtn_url, vtn_secrets = start_vtn(work, bundle)
        children.append(vtn)
        base_env = dict(os.environ)
        if clock_env is not None:
            base_env["DRREADY_CLOCK"] = clock_env
        children.append(
            start_cloud(
                work, vtn_url, vtn_secrets[CLOUD_ID], bundle.ca_cert, *cloud_args, env=base_env
            )
        )
        clients, api_secrets, key = api_registry(work)
        port = free_port()
        api_url = f"https://localhost:{port}"
        env = {
            **base_env,
            "DRREADY_CLIENT_SECRET": vtn_secrets[BL_ID],
            "DRREADY_TOKEN_KEY": key,
        }
        db = database or f"sqlite:///{work / 'servicer.db'}"
        command = servicer_command(port, vtn_url, bundle, db, clients, *servicer_args)
        command += ["--base-url", api_url]
        children.append(_spawn("servicer", command, env, work))
        wait_until(lambda: _up(api_url, bundle.ca_cert, "/healthz"), 30, "the servicer")
        yield Stack(work, bundle, vtn_url, api_url, api_secrets, children, env)
    finally:
        for child in reversed(children):
            child.stop()
