"""Store binaries: what each app-store build contains, and the check that an update can run on them."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair import packages
from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal
from overair.db import utcnow
from overair.errors import Fix
from overair.releases import repository as repo
from overair.releases.errors import FullReleaseRequired, InvalidRelease
from overair.releases.models import App, Binary
from overair.releases.outputs import binary_name, binary_out
from overair.releases.schemas import BinaryOut, BinaryRegister
from overair.releases.unit import Changes
from overair.selection import semver


def semver_key(version: str) -> tuple[int, ...]:
    """A sort key for exact versions (major, minor, patch)."""
    core = version.split("-", 1)[0].split("+", 1)[0]
    return tuple(int(p) if p.isdigit() else 0 for p in core.split("."))


def _by_version(binaries: Iterable[Binary]) -> list[Binary]:
    """Binaries by version and build (the database returns rows in no fixed order)."""
    return sorted(binaries, key=lambda b: (semver_key(b.version), b.build_number or 0))


def check_binaries(
    session: Session, app: App, target: str, build_number: int | None, bundle: packages.Descriptor | None
) -> list[str]:
    """Refuse a bundle any targeted binary cannot run; the warnings for checks that could not be made."""
    binaries = _by_version(session.scalars(select(Binary).where(Binary.app_id == app.id)))
    if not binaries:
        return [
            f"{app.name} has no registered store binary, so this bundle was not checked against one: "
            "register the store binaries to catch updates that need a store release."
        ]
    targeted = [
        b
        for b in binaries
        if semver.satisfies(b.version, target) and (build_number is None or b.build_number == build_number)
    ]
    if not targeted:
        known = ", ".join(sorted({binary_name(b) for b in binaries}))
        build = f" build {build_number}" if build_number is not None else ""
        raise FullReleaseRequired(
            f"No registered store binary of {app.name} matches {target}{build} (registered: {known}). "
            "The initial release of a version goes through the stores: publish it there, register it, "
            "then push updates to it.",
            subject={"app": app.name, "target_version": target},
            fixes=[Fix("register-binary", {"app": app.name})],
        )
    if bundle is None:
        return [
            "The bundle has no overair.json, so it was not checked against "
            + ", ".join(binary_name(b) for b in targeted)
            + ": describe the bundle when publishing it."
        ]
    reasons = [
        reason
        for binary in targeted
        for reason in packages.full_release_reasons(
            packages.parse_descriptor(binary.descriptor), bundle, binary_name(binary)
        )
    ]
    if reasons:
        raise FullReleaseRequired(
            "This update needs a store release: " + "; ".join(r.message for r in reasons) + ".",
            subject={"app": app.name, "target_version": target},
        )
    return []


class BinaryService:
    """Registered store binaries of each app."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def register_binary(self, actor: Principal, app_name: str, spec: BinaryRegister) -> BinaryOut:
        """Record what a store binary contains; registering the same version and build again updates it."""
        actor.require(Action.MANAGE_BINARIES, app=app_name)
        version = semver.valid(spec.version)
        if version is None:
            raise InvalidRelease(
                f'"{spec.version}" is not a binary version: give the exact version, like 1.0.0',
                subject={"version": spec.version},
            )
        try:
            descriptor = packages.parse_descriptor(spec.descriptor)
        except packages.InvalidBundle as exc:
            raise InvalidRelease(f"Invalid descriptor: {exc.message}") from exc
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            same_build = (
                Binary.build_number.is_(None)
                if spec.build_number is None
                else Binary.build_number == spec.build_number
            )
            binary = session.scalar(
                select(Binary).where(Binary.app_id == app.id, Binary.version == version, same_build)
            )
            before = None if binary is None else {"descriptor": json.loads(binary.descriptor)}
            if binary is None:
                binary = Binary(app_id=app.id, version=version, build_number=spec.build_number)
                session.add(binary)
            binary.descriptor = json.dumps(descriptor.to_json(), sort_keys=True)
            binary.registered_by = actor.name
            binary.registered_at = utcnow()
            session.flush()
            self._changes.audit.record(
                session,
                actor,
                AuditAction.BINARY_REGISTER,
                app=app.name,
                item=binary_name(binary),
                before=before,
                after={"descriptor": json.loads(binary.descriptor)},
            )
            return binary_out(binary)

    def list_binaries(self, actor: Principal, app_name: str) -> list[BinaryOut]:
        """The app's registered binaries, by version."""
        actor.require(Action.READ, app=app_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            binaries = _by_version(session.scalars(select(Binary).where(Binary.app_id == app.id)))
            return [binary_out(b) for b in binaries]
