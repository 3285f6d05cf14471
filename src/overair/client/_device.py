"""One installation of the app: what the engine's parts share (settings, journal, bundle folders)."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import httpx

from overair.client._fs import FileSystem
from overair.client._journal import Bundle, Journal, Loaded, Source, State, salvage_client_id
from overair.client._manifests import SignedManifests
from overair.client._trust import Trust
from overair.client._types import JournalRecovery

log = logging.getLogger("overair.client")


class Settings(Protocol):
    """The engine's public settings. The parts read them when they use them, so a change made on the
    engine (``engine.server_url = ...``) reaches every part."""

    server_url: str
    deployment_key: str
    app_version: str
    build_number: int | None
    embedded_bundle: Path
    data_dir: Path
    min_check_interval: float
    max_staleness: float


class Device:
    """What every part of the engine works on: the settings, trust anchors and HTTP client, and one data
    folder with its journal.

    ``state`` is only read or changed under ``lock``, and only changed through :meth:`changing`; the lock
    is never held across the network or unpacking.
    """

    def __init__(
        self,
        settings: Settings,
        trust: Trust,
        http: httpx.Client,
        fs: FileSystem,
        wall_clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.trust = trust
        self.http = http
        self.fs = fs
        self.wall_clock = wall_clock
        """Seconds since the epoch: what must hold across launches (freshness, daily reports) uses it."""
        self.lock = threading.RLock()
        self.downloading: str | None = None
        """The package hash being downloaded: its folders are not cleaned up meanwhile."""
        data_dir = settings.data_dir
        self.bundles = data_dir / "bundles"
        self.downloads = data_dir / "downloads"
        self.manifests = SignedManifests(data_dir / "manifests", fs, trust)
        for folder in (data_dir, self.bundles, self.downloads, self.manifests.folder):
            folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(data_dir / "state.json", fs)
        loaded = self.journal.load()
        self.state = loaded.state
        self.recovery = self._recover(loaded)
        """What was done about a damaged journal at this launch (None: it was intact)."""
        if self.state.fresh_at is None:
            self.state.fresh_at = wall_clock()  # staleness counts from the first launch
        if loaded.source is not Source.CURRENT:
            # a new device, a legacy journal (accepted once) or a recovered one: write both generations,
            # so that the client id survives the first launch and nothing damaged is left to fall back to
            try:
                self.journal.rewrite(self.state)
            except OSError as exc:
                log.error("cannot write %s: %s", self.journal.path, exc)

    def _recover(self, loaded: Loaded) -> JournalRecovery | None:
        """Say what was lost with a damaged journal, and prove the sequence floor again from the signed
        manifests of the installed releases."""
        state, source = loaded.state, loaded.source
        if source is Source.LEGACY:
            log.info("%s has no checksum (an older engine's); it is written back with one", self.journal.path)
        if source is Source.CURRENT or source is Source.LEGACY:
            return None
        started_over = source is Source.NONE
        if not loaded.damage:
            if not started_over:  # killed between the two renames of a save: the old generation stands
                log.info(
                    "%s was being replaced when the app stopped; the previous one is used", self.journal.path
                )
                return None
            if not self.manifests.any_installed():
                return None  # a new device
        proven = self.manifests.proven_floor()
        client_id_kept = True
        if started_over:
            salvaged = salvage_client_id(loaded.damaged)
            client_id_kept = salvaged is not None
            state.client_id = salvaged or state.client_id
        # The release that proves the floor may be installed again (the device may no longer run it, and
        # the journal that said so is lost); nothing older may.
        state.sequence_floor = max(state.sequence_floor, proven - 1)
        floor = max(self.installed_sequence(), proven)
        missing = f"{self.journal.path.name} and its previous generation are missing"
        reason = "; ".join(loaded.damage) or missing
        recovery = JournalRecovery(started_over, reason, client_id_kept, floor)
        log.log(logging.ERROR if started_over else logging.WARNING, "%s", recovery.message)
        return recovery

    def save(self) -> None:
        """Write the state to the journal (atomically)."""
        self.journal.save(self.state)

    @contextmanager
    def changing(self) -> Iterator[State]:
        """Change the state and save it; if anything fails, memory goes back to what the disk holds."""
        before = copy.deepcopy(self.state)
        try:
            yield self.state
            if self.state != before:  # most launches change nothing: no write, no fsync
                self.save()
        except BaseException:
            self.state = before
            raise

    def bundle_path(self, bundle: Bundle | None) -> Path:
        """The folder of an installed bundle (the embedded bundle for None)."""
        return self.settings.embedded_bundle if bundle is None else self.bundles / bundle.package_hash

    def complete(self, bundle: Bundle | None) -> bool:
        """Whether the bundle's folder is there (and so complete and verified)."""
        # A bundle folder only gets its final name after every file was verified and fsynced.
        return bundle is None or self.bundle_path(bundle).is_dir()

    def installed_sequence(self) -> int:
        """The highest release sequence installed here: signed updates must be newer."""
        state = self.state
        pending = state.pending.sequence if state.pending is not None else 0
        current = state.current.sequence if state.current is not None else 0
        return max(state.sequence_floor, pending, current)
