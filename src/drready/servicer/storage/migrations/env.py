"""Alembic environment of the servicer schema: runs on the connection the caller passes.

Only :func:`drready.servicer.storage.migrations.upgrade` runs it; it puts an open connection
(inside a transaction) into ``config.attributes["connection"]``. There is no offline (SQL
script) mode.
"""

from __future__ import annotations

from alembic import context

from drready.servicer.storage.db import Base
from drready.servicer.storage.migrations import VERSION_TABLE, include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the servicer migrations through drready.servicer.storage.migrations.upgrade(url), "
        "which passes the database connection"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    compare_type=True,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
