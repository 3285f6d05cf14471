"""Read model: a deployment with its releases, where their content is stored, and how devices use them.

Management surfaces that show "a deployment and its latest release" (the CodePush management dialects)
read it here in one call instead of stitching :class:`ReleaseService` and the metrics together themselves.
It returns domain objects; each surface encodes them in its own wire format.

Example (synchronous, like the services: run it in a worker thread from async code)::

    reads = DeploymentReads(domain, metrics)
    latest = reads.detail(actor, "MyApp", "Staging").latest  # the newest ReleaseOut, or None
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from overair.auth.principal import Principal
from overair.releases.domain import ReleaseDomain
from overair.releases.errors import DeploymentNotFound
from overair.releases.schemas import DeploymentOut, ReleaseOut
from overair.selection import Release as Stored


class ActiveDevices(Protocol):
    """Where the devices on each label are counted (``MetricsService`` is one)."""

    def active_devices(self, app: str, deployment: str) -> dict[str, int]:
        """Label → devices running it now."""
        ...


@dataclass(frozen=True, slots=True)
class DeploymentDetail:
    """A deployment, its releases (oldest first) and where each one's content and diff archives are stored."""

    deployment: DeploymentOut
    history: list[ReleaseOut]
    stored: Mapping[str, Stored] = field(default_factory=dict)
    """Label → the release as devices are served it (blob key, diff archives)."""

    @property
    def latest(self) -> ReleaseOut | None:
        """The newest release, or None."""
        return self.history[-1] if self.history else None

    def stored_of(self, release: ReleaseOut) -> Stored | None:
        """Where ``release``'s content is stored (None: not served, e.g. just removed)."""
        return self.stored.get(release.label)


@dataclass(frozen=True, slots=True)
class DeploymentActivity:
    """A deployment's releases (oldest first, with their download/install/failure counters) and the devices
    active on each label now."""

    history: list[ReleaseOut]
    active: Mapping[str, int]


class DeploymentReads:
    """Synchronous reads over the release domain (and the active-device counts, when kept), as ``actor``."""

    def __init__(self, domain: ReleaseDomain, metrics: ActiveDevices | None = None) -> None:
        self._domain = domain
        self._metrics = metrics

    def detail(self, actor: Principal, app: str, deployment: str) -> DeploymentDetail:
        """A deployment (by name, any case), its history and where its releases are stored."""
        history = self._domain.releases.history(actor, app, deployment)
        found = next(
            (
                d
                for d in self._domain.deployments.list_deployments(actor, app)
                if d.name.lower() == deployment.lower()
            ),
            None,
        )
        if found is None:
            raise DeploymentNotFound(f'Deployment "{deployment}" does not exist.')
        snapshot = self._domain.snapshots.device_snapshot(found.key)
        stored = {r.label: r for r in snapshot.releases} if snapshot else {}
        return DeploymentDetail(found, history, stored)

    def details(self, actor: Principal, app: str) -> list[DeploymentDetail]:
        """Every deployment of the app, by name."""
        deployments = sorted(self._domain.deployments.list_deployments(actor, app), key=lambda d: d.name)
        return [self.detail(actor, app, d.name) for d in deployments]

    def activity(self, actor: Principal, app: str, deployment: str) -> DeploymentActivity:
        """The deployment's release counters and the devices active on each label."""
        history = self._domain.releases.history(actor, app, deployment)
        active = self._metrics.active_devices(app, deployment) if self._metrics else {}
        return DeploymentActivity(history, active)

    def labels(self, actor: Principal, app: str, deployment: str) -> list[str]:
        """The deployment's labels, oldest first."""
        return [r.label for r in self._domain.releases.history(actor, app, deployment)]

    def deployment_names(self, actor: Principal, app: str) -> list[str]:
        """The app's deployment names."""
        return [d.name for d in self._domain.deployments.list_deployments(actor, app)]
