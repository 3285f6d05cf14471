"""The payloads of the events overair emits today, built from what the domains already answer."""

from __future__ import annotations

from typing import Any

from overair.releases.schemas import ReleaseOut

RELEASE_FIELDS = (
    "label",
    "package_hash",
    "target_version",
    "build_number",
    "rollout",
    "mandatory",
    "disabled",
    "description",
    "released_by",
    "released_at",
    "method",
    "origin_label",
    "origin_deployment",
)
"""What a ``release.published`` event tells of the release (not its metrics, which are all zero yet)."""


def release_published(release: ReleaseOut) -> dict[str, Any]:
    """The payload of ``release.published``: the deployment and the release (``method`` says whether it was
    uploaded, promoted or a rollback's republication)."""
    return {
        "deployment": release.deployment,
        "release": release.model_dump(mode="json", include=set(RELEASE_FIELDS)),
    }
