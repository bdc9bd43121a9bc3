"""``drready servicer db-upgrade|data-key``: the DR servicer's database and the key that seals
market registration data at rest (S1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from drready.cli.common import console, fail, first_line, sub_app
from drready.servicer.storage.crypto import write_key_file
from drready.servicer.storage.db import database_url, make_engine
from drready.servicer.storage.migrations import current_revision, head_revision, upgrade

app = sub_app("DR servicer: its database and the key that seals market registration data.")


@app.command("db-upgrade")
def servicer_db_upgrade(
    database: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL (sqlite:///servicer.db, postgresql+psycopg://…); default "
            "$DRREADY_SERVICER_DATABASE_URL, else sqlite:///drready-servicer.db."
        ),
    ] = None,
) -> None:
    """Create or migrate the servicer's tables to the newest revision (idempotent)."""
    url = database_url(database)
    try:
        engine = make_engine(url)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        engine.dispose()
    except (SQLAlchemyError, RuntimeError, ValueError) as err:
        fail("--database", first_line(err))
    console.print(
        f"servicer database at revision {after} (was {before or 'empty'}; head {head_revision()})"
    )


@app.command("data-key")
def servicer_data_key(
    out: Annotated[
        Path, typer.Option(help="Key file to write (mode 0600, outside any git work tree).")
    ],
    key_id: Annotated[
        str | None, typer.Option(help="Key id for rotation (letters, digits, - _ .).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Make the AES-256 key that seals market registration data at rest; point
    $DRREADY_SERVICER_DATA_KEY_FILE at it."""
    try:
        kid = write_key_file(out, key_id=key_id, overwrite=overwrite)
    except FileExistsError:
        fail("--out", f"{out} exists (use --overwrite to replace it)")
    except ValueError as err:
        fail("--out" if "work tree" in str(err) else "--key-id", first_line(err))
    console.print(f"wrote key {kid} to {out}")
