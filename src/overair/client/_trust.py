"""What the engine checks before it trusts an answer or an update: publisher signatures and freshness."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from overair.client._types import UpdateInfo, UpdateRefused
from overair.packages import ManifestEntry
from overair.packages import signing as sig
from overair.selection import semver

_CLOCK_SKEW = 300
_REPLAY_TOLERANCE = 120
"""Answers issued this much before the newest one seen still count: workers sign per minute window and
hosts' clocks differ a little. An older answer is a replay."""


def _keys(texts: Sequence[str | bytes]) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for text in texts:
        key = sig.parse_public_key(text.decode() if isinstance(text, bytes) else text)
        keys[sig.key_id(key)] = key
    return keys


class Trust:
    """The device's trust anchors: publisher keys (for releases) and the server key (for answers)."""

    def __init__(
        self,
        *,
        public_keys: Sequence[str | bytes],
        retired_keys: Sequence[str | bytes],
        server_key: str | None,
        app_name: str | None,
        deployment_name: str | None,
        app_version: str,
        build_number: int | None,
    ) -> None:
        try:
            self.trusted = _keys(public_keys)
            self.retired = _keys(retired_keys)
            self.server = sig.parse_public_key(server_key) if server_key else None
        except sig.SigningError as exc:
            raise ValueError(f"unusable key: {exc.message}") from None
        if self.trusted and not (app_name and deployment_name):
            raise ValueError(
                "with public_keys, give app_name and deployment_name: manifests are bound to them"
            )
        for kid in self.retired:
            self.trusted.pop(kid, None)
        self.app_name = app_name
        self.deployment_name = deployment_name
        self.app_version = app_version
        self.build_number = build_number

    @property
    def requires_signatures(self) -> bool:
        """True when updates must be signed by a publisher key."""
        return bool(self.trusted)

    def check_update(self, update: UpdateInfo, installed_sequence: int) -> sig.ReleaseManifest | None:
        """The verified signed manifest of ``update`` (None when signatures are not required).

        Raises :class:`UpdateRefused` with the reason when the update is unsigned, signed by an unknown
        or retired key, tampered with, meant for another app, deployment or binary, not newer than
        ``installed_sequence`` (a replay or downgrade), or announces more bytes than were signed.
        """
        if not self.trusted:
            return None
        if not update.signed_manifest or not update.signature:
            raise UpdateRefused(f"{update.label} is not signed, and this app installs signed releases only")
        try:
            data = base64.b64decode(update.signed_manifest, validate=True)
        except (binascii.Error, ValueError):
            raise UpdateRefused(f"the signed manifest of {update.label} is not valid base64") from None
        try:
            manifest, _ = sig.verify_manifest(data, update.signature, list(self.trusted.values()))
        except sig.SigningError as exc:
            try:
                sig.verify_manifest(data, update.signature, list(self.retired.values()))
            except sig.SigningError:
                raise UpdateRefused(
                    f"{update.label} is refused: {exc.message} (signed with another key, or the manifest "
                    "was altered)"
                ) from None
            raise UpdateRefused(f"{update.label} is signed with a retired key") from None
        self._check_binding(update, manifest, installed_sequence)
        return manifest

    def _check_binding(self, update: UpdateInfo, manifest: sig.ReleaseManifest, installed: int) -> None:
        label = update.label
        if manifest.app != self.app_name:
            raise UpdateRefused(f"{label} is signed for the app {manifest.app!r}, not {self.app_name!r}")
        if manifest.deployment != self.deployment_name:
            raise UpdateRefused(
                f"{label} is signed for the deployment {manifest.deployment!r}, not {self.deployment_name!r}"
            )
        if manifest.label != label or manifest.package_hash != update.package_hash:
            raise UpdateRefused(
                f"the offer of {label} does not match its signed manifest (signed: {manifest.label}, "
                f"package {manifest.package_hash[:12]})"
            )
        if update.sequence != manifest.sequence:
            raise UpdateRefused(
                f"the offer of {label} says sequence {update.sequence}, its signed manifest "
                f"{manifest.sequence}"
            )
        if manifest.sequence <= installed:
            raise UpdateRefused(
                f"{label} has sequence {manifest.sequence}, not newer than the installed {installed}: an old "
                "release replayed, or a downgrade; refused"
            )
        if not semver.satisfies(self.app_version, manifest.target_version):
            raise UpdateRefused(
                f"{label} is signed for app versions {manifest.target_version}, not this binary's "
                f"{self.app_version}"
            )
        if manifest.build_number is not None and manifest.build_number != self.build_number:
            raise UpdateRefused(
                f"{label} is signed for build {manifest.build_number}, not {self.build_number}"
            )
        if update.size > manifest.download_limit:
            raise UpdateRefused(
                f"{label} announces {update.size:,} bytes, more than the {manifest.download_limit:,} signed"
            )

    def proven_sequence(self, signed_manifest: str, signature: str) -> int | None:
        """The sequence of a signed manifest kept on disk, if it proves a release of this app and
        deployment: it verifies with a publisher key, trusted or retired (a key retired since still proves
        what was installed with it, and the floor it proves only refuses more). None when it does not."""
        try:
            data = base64.b64decode(signed_manifest, validate=True)
            keys = [*self.trusted.values(), *self.retired.values()]
            manifest, _ = sig.verify_manifest(data, signature, keys)
        except (binascii.Error, ValueError, sig.SigningError):
            return None
        if manifest.app != self.app_name or manifest.deployment != self.deployment_name:
            return None
        return manifest.sequence

    @staticmethod
    def check_files(
        update: UpdateInfo, manifest: sig.ReleaseManifest | None, files: Sequence[ManifestEntry]
    ) -> None:
        """Refuse a package manifest whose files are not exactly the signed ones."""
        if manifest is None:
            return
        if sig.signed_files(files) != tuple(sorted(manifest.files, key=lambda f: f.path)):
            raise UpdateRefused(f"the files of {update.label} are not the ones its publisher signed")

    def check_answer(
        self,
        headers: Mapping[str, str],
        body: bytes,
        scope: str | Mapping[str, object],
        now: float,
        last_issued: int,
    ) -> int | None:
        """The issue time of a fresh, server-signed answer (None when no server key is configured).

        ``scope`` is the update check's query parameters (or their :func:`~overair.packages.signing.
        freshness_scope` already). Raises :class:`UpdateRefused` when the answer is
        unsigned, its signature does not verify for this request, it has expired, it comes from the future,
        or it is older than one already seen.
        """
        if self.server is None:
            return None
        try:
            issued = int(headers[sig.ISSUED_AT_HEADER])
            expires = int(headers[sig.EXPIRES_AT_HEADER])
            _, _, signature = headers[sig.SIGNATURE_HEADER].partition(":")
        except (KeyError, ValueError):
            raise UpdateRefused("the update-check answer is not signed by the server") from None
        try:
            scope = scope if isinstance(scope, str) else sig.freshness_scope(scope)
            sig.verify_freshness(self.server, signature, issued, expires, scope, body)
        except sig.SigningError as exc:
            raise UpdateRefused(f"the update-check answer is refused: {exc.message}") from None
        if expires <= now:
            raise UpdateRefused("the update-check answer has expired: it is an old answer replayed")
        if issued > now + _CLOCK_SKEW:
            raise UpdateRefused("the update-check answer is dated in the future: check the device clock")
        if issued < last_issued - _REPLAY_TOLERANCE:
            raise UpdateRefused("the update-check answer is older than one seen before: a replay")
        return issued
