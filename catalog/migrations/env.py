"""Alembic environment of the catalog, configured in code (there is no alembic.ini).

``catalog.db.migration_config`` builds the configuration; the catalog passes the connection it
migrates in ``config.attributes["connection"]``, already inside a transaction that it commits.
Without one (a developer running ``alembic.command.revision(..., autogenerate=True)``), the
``sqlalchemy.url`` main option names the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from catalog.db import create_catalog_engine
from catalog.schema import include_name, metadata


def _run(connection: Connection) -> None:
    """Run the migrations on one connection."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    """Migrate the connection passed in, or the database named by ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "the catalog migrations need a connection (config.attributes['connection']) or "
            "the sqlalchemy.url option — build the configuration with "
            "catalog.db.migration_config()"
        )
    engine = create_catalog_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()
