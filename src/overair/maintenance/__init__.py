"""Keeping a server's data consistent: sweeping crash leftovers at start, and ``overair fsck``.

Like ``overair.server``, this works on the database and the blob store directly (not over HTTP): the
start-up sweep runs in ``overair.app.create_app`` and ``overair.server.prepare``, the check in the
``overair fsck`` command of ``overair.main``.
"""

from __future__ import annotations

from overair.maintenance.leftovers import (
    describe_sweep,
    human_size,
    sweep_abandoned_uploads,
    sweep_leftovers,
)

__all__ = ["describe_sweep", "human_size", "sweep_abandoned_uploads", "sweep_leftovers"]
