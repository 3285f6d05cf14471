"""What the update check needs of a deployment, read in one go for the device routes' cache."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select

from overair.packages.expo import iso_millis
from overair.releases import deltas, rules
from overair.releases import repository as repo
from overair.releases.deltas import DeltaOffers
from overair.releases.models import Deployment, PackageDiff
from overair.releases.schemas import Distribution
from overair.releases.unit import Changes
from overair.selection import Release as Candidate


def _strictly_later(moments: Iterable[dt.datetime]) -> list[dt.datetime]:
    """Release times made strictly increasing (a millisecond apart at least): Expo clients load an update
    only when its ``createdAt`` is later than the one they run, and releases are stored to the second."""
    out: list[dt.datetime] = []
    for moment in moments:
        out.append(moment if not out or moment > out[-1] else out[-1] + dt.timedelta(milliseconds=1))
    return out


def _signed_time(signed: str | None) -> str:
    """The ``createdAt`` a publisher signed into an Expo manifest (empty: not signed)."""
    return str(json.loads(signed)["created_at"]) if signed else ""


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """What the update check needs of a deployment, loaded in one go and cached by the device routes."""

    generation: int
    store_only: bool
    releases: tuple[Candidate, ...]
    deltas: Mapping[tuple[str, str], DeltaOffers | None] = field(default_factory=dict)
    """(target hash, base hash) → binary deltas to offer; None: built but saves too little."""
    delta_bases: frozenset[str] = frozenset()
    """Bases a device may get a delta built from on request (the last 50 releases' content)."""


class DeviceSnapshots:
    """Reads :class:`DeviceSnapshot` s and the cheap change counter the cache revalidates with."""

    def __init__(self, changes: Changes, delta_min_saving: float = deltas.DEFAULT_MIN_SAVING) -> None:
        self._changes = changes
        self._delta_min_saving = delta_min_saving

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(deployment_key)`` after every committed change that may alter device answers."""
        self._changes.add_listener(listener)

    def device_snapshot(self, deployment_key: str) -> DeviceSnapshot | None:
        """Everything the update check needs of a deployment, or None for an unknown key."""
        if rules.DEPLOYMENT_KEY.fullmatch(deployment_key) is None:
            return None  # no deployment can have it, and the database need not be asked (nor refuse it)
        with self._changes.sessions() as session:
            deployment = repo.deployment_by_key(session, deployment_key)
            if deployment is None:
                return None
            history = repo.releases_of(session, deployment)
            diffs: dict[str, list[tuple[str, str, int]]] = {}
            hashes = {r.package_hash for r in history}
            if hashes:
                for diff in session.scalars(select(PackageDiff).where(PackageDiff.package_hash.in_(hashes))):
                    diffs.setdefault(diff.package_hash, []).append((diff.base_hash, diff.blob_key, diff.size))
            releases = tuple(
                Candidate(
                    label=r.label,
                    package_hash=r.package_hash,
                    target=r.target_version,
                    build_number=r.build_number,
                    rollout=r.rollout,
                    mandatory=r.mandatory,
                    disabled=r.disabled,
                    sync_before_update=r.sync_before_update,
                    size=r.package.size,
                    description=r.description,
                    blob_key=r.package.blob_key,
                    manifest_key=r.package.manifest_key,
                    diffs=tuple(diffs.get(r.package_hash, ())),
                    sequence=r.sequence,
                    signed_manifest=r.signed_manifest,
                    signature=r.signature,
                    signing_key_id=r.signing_key_id,
                    platform=r.platform,
                    runtime_version=r.runtime_version,
                    update_id=r.update_id or "",
                    created_at=_signed_time(r.expo_signed) or iso_millis(created),
                    expo_signed=r.expo_signed,
                    expo=r.package.expo,
                    disabled_at=iso_millis(r.disabled_at) if r.disabled_at else "",
                )
                for r, created in zip(history, _strictly_later(r.released_at for r in history), strict=True)
            )
            return DeviceSnapshot(
                generation=deployment.generation,
                store_only=deployment.app.distribution == Distribution.STORE_ONLY.value,
                releases=releases,
                deltas=deltas.load_offers(session, history, self._delta_min_saving),
                delta_bases=deltas.bases_on_request(history),
            )

    def sibling_key(self, deployment_key: str, name: str) -> str | None:
        """The key of the deployment named ``name`` (any case) of the app that has ``deployment_key``; None
        when there is no such app or deployment (Expo channels: a build names its deployment)."""
        if rules.DEPLOYMENT_KEY.fullmatch(deployment_key) is None or not name.isprintable():
            return None
        with self._changes.sessions() as session:
            deployment = repo.deployment_by_key(session, deployment_key)
            if deployment is None:
                return None
            for sibling in deployment.app.deployments:
                if sibling.name.lower() == name.lower():
                    return sibling.key
        return None

    def generation(self, deployment_key: str) -> int | None:
        """The deployment's change counter (None: unknown key); cheap, for cache revalidation."""
        if rules.DEPLOYMENT_KEY.fullmatch(deployment_key) is None:
            return None  # as in device_snapshot: no deployment has it, and PostgreSQL would refuse a NUL
        with self._changes.sessions() as session:
            return session.scalar(select(Deployment.generation).where(Deployment.key == deployment_key))
