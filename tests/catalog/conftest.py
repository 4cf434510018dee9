"""Catalog fixtures: every catalog test runs on a SQLite file and on a real PostgreSQL database.

The PostgreSQL leg uses a fresh database per test session (per xdist worker), created on the
server named by ``GEOPORTAL_TEST_POSTGRES`` (default: postgres on 127.0.0.1:5432, trust auth) and
dropped at the end; each test starts from empty tables. It is skipped, with the reason, only
when no server can be reached.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, inspect, make_url

from catalog import Catalog
from catalog.db import create_catalog_engine
from catalog.schema import metadata

PG_SERVER = os.environ.get(
    "GEOPORTAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _new_pg_database() -> Iterator[str]:
    """Create a database with a random name on the test server; drop it afterwards."""
    server = make_url(PG_SERVER)
    try:
        admin = psycopg.connect(_libpq(server), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        shown = server.render_as_string(hide_password=True)
        pytest.skip(f"no PostgreSQL server reachable at {shown}: {str(exc).strip()}")
    name = f"geoportal_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this session; dropped afterwards."""
    with _new_pg_database() as url:
        yield url


def _empty_tables(url: str) -> None:
    """Delete every catalog row (the schema stays migrated)."""
    engine = create_catalog_engine(url)
    try:
        with engine.begin() as conn:
            quote = engine.dialect.identifier_preparer.quote
            present = [
                quote(t.name) for t in metadata.sorted_tables if inspect(conn).has_table(t.name)
            ]
            if present:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(present)} CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty catalog database: a SQLite file in tmp_path, or the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    url = request.getfixturevalue("pg_database")
    _empty_tables(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database no catalog was ever opened on (PostgreSQL: created for the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.sqlite'}"
        return
    with _new_pg_database() as url:
        yield url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """An open, empty catalog on each backend."""
    with Catalog(catalog_url) as opened:
        yield opened
