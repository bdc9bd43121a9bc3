"""Schema migrations of the servicer's database, run from code (alembic; storage of D6, U1, F1–F5).

The revision scripts ship inside the package (``versions/``), so an installed wheel carries
them; alembic's configuration is built here, with ``script_location`` taken from
:mod:`importlib.resources`: no ``alembic.ini`` is needed at run time.

- :func:`upgrade` / :func:`ensure_schema` bring a database to the newest revision (a no-op when
  it is there already). On PostgreSQL a transaction-scoped advisory lock serialises servicer
  processes that start together; on SQLite the migration runs in a ``BEGIN IMMEDIATE``
  transaction (``drready.servicer.storage.db.make_engine``), which does the same.
- :func:`schema_differences` lists what differs between the migrated schema and the models of
  ``drready.servicer.storage.db`` (alembic's ``compare_metadata``); the tests require it to be
  empty on both backends.

The version is kept in the table ``servicer_alembic_version`` and only the servicer's own tables
are looked at, so the servicer may share a database with the VTN's tables.

To add a revision: copy the newest ``versions/NNNN_*.py``, bump ``revision``/``down_revision``,
write ``upgrade()`` with ``op.batch_alter_table`` (SQLite cannot ``ALTER`` most things), change
the models to match, and run the tests (they compare the two).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text

from drready.servicer.storage.db import WRITE_OPTION, Base, make_engine, table_names

__all__ = [
    "VERSION_TABLE",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "include_name",
    "schema_differences",
    "upgrade",
]

#: Table holding the applied revision (a name of its own: the VTN may share the database).
VERSION_TABLE = "servicer_alembic_version"
#: Key of the PostgreSQL advisory lock taken while migrating (arbitrary, fixed).
_LOCK_KEY = 0x6472_7264_7376_6301  # "drrdsvc" + 1


def _script_location() -> Path:
    location = Path(str(files(__name__)))
    if not (location / "env.py").is_file():  # pragma: no cover - only a broken install
        raise RuntimeError(f"servicer migrations not found at {location} (is the package whole?)")
    return location


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Alembic filter: only the servicer's tables (and everything inside them)."""
    if type_ == "table":
        return name in table_names()
    return True


def upgrade(target: str | Engine | None = None, revision: str = "head") -> None:
    """Migrate the database at ``target`` (URL, engine, or the default URL) to ``revision``.

    Running it again when the database is at ``revision`` changes nothing. All revisions run in
    one transaction: a failure leaves the database as it was.

    Raises
    ------
    RuntimeError
        The database is at a revision this version of drready does not ship (written by a newer
        drready), or ``revision`` is unknown.
    """
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            try:
                command.upgrade(_config(connection), revision)
            except CommandError as err:
                raise RuntimeError(
                    f"servicer schema migration failed: {err} (this drready ships revisions up "
                    f"to {head_revision()!r}; a database written by a newer drready needs that "
                    "version)"
                ) from err
    finally:
        if not isinstance(target, Engine):
            engine.dispose()


def ensure_schema(engine: Engine) -> None:
    """Bring ``engine``'s database to the newest revision (idempotent)."""
    upgrade(engine, "head")


def head_revision() -> str:
    """The newest revision shipped with the package."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships 0001 at least
        raise RuntimeError("no servicer migration revisions found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def schema_differences(engine: Engine) -> list[Any]:
    """Differences between the database's servicer tables and the models (empty when equal).

    Alembic's ``compare_metadata`` with type comparison, restricted by :func:`include_name`.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": include_name,
                "version_table": VERSION_TABLE,
            },
        )
        return list(compare_metadata(context, Base.metadata))
