"""Expo updates: a release's platform, runtime version and update id; an Expo package's assets

Revision ID: 0022
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("platform", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("runtime_version", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("update_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("expo_signed", sa.Text(), nullable=True))
        # a launch-asset patch request names the update the device runs by its id
        batch.create_index(batch.f("ix_releases_update_id"), ["update_id"], unique=False)
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("expo", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        batch.drop_column("expo")
    with op.batch_alter_table("releases") as batch:
        batch.drop_index(batch.f("ix_releases_update_id"))
        batch.drop_column("expo_signed")
        batch.drop_column("update_id")
        batch.drop_column("runtime_version")
        batch.drop_column("platform")
