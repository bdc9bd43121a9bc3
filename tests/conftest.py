"""Shared fixtures: ``postgres_url``, a throw-away PostgreSQL database for one test session, and
``db_url``, a fresh empty database per test on SQLite and on that PostgreSQL server.

And the suite's split over pytest-xdist workers (``make test`` runs ``pytest -n``): an ECHONET Lite
node listens on UDP 3610 (the protocol's one port) of a loopback address, so two tests that run
nodes at once would take each other's port. Every test of a module that may run one — by what
the module's source names: ECHONET Lite, the home gateway, the demo, the stack — is put in one
``xdist_group``, so those run one after another on one worker while the other workers take the
rest (``--dist loadgroup``).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

UDP_3610_GROUP = "udp-3610"
"""The xdist group of every test that may bind UDP 3610."""
_UDP_3610_SOURCE = re.compile(
    r"drready\.echonet|echonet_helpers|drready\.gateway|drready\.sim\.(stack|demo|day_demo)"
    r"|drready\.cli\.(demo|stack|gateway|echonet)|[\"'](echonet|gateway|stack|demo)[\"']"
    r"|make demo|soak"
)
"""What in a test module's source says it may run an ECHONET Lite node: the packages that run
one, the CLI commands that start one (demo, stack, gateway, echonet). Over-inclusion only costs
parallelism; a module left out may collide on the port."""
_binds_udp_3610: dict[Path, bool] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path
        if path not in _binds_udp_3610:
            source = path.read_text(encoding="utf-8")
            _binds_udp_3610[path] = _UDP_3610_SOURCE.search(source) is not None
        if _binds_udp_3610[path]:
            item.add_marker(pytest.mark.xdist_group(UDP_3610_GROUP))


POSTGRES_ADMIN_URL_ENV = "DRREADY_TEST_POSTGRES_URL"
_DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a freshly created, uniquely named PostgreSQL database, dropped at the
    end of the session.

    The server comes from ``$DRREADY_TEST_POSTGRES_URL`` (default
    ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). When it is unreachable the tests
    using this fixture are skipped with the reason (host, driver error, the variable to set);
    under ``DRREADY_NO_SKIPS=1`` (CI, ``tests/_no_skips.py``) that skip is a failure, so
    PostgreSQL coverage cannot silently disappear.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    admin_url = make_url(os.environ.get(POSTGRES_ADMIN_URL_ENV, _DEFAULT_ADMIN_URL))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"drready_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as err:
        admin.dispose()
        reason = (
            f"PostgreSQL unreachable at {admin_url.render_as_string(hide_password=True)} "
            f"({type(err).__name__}: {str(err).splitlines()[0]}); set {POSTGRES_ADMIN_URL_ENV}"
        )
        pytest.skip(reason)
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database: a SQLite file, or a new schema of the session's PostgreSQL
    database (dropped afterwards)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'servicer.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"s_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
