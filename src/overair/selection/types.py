"""The data the update decision works on: releases, the device's question, and the answer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class DecisionKind(enum.StrEnum):
    """What a device should do after an update check."""

    UPDATE = "update"
    """Download and install ``Decision.release``."""
    NO_UPDATE = "no_update"
    """The device already runs the newest release for its binary."""
    RUN_EMBEDDED = "run_embedded"
    """No release targets this binary: run the bundle shipped inside it."""
    STORE_UPDATE_REQUIRED = "store_update_required"
    """Newer releases target only newer binaries: the user must update the app from the store."""


class RolloutHash(enum.StrEnum):
    """How a device is placed in a rollout bucket (0-99)."""

    NATIVE = "native"
    """SHA-256 of ``client_id + "-" + tag``: uniform, stable per device and release."""
    CODEPUSH = "codepush"
    """The JavaScript string hash of the CodePush reference server (see ``rollout.js_rollout_hash``)."""
    EXPO = "expo"
    """As ``NATIVE``, over the lower-cased ``EAS-Client-ID`` (iOS sends it upper-case, Android lower)."""


class CurrentMatch(enum.StrEnum):
    """How the release a device runs now is recognised among the deployment's releases."""

    LABEL_OR_HASH = "label_or_hash"
    """Native protocol: the label or the package hash matches."""
    LABEL_ELSE_HASH = "label_else_hash"
    """CodePush: the label when the device sent one, otherwise the package hash."""
    UPDATE_ID = "update_id"
    """Expo: ``label`` holds the update id the device runs, and only that very release is current (the same
    content under another id is another update); ``excluded_labels`` are update ids too."""


@dataclass(frozen=True, slots=True)
class Release:
    """One published release of a deployment, as the decision sees it.

    ``target`` is an exact version (``1.0.0``) or an npm-style range (``^1.2.0``). ``build_number``, when
    set, limits the release to binaries with that build number. ``rollout`` is 1-100; 100 means complete.
    """

    label: str
    package_hash: str
    target: str
    build_number: int | None = None
    rollout: int = 100
    mandatory: bool = False
    disabled: bool = False
    sync_before_update: bool = False
    size: int = 0
    description: str = ""
    blob_key: str = ""
    manifest_key: str = ""
    diffs: tuple[tuple[str, str, int], ...] = ()
    """Diff archives to this release's content: (base package hash, blob key, size)."""
    sequence: int = 0
    """The app-wide release sequence number (grows with every release of the app)."""
    signed_manifest: str | None = None
    """The publisher-signed manifest (base64) and its signature, when the release is signed."""
    signature: str | None = None
    signing_key_id: str | None = None
    platform: str | None = None
    """The one platform the release is for; None: every platform."""
    runtime_version: str | None = None
    """Expo: the runtime version a build must send, exactly; None for every other release."""
    update_id: str = ""
    """Expo: the id of the release's manifest (a UUID)."""
    created_at: str = ""
    """When it was released (ISO 8601, milliseconds, ``Z``): the Expo manifest's ``createdAt``."""
    expo: str | None = None
    """Expo: the content description (``overair.packages.expo.ExpoContent`` JSON)."""
    expo_signed: str | None = None
    """Expo: the publisher-built manifest's bytes and signatures (JSON), when its publisher signed it."""
    disabled_at: str = ""
    """When it was disabled (ISO 8601 like ``created_at``; empty while enabled)."""

    @property
    def rollout_unfinished(self) -> bool:
        """True while the release reaches only part of the devices."""
        return self.rollout < 100

    def diff_from(self, base_hash: str) -> tuple[str, int] | None:
        """(blob key, size) of the diff archive from package ``base_hash``, if one was built."""
        for base, key, size in self.diffs:
            if base == base_hash:
                return key, size
        return None


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """What a device tells the server about itself when it asks for an update.

    ``label`` and ``package_hash`` describe the bundle it runs now (both empty: the embedded bundle).
    ``excluded_labels`` are releases that failed on this device; they are never offered to it again.
    ``any_binary`` ignores targets entirely (CodePush companion apps).
    """

    app_version: str
    build_number: int | None = None
    label: str = ""
    package_hash: str = ""
    client_id: str = ""
    excluded_labels: frozenset[str] = field(default_factory=frozenset)
    store_only: bool = False
    any_binary: bool = False
    rollout_hash: RolloutHash = RolloutHash.NATIVE
    current_match: CurrentMatch = CurrentMatch.LABEL_OR_HASH
    platform: str = ""
    """The device's platform: releases made for another one are not for it (empty: any)."""
    runtime_version: str | None = None
    """Expo: only releases of exactly this runtime version target the device (``app_version`` and
    ``build_number`` are then ignored)."""
    newer_only: bool = False
    """Never offer a release older than the one the device runs (Expo clients load only a newer
    ``createdAt``): the device keeps what it runs instead."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one update check.

    ``latest_target`` is the target of the newest enabled release of the deployment (whatever binary it
    targets); with ``store_version_newer`` it tells a device that a newer store binary is being served.
    """

    kind: DecisionKind
    release: Release | None = None
    mandatory: bool = False
    latest_target: str = ""
    store_version_newer: bool = False

    @property
    def sync_before_update(self) -> bool:
        """The offered release changes the offline data model destructively: sync first, then install."""
        return self.release is not None and self.release.sync_before_update

    @property
    def attention(self) -> bool:
        """The user must act (confirm, sync, or update from the store); otherwise the update is seamless."""
        if self.kind is DecisionKind.STORE_UPDATE_REQUIRED:
            return True
        return self.kind is DecisionKind.UPDATE and (self.mandatory or self.sync_before_update)


@dataclass(frozen=True, slots=True)
class Plan:
    """The device-independent part of a decision, cacheable per (binary, current bundle).

    When the release a device would get is still rolling out, ``rollout_decision`` is what devices inside
    the rollout get, and ``decision`` what everybody else gets.
    """

    decision: Decision
    rollout_decision: Decision | None = None
    rollout_percentage: int = 100
    rollout_tag: str = ""
