"""What each manifest entry last yielded: source hash, units (layer id, name), completeness.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from catalog.schema import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Create ``ingest_entries``."""
    op.create_table(
        "ingest_entries",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source_hash", sa.String(), nullable=False),
        sa.Column("units", JSONDoc, nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("updated", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_entries")),
    )


def downgrade() -> None:
    """Drop ``ingest_entries``."""
    op.drop_table("ingest_entries")
