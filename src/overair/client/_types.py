"""Values the update engine hands to the host app."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class InstallMode(enum.StrEnum):
    """When a downloaded update starts running."""

    ON_NEXT_RESTART = "on_next_restart"
    """At the next ``start()`` (the default, as in Mendix)."""
    ON_NEXT_RESUME = "on_next_resume"
    """At the next ``resume()`` (the app coming back to the foreground), or the next start."""
    IMMEDIATE = "immediate"
    """Now: ``install()`` returns the new folder and the host app reloads it."""


class CheckTrigger(enum.StrEnum):
    """Why the app checks for an update (OutSystems checks on all of these)."""

    START = "start"
    RESUME = "resume"
    NAVIGATION = "navigation"
    SERVER_CALL = "server_call"


class CheckStatus(enum.StrEnum):
    """What an update check found."""

    UPDATE = "update"
    NO_UPDATE = "no_update"
    RUN_EMBEDDED = "run_embedded"
    STORE_UPDATE_REQUIRED = "store_update_required"
    THROTTLED = "throttled"
    """Not asked: the previous check was less than ``min_check_interval`` ago."""
    OFFLINE = "offline"
    """The server could not be reached or answered with an error (logged, never raised)."""
    REFUSED = "refused"
    """The answer or its update failed verification (signature, sequence, size, freshness); ``message``
    says why. It was reported, and nothing was downloaded."""


@dataclass(frozen=True, slots=True)
class DeltaInfo:
    """A binary delta the server offers instead of the full package, made from ``base_package_hash``."""

    url: str
    size: int
    sha256: str
    base_package_hash: str


@dataclass(frozen=True, slots=True)
class UpdateInfo:
    """An update the server offers."""

    label: str
    package_hash: str
    size: int
    download_url: str
    manifest_url: str
    mandatory: bool
    description: str
    sync_before_update: bool = False
    """It changes the offline data model destructively: it installs only when nothing is left to sync."""
    attention: bool = False
    """The user must act (confirm or sync); otherwise the update is seamless and installs silently."""
    message: str = ""
    sequence: int = 0
    """The app-wide release sequence number; signed releases must exceed the installed one."""
    signed_manifest: str | None = None
    """The publisher-signed release manifest (base64) and its signature, when the release is signed."""
    signature: str | None = None
    key_id: str | None = None
    delta: DeltaInfo | None = None
    """A smaller download from the installed bundle; any problem with it falls back to the full package."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to ``check_for_update``; ``update`` is set when ``status`` is UPDATE."""

    status: CheckStatus
    update: UpdateInfo | None = None
    store_version: str | None = None
    attention: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class DownloadedUpdate:
    """An update downloaded and verified, in its own folder, ready to install."""

    update: UpdateInfo
    path: Path
    via_delta: bool = False
    """It was built from the installed bundle and a binary delta."""
    delta_failure: str | None = None
    """Why an offered delta could not be used (the full package was installed instead)."""


class SyncStatus(enum.StrEnum):
    """How ``sync()`` ended."""

    UP_TO_DATE = "up_to_date"
    INSTALLED = "installed"
    """Installed; it runs from the next restart (or resume)."""
    APPLIED = "applied"
    """Installed immediately: reload ``SyncResult.reload_path``."""
    POSTPONED = "postponed"
    """The user chose Later."""
    WAITING_FOR_SYNC = "waiting_for_sync"
    """Downloaded; installs once the app reports that its offline data is synced."""
    STORE_UPDATE_REQUIRED = "store_update_required"
    FAILED = "failed"
    """Offline, or the update was refused (see ``SyncResult.error``)."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of ``sync()``."""

    status: SyncStatus
    update: UpdateInfo | None = None
    reload_path: Path | None = None
    error: str | None = None


class UpdateError(Exception):
    """An update could not be downloaded or installed; nothing was installed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpdateRefused(UpdateError):
    """The update did not verify (truncated, altered, extra or missing files) or failed on this device."""


class InsufficientSpace(UpdateError):
    """Not enough free disk space to download and unpack the update."""


class DownloadFailed(UpdateError):
    """The download could not be completed (network); it resumes at the next attempt."""


@dataclass(frozen=True, slots=True)
class JournalRecovery:
    """The engine's journal (``state.json``) was damaged when the engine started, and what it did about it.

    ``UpdateEngine.journal_recovery`` holds it for the life of the engine (None when the journal was
    intact); it is also logged on the ``overair.client`` logger.
    """

    started_over: bool
    """False: the previous generation (``state.json.prev``) was loaded, so at most the last change before
    the damage is lost. True: neither generation could be read, and the engine started over on the embedded
    bundle, with its failed labels and undelivered reports lost."""
    reason: str
    """What was wrong with each journal file ("state.json: the checksum does not match")."""
    client_id_kept: bool
    """Whether the device kept its client id (and so its place in rollouts). After starting over it is
    kept only if it could be recovered safely from the damaged files; otherwise the device has a new one."""
    sequence_floor: int
    """The highest signed release sequence the device has proven it installed (0: none). Signed releases
    older than it are refused; after starting over it is proven from the signed manifests of installed
    releases kept on disk."""

    @property
    def message(self) -> str:
        """One paragraph for a log or a support screen."""
        floor = (
            f" Signed releases older than sequence {self.sequence_floor} are refused."
            if self.sequence_floor
            else ""
        )
        if not self.started_over:
            return (
                f"The update engine's journal was damaged ({self.reason}); its previous generation was "
                f"loaded, so at most the last change before the damage was lost.{floor}"
            )
        identity = (
            "The client id was recovered."
            if self.client_id_kept
            else "The client id could not be recovered safely: the device has a new one (and may land in "
            "another rollout bucket)."
        )
        return (
            f"The update engine's journal could not be read ({self.reason}); the engine started over on the "
            f"embedded bundle, and its failed labels and undelivered reports are lost. {identity}{floor}"
        )
