"""Installing: which bundle runs, trial launches, rolling back by itself, offline data held safe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from overair.client._device import Device
from overair.client._journal import Bundle, State
from overair.client._reports import Reports
from overair.client._types import DownloadedUpdate, InstallMode, UpdateError, UpdateRefused

log = logging.getLogger("overair.client")


class Installer:
    """Moves bundles between downloaded, pending, current and previous in the journal.

    Every move is one journal change, so a power loss leaves the old state or the new one. An installed
    update runs on trial until it is confirmed; a launch that finds it unconfirmed rolls it back.
    """

    def __init__(
        self,
        device: Device,
        reports: Reports,
        unsynced_changes: Callable[[], int] | None,
    ) -> None:
        self._device = device
        self._reports = reports
        self._unsynced_source = unsynced_changes
        self._unsynced_count = 0

    # -- launch -------------------------------------------------------------------------------------

    def start(self) -> Path:
        """The bundle folder to load at launch (see ``UpdateEngine.start``)."""
        device = self._device
        with device.lock:
            try:
                with device.changing() as state:
                    if state.current is not None and not state.confirmed and state.trial_launches >= 1:
                        self._roll_back(state)
                    if state.pending is not None:
                        if state.pending.label in state.failed_labels or not device.complete(state.pending):
                            state.pending = None
                        elif state.pending.sync_before_update and self.unsynced() > 0:
                            log.info("%s waits until the offline data is synced", state.pending.label)
                        else:
                            self._apply(state, state.pending)
                    if not device.complete(state.current):
                        log.error("bundle %s is missing; falling back", state.current)
                        state.current = state.previous if device.complete(state.previous) else None
                        state.confirmed, state.trial_launches = True, 0
                    if not state.confirmed:
                        state.trial_launches += 1
                    elif state.current is not None:
                        self._reports.note_running(state, state.current.label, report=True)
            except OSError as exc:
                # The journal could not be written (a full disk, say): run the last bundle known to be
                # good and change nothing, rather than an update whose trial launch went unrecorded.
                log.error("cannot record the launch (%s); starting the last good bundle", exc)
                return device.bundle_path(self._last_good())
            self._clean_up()
            return device.bundle_path(device.state.current)

    def _last_good(self) -> Bundle | None:
        device, state = self._device, self._device.state
        if state.current is not None and state.confirmed and device.complete(state.current):
            return state.current
        if state.current is None and state.confirmed:
            return None
        return state.previous if device.complete(state.previous) else None

    def _roll_back(self, state: State) -> None:
        assert state.current is not None
        failed = state.current
        log.warning(
            "update %s was never confirmed; going back to %s",
            failed.label,
            state.previous.label if state.previous else "the embedded bundle",
        )
        if failed.label not in state.failed_labels:
            state.failed_labels.append(failed.label)
        self._reports.queue(failed.label, "failed", "the app did not confirm the update (notify_app_ready)")
        self._reports.queue(failed.label, "rolled_back")
        state.current = state.previous if self._device.complete(state.previous) else None
        state.confirmed, state.trial_launches = True, 0
        if state.pending is not None and state.pending.label == failed.label:
            state.pending = None

    @staticmethod
    def _apply(state: State, bundle: Bundle) -> None:
        if state.confirmed:
            state.previous = state.current
        state.current = bundle
        state.sequence_floor = max(state.sequence_floor, bundle.sequence)
        state.confirmed, state.trial_launches = False, 0
        state.pending, state.pending_mode = None, ""

    def notify_app_ready(self) -> None:
        """Confirm the running bundle, then deliver the reports (see ``UpdateEngine.notify_app_ready``)."""
        device = self._device
        with device.lock:
            if device.state.current is None or device.state.confirmed:
                return
            with device.changing() as state:
                assert state.current is not None
                state.confirmed, state.trial_launches = True, 0
                self._reports.queue(state.current.label, "installed")
                self._reports.note_running(state, state.current.label, report=False)
            self._clean_up()
        self._reports.flush()

    def resume(self) -> Path | None:
        """The folder to reload when an ON_NEXT_RESUME update was applied (see ``UpdateEngine.resume``)."""
        device = self._device
        with device.lock:
            pending = device.state.pending
            if pending is None or device.state.pending_mode != InstallMode.ON_NEXT_RESUME.value:
                return None
            if pending.sync_before_update and self.unsynced() > 0:
                return None
            with device.changing() as state:
                assert state.pending is not None
                self._apply(state, state.pending)
                state.trial_launches = 1  # running from now on
            return device.bundle_path(device.state.current)

    def _clean_up(self) -> None:
        """Keep the current, previous, pending and downloaded bundles; drop every other folder.

        Their signed manifests stay with them, and the one that proves the sequence floor stays too.
        """
        device, state = self._device, self._device.state
        keep = {
            b.package_hash
            for b in (state.current, state.previous, state.pending, state.downloaded)
            if b is not None
        }
        downloaded = state.downloaded.package_hash if state.downloaded is not None else None
        device.manifests.clean_up(keep, downloaded, device.installed_sequence())
        busy = device.downloading
        if busy is not None:
            keep |= {busy, f".staging-{busy}"}
        for entry in device.bundles.iterdir():
            if entry.name not in keep:
                try:
                    device.fs.remove_tree(entry)
                except OSError as exc:
                    log.warning("could not remove %s: %s", entry, exc)

    # -- installing ---------------------------------------------------------------------------------

    def install(self, downloaded: DownloadedUpdate, mode: InstallMode) -> Path | None:
        """Make a downloaded update pending, or current with IMMEDIATE (see ``UpdateEngine.install``)."""
        device = self._device
        with device.lock:
            update = downloaded.update
            bundle = Bundle(update.label, update.package_hash, update.sync_before_update, update.sequence)
            if device.trust.requires_signatures and update.sequence <= device.installed_sequence():
                raise UpdateRefused(
                    f"{update.label} has sequence {update.sequence}, not newer than the installed "
                    f"{device.installed_sequence()}: refused"
                )
            if not device.complete(bundle):
                raise UpdateError(f"{bundle.label} is not downloaded; download it again")
            if bundle.sync_before_update and self.unsynced() > 0:
                # it stays downloaded; sync_completed() installs it (unsynced records are never put at risk)
                log.info("%s waits until the app's offline data is synced", bundle.label)
                return None
            device.manifests.installed(bundle.package_hash)
            with device.changing() as state:
                state.downloaded = None
                if mode is InstallMode.IMMEDIATE:
                    self._apply(state, bundle)
                    state.trial_launches = 1  # running from now on
                else:
                    state.pending, state.pending_mode = bundle, mode.value
            return device.bundle_path(bundle) if mode is InstallMode.IMMEDIATE else None

    # -- offline data -------------------------------------------------------------------------------

    def unsynced(self) -> int:
        """How many local changes the app has not synced yet (from its callback, or the last count set)."""
        if self._unsynced_source is None:
            return self._unsynced_count
        try:
            return max(0, int(self._unsynced_source()))
        except Exception:  # the host's callback failed: assume there is data to keep safe
            log.exception("the unsynced_changes callback failed; holding back sync-first updates")
            return 1

    def set_unsynced_changes(self, count: int) -> None:
        """Record the app's count of unsynced changes (used when it gave no callback)."""
        self._unsynced_count = max(0, count)

    @property
    def waiting_for_sync(self) -> str | None:
        """The label of a downloaded update that installs once the offline data is synced."""
        downloaded = self._device.state.downloaded
        return downloaded.label if downloaded is not None and downloaded.sync_before_update else None

    def sync_completed(self) -> str | None:
        """Make an update that waited for a sync pending (see ``UpdateEngine.sync_completed``)."""
        device = self._device
        with device.lock:
            downloaded = device.state.downloaded
            if downloaded is None or not downloaded.sync_before_update or self.unsynced() > 0:
                return None
            if not device.complete(downloaded):
                return None
            device.manifests.installed(downloaded.package_hash)
            with device.changing() as state:
                state.downloaded = None
                state.pending, state.pending_mode = downloaded, InstallMode.ON_NEXT_RESTART.value
            return downloaded.label
