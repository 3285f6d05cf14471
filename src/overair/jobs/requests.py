"""Work asked for on the request path: held in memory, queued as jobs by the worker, never waited for.

A device asking for something built on demand (a delta, a patch) must not wait for it nor write to the
database on its request: :meth:`OnDemand.ask` puts the job's key in a bounded set and wakes the worker,
which queues the jobs before its next claims. A host's crash loses at most those asks (the next device asks
again); keys queued lately are remembered so the same ask does not reach the job table twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from overair.jobs.worker import Worker

REMEMBERED = 4096
"""Keys this process queued lately and does not queue again (the job table would ignore them anyway)."""


class OnDemand:
    """Asks for jobs of one ``kind``, queued by ``worker`` (at most ``max_waiting`` wait at once)."""

    def __init__(self, worker: Worker, kind: str, max_waiting: int, remembered: int = REMEMBERED) -> None:
        self._worker = worker
        self._kind = kind
        self._max_waiting = max_waiting
        self._remembered = remembered
        self._lock = threading.Lock()
        self._waiting: dict[str, Mapping[str, Any]] = {}
        self._queued: OrderedDict[str, None] = OrderedDict()
        worker.before_claiming(self._queue)

    def ask(self, key: str, payload: Mapping[str, Any]) -> bool:
        """Ask for the job ``key``; False when it was asked for lately or too many asks wait. Never waits,
        never touches the database."""
        with self._lock:
            if key in self._waiting or key in self._queued or len(self._waiting) >= self._max_waiting:
                return False
            self._waiting[key] = payload
        self._worker.wake()
        return True

    def _queue(self) -> None:
        with self._lock:
            waiting = list(self._waiting.items())
        for key, payload in waiting:
            self._worker.queue.enqueue(self._kind, key, payload)
            with self._lock:
                self._waiting.pop(key, None)
                self._queued[key] = None
                while len(self._queued) > self._remembered:
                    self._queued.popitem(last=False)
