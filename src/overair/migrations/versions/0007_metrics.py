"""The metrics store: hourly aggregates per label, per-label totals and gauges, device → label

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def _counters() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        for name in ("downloads", "installs", "failures", "rollbacks", "running")
    ]


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
        "metric_hours",
        *_deployment("metric_hours"),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        *_counters(),
        sa.Column("active", sa.Integer(), nullable=True),
        sa.Column("active_before", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("deployment_id", "hour", "label", name=op.f("pk_metric_hours")),
    )
    op.create_index("ix_metric_hours_hour", "metric_hours", ["hour"])
    op.create_table(
        "metric_labels",
        *_deployment("metric_labels"),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False, server_default="0"),
        *_counters(),
        sa.PrimaryKeyConstraint("deployment_id", "label", name=op.f("pk_metric_labels")),
    )
    op.create_table(
        "metric_devices",
        *_deployment("metric_devices"),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", "device", name=op.f("pk_metric_devices")),
    )
    op.create_index("ix_metric_devices_seen_at", "metric_devices", ["seen_at"])


def downgrade() -> None:
    op.drop_table("metric_devices")
    op.drop_table("metric_labels")
    op.drop_table("metric_hours")
