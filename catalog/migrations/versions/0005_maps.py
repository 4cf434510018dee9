"""Saved maps of the map composer and the embeddable widgets (``portal.web.maps``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from catalog.schema import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Create ``maps``."""
    op.create_table(
        "maps",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("organization", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("doc", JSONDoc, nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("modified", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization"], ["agencies.name"], name=op.f("fk_maps_organization")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maps")),
    )
    op.create_index(op.f("ix_maps_organization"), "maps", ["organization"])


def downgrade() -> None:
    """Drop ``maps``."""
    op.drop_index(op.f("ix_maps_organization"), table_name="maps")
    op.drop_table("maps")
