"""`drready servicer run`, `db-upgrade` and `data-key` as an operator runs them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from drready.cli import app
from drready.security.tls import INSECURE_HTTP_MESSAGE
from drready.security.tokens import ClientRegistry
from drready.servicer.storage.crypto import KeyRing
from drready.servicer.storage.db import make_engine
from drready.servicer.storage.migrations import current_revision, head_revision
from tests.https_helpers import free_port
from tests.servicer_run_helpers import api_registry

runner = CliRunner()


def test_db_upgrade_creates_the_tables_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'servicer.db'}"
    first = runner.invoke(app, ["servicer", "db-upgrade", "--database", url])
    assert first.exit_code == 0, first.output
    assert "was empty" in first.output
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    assert {"dispatch", "assignment", "market_registration"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    again = runner.invoke(app, ["servicer", "db-upgrade", "--database", url])
    assert again.exit_code == 0 and f"was {head_revision()}" in again.output
    bad = runner.invoke(app, ["servicer", "db-upgrade", "--database", "nosuchdb://x"])
    assert bad.exit_code == 2 and "--database" in bad.output


def test_data_key_is_private_usable_and_never_overwritten(
    tmp_path: Path, monkeypatch: object
) -> None:
    key = tmp_path / "keys" / "servicer.key"
    key.parent.mkdir()
    made = runner.invoke(app, ["servicer", "data-key", "--out", str(key), "--key-id", "k2026"])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ring = KeyRing.from_env({"DRREADY_SERVICER_DATA_KEY_FILE": str(key)})
    sealed = ring.seal(b"01234567890123456789012", aad=b"resource-1")
    assert ring.open(sealed, aad=b"resource-1") == b"01234567890123456789012"
    again = runner.invoke(app, ["servicer", "data-key", "--out", str(key)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    inside = Path(__file__).resolve().parent / "never.key"  # inside this git work tree
    refused = runner.invoke(app, ["servicer", "data-key", "--out", str(inside)])
    assert refused.exit_code == 2 and not inside.exists()


# ---------------------------------------------------------------------- servicer run


def _run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clients, _, key = api_registry(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRREADY_")}
    env |= {
        "DRREADY_CLIENT_SECRET": "bl-secret-0123456789abcdef",
        "DRREADY_TOKEN_KEY": key,
        "DRREADY_SERVICER_CLIENTS_FILE": str(clients),
    }
    return env | extra


@pytest.mark.parametrize(
    ("args", "env_change", "option", "message"),
    [
        ([], {}, "--cert/--key", "HTTPS needs a certificate and key"),
        (["--insecure-http", "--potential-at", "7am"], {}, "--potential-at", "HH:MM"),
        (
            ["--insecure-http", "--potential-window", "10:15-12:00"],
            {},
            "--potential-window",
            "30-minute boundaries",
        ),
        (["--insecure-http", "--route", "home=moon"], {}, "--route", "CLIENT_ID=gateway"),
        (["--insecure-http", "--tick", "0"], {}, "--tick", "1–3600 s"),
        (["--insecure-http", "--time-scale", "5000"], {}, "--time-scale", "1–1000"),
        (
            ["--insecure-http", "--sim-start", "2026-05-14T06:00"],
            {},
            "--sim-start",
            "needs --time-scale",
        ),
        (
            ["--insecure-http", "--time-scale", "60"],
            {
                "DRREADY_CLOCK": '{"sim_start": "2026-05-14T06:00:00+09:00", "wall_start": 0, '
                '"scale": 720}'
            },
            "--time-scale",
            "follows the shared clock",
        ),
        (["--insecure-http", "--log-format", "xml"], {}, "--log-format", "'text' or 'json'"),
        (["--insecure-http"], {"DRREADY_CLIENT_SECRET": ""}, "DRREADY_CLIENT_SECRET", "set it"),
        (
            ["--insecure-http"],
            {"DRREADY_SERVICER_CLIENTS_FILE": ""},
            "--clients-file",
            "client registry is needed",
        ),
    ],
)
def test_servicer_run_refuses_bad_arguments_naming_the_option(
    tmp_path: Path, args: list[str], env_change: dict[str, str], option: str, message: str
) -> None:
    env = _run_env(tmp_path, **env_change)
    result = runner.invoke(app, ["servicer", "run", "--vtn", "https://vtn.test", *args], env=env)
    assert result.exit_code == 2, result.output
    assert f"drready: error: {option}: " in result.output and message in result.output


def test_servicer_run_refuses_a_registry_with_the_vtns_roles(tmp_path: Path) -> None:
    vtn_registry = ClientRegistry(signing_key="k" * 48)
    vtn_registry.add_client("bl", "bl-secret-0123456789abcdef", role="bl")
    path = tmp_path / "vtn-clients.toml"
    vtn_registry.save(path)
    env = _run_env(tmp_path, DRREADY_SERVICER_CLIENTS_FILE=str(path))
    result = runner.invoke(
        app, ["servicer", "run", "--vtn", "https://x", "--insecure-http"], env=env
    )
    assert result.exit_code == 2
    assert "--clients-file" in result.output and "'trader', 'meter' or 'viewer'" in result.output


def test_servicer_run_serves_without_its_vtn_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The VTN is not there yet: the service still answers, says so in /healthz, keeps trying,
    and a SIGTERM ends it with status 0; plain HTTP prints the warning."""
    port = free_port()
    command = [sys.executable, "-m", "drready.cli", "servicer", "run", "--insecure-http"]
    command += ["--vtn", f"http://127.0.0.1:{free_port()}", "--port", str(port)]
    command += ["--database", f"sqlite:///{tmp_path / 's.db'}", "--retry-after", "1"]
    proc = subprocess.Popen(
        command, env=_run_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        health = None
        for _ in range(300):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if health.json()["vtn"]["last_error"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        assert health is not None and health.status_code == 200
        body = health.json()
        assert body["database"] == "ok" and body["vtn"]["last_success_at"] is None
        assert body["vtn"]["last_error"] and body["vtn"]["program_id"] is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and time.monotonic() - t0 < 10
        assert INSECURE_HTTP_MESSAGE in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
