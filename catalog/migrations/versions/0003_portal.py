"""The open-data portal: datasets, resources, groups, users, members, tokens, DataStore.

Organizations are the catalog's agencies: ``agencies`` gains description, image_url, created
and state (with defaults, so the catalog's own inserts stay as they are).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from catalog.schema import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=False)


def _agencies() -> None:
    op.add_column(
        "agencies", sa.Column("description", sa.Text(), nullable=False, server_default="")
    )
    op.add_column("agencies", sa.Column("image_url", sa.Text(), nullable=False, server_default=""))
    op.add_column("agencies", sa.Column("created", UTCDateTime(), nullable=True))
    op.add_column(
        "agencies", sa.Column("state", sa.String(), nullable=False, server_default="active")
    )


def _datasets() -> None:
    op.create_table(
        "portal_datasets",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _text("title"),
        sa.Column("owner_org", sa.String(), nullable=False),
        _text("notes"),
        _text("title_en"),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("license_id", sa.String(), nullable=False),
        *(
            _text(n)
            for n in (
                "url",
                "version",
                "author",
                "author_email",
                "maintainer",
                "maintainer_email",
                "category",
                "update_frequency",
                "fields_description",
                "spatial",
            )
        ),
        sa.Column("tags", JSONDoc, nullable=False),
        sa.Column("groups", JSONDoc, nullable=False),
        sa.Column("extras", JSONDoc, nullable=False),
        sa.Column("layer_id", sa.String(), nullable=True),
        sa.Column("layer_version", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("metadata_created", UTCDateTime(), nullable=False),
        sa.Column("metadata_modified", UTCDateTime(), nullable=False),
        sa.Column("creator_user_id", sa.String(), nullable=True),
        sa.CheckConstraint("state IN ('active', 'deleted')", name=op.f("ck_portal_datasets_state")),
        sa.ForeignKeyConstraint(
            ["owner_org"], ["agencies.name"], name=op.f("fk_portal_datasets_owner_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_portal_datasets_name")),
    )
    op.create_index(op.f("ix_portal_datasets_owner_org"), "portal_datasets", ["owner_org"])
    op.create_index(op.f("ix_portal_datasets_layer_id"), "portal_datasets", ["layer_id"])
    op.create_table(
        "portal_resources",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("package_id", sa.String(), nullable=False),
        _text("name"),
        _text("url"),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        _text("description"),
        sa.Column("mimetype", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("encoding", sa.String(), nullable=False),
        sa.Column("extras", JSONDoc, nullable=False),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("last_modified", UTCDateTime(), nullable=True),
        sa.Column("datastore_active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["portal_datasets.id"],
            name=op.f("fk_portal_resources_package_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_resources")),
    )
    op.create_index(op.f("ix_portal_resources_package_id"), "portal_resources", ["package_id"])


def _groups_and_users() -> None:
    op.create_table(
        "portal_groups",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _text("title"),
        _text("title_en"),
        _text("description"),
        _text("image_url"),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_portal_groups_name")),
    )
    op.create_table(
        "portal_users",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _text("fullname"),
        _text("email"),
        sa.Column("sysadmin", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_users")),
        sa.UniqueConstraint("name", name=op.f("uq_portal_users_name")),
    )
    op.create_table(
        "portal_members",
        sa.Column("organization", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.CheckConstraint(
            "role IN ('member', 'editor', 'admin')", name=op.f("ck_portal_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["organization"], ["agencies.name"], name=op.f("fk_portal_members_organization")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal_users.id"],
            name=op.f("fk_portal_members_user_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization", "user_id", name=op.f("pk_portal_members")),
    )
    op.create_table(
        "portal_tokens",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        _text("name"),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("last_access", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal_users.id"],
            name=op.f("fk_portal_tokens_user_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_tokens_token_hash")),
    )
    op.create_index(op.f("ix_portal_tokens_user_id"), "portal_tokens", ["user_id"])


def _datastore_and_meta() -> None:
    op.create_table(
        "portal_datastore",
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("fields", JSONDoc, nullable=False),
        sa.Column("primary_key", JSONDoc, nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", name=op.f("pk_portal_datastore")),
        sa.UniqueConstraint("table_name", name=op.f("uq_portal_datastore_table_name")),
    )
    op.create_table(
        "portal_meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_portal_meta")),
    )


def upgrade() -> None:
    """Add the portal's tables and the organization columns of ``agencies``."""
    _agencies()
    _datasets()
    _groups_and_users()
    _datastore_and_meta()


def downgrade() -> None:
    """Drop the portal's tables and columns (DataStore tables are dropped with their rows)."""
    bind = op.get_bind()
    names = [r[0] for r in bind.execute(sa.text("SELECT table_name FROM portal_datastore"))]
    for name in names:
        op.drop_table(name)
    for table in (
        "portal_meta",
        "portal_datastore",
        "portal_tokens",
        "portal_members",
        "portal_users",
        "portal_groups",
        "portal_resources",
        "portal_datasets",
    ):
        op.drop_table(table)
    with op.batch_alter_table("agencies") as batch:
        for column in ("state", "created", "image_url", "description"):
            batch.drop_column(column)
