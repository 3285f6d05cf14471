"""The CLI flag that sets each rollout-policy field: the options are declared with these names, and a
refusal that names a field is answered with the flag to change (``overair.cli.hints``)."""

from __future__ import annotations

POLICY_FLAGS = {
    "steps": "--ramp",
    "min_dwell": "--ramp-every",
    "min_sample": "--ramp-min-sample",
    "max_failure_rate": "--halt-on-failure-rate",
    "max_increase": "--max-increase-over-previous",
    "min_failures": "--min-failures",
    "confidence": "--confidence",
    "action": "--on-failure",
}
"""Rollout-policy field → the flag of ``push-update``, ``set-rollout-policy`` and ``simulate`` setting it."""
