"""Nothing on a host's own disk: uploads in progress and the server key's fingerprint live in the database

Revision ID: 0013
Revises: 0014 (after the jobs table: a database main already migrated to 0014 still gets these tables)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_settings",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_settings")),
    )
    op.create_table(
        "staged_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_uploads")),
    )
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staged_uploads_updated_at"), ["updated_at"], unique=False)
    op.create_table(
        "staged_upload_chunks",
        sa.Column("upload_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["staged_uploads.id"],
            name=op.f("fk_staged_upload_chunks_upload_id_staged_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "number", name=op.f("pk_staged_upload_chunks")),
    )


def downgrade() -> None:
    op.drop_table("staged_upload_chunks")
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staged_uploads_updated_at"))
    op.drop_table("staged_uploads")
    op.drop_table("server_settings")
