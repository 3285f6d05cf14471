"""Keep the reason of each release's last failure report

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_failure", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_failure_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metric_labels", schema=None) as batch_op:
        batch_op.drop_column("last_failure_at")
        batch_op.drop_column("last_failure")
