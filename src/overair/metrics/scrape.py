"""Who may read ``GET /metrics``: closed by default, since it names every app, deployment and label."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from overair.files import create_once


@dataclass(frozen=True, slots=True)
class ScrapeAccess:
    """The token ``/metrics`` asks for (None: open to anyone), where it came from, whether it is new."""

    key: str | None
    source: str
    created: bool = False

    def allows(self, authorization: str) -> bool:
        """Whether a request with this ``Authorization`` header may read the metrics."""
        if self.key is None:
            return True
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.key.encode()
        )


def scrape_access(configured_key: str, public: bool, key_file: Path) -> ScrapeAccess:
    """The access rule for ``/metrics``: ``OVERAIR_METRICS_KEY`` when set, open when
    ``OVERAIR_METRICS_PUBLIC=true``, otherwise the key in ``key_file`` (created on first start, mode 0600)."""
    if configured_key:
        return ScrapeAccess(configured_key, "OVERAIR_METRICS_KEY")
    if public:
        return ScrapeAccess(None, "OVERAIR_METRICS_PUBLIC")
    created = create_once(key_file, lambda: ("om_" + secrets.token_urlsafe(32) + "\n").encode())
    key = key_file.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"{key_file} is empty: delete it to have a new metrics key made at the next start")
    return ScrapeAccess(key, str(key_file), created)
