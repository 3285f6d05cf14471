"""The unit of work every release-domain service runs in: one transaction, then the change listeners.

After a change that can alter what devices are offered, a service raises the deployment's ``generation``
(:func:`touch`) in the same transaction; once it commits, the listeners are told the deployment keys so
update-check caches drop what they hold. Every change is also recorded in the audit log
(:attr:`Changes.audit`) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from overair.audit.log import AuditLog
from overair.errors import Fix
from overair.releases.errors import NameTaken
from overair.releases.models import Deployment, RolloutEvent

EventListener = Callable[[Session, RolloutEvent], None]
"""Called with the session and each rollout event row as it is stored, in its
transaction: what the listener writes commits with the event, or neither does."""


class Changes:
    """Opens read sessions and write transactions, and tells listeners what changed."""

    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog | None = None) -> None:
        self.sessions = sessions
        self.audit = audit or AuditLog()
        """Where each service records its change, in the change's transaction."""
        self._listeners: list[Callable[[str], None]] = []
        self.rollout_listeners: list[EventListener] = []
        """Told of every stored rollout event (see :func:`overair.releases.ramp_store.record_event`)."""

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(deployment_key)`` after every committed change that may alter device answers."""
        self._listeners.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[tuple[Session, set[str]]]:
        """A session in a transaction and the set of deployment keys the work marks changed."""
        changed: set[str] = set()
        with self.sessions() as session:
            try:
                with session.begin():
                    yield session, changed
            except IntegrityError as exc:
                raise NameTaken(
                    "Another change to the same object happened at the same moment.", fixes=[Fix("retry")]
                ) from exc
        for key in changed:
            for listener in self._listeners:
                listener(key)


def touch(session: Session, deployment: Deployment, changed: set[str]) -> None:
    """Raise the deployment's change counter in one atomic UPDATE (concurrent writers never lose a bump)."""
    session.execute(
        update(Deployment)
        .where(Deployment.id == deployment.id)
        .values(generation=Deployment.generation + 1)
        .execution_options(synchronize_session="fetch")
    )
    changed.add(deployment.key)
