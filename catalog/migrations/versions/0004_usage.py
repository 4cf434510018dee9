"""Usage statistics: page views, downloads and API calls per day, kind, dataset, organization.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``usage_counts``."""
    op.create_table(
        "usage_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("dataset", sa.String(), nullable=False),
        sa.Column("organization", sa.String(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('view', 'download', 'api')", name=op.f("ck_usage_counts_kind")
        ),
        sa.CheckConstraint("n >= 0", name=op.f("ck_usage_counts_n_not_negative")),
        sa.PrimaryKeyConstraint(
            "day", "kind", "dataset", "organization", name=op.f("pk_usage_counts")
        ),
    )
    op.create_index(op.f("ix_usage_counts_dataset"), "usage_counts", ["dataset"])
    op.create_index(op.f("ix_usage_counts_organization"), "usage_counts", ["organization"])


def downgrade() -> None:
    """Drop ``usage_counts``."""
    op.drop_table("usage_counts")
