"""The catalog's tables (SQLAlchemy Core), the same for SQLite and PostgreSQL.

The migrations in ``catalog/migrations`` create exactly these tables (a test compares them).

- ``agencies``: one row per agency (CKAN organization).
- ``layers``: a layer's descriptive metadata and the version that is current.
- ``layer_versions``: every stored version of every layer, lineage as JSON, bbox as four floats.
- ``search_tokens``: the search index, (layer, field, token) → weight (see ``catalog.search``).
- ``ingest_entries``: per manifest entry, the source hash and the layer ids it last yielded.
- ``portal_*``: the open-data portal (``portal.ckan.store``): datasets and their resources,
  groups, users, organization members (organizations are the agencies), API tokens (hashed),
  DataStore table registry and the portal's revision counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: JSON documents: JSONB on PostgreSQL, JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")

#: Version kinds a ``layer_versions`` row may have.
VERSION_KINDS = ("vector", "raster", "table")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends (SQLite keeps it as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Convert an aware datetime to UTC; refuse naive ones.

        Args:
            value: the datetime to store.
            dialect: the database dialect.

        Returns:
            The UTC datetime, naive for SQLite.

        Raises:
            ValueError: ``value`` is naive.
        """
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"catalog times must be timezone-aware, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return stored times as aware UTC datetimes.

        Args:
            value: what the driver returned.
            dialect: the database dialect.

        Returns:
            The aware UTC datetime (or None).
        """
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


agencies = Table(
    "agencies",
    metadata,
    Column("name", String, primary_key=True),
    Column("title", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    # Added for the portal (organizations are agencies); the catalog leaves the defaults.
    Column("description", Text, nullable=False, server_default=""),
    Column("image_url", Text, nullable=False, server_default=""),
    Column("created", UTCDateTime, nullable=True),
    Column("state", String, nullable=False, server_default="active"),
)

layers = Table(
    "layers",
    metadata,
    Column("id", String, primary_key=True),
    Column("title", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("agency_name", String, ForeignKey("agencies.name"), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("keywords", JSONDoc, nullable=False),
    Column("license", Text, nullable=False),
    Column("update_frequency", Text, nullable=False),
    Column("style", JSONDoc, nullable=False),
    Column("tileset", Text, nullable=False),
    Column("current_version", String, nullable=True),
    Column("created", UTCDateTime, nullable=False),
    Column("modified", UTCDateTime, nullable=False),
    # The current version must be one of the layer's stored versions. layers and
    # layer_versions refer to each other, hence use_alter (created after both tables).
    ForeignKeyConstraint(
        ["id", "current_version"],
        ["layer_versions.layer_id", "layer_versions.version"],
        name="fk_layers_current_version",
        use_alter=True,
    ),
)

layer_versions = Table(
    "layer_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("layer_id", String, ForeignKey("layers.id", ondelete="CASCADE"), nullable=False),
    Column("version", String, nullable=False),
    Column("created", UTCDateTime, nullable=False),
    Column("kind", String, nullable=False),
    Column("path", Text, nullable=False),
    Column("geometry_type", String, nullable=False),
    Column("feature_count", BigInteger, nullable=False),
    Column("bbox_minx", Double, nullable=True),
    Column("bbox_miny", Double, nullable=True),
    Column("bbox_maxx", Double, nullable=True),
    Column("bbox_maxy", Double, nullable=True),
    Column("source_crs", String, nullable=False),
    Column("fields", JSONDoc, nullable=False),
    Column("lineage_source", Text, nullable=False),
    Column("lineage_sublayer", Text, nullable=True),
    Column("lineage_source_hash", String, nullable=False),
    Column("lineage_reader", String, nullable=False),
    Column("lineage_decisions", JSONDoc, nullable=False),
    Column("lineage_repairs", JSONDoc, nullable=False),
    Column("lineage_warnings", JSONDoc, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    UniqueConstraint("layer_id", "version"),
    CheckConstraint("version <> ''", name="version_not_empty"),
    CheckConstraint("kind IN ('vector', 'raster', 'table')", name="kind"),
    CheckConstraint("feature_count >= 0", name="feature_count_not_negative"),
    CheckConstraint("size_bytes >= 0", name="size_bytes_not_negative"),
    CheckConstraint(
        "(bbox_minx IS NULL AND bbox_miny IS NULL AND bbox_maxx IS NULL AND bbox_maxy IS NULL)"
        " OR (bbox_minx IS NOT NULL AND bbox_maxx IS NOT NULL AND bbox_miny IS NOT NULL"
        " AND bbox_maxy IS NOT NULL AND bbox_miny <= bbox_maxy)",
        name="bbox",  # all four or none; x is not ordered (a bbox may cross the antimeridian)
    ),
    Index("ix_layer_versions_layer_id_created", "layer_id", "created"),
)

search_tokens = Table(
    "search_tokens",
    metadata,
    Column(
        "layer_id",
        String,
        ForeignKey("layers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("field", String, primary_key=True),
    Column("token", String, primary_key=True),
    Column("weight", Double, nullable=False),
    Index("ix_search_tokens_token", "token", "layer_id", "weight"),
)


ingest_entries = Table(
    "ingest_entries",
    metadata,
    Column("id", String, primary_key=True),
    Column("source_hash", String, nullable=False),
    Column("units", JSONDoc, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
)

#: Roles of ``portal_members`` (CKAN capacities).
MEMBER_ROLES = ("member", "editor", "admin")

portal_datasets = Table(
    "portal_datasets",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("owner_org", String, ForeignKey("agencies.name"), nullable=False, index=True),
    Column("notes", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("private", Boolean, nullable=False),
    Column("state", String, nullable=False),
    Column("license_id", String, nullable=False),
    Column("url", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("author_email", Text, nullable=False),
    Column("maintainer", Text, nullable=False),
    Column("maintainer_email", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("update_frequency", Text, nullable=False),
    Column("fields_description", Text, nullable=False),
    Column("spatial", Text, nullable=False),
    Column("tags", JSONDoc, nullable=False),
    Column("groups", JSONDoc, nullable=False),
    Column("extras", JSONDoc, nullable=False),
    Column("layer_id", String, nullable=True, index=True),
    Column("layer_version", String, nullable=True),
    Column("source", String, nullable=False),
    Column("metadata_created", UTCDateTime, nullable=False),
    Column("metadata_modified", UTCDateTime, nullable=False),
    Column("creator_user_id", String, nullable=True),
    CheckConstraint("state IN ('active', 'deleted')", name="state"),
)

portal_resources = Table(
    "portal_resources",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "package_id",
        String,
        ForeignKey("portal_datasets.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("format", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("description", Text, nullable=False),
    Column("mimetype", String, nullable=False),
    Column("size", BigInteger, nullable=True),
    Column("position", Integer, nullable=False),
    Column("generated", Boolean, nullable=False),
    Column("encoding", String, nullable=False),
    Column("extras", JSONDoc, nullable=False),
    Column("created", UTCDateTime, nullable=True),
    Column("last_modified", UTCDateTime, nullable=True),
    Column("datastore_active", Boolean, nullable=False),
)

portal_groups = Table(
    "portal_groups",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("image_url", Text, nullable=False),
    Column("created", UTCDateTime, nullable=True),
    Column("state", String, nullable=False),
)

portal_users = Table(
    "portal_users",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("fullname", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("sysadmin", Boolean, nullable=False),
    Column("state", String, nullable=False),
    Column("created", UTCDateTime, nullable=True),
    Column("password_hash", Text, nullable=True),  # scrypt, "scrypt$n$r$p$salt$hash"
)

portal_members = Table(
    "portal_members",
    metadata,
    Column("organization", String, ForeignKey("agencies.name"), primary_key=True),
    Column("user_id", String, ForeignKey("portal_users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String, nullable=False),
    CheckConstraint("role IN ('member', 'editor', 'admin')", name="role"),
)

portal_tokens = Table(
    "portal_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "user_id",
        String,
        ForeignKey("portal_users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    Column("token_hash", String, nullable=False, unique=True),  # sha256 hex of the token
    Column("created", UTCDateTime, nullable=False),
    Column("last_access", UTCDateTime, nullable=True),
)

portal_datastore = Table(
    "portal_datastore",
    metadata,
    Column("resource_id", String, primary_key=True),
    Column("table_name", String, nullable=False, unique=True),
    Column("fields", JSONDoc, nullable=False),
    Column("primary_key", JSONDoc, nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

portal_meta = Table(
    "portal_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", BigInteger, nullable=False),
)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Alembic autogenerate filter: only the catalog's own tables are its business.

    PostGIS adds ``spatial_ref_sys`` and the multi-server path will store features in the same
    database; autogenerate must never propose to drop them.

    Args:
        name: the object's name.
        type_: "table", "column", "index", ...
        parent_names: names of the enclosing schema/table.

    Returns:
        Whether alembic should compare the object.
    """
    return type_ != "table" or name in metadata.tables


# -- usage statistics (portal.stats; migration 0004) --------------------------------------------

#: Kinds of use ``usage_counts`` counts.
USAGE_KINDS = ("view", "download", "api")

#: Uses per day (Asia/Taipei), kind, dataset and organization: counts only, nothing about who.
#: ``dataset`` and ``organization`` are "" when a use concerns none (a search, a capabilities
#: document). Every server process adds its counts with an UPSERT (``n = n + excluded.n``).
usage_counts = Table(
    "usage_counts",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("dataset", String, primary_key=True, index=True),
    Column("organization", String, primary_key=True, index=True),
    Column("n", BigInteger, nullable=False),
    CheckConstraint("kind IN ('view', 'download', 'api')", name="kind"),
    CheckConstraint("n >= 0", name="n_not_negative"),
)


# -- maps (portal.web.maps): maps composed for the embeddable widgets ---------------------------

maps = Table(
    "maps",
    metadata,
    Column("id", String, primary_key=True),
    Column("organization", String, ForeignKey("agencies.name"), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("kind", String, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("doc", JSONDoc, nullable=False),  # layers, view, origins, options (portal.web.maps)
    Column("created_by", String, nullable=True),
    Column("created", UTCDateTime, nullable=False),
    Column("modified", UTCDateTime, nullable=False),
)
