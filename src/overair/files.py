"""Files the server creates once and then only reads (its signing key, the metrics key)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def create_once(path: Path, content: Callable[[], bytes], mode: int = 0o600) -> bool:
    """Create ``path`` with ``content()`` (``mode``, fsynced) unless it exists; True when this call made it.

    Several server processes may start at once: the content is written to a temporary file and linked
    into place, so each process reads either nothing or the complete file, and all end up with the same.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it first: use theirs
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
