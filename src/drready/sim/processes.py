"""Start and stop the servers a simulation needs, as a user would run them (C1, S1).

:class:`VtnProcess` runs ``drready vtn serve`` as a child process over HTTPS with a fresh local
CA (:func:`drready.security.certs.write_bundle`), a client registry holding only scrypt hashes
(the client secrets stay in this process's memory) and a random token-signing key handed over
in the child's environment. Its work directory is a run's private state directory
(:mod:`drready.sim.stack_state`, outside any git work tree: the VTN refuses credentials inside
one); keys, registry, database and log are created 0600. The child is stopped (SIGTERM, then
SIGKILL after a grace period) when the context exits, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from drready.openadr.ven import VenClient
from drready.security.certs import CertBundle, write_bundle
from drready.security.files import create_private_file, make_private_dirs
from drready.security.tls import client_ssl_context
from drready.security.tokens import ClientRegistry
from drready.servicer.bl import BlClient

__all__ = ["VtnProcess", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class VtnProcess:
    """``drready vtn serve`` in a child process (HTTPS on loopback).

    Parameters
    ----------
    work_dir : Path
        Where the certificates, the client registry (hashes only), the VTN's SQLite file and
        its log go: a private directory outside any git work tree.
    clients : mapping
        client id → role (``"bl"`` or ``"ven"``); a random secret is made for each
        (:attr:`secrets`).
    workers : int
        uvicorn worker processes.
    """

    def __init__(
        self, work_dir: Path, clients: Mapping[str, str], *, workers: int = 1, port: int = 0
    ) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.base_url = f"https://localhost:{self.port}"
        self.secrets = {cid: secrets.token_urlsafe(24) for cid in clients}
        self._roles = dict(clients)
        self._workers = workers
        self._proc: subprocess.Popen[bytes] | None = None
        self.bundle: CertBundle | None = None

    @property
    def ca_file(self) -> Path:
        if self.bundle is None:
            raise RuntimeError("the VTN has not been started")
        return self.bundle.ca_cert

    def ven_client(self, client_id: str) -> VenClient:
        """A VEN client of ``client_id`` towards this VTN: its secret, the run's CA, and the
        client id as its ``venName``."""
        return VenClient(
            self.base_url,
            client_id,
            self.secrets[client_id],
            verify=str(self.ca_file),
            ven_name=client_id,
        )

    def bl_client(self, client_id: str) -> BlClient:
        """A BL client of ``client_id`` towards this VTN (its secret, the run's CA)."""
        return BlClient(self.base_url, client_id, self.secrets[client_id], verify=str(self.ca_file))

    @contextmanager
    def http_client(self, client_id: str, timeout_s: float = 30.0) -> Iterator[httpx.Client]:
        """A synchronous HTTPS client of this VTN holding a bearer token of ``client_id`` (for
        scripts and benchmarks that drive the VTN directly), closed on exit."""
        verify = client_ssl_context(str(self.ca_file))
        with httpx.Client(base_url=self.base_url, verify=verify, timeout=timeout_s) as http:
            form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": self.secrets[client_id],
            }
            answer = http.post("/auth/token", data=form)
            answer.raise_for_status()
            http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            yield http

    def start(self, timeout_s: float = 30.0, *, fresh: bool = True) -> None:
        """Write certificates and the registry, start the child, wait until it answers.

        ``fresh=False`` restarts on the same port, certificates and database (what a VTN
        restarted after a crash finds); the token-signing key is new, so tokens issued before
        are refused and clients fetch new ones."""
        make_private_dirs(self.work_dir)
        if fresh or self.bundle is None:
            self.bundle = write_bundle(self.work_dir / "certs", overwrite=True)
        key = secrets.token_urlsafe(48)
        registry = ClientRegistry(signing_key=key.encode())
        for cid, role in self._roles.items():
            registry.add_client(cid, self.secrets[cid], role=role)
        clients_file = self.work_dir / "clients.toml"
        registry.save(clients_file, overwrite=True)
        db = self.work_dir / "vtn.db"
        for stale in (db, db.with_name("vtn.db-wal"), db.with_name("vtn.db-shm")):
            if fresh:
                stale.unlink(missing_ok=True)
        env = {**os.environ, "DRREADY_TOKEN_KEY": key, "DRREADY_CLIENTS_FILE": str(clients_file)}
        command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(self.port)]
        command += ["--cert", str(self.bundle.server_cert), "--key", str(self.bundle.server_key)]
        command += ["--database", f"sqlite:///{db}", "--base-url", self.base_url]
        command += ["--workers", str(self._workers)]
        log_file = self.work_dir / "vtn.log"
        create_private_file(log_file)
        with log_file.open("ab") as log:  # the child keeps its own handle
            self._proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        with httpx.Client(verify=client_ssl_context(str(self.bundle.ca_cert)), timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"the VTN exited with {self._proc.returncode}; see {self.work_dir}/vtn.log"
                    )
                try:
                    if http.get(f"{self.base_url}/auth/server").status_code == 200:
                        return
                except httpx.HTTPError:
                    time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the VTN did not answer within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL (a crash): no shutdown of any kind."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
