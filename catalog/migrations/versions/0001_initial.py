"""The first catalog: agencies, layers, layer versions, search tokens (and PostGIS if present).

Revision ID: 0001
Revises:
Create Date: 2025-11-30
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("catalog.migrations")

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def _create_postgis(bind: sa.Connection) -> None:
    """Create the PostGIS extension when the server has it; carry on (with a log line) if not.

    The multi-server deployment keeps features in PostGIS; the catalog itself does not need it.
    """
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
    ).first()
    if available is None:
        log.info("PostGIS is not available on this PostgreSQL server; catalog created without it")
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except sa.exc.DBAPIError as exc:
        log.warning("PostGIS is available but could not be created (%s); carrying on", exc.orig)


def upgrade() -> None:
    """Create the catalog's tables."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if bind.dialect.name == "postgresql":
        _create_postgis(bind)
    op.create_table(
        "agencies",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_agencies"),
    )
    # layers and layer_versions refer to each other: SQLite takes the reference to the table
    # created next inline (it cannot add constraints later); PostgreSQL adds it afterwards.
    current_fk = sa.ForeignKeyConstraint(
        ["id", "current_version"],
        ["layer_versions.layer_id", "layer_versions.version"],
        name="fk_layers_current_version",
    )
    op.create_table(
        "layers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("agency_name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("keywords", JSONDoc, nullable=False),
        sa.Column("license", sa.Text(), nullable=False),
        sa.Column("update_frequency", sa.Text(), nullable=False),
        sa.Column("style", JSONDoc, nullable=False),
        sa.Column("tileset", sa.Text(), nullable=False),
        sa.Column("current_version", sa.String(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_name"], ["agencies.name"], name="fk_layers_agency_name"),
        sa.PrimaryKeyConstraint("id", name="pk_layers"),
        *([current_fk] if sqlite else []),
    )
    op.create_index("ix_layers_agency_name", "layers", ["agency_name"])
    op.create_table(
        "layer_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("layer_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("geometry_type", sa.String(), nullable=False),
        sa.Column("feature_count", sa.BigInteger(), nullable=False),
        sa.Column("bbox_minx", sa.Double(), nullable=True),
        sa.Column("bbox_miny", sa.Double(), nullable=True),
        sa.Column("bbox_maxx", sa.Double(), nullable=True),
        sa.Column("bbox_maxy", sa.Double(), nullable=True),
        sa.Column("source_crs", sa.String(), nullable=False),
        sa.Column("fields", JSONDoc, nullable=False),
        sa.Column("lineage_source", sa.Text(), nullable=False),
        sa.Column("lineage_sublayer", sa.Text(), nullable=True),
        sa.Column("lineage_source_hash", sa.String(), nullable=False),
        sa.Column("lineage_reader", sa.String(), nullable=False),
        sa.Column("lineage_decisions", JSONDoc, nullable=False),
        sa.Column("lineage_repairs", JSONDoc, nullable=False),
        sa.Column("lineage_warnings", JSONDoc, nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("version <> ''", name="ck_layer_versions_version_not_empty"),
        sa.CheckConstraint("kind IN ('vector', 'raster', 'table')", name="ck_layer_versions_kind"),
        sa.CheckConstraint(
            "feature_count >= 0", name="ck_layer_versions_feature_count_not_negative"
        ),
        sa.CheckConstraint("size_bytes >= 0", name="ck_layer_versions_size_bytes_not_negative"),
        sa.CheckConstraint(
            "(bbox_minx IS NULL AND bbox_miny IS NULL AND bbox_maxx IS NULL AND bbox_maxy IS NULL)"
            " OR (bbox_minx IS NOT NULL AND bbox_maxx IS NOT NULL AND bbox_miny IS NOT NULL"
            " AND bbox_maxy IS NOT NULL AND bbox_miny <= bbox_maxy)",
            name="ck_layer_versions_bbox",
        ),
        sa.ForeignKeyConstraint(
            ["layer_id"], ["layers.id"], name="fk_layer_versions_layer_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_layer_versions"),
        sa.UniqueConstraint("layer_id", "version", name="uq_layer_versions_layer_id_version"),
    )
    op.create_index("ix_layer_versions_layer_id_created", "layer_versions", ["layer_id", "created"])
    if not sqlite:
        op.create_foreign_key(
            "fk_layers_current_version",
            "layers",
            "layer_versions",
            ["id", "current_version"],
            ["layer_id", "version"],
        )
    op.create_table(
        "search_tokens",
        sa.Column("layer_id", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"], ["layers.id"], name="fk_search_tokens_layer_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("layer_id", "field", "token", name="pk_search_tokens"),
    )
    op.create_index("ix_search_tokens_token", "search_tokens", ["token", "layer_id", "weight"])


def downgrade() -> None:
    """Drop the catalog's tables (the PostGIS extension stays: other data may use it)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("search_tokens")
    if not sqlite:
        op.drop_constraint("fk_layers_current_version", "layers", type_="foreignkey")
    op.drop_table("layer_versions")
    op.drop_table("layers")
    op.drop_table("agencies")
