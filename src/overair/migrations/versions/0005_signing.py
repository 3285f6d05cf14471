"""Signed releases: publisher keys per app, a per-app release sequence, each release's signed manifest

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_signing_keys_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("app_id", "key_id", name=op.f("uq_signing_keys_app_id_key_id")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signing_keys_app_id"), ["app_id"], unique=False)
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_sequence", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("signed_manifest", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("signing_key_id", sa.String(length=16), nullable=True))
    # existing releases: their ids already grow with time, so they serve as sequence numbers
    op.execute("UPDATE releases SET sequence = id")
    op.execute(
        "UPDATE apps SET release_sequence = COALESCE((SELECT MAX(r.id) FROM releases r "
        "JOIN deployments d ON d.id = r.deployment_id WHERE d.app_id = apps.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("signing_key_id")
        batch_op.drop_column("signature")
        batch_op.drop_column("signed_manifest")
        batch_op.drop_column("sequence")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("release_sequence")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_keys_app_id"))
    op.drop_table("signing_keys")
