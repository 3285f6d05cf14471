"""Publisher keys of an app and the check of a signed release before it is stored.

Once an app has an active key, every new release of it (publish, promote, rollback, from any dialect)
must come with a manifest signed by one of its active keys, describing exactly the release the server
is about to create. The server never signs releases itself: it only holds public keys.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal
from overair.db import utcnow
from overair.errors import Conflict, Fix, Invalid
from overair.packages import ManifestEntry
from overair.packages import signing as sig
from overair.releases import repository as repo
from overair.releases.errors import BadSignature, SequenceTaken, SignatureRequired, SigningKeyNotFound
from overair.releases.models import App, Deployment, Package, SigningKey
from overair.releases.schemas import SignedRelease, SigningKeyAdd, SigningKeyOut
from overair.releases.unit import Changes

MAX_SEQUENCE_JUMP = 1000
"""How far past the app's last sequence a signed release may go: a huge jump would lock later ones out."""


def _take_sequence(session: Session, app: App, wanted: int | None) -> int:
    """Atomically raise the app's sequence: by one, or to ``wanted`` if that is still ahead of it.

    A single UPDATE, so two publishes to different deployments of one app racing on separate workers
    (or database connections) never get the same number.
    """
    if wanted is None:
        statement = update(App).where(App.id == app.id).values(release_sequence=App.release_sequence + 1)
    else:
        statement = (
            update(App).where(App.id == app.id, App.release_sequence < wanted).values(release_sequence=wanted)
        )
    taken = session.execute(statement.returning(App.release_sequence)).scalar_one_or_none()
    if taken is None:
        raise SequenceTaken(
            f"Sequence {wanted} was taken by another release a moment ago: run the command again, it "
            "signs with a fresh number."
        )
    session.refresh(app, ["release_sequence"])
    return int(taken)


def add_key(session: Session, app: App, public_key: str, name: str, added_by: str) -> SigningKeyOut:
    """Trust ``public_key`` for the app's releases from now on."""
    try:
        parsed = sig.parse_public_key(public_key)
    except sig.SigningError as exc:
        raise Invalid(f"The public key cannot be used: {exc.message}.") from exc
    text, kid = sig.public_key_text(parsed), sig.key_id(parsed)
    existing = session.scalar(select(SigningKey).where(SigningKey.app_id == app.id, SigningKey.key_id == kid))
    if existing is not None:
        state = "retired" if existing.retired_at else "active"
        raise Conflict(f'Key {kid} is already on "{app.name}" ({state}); a retired key cannot come back.')
    key = SigningKey(app_id=app.id, key_id=kid, public_key=text, name=name, added_by=added_by)
    session.add(key)
    session.flush()
    return SigningKeyOut.model_validate(key)


def list_keys(session: Session, app: App) -> list[SigningKeyOut]:
    """Every key of the app, active and retired, oldest first."""
    keys = session.scalars(select(SigningKey).where(SigningKey.app_id == app.id).order_by(SigningKey.id))
    return [SigningKeyOut.model_validate(k) for k in keys]


def retire_key(session: Session, app: App, kid: str) -> SigningKeyOut:
    """Stop trusting a key for new releases (releases it signed stay as they are)."""
    key = session.scalar(select(SigningKey).where(SigningKey.app_id == app.id, SigningKey.key_id == kid))
    if key is None:
        raise SigningKeyNotFound(
            f'"{app.name}" has no signing key {kid}.',
            subject={"app": app.name, "signing_key": kid},
            fixes=[Fix("list-signing-keys", {"app": app.name})],
        )
    if key.retired_at is None:
        key.retired_at = utcnow()
    session.flush()
    return SigningKeyOut.model_validate(key)


def _active_keys(session: Session, app: App) -> list[SigningKey]:
    return list(
        session.scalars(
            select(SigningKey).where(SigningKey.app_id == app.id, SigningKey.retired_at.is_(None))
        )
    )


@dataclasses.dataclass(frozen=True)
class Signed:
    """The signature columns of a release that is about to be stored."""

    sequence: int
    signed_manifest: str | None = None
    signature: str | None = None
    signing_key_id: str | None = None


def check_release(
    session: Session,
    app: App,
    deployment: Deployment,
    *,
    label: str,
    target_version: str,
    build_number: int | None,
    package: Package,
    manifest: Callable[[], Sequence[ManifestEntry]],
    signed: SignedRelease | None,
) -> Signed:
    """Give the release its sequence number, and check its signature when the app requires one.

    Raises :class:`SignatureRequired` when the app has active keys and ``signed`` is None,
    :class:`BadSignature` when it does not verify or describes another release, and
    :class:`SequenceTaken` when its sequence number was used already.
    """
    active = _active_keys(session, app)
    if signed is None:
        if active:
            raise SignatureRequired(
                f'"{app.name}" accepts signed releases only ({len(active)} active signing key'
                f"{'s' if len(active) != 1 else ''}): sign the release with the publisher's private key.",
                subject={"app": app.name},
                fixes=[Fix("sign-release")],
            )
        return Signed(sequence=_take_sequence(session, app, None))
    if not active:
        raise BadSignature(
            f'"{app.name}" has no active signing key to check this signature with: add the public key first.',
            subject={"app": app.name},
            fixes=[Fix("add-signing-key", {"app": app.name})],
        )
    try:
        data = base64.b64decode(signed.manifest, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSignature("The signed manifest is not valid base64.") from exc
    by_id = {k.key_id: k for k in active}
    keys = [sig.parse_public_key(k.public_key) for k in active]
    try:
        release, key = sig.verify_manifest(data, signed.signature, keys)
    except sig.SigningError as exc:
        retired = session.scalar(
            select(SigningKey.key_id).where(SigningKey.app_id == app.id, SigningKey.retired_at.is_not(None))
        )
        hint = " (retired keys no longer sign releases)" if retired else ""
        raise BadSignature(
            f"The release signature was refused: {exc.message}{hint}. Sign with one of the app's active "
            f"keys ({', '.join(sorted(by_id))}).",
            subject={"app": app.name},
            fixes=[Fix("list-signing-keys", {"app": app.name})],
        ) from exc
    expected = sig.ReleaseManifest(
        app=app.name,
        deployment=deployment.name,
        label=label,
        sequence=release.sequence,
        target_version=target_version,
        build_number=build_number,
        package_hash=package.package_hash,
        download_limit=release.download_limit,
        files=sig.signed_files(manifest()),
    )
    if release.sequence > app.release_sequence + MAX_SEQUENCE_JUMP:
        raise BadSignature(
            f"The signed sequence {release.sequence} jumps more than {MAX_SEQUENCE_JUMP} past the app's last "
            f"({app.release_sequence}): sign with the number `overair` gives (next-release)."
        )
    if release.sequence <= app.release_sequence or release.label != label:
        raise SequenceTaken(
            f"The signed manifest is for {release.label} with sequence {release.sequence}, but the next "
            f"release of {deployment.name} is {label} after sequence {app.release_sequence} (another "
            "release came first). Run the command again: it signs with fresh numbers."
        )
    differences = [
        f.name for f in dataclasses.fields(expected) if getattr(expected, f.name) != getattr(release, f.name)
    ]
    if differences:
        raise BadSignature(
            "The signed manifest does not describe this release (it differs in "
            f"{', '.join(differences)}): sign the release you are publishing."
        )
    if release.download_limit < package.size:
        raise BadSignature(
            f"The signed download limit ({release.download_limit:,} bytes) is below the stored archive of "
            f"this content ({package.size:,} bytes): sign with the archive's size."
        )
    _take_sequence(session, app, release.sequence)
    return Signed(
        sequence=release.sequence,
        signed_manifest=signed.manifest,
        signature=signed.signature,
        signing_key_id=sig.key_id(key),
    )


class SigningKeyService:
    """The publisher keys each app trusts (public halves only: the server never holds a private one)."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def add_signing_key(self, actor: Principal, app_name: str, spec: SigningKeyAdd) -> SigningKeyOut:
        """Trust a publisher's public key for the app: from now on its releases must be signed."""
        actor.require(Action.MANAGE_SIGNING_KEYS, app=app_name)
        with self._changes.transaction() as (session, _):
            added = add_key(session, repo.get_app(session, app_name), spec.public_key, spec.name, actor.name)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.SIGNING_KEY_ADD,
                app=app_name,
                item=added.key_id,
                after={"key_id": added.key_id, "name": added.name, "public_key": added.public_key},
            )
            return added

    def list_signing_keys(self, actor: Principal, app_name: str) -> list[SigningKeyOut]:
        """The app's publisher keys, active and retired."""
        actor.require(Action.READ, app=app_name)
        with self._changes.sessions() as session:
            return list_keys(session, repo.get_app(session, app_name))

    def retire_signing_key(self, actor: Principal, app_name: str, key_id: str) -> SigningKeyOut:
        """Stop accepting releases signed with a key."""
        actor.require(Action.MANAGE_SIGNING_KEYS, app=app_name)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            was = session.scalar(
                select(SigningKey.retired_at).where(SigningKey.app_id == app.id, SigningKey.key_id == key_id)
            )
            retired = retire_key(session, app, key_id)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.SIGNING_KEY_RETIRE,
                app=app_name,
                item=retired.key_id,
                before={"retired_at": was},
                after={"retired_at": retired.retired_at},
            )
            return retired
