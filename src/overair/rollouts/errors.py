"""Errors of the rollout-policy domain (each surface words them: ``overair.problems`` for HTTP)."""

from __future__ import annotations

from overair.errors import Invalid


class InvalidRolloutPolicy(Invalid):
    """A rollout policy value is out of range or malformed; ``subject["policy_field"]`` names which."""
