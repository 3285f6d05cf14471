"""Deltas: the format-2 delta (Hermes bytecode transformed) next to the format-1 one

Revision ID: 0024
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("package_deltas") as batch:
        batch.add_column(sa.Column("transformed_blob_key", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("transformed_size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("package_deltas") as batch:
        batch.drop_column("transformed_size")
        batch.drop_column("transformed_blob_key")
