"""`drready servicer db-upgrade` and `data-key` as an operator runs them."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import inspect
from typer.testing import CliRunner

from drready.cli import app
from drready.servicer.storage.crypto import KeyRing
from drready.servicer.storage.db import make_engine
from drready.servicer.storage.migrations import current_revision, head_revision

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
