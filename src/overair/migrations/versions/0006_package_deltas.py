"""overair binary deltas between packages, keyed by content

Revision ID: 0006
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "package_deltas",
        sa.Column("package_hash", sa.String(length=64), nullable=False),
        sa.Column("base_hash", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("build_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_hash"], ["packages.package_hash"], name=op.f("fk_package_deltas_package_hash_packages")
        ),
        sa.PrimaryKeyConstraint("package_hash", "base_hash", name=op.f("pk_package_deltas")),
    )


def downgrade() -> None:
    op.drop_table("package_deltas")
