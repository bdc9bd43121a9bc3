"""Shared fixtures: ``postgres_url``, a throw-away PostgreSQL database for one test session, and
``db_url``, a fresh empty database per test on SQLite and on that PostgreSQL server.

And the suite's split over pytest-xdist workers (``make test`` runs ``pytest -n``): an ECHONET Lite
node listens on UDP 3610 (the protocol's one port) of a loopback address, so two tests that run
nodes at once would take each other's port. Every test of a module that may run one — by what
the module's source names: ECHONET Lite, the home gateway, the demo, the stack — is put in one
scheduling unit (``pytest_xdist_make_scheduler``), so those run one after another on one worker
while the other workers take the rest, test by test.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

UDP_3610_GROUP = "udp-3610"
"""The scheduling unit of every test that may bind UDP 3610."""
_UDP_3610_SOURCE = re.compile(
    r"drready\.echonet|echonet_helpers|drready\.gateway|drready\.sim\.(stack|demo|day_demo)"
    r"|drready\.cli\.(demo|stack|gateway|echonet)|[\"'](echonet|gateway|stack|demo)[\"']"
    r"|make demo|soak|pychonet"
)
"""What in a test module's source says it may run an ECHONET Lite node or controller: the
packages that run one, the CLI commands that start one (demo, stack, gateway, echonet), the
independent peers. Over-inclusion only costs parallelism; a module left out may collide."""


@cache
def binds_udp_3610(module_path: Path) -> bool:
    """Whether the test module at ``module_path`` may bind UDP 3610 (by its source)."""
    return _UDP_3610_SOURCE.search(module_path.read_text(encoding="utf-8")) is not None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's load scheduling with one unit for every test that may bind UDP 3610.

    A scheduler rather than ``xdist_group`` marks: from pytest 9.2 on, the marks' way into the
    scheduler (a suffix written into each item's node id) no longer takes (pytest-xdist issue
    #1386), and the tests were spread over the workers with no error."""
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath

    class Udp3610Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            path = root / module
            if module.endswith(".py") and path.is_file() and binds_udp_3610(path):
                return UDP_3610_GROUP
            return nodeid

    return Udp3610Scheduling(config, log)


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
