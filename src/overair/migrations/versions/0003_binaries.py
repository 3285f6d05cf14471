"""store binaries with descriptors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 21:19:31.457439
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "binaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("build_number", sa.Integer(), nullable=True),
        sa.Column("descriptor", sa.Text(), nullable=False),
        sa.Column("registered_by", sa.String(length=100), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_binaries_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_binaries")),
    )
    with op.batch_alter_table("binaries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_binaries_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("binaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_binaries_app_id"))

    op.drop_table("binaries")
