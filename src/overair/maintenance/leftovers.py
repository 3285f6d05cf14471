"""The start-up sweep: temporary files a killed server left in its own folders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from overair.staging import UPLOAD_MAX_AGE_SECONDS, sweep_stale_uploads
from overair.storage import BlobStore, Swept, remove_stale


def human_size(count: int) -> str:
    """A byte count for people: ``512 bytes``, ``1.4 GB`` (decimal units, as disk tools print).

    >>> human_size(1_400_000_000)
    '1.4 GB'
    """
    if count < 1000:
        return f"{count:,} bytes"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:,.1f} {unit}"
    raise AssertionError("unreachable")


def sweep_leftovers(temp_dir: Path, blobs: BlobStore, max_age_seconds: float) -> Swept:
    """Create ``temp_dir`` if needed; remove what is older than the age in it and in the blob store's.

    Both folders are overair's own, so nothing of another program is touched; a file younger than the age
    may be another worker's upload in progress (its time moves while it is written) and is kept.
    """
    temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return remove_stale(temp_dir, max_age_seconds) + blobs.sweep_temporary(max_age_seconds)


def describe_sweep(swept: Swept) -> str:
    """One sentence for the log or the terminal."""
    things = "temporary file or folder" if swept.entries == 1 else "temporary files or folders"
    return (
        f"Removed {swept.entries:,} {things} ({human_size(swept.bytes)}) left by an interrupted upload "
        "or a crash."
    )


def sweep_abandoned_uploads(sessions: sessionmaker[Session], now: dt.datetime) -> str | None:
    """Remove the chunked uploads staged in the database that nobody touched for a day (any host's: they
    are the deployment's, not this host's); one sentence for the log when some went, else None."""
    uploads, held = sweep_stale_uploads(sessions, now, UPLOAD_MAX_AGE_SECONDS)
    if not uploads:
        return None
    things = "upload" if uploads == 1 else "uploads"
    return f"Removed {uploads:,} abandoned chunked {things} ({human_size(held)}) untouched for a day."
