"""The device update engine: check, download, verify, install at the next restart, roll back by itself.

Its one absolute rule: whatever happens and whenever the power goes, ``start()`` returns a complete,
verified bundle folder (an installed update or the bundle embedded in the binary).

:class:`UpdateEngine` is the facade the app sees. The work is done by its parts, which share one
:class:`~overair.client._device.Device` (settings, journal, bundle folders): the update check
(``_check``), downloads and deltas (``_download``), installing and rolling back (``_install``) and status
reports (``_reports``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from overair.client._check import Checker
from overair.client._device import Device
from overair.client._download import Downloader, Progress
from overair.client._fs import FileSystem
from overair.client._install import Installer
from overair.client._journal import Bundle
from overair.client._reports import Reports
from overair.client._trust import Trust
from overair.client._types import (
    CheckResult,
    CheckStatus,
    CheckTrigger,
    DownloadedUpdate,
    InstallMode,
    JournalRecovery,
    SyncResult,
    SyncStatus,
    UpdateError,
    UpdateInfo,
)
from overair.client._ui import TextUI, UpdateUI


class UpdateEngine:
    """Keeps an app's bundle up to date from an overair server.

    >>> engine = UpdateEngine("http://127.0.0.1:3000", "KEY", "1.0.0", 1,
    ...                       embedded_bundle=Path("bundle"), data_dir=Path("/tmp/ota"))  # doctest: +SKIP
    >>> folder = engine.start()          # at launch: the bundle to load   # doctest: +SKIP
    >>> engine.notify_app_ready()        # once the bundle runs well        # doctest: +SKIP
    >>> engine.sync()                    # check, ask, download, install    # doctest: +SKIP

    One engine per data folder and process. ``http`` may be any ``httpx.Client`` (tests pass one bound
    to an in-process server); ``fs`` routes every file-system step (tests inject faults through it).
    The engine reads time only from its two clocks: ``clock`` (monotonic seconds) throttles checks,
    ``wall_clock`` (seconds since the epoch) dates what must hold across launches (answer freshness,
    the daily ``running`` report); tests pass their own to make time pass.
    """

    def __init__(
        self,
        server_url: str,
        deployment_key: str,
        app_version: str,
        build_number: int | None = None,
        *,
        embedded_bundle: Path,
        data_dir: Path,
        public_keys: Sequence[str | bytes] = (),
        retired_keys: Sequence[str | bytes] = (),
        app_name: str | None = None,
        deployment_name: str | None = None,
        server_key: str | None = None,
        max_staleness: float = 7 * 86_400.0,
        on_stale: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        install_mode: InstallMode = InstallMode.ON_NEXT_RESTART,
        mandatory_install_mode: InstallMode = InstallMode.IMMEDIATE,
        min_check_interval: float = 300.0,
        http: httpx.Client | None = None,
        fs: FileSystem | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        unsynced_changes: Callable[[], int] | None = None,
        ask_optional: bool = False,
    ) -> None:
        if not deployment_key or not app_version:
            raise ValueError("deployment_key and app_version are required")
        # The public settings stay plain attributes: the parts read them here (see _device.Settings).
        self.server_url = server_url.rstrip("/")
        self.deployment_key = deployment_key
        self.app_version = app_version
        self.build_number = build_number
        self.embedded_bundle = Path(embedded_bundle)
        self.data_dir = Path(data_dir)
        self.max_staleness = max_staleness
        self.install_mode = install_mode
        self.mandatory_install_mode = mandatory_install_mode
        self.min_check_interval = min_check_interval
        self.ask_optional = ask_optional
        trust = Trust(
            public_keys=public_keys,
            retired_keys=retired_keys,
            server_key=server_key,
            app_name=app_name,
            deployment_name=deployment_name,
            app_version=app_version,
            build_number=build_number,
        )
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=True)
        self._device = Device(self, trust, self._http, fs or FileSystem(), wall_clock)
        self._reports = Reports(self._device)
        self._checker = Checker(self._device, self._reports, clock=clock, on_stale=on_stale)
        self._downloader = Downloader(self._device, self._reports)
        self._installer = Installer(self._device, self._reports, unsynced_changes)

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client the engine created."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> UpdateEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what the device holds ----------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """This installation's random, stable id (places it in rollouts)."""
        return self._device.state.client_id

    @property
    def current_label(self) -> str | None:
        """The label of the running bundle; None for the embedded one."""
        current = self._device.state.current
        return current.label if current else None

    @property
    def pending_label(self) -> str | None:
        """The label installed to start at the next restart, if any."""
        pending = self._device.state.pending
        return pending.label if pending else None

    @property
    def failed_labels(self) -> tuple[str, ...]:
        """Labels that failed on this device; never installed again."""
        return tuple(self._device.state.failed_labels)

    @property
    def journal_recovery(self) -> JournalRecovery | None:
        """Set when the engine's journal was found damaged at this launch: whether the previous
        generation was loaded or the engine started over, why, and what it kept (also logged).

        None when the journal was intact. An app may show ``message`` on a support screen or send it
        to its own crash reporting; the update server is not told.
        """
        return self._device.recovery

    @property
    def pending_reports(self) -> int:
        """Status reports not yet delivered to the server."""
        return len(self._device.state.reports)

    def bundle_path(self, bundle: Bundle | None) -> Path:
        """The folder of an installed bundle (the embedded bundle for None)."""
        return self._device.bundle_path(bundle)

    # -- launch -------------------------------------------------------------------------------------

    def start(self) -> Path:
        """Called at every app launch: the bundle folder to load.

        Applies an installed update, which then runs on trial until :meth:`notify_app_ready`. If the
        previous launch ran an update on trial and the app never confirmed it, the engine goes back to the
        last good bundle (or the embedded one), never installs that label again, and reports the failure.
        """
        return self._installer.start()

    def notify_app_ready(self) -> None:
        """Confirm that the running bundle works; until then an update runs on trial."""
        self._installer.notify_app_ready()

    def resume(self) -> Path | None:
        """Called when the app returns to the foreground: the folder to reload if an update was applied."""
        return self._installer.resume()

    # -- offline data -------------------------------------------------------------------------------

    def set_unsynced_changes(self, count: int) -> None:
        """Tell the engine how many local changes the app has not synced yet (or pass a callback)."""
        self._installer.set_unsynced_changes(count)

    @property
    def waiting_for_sync(self) -> str | None:
        """The label of a downloaded update that installs once the offline data is synced."""
        return self._installer.waiting_for_sync

    def sync_completed(self) -> str | None:
        """The app finished a sync: install an update that waited for it (from the next restart).

        Returns the label installed, or None. Nothing is installed while changes are still unsynced.
        """
        return self._installer.sync_completed()

    # -- checking, downloading, installing, reporting -------------------------------------------------

    def check_for_update(self, trigger: CheckTrigger = CheckTrigger.START) -> CheckResult:
        """Ask the server whether there is an update. Never raises: offline or errors give OFFLINE.

        Checks other than at START are throttled to one per ``min_check_interval`` seconds, so a
        navigation storm sends at most one request.
        """
        return self._checker.check(trigger)

    def freshness_age(self) -> float | None:
        """Seconds since the last server-signed answer (or the first launch); None without server_key."""
        return self._checker.freshness_age()

    def download(self, update: UpdateInfo, progress: Progress | None = None) -> DownloadedUpdate:
        """Download, verify and unpack ``update`` into its own folder.

        Resumes an interrupted download with HTTP Range, checks free space first, and verifies the
        archive's digest, the manifest against the package hash, and every file's size and SHA-256.
        An offered delta is used when it fits the installed bundle; any problem with it falls back to
        the full package. Anything that does not verify is deleted and reported, and
        :class:`UpdateRefused` is raised; nothing is installed.
        """
        return self._downloader.download(update, progress)

    def install(self, downloaded: DownloadedUpdate, mode: InstallMode | None = None) -> Path | None:
        """Install a downloaded update.

        ON_NEXT_RESTART (default) and ON_NEXT_RESUME return None: the update starts at the next
        ``start()`` / ``resume()``. IMMEDIATE returns the new folder: the host app reloads it now, and
        the update runs on trial until :meth:`notify_app_ready`.
        """
        return self._installer.install(downloaded, mode or self.install_mode)

    def flush_reports(self) -> int:
        """Deliver queued status reports; undelivered ones stay queued for the next try."""
        return self._reports.flush()

    # -- the whole flow -----------------------------------------------------------------------------

    @staticmethod
    def _later(ui: UpdateUI) -> bool:
        choice = ui.ask("Update available", "An update is available. Install it now?", ["Install", "Later"])
        return choice != "Install"

    def sync(self, ui: UpdateUI | None = None, trigger: CheckTrigger = CheckTrigger.START) -> SyncResult:
        """Check, ask when the user must act, download and install.

        Attention-requiring updates go through ``ui``: mandatory ones with Confirm only, "sync before
        update" ones with a message (they install after :meth:`sync_completed`). Seamless updates install
        silently at the next restart, unless ``ask_optional`` asks Install or Later as Mendix apps do.

        Never raises for network or update problems; the result says what happened.
        """
        ui = ui or TextUI()
        result = self.check_for_update(trigger)
        if result.status is CheckStatus.STORE_UPDATE_REQUIRED:
            version = f" ({result.store_version})" if result.store_version else ""
            ui.inform("Update required", f"A new version of the app{version} is available in the store.")
            return SyncResult(SyncStatus.STORE_UPDATE_REQUIRED)
        if result.status is CheckStatus.OFFLINE:
            return SyncResult(SyncStatus.FAILED, error="the update server could not be reached")
        if result.status is CheckStatus.REFUSED:
            return SyncResult(SyncStatus.FAILED, result.update, error=result.message)
        update = result.update
        if update is None:
            return SyncResult(SyncStatus.UP_TO_DATE)
        if self.pending_label == update.label:
            return SyncResult(SyncStatus.INSTALLED, update)
        if self.waiting_for_sync == update.label:
            return SyncResult(SyncStatus.WAITING_FOR_SYNC, update)
        if update.sync_before_update:
            ui.inform(
                "Update available", update.message or "Synchronize your data: the update installs after it."
            )
        elif update.mandatory:
            ui.ask("Update available", "An update is available that must be installed.", ["Confirm"])
        elif self.ask_optional and self._later(ui):
            return SyncResult(SyncStatus.POSTPONED, update)
        try:
            downloaded = self.download(update, progress=ui.progress)
            mode = self.mandatory_install_mode if update.mandatory else self.install_mode
            path = self.install(downloaded, mode)
            if update.sync_before_update and self.waiting_for_sync == update.label:
                return SyncResult(SyncStatus.WAITING_FOR_SYNC, update)
        except UpdateError as exc:
            ui.inform("Update failed", f"The update could not be installed: {exc.message}")
            return SyncResult(SyncStatus.FAILED, update, error=exc.message)
        finally:
            self.flush_reports()
        if path is not None:
            ui.inform("Information", "Update is installed.")
            return SyncResult(SyncStatus.APPLIED, update, reload_path=path)
        if update.attention or self.ask_optional:  # a seamless update installs silently
            ui.inform("Information", "Update is installed. It takes effect the next time the app starts.")
        return SyncResult(SyncStatus.INSTALLED, update)
