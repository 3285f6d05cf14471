"""Rollout policies: a min_sample below min_failures is raised to it (such policies are now refused)

A step could end before any gate was allowed to fail. Policies stored before the rule are raised to the
nearest valid value, the safer side: a step waits for as many install attempts as a gate needs.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_DEFAULT_MIN_FAILURES = 5
"""``RolloutPolicy.min_failures``'s default when this migration was written (a stored policy may omit it)."""


def _raised(policy: dict[str, Any]) -> dict[str, Any] | None:
    """The policy with min_sample raised to min_failures, or None when it was valid."""
    min_sample, min_failures = policy.get("min_sample"), policy.get("min_failures", _DEFAULT_MIN_FAILURES)
    if isinstance(min_sample, int) and isinstance(min_failures, int) and 0 < min_sample < min_failures:
        return {**policy, "min_sample": min_failures}
    return None


def upgrade() -> None:
    connection = op.get_bind()
    for name, key in (("rollout_policies", "deployment_id"), ("release_rollouts", "release_id")):
        table = sa.table(name, sa.column(key, sa.Integer), sa.column("policy", sa.JSON))
        for row_key, policy in connection.execute(sa.select(table.c[key], table.c.policy)).all():
            raised = _raised(policy) if isinstance(policy, dict) else None
            if raised is not None:
                connection.execute(table.update().where(table.c[key] == row_key).values(policy=raised))


def downgrade() -> None:
    """Nothing to undo: the raised policies are valid before this revision too."""
