"""The catalog's migrations (catalog/migrations): schema, PostGIS, reopening."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url

from catalog import Catalog
from catalog.db import create_catalog_engine, migration_config
from catalog.schema import include_name, metadata
from tests.catalog.helpers import open_and_write


def test_migrations_create_exactly_the_tables_of_schema_py(catalog: Catalog, catalog_url: str):
    engine = create_catalog_engine(catalog_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []
            head = ScriptDirectory.from_config(migration_config()).get_current_head()
            assert context.get_current_revision() == head
    finally:
        engine.dispose()


def test_opening_an_existing_catalog_again_keeps_it_at_head(catalog_url: str):
    for _ in range(3):
        with Catalog(catalog_url) as catalog:
            assert catalog.layers() == []
    engine = create_catalog_engine(catalog_url)
    try:
        with engine.connect() as conn:
            revisions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert len(revisions) == 1
    finally:
        engine.dispose()


def test_postgis_extension_is_created_when_the_server_has_it(pg_database: str):
    with Catalog(pg_database):
        pass
    dsn = make_url(pg_database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
        ).fetchone()
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
        if available is None:
            assert installed is None
            pytest.skip("PostGIS is not installed on this server (./scripts/test installs it)")
        assert installed is not None
        assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")


def test_alembic_finds_nothing_to_generate(catalog: Catalog, catalog_url: str):
    config = migration_config()
    config.set_main_option("sqlalchemy.url", catalog_url.replace("%", "%%"))
    command.check(config)  # raises if the models and the migrated database differ


def test_processes_opening_a_new_catalog_at_once_all_succeed(new_database_url: str):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    names = [f"layer-{n}" for n in range(4)]
    workers = [ctx.Process(target=open_and_write, args=(new_database_url, n, out)) for n in names]
    for worker in workers:
        worker.start()
    results = sorted(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(120)
    assert results == [("ok", name) for name in names]
    with Catalog(new_database_url) as catalog:
        assert [layer.id for layer in catalog.layers()] == names
        assert all(layer.current_version for layer in catalog.layers())
