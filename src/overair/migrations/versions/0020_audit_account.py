"""The audit log records the account that acted, next to its key

Revision ID: 0020
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # events from before stay without an account: who held a key then is not known for certain
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("account", sa.String(length=200), nullable=True))
    op.create_index("ix_audit_events_account", "audit_events", ["account"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_account", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("account")
