"""Liveness and readiness: what a load balancer, an orchestrator or ``systemd`` asks the server.

``/healthz`` says the process answers (never touches a dependency); ``/readyz`` says whether it can do its
work: the database answers and its schema is not behind the one this version needs (a newer one, migrated
by an upgraded host during a rolling upgrade, is fine), and the blob store answers. Both
are open (no access key), like ``/``; the Host check applies (loopback names always pass).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from overair.db import head_revision, known_revision
from overair.storage.base import BlobStore

PROBE_KEY = "sha256/" + "0" * 64
"""A key no blob has (the hash of nothing real): asking whether it exists reaches the store."""


@dataclass(frozen=True)
class Readiness:
    """Each dependency's state: None when it is fine, else what is wrong (for the operator)."""

    database: str | None
    migrations: str | None
    blob_store: str | None

    @property
    def failing(self) -> dict[str, str]:
        """Dependency → what is wrong, for the dependencies that are not ready."""
        found = {"database": self.database, "migrations": self.migrations, "blob_store": self.blob_store}
        return {name: problem for name, problem in found.items() if problem is not None}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def readiness(engine: Engine, blobs: BlobStore) -> Readiness:
    """Ask the database (one connection, one read) and the blob store (one lookup); blocking."""
    from alembic.migration import MigrationContext

    database = migrations = blob_store = None
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        head = head_revision()
        # behind (a revision this code knows, or none): not ready. Ahead (another host migrated to a newer
        # version during a rolling upgrade): this host keeps serving until it is restarted.
        if current != head and (current is None or known_revision(current)):
            migrations = (
                f"the database schema is at revision {current or 'none'} and this server needs {head}: "
                "run `overair migrate` (or start `overair serve`, which migrates)"
            )
    except Exception as exc:  # any failure to reach it is the answer
        database = f"unreachable: {_first_line(exc)}"
        migrations = "unknown: the database cannot be read"
    try:
        root = getattr(blobs, "root", None)  # a folder store answers "no such blob" when its folder is gone
        if root is not None and not root.is_dir():
            raise FileNotFoundError(f"the blob folder {root} is missing")
        blobs.exists(PROBE_KEY)
    except Exception as exc:
        blob_store = f"unreachable: {_first_line(exc)}"
    return Readiness(database, migrations, blob_store)
