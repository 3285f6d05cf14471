"""Rehearsals: what simulated devices report, kept apart from the production metrics

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _deployment(table: str) -> list[Any]:
    return [
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f(f"fk_{table}_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "rehearsal_labels",
        *_deployment("rehearsal_labels"),
        sa.Column("label", sa.String(20), nullable=False),
        *[
            sa.Column(name, sa.Integer(), nullable=False, server_default="0")
            for name in ("downloads", "installs", "failures", "rollbacks", "running")
        ],
        sa.PrimaryKeyConstraint("deployment_id", "label", name=op.f("pk_rehearsal_labels")),
    )
    op.create_table(
        "rehearsal_devices",
        *_deployment("rehearsal_devices"),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", "device", name=op.f("pk_rehearsal_devices")),
    )


def downgrade() -> None:
    op.drop_table("rehearsal_devices")
    op.drop_table("rehearsal_labels")
