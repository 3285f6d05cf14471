"""The device update engine: check, download, verify, install at the next restart, roll back by itself.

Its one absolute rule: whatever happens and whenever the power goes, ``start()`` returns a complete,
verified bundle folder (an installed update or the bundle embedded in the binary).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from overair.client._fs import FileSystem
from overair.client._journal import Bundle, Journal, State
from overair.client._trust import Trust
from overair.client._types import (
    CheckResult,
    CheckStatus,
    CheckTrigger,
    DeltaInfo,
    DownloadedUpdate,
    DownloadFailed,
    InstallMode,
    InsufficientSpace,
    SyncResult,
    SyncStatus,
    UpdateError,
    UpdateInfo,
    UpdateRefused,
)
from overair.client._ui import TextUI, UpdateUI
from overair.packages import (
    InvalidBundle,
    ManifestEntry,
    apply_delta,
    extract_archive,
    manifest_from_json,
    package_hash,
    verify_tree,
)

log = logging.getLogger("overair.client")

_DIGEST_URL = re.compile(r"/([0-9a-f]{64})$")
_HASH = re.compile(r"[0-9a-f]{64}")
_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CHUNK = 64 * 1024
_SPACE_MARGIN = 1024 * 1024
RUNNING_REPORT_EVERY = 24 * 3600.0
"""Seconds between two ``running`` reports for the same label."""

Progress = Callable[[int, int], None]


def _delta_info(raw: object) -> DeltaInfo | None:
    """The offered delta, or None when there is none or it is not well-formed (the full package is used)."""
    if not isinstance(raw, dict):
        return None
    url, size, digest, base = raw.get("url"), raw.get("size"), raw.get("sha256"), raw.get("base_package_hash")
    if not (isinstance(url, str) and isinstance(digest, str) and isinstance(base, str)):
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    if not (_HASH.fullmatch(digest) and _HASH.fullmatch(base)):
        return None
    return DeltaInfo(url, size, digest, base)


class UpdateEngine:
    """Keeps an app's bundle up to date from an overair server.

    >>> engine = UpdateEngine("http://127.0.0.1:3000", "KEY", "1.0.0", 1,
    ...                       embedded_bundle=Path("bundle"), data_dir=Path("/tmp/ota"))  # doctest: +SKIP
    >>> folder = engine.start()          # at launch: the bundle to load   # doctest: +SKIP
    >>> engine.notify_app_ready()        # once the bundle runs well        # doctest: +SKIP
    >>> engine.sync()                    # check, ask, download, install    # doctest: +SKIP

    One engine per data folder and process. ``http`` may be any ``httpx.Client`` (tests pass one bound
    to an in-process server); ``fs`` routes every file-system step (tests inject faults through it).
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
        self.server_url = server_url.rstrip("/")
        self.deployment_key = deployment_key
        self.app_version = app_version
        self.build_number = build_number
        self.embedded_bundle = Path(embedded_bundle)
        self.data_dir = Path(data_dir)
        self._trust = Trust(
            public_keys=public_keys,
            retired_keys=retired_keys,
            server_key=server_key,
            app_name=app_name,
            deployment_name=deployment_name,
            app_version=app_version,
            build_number=build_number,
        )
        self.max_staleness = max_staleness
        self._on_stale = on_stale
        self._wall_clock = wall_clock
        self._refusals_reported: set[tuple[str, str]] = set()
        self.install_mode = install_mode
        self.mandatory_install_mode = mandatory_install_mode
        self.min_check_interval = min_check_interval
        self._unsynced_source = unsynced_changes
        self._unsynced_count = 0
        self.ask_optional = ask_optional
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=True)
        self._fs = fs or FileSystem()
        self._clock = clock
        self._last_check: float | None = None
        self._lock = threading.RLock()  # guards the state; never held across network or unpacking
        self._download_lock = threading.Lock()
        self._downloading: str | None = None
        self._bad_deltas: set[str] = set()  # deltas that failed here: the full package is used instead
        self._bundles = self.data_dir / "bundles"
        self._downloads = self.data_dir / "downloads"
        for folder in (self.data_dir, self._bundles, self._downloads):
            folder.mkdir(parents=True, exist_ok=True)
        self._journal = Journal(self.data_dir / "state.json", self._fs)
        self._state = self._journal.load()
        if self._state.fresh_at is None:
            self._state.fresh_at = self._wall_clock()  # staleness counts from the first launch
        if not self._journal.path.exists():
            try:
                self._save()  # the client id must survive the first launch
            except OSError as exc:
                log.error("cannot write %s: %s", self._journal.path, exc)

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

    @property
    def client_id(self) -> str:
        """This installation's random, stable id (places it in rollouts)."""
        return self._state.client_id

    @property
    def current_label(self) -> str | None:
        """The label of the running bundle; None for the embedded one."""
        return self._state.current.label if self._state.current else None

    @property
    def pending_label(self) -> str | None:
        """The label installed to start at the next restart, if any."""
        return self._state.pending.label if self._state.pending else None

    @property
    def failed_labels(self) -> tuple[str, ...]:
        """Labels that failed on this device; never installed again."""
        return tuple(self._state.failed_labels)

    @property
    def pending_reports(self) -> int:
        """Status reports not yet delivered to the server."""
        return len(self._state.reports)

    def bundle_path(self, bundle: Bundle | None) -> Path:
        """The folder of an installed bundle (the embedded bundle for None)."""
        return self.embedded_bundle if bundle is None else self._bundles / bundle.package_hash

    def _complete(self, bundle: Bundle | None) -> bool:
        # A bundle folder only gets its final name after every file was verified and fsynced.
        return bundle is None or self.bundle_path(bundle).is_dir()

    def _save(self) -> None:
        self._journal.save(self._state)

    @contextmanager
    def _changing(self) -> Iterator[State]:
        """Change the state and save it; if anything fails, memory goes back to what the disk holds."""
        before = copy.deepcopy(self._state)
        try:
            yield self._state
            if self._state != before:  # most launches change nothing: no write, no fsync
                self._save()
        except BaseException:
            self._state = before
            raise

    def _report(self, label: str, status: str, reason: str = "") -> None:
        report = {
            "deployment_key": self.deployment_key,
            "label": label,
            "status": status,
            "client_id": self._state.client_id,
        }
        if reason:
            report["reason"] = reason[:500]
        self._state.reports.append(report)

    def _note_running(self, state: State, label: str, *, report: bool) -> None:
        """Queue a ``running`` report for ``label`` unless one (or an install) went out today already.

        It tells the server the device is still active on that label; once a day is enough for that, and
        keeps launches from writing the journal or reporting each time.
        """
        now = time.time()
        if state.running_label == label and 0 <= now - state.running_at < RUNNING_REPORT_EVERY:
            return
        if report:
            # an offline device launching daily keeps one running report queued, not one per day
            state.reports[:] = [r for r in state.reports if r.get("status") != "running"]
            self._report(label, "running")
        state.running_label, state.running_at = label, now

    # -- launch -------------------------------------------------------------------------------------

    def start(self) -> Path:
        """Called at every app launch: the bundle folder to load.

        Applies an installed update, which then runs on trial until :meth:`notify_app_ready`. If the
        previous launch ran an update on trial and the app never confirmed it, the engine goes back to the
        last good bundle (or the embedded one), never installs that label again, and reports the failure.
        """
        with self._lock:
            try:
                with self._changing() as state:
                    if state.current is not None and not state.confirmed and state.trial_launches >= 1:
                        self._roll_back(state)
                    if state.pending is not None:
                        if state.pending.label in state.failed_labels or not self._complete(state.pending):
                            state.pending = None
                        elif state.pending.sync_before_update and self._unsynced() > 0:
                            log.info("%s waits until the offline data is synced", state.pending.label)
                        else:
                            self._apply(state, state.pending)
                    if not self._complete(state.current):
                        log.error("bundle %s is missing; falling back", state.current)
                        state.current = state.previous if self._complete(state.previous) else None
                        state.confirmed, state.trial_launches = True, 0
                    if not state.confirmed:
                        state.trial_launches += 1
                    elif state.current is not None:
                        self._note_running(state, state.current.label, report=True)
            except OSError as exc:
                # The journal could not be written (a full disk, say): run the last bundle known to be
                # good and change nothing, rather than an update whose trial launch went unrecorded.
                log.error("cannot record the launch (%s); starting the last good bundle", exc)
                return self.bundle_path(self._last_good())
            self._clean_up()
            return self.bundle_path(self._state.current)

    def _last_good(self) -> Bundle | None:
        state = self._state
        if state.current is not None and state.confirmed and self._complete(state.current):
            return state.current
        if state.current is None and state.confirmed:
            return None
        return state.previous if self._complete(state.previous) else None

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
        self._report(failed.label, "failed", "the app did not confirm the update (notify_app_ready)")
        self._report(failed.label, "rolled_back")
        state.current = state.previous if self._complete(state.previous) else None
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
        """Confirm that the running bundle works; until then an update runs on trial."""
        with self._lock:
            if self._state.current is None or self._state.confirmed:
                return
            with self._changing() as state:
                assert state.current is not None
                state.confirmed, state.trial_launches = True, 0
                self._report(state.current.label, "installed")
                self._note_running(state, state.current.label, report=False)
            self._clean_up()
        self.flush_reports()

    def resume(self) -> Path | None:
        """Called when the app returns to the foreground: the folder to reload if an update was applied."""
        with self._lock:
            pending = self._state.pending
            if pending is None or self._state.pending_mode != InstallMode.ON_NEXT_RESUME.value:
                return None
            if pending.sync_before_update and self._unsynced() > 0:
                return None
            with self._changing() as state:
                assert state.pending is not None
                self._apply(state, state.pending)
                state.trial_launches = 1  # running from now on
            return self.bundle_path(self._state.current)

    def _clean_up(self) -> None:
        """Keep the current, previous, pending and downloaded bundles; drop every other folder."""
        keep = {
            b.package_hash
            for b in (self._state.current, self._state.previous, self._state.pending, self._state.downloaded)
            if b is not None
        }
        busy = self._downloading
        if busy is not None:
            keep |= {busy, f".staging-{busy}"}
        for entry in self._bundles.iterdir():
            if entry.name not in keep:
                try:
                    self._fs.remove_tree(entry)
                except OSError as exc:
                    log.warning("could not remove %s: %s", entry, exc)

    # -- offline data -------------------------------------------------------------------------------

    def _unsynced(self) -> int:
        if self._unsynced_source is None:
            return self._unsynced_count
        try:
            return max(0, int(self._unsynced_source()))
        except Exception:  # the host's callback failed: assume there is data to keep safe
            log.exception("the unsynced_changes callback failed; holding back sync-first updates")
            return 1

    def set_unsynced_changes(self, count: int) -> None:
        """Tell the engine how many local changes the app has not synced yet (or pass a callback)."""
        self._unsynced_count = max(0, count)

    @property
    def waiting_for_sync(self) -> str | None:
        """The label of a downloaded update that installs once the offline data is synced."""
        downloaded = self._state.downloaded
        return downloaded.label if downloaded is not None and downloaded.sync_before_update else None

    def sync_completed(self) -> str | None:
        """The app finished a sync: install an update that waited for it (from the next restart).

        Returns the label installed, or None. Nothing is installed while changes are still unsynced.
        """
        with self._lock:
            downloaded = self._state.downloaded
            if downloaded is None or not downloaded.sync_before_update or self._unsynced() > 0:
                return None
            if not self._complete(downloaded):
                return None
            with self._changing() as state:
                state.downloaded = None
                state.pending, state.pending_mode = downloaded, InstallMode.ON_NEXT_RESTART.value
            return downloaded.label

    # -- checking -----------------------------------------------------------------------------------

    def check_for_update(self, trigger: CheckTrigger = CheckTrigger.START) -> CheckResult:
        """Ask the server whether there is an update. Never raises: offline or errors give OFFLINE.

        Checks other than at START are throttled to one per ``min_check_interval`` seconds, so a
        navigation storm sends at most one request.
        """
        with self._lock:
            now = self._clock()
            if (
                trigger is not CheckTrigger.START
                and self._last_check is not None
                and now - self._last_check < self.min_check_interval
            ):
                return CheckResult(CheckStatus.THROTTLED)
            self._last_check = now
            state = self._state
            params: dict[str, Any] = {
                "deployment_key": self.deployment_key,
                "app_version": self.app_version,
                "client_id": state.client_id,
                "label": state.current.label if state.current else "",
                "package_hash": state.current.package_hash if state.current else "",
            }
            if self.build_number is not None:
                params["build_number"] = self.build_number
            if state.failed_labels:
                params["failed"] = ",".join(state.failed_labels)
        self.flush_reports()
        try:
            response = self._http.get(f"{self.server_url}/v1/update-check", params=params)
        except httpx.HTTPError as exc:
            log.warning("update check failed (%s): %s", trigger.value, exc)
            self._tell_if_stale()
            return CheckResult(CheckStatus.OFFLINE)
        if response.status_code != 200:
            log.warning("update check refused with %s: %s", response.status_code, response.text[:300])
            self._tell_if_stale()
            return CheckResult(CheckStatus.OFFLINE)
        try:
            self._check_fresh(response, params)
        except UpdateRefused as exc:
            log.error("update check answer refused: %s", exc.message)
            self._tell_if_stale()
            return CheckResult(CheckStatus.REFUSED, message=exc.message)
        try:
            body = response.json()
            status = CheckStatus(body["status"])
            update = body.get("update")
            info = None
            if status is CheckStatus.UPDATE:
                info = UpdateInfo(
                    label=str(update["label"]),
                    package_hash=str(update["package_hash"]),
                    size=int(update["size"]),
                    download_url=str(update["download_url"]),
                    manifest_url=str(update["manifest_url"]),
                    mandatory=bool(update["mandatory"]),
                    description=str(update.get("description") or ""),
                    sync_before_update=bool(update.get("sync_before_update", False)),
                    attention=bool(body.get("attention", False)),
                    message=str(body.get("message") or ""),
                    sequence=int(update.get("sequence") or 0),
                    signed_manifest=_optional_text(update.get("signed_manifest")),
                    signature=_optional_text(update.get("signature")),
                    key_id=_optional_text(update.get("key_id")),
                    delta=_delta_info(update.get("delta")),
                )
            store_version = body.get("store_version")
            attention, message = bool(body.get("attention", False)), str(body.get("message") or "")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("update check answer was not understood: %s", exc)
            return CheckResult(CheckStatus.OFFLINE)
        if info is not None and not (_HASH.fullmatch(info.package_hash) and _LABEL.fullmatch(info.label)):
            # both become file names on the device: never trust them as given
            log.warning("update check answer has an invalid label or package hash; ignored")
            return CheckResult(CheckStatus.OFFLINE)
        if info is not None and info.label in self.failed_labels:
            return CheckResult(CheckStatus.NO_UPDATE)
        if info is not None:
            try:
                with self._lock:
                    self._trust.check_update(info, self._installed_sequence())
            except UpdateRefused as exc:
                self._report_refusal(info, exc.message)
                return CheckResult(CheckStatus.REFUSED, info, message=exc.message)
        return CheckResult(status, info, str(store_version) if store_version else None, attention, message)

    # -- trust --------------------------------------------------------------------------------------

    def _installed_sequence(self) -> int:
        state = self._state
        pending = state.pending.sequence if state.pending is not None else 0
        current = state.current.sequence if state.current is not None else 0
        return max(state.sequence_floor, pending, current)

    def _check_fresh(self, response: httpx.Response, params: dict[str, Any]) -> None:
        scope = "|".join(
            str(params.get(name, ""))
            for name in ("deployment_key", "app_version", "build_number", "label", "package_hash", "failed")
        )
        now = self._wall_clock()
        with self._lock:
            last = self._state.fresh_issued
        issued = self._trust.check_answer(response.headers, response.content, scope, now, last)
        if issued is None:
            return
        with self._lock:
            try:
                with self._changing() as state:
                    state.fresh_at, state.fresh_issued = now, max(issued, state.fresh_issued)
            except OSError as exc:
                log.warning("could not record the fresh answer: %s", exc)

    def freshness_age(self) -> float | None:
        """Seconds since the last server-signed answer (or the first launch); None without server_key."""
        if self._trust.server is None:
            return None
        with self._lock:
            fresh_at = self._state.fresh_at
        return max(0.0, self._wall_clock() - (fresh_at if fresh_at is not None else self._wall_clock()))

    def _tell_if_stale(self) -> None:
        age = self.freshness_age()
        if age is not None and age > self.max_staleness:
            log.warning("no fresh update-check answer for %.0f hours", age / 3600)
            if self._on_stale is not None:
                try:
                    self._on_stale(age)
                except Exception:  # the host's callback must not break the update flow
                    log.exception("on_stale callback failed")

    def _report_refusal(self, update: UpdateInfo, reason: str) -> None:
        """Report a refused update once per process, so a repeated offer does not flood the server."""
        log.error("update %s refused: %s", update.label, reason)
        if (update.label, reason) in self._refusals_reported:
            return
        self._refusals_reported.add((update.label, reason))
        with self._lock:
            try:
                with self._changing():
                    self._report(update.label, "failed", reason)
            except OSError as exc:
                log.warning("could not queue the refusal report: %s", exc)

    # -- downloading --------------------------------------------------------------------------------

    def download(self, update: UpdateInfo, progress: Progress | None = None) -> DownloadedUpdate:
        """Download, verify and unpack ``update`` into its own folder.

        Resumes an interrupted download with HTTP Range, checks free space first, and verifies the
        archive's digest, the manifest against the package hash, and every file's size and SHA-256.
        Anything that does not verify is deleted and reported, and :class:`UpdateRefused` is raised;
        nothing is installed.
        """
        with self._download_lock:
            with self._lock:
                if update.label in self._state.failed_labels:
                    raise UpdateRefused(
                        f"{update.label} failed on this device before; it is not installed again."
                    )
                try:
                    signed = self._trust.check_update(update, self._installed_sequence())
                except UpdateRefused as exc:
                    self._report_refusal(update, exc.message)
                    raise
                for known in (
                    self._state.current,
                    self._state.previous,
                    self._state.pending,
                    self._state.downloaded,
                ):
                    if (
                        known is not None
                        and known.package_hash == update.package_hash
                        and self._complete(known)
                    ):
                        return self._downloaded(update)
                self._downloading = update.package_hash
                base = self._state.current
            # The network and the unpacking run outside the state lock, so start(), notify_app_ready()
            # and install() on the app's thread never wait for a download.
            via_delta, delta_failure = False, None
            try:
                manifest = self._fetch_manifest(update)
                self._trust.check_files(update, signed, manifest)
                if update.delta is not None and self._delta_usable(update, update.delta, base):
                    try:
                        self._install_delta(update, update.delta, base, manifest, progress)
                        via_delta = True
                    except (UpdateError, OSError) as exc:
                        # any problem with a delta costs only the bytes: the full package follows
                        delta_failure = exc.message if isinstance(exc, UpdateError) else str(exc)
                        log.warning("delta for %s not used: %s", update.label, delta_failure)
                        self._bad_deltas.add(update.delta.sha256)
                        self._fs.remove_tree(self._staging_path(update))
                if not via_delta:
                    self._check_space(update, manifest)
                    archive = self._fetch_archive(update, progress)
                    self._unpack(update, archive, manifest)
            except UpdateRefused as exc:
                with self._lock:
                    self._refuse(update, exc.message)
                raise
            except OSError as exc:
                self._fs.remove_tree(self._staging_path(update))
                raise DownloadFailed(
                    f"{update.label} could not be written to {self.data_dir}: {exc.strerror or exc}"
                ) from exc
            finally:
                self._downloading = None
            with self._lock:
                return self._downloaded(update, via_delta, delta_failure)

    def _downloaded(
        self, update: UpdateInfo, via_delta: bool = False, delta_failure: str | None = None
    ) -> DownloadedUpdate:
        with self._changing() as state:
            state.downloaded = Bundle(
                update.label, update.package_hash, update.sync_before_update, update.sequence
            )
            reason = (
                f"the delta failed ({delta_failure}); installed from the full package"
                if delta_failure
                else ""
            )
            self._report(update.label, "downloaded", reason)
        return DownloadedUpdate(update, self._bundles / update.package_hash, via_delta, delta_failure)

    # -- binary deltas ------------------------------------------------------------------------------

    def _delta_usable(self, update: UpdateInfo, delta: DeltaInfo, base: Bundle | None) -> bool:
        # the delta's size is not signed: never download more for it than the (signed) full package
        return (
            delta.size < update.size
            and base is not None
            and base.package_hash == delta.base_package_hash
            and delta.sha256 not in self._bad_deltas
            and self._complete(base)
        )

    def _install_delta(
        self,
        update: UpdateInfo,
        delta: DeltaInfo,
        base: Bundle | None,
        manifest: tuple[ManifestEntry, ...],
        progress: Progress | None,
    ) -> None:
        """Download the delta, apply it to the installed bundle into a new folder, verify every file."""
        part = self._downloads / f"{delta.sha256}.delta.part"
        what = f"the delta of {update.label}"
        self._require_space(part, delta.size, manifest, what)
        self._fetch(delta.url, delta.size, part, what, delta.sha256, progress)
        staging = self._staging_path(update)
        final = self._bundles / update.package_hash
        self._fs.remove_tree(staging)
        try:
            applied = apply_delta(
                self.bundle_path(base),
                part.read_bytes(),
                staging,
                make_dir=self._fs.make_dir,
                open_output=self._fs.create,
            )
            if applied.target != update.package_hash:
                raise UpdateRefused(f"{what} makes another package than {update.label}")
            verify_tree(staging, manifest)
        except InvalidBundle as exc:
            raise UpdateRefused(f"{what} did not give {update.label}: {exc.message}") from exc
        self._fs.sync_tree(staging)
        self._fs.remove_tree(final)
        self._fs.replace(staging, final)
        self._fs.remove(part)

    def _refuse(self, update: UpdateInfo, reason: str) -> None:
        log.error("update %s refused: %s", update.label, reason)
        self._fs.remove(self._part_path(update))
        self._fs.remove_tree(self._staging_path(update))
        with self._changing():
            self._report(update.label, "failed", reason)

    def _part_path(self, update: UpdateInfo) -> Path:
        return self._downloads / f"{update.package_hash}.zip.part"

    def _staging_path(self, update: UpdateInfo) -> Path:
        return self._bundles / f".staging-{update.package_hash}"

    def _fetch_manifest(self, update: UpdateInfo) -> tuple[ManifestEntry, ...]:
        try:
            response = self._http.get(update.manifest_url)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"could not download the manifest of {update.label}: {exc}") from exc
        if response.status_code != 200:
            raise DownloadFailed(f"the manifest of {update.label} answered HTTP {response.status_code}")
        try:
            manifest = manifest_from_json(response.content)
        except InvalidBundle as exc:
            raise UpdateRefused(f"the manifest of {update.label} is invalid: {exc.message}") from exc
        if package_hash(manifest) != update.package_hash:
            raise UpdateRefused(f"the manifest of {update.label} does not match its package hash")
        return manifest

    def _check_space(self, update: UpdateInfo, manifest: tuple[ManifestEntry, ...]) -> None:
        self._require_space(self._part_path(update), update.size, manifest, update.label)

    def _require_space(
        self, part: Path, download_size: int, manifest: tuple[ManifestEntry, ...], what: str
    ) -> None:
        """Refuse to start when the rest of the download plus the unpacked files would not fit."""
        have = part.stat().st_size if part.exists() else 0
        needed = max(0, download_size - have) + sum(e.size for e in manifest) + _SPACE_MARGIN
        free = shutil.disk_usage(self.data_dir).free
        if free < needed:
            raise InsufficientSpace(
                f"{what} needs {needed / 1e6:.1f} MB of free space and only {free / 1e6:.1f} MB is free"
            )

    def _fetch_archive(self, update: UpdateInfo, progress: Progress | None) -> Path:
        match = _DIGEST_URL.search(httpx.URL(update.download_url).path)
        what = f"the download of {update.label}"
        digest = match.group(1) if match is not None else None
        return self._fetch(update.download_url, update.size, self._part_path(update), what, digest, progress)

    def _fetch(
        self, url: str, expected: int, part: Path, what: str, sha256: str | None, progress: Progress | None
    ) -> Path:
        """Download ``url`` into ``part``, resuming with Range; check its size and SHA-256."""
        for other in self._downloads.glob("*.part"):
            if other != part:
                self._fs.remove(other)
        have = part.stat().st_size if part.exists() else 0
        if have > expected:
            self._fs.remove(part)
            have = 0
        headers = {"Accept-Encoding": "identity"}
        if 0 < have < expected:
            headers["Range"] = f"bytes={have}-"
        if have < expected:
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 200 and have:
                        self._fs.remove(part)  # the server sent everything again
                        have = 0
                    elif response.status_code not in (200, 206):
                        raise DownloadFailed(f"{what} answered HTTP {response.status_code}")
                    with self._fs.append(part) as out:
                        done = have
                        for chunk in response.iter_bytes():
                            done += len(chunk)
                            if done > expected:
                                raise UpdateRefused(f"{what} is larger than the {expected:,} bytes announced")
                            out.write(chunk)
                            if progress is not None:
                                progress(done, expected)
            except httpx.HTTPError as exc:
                raise DownloadFailed(f"{what} was interrupted: {exc}") from exc
        size = part.stat().st_size
        if size != expected:
            raise UpdateRefused(f"{what} is {size:,} bytes, not the {expected:,} announced (truncated)")
        if sha256 is not None:
            digest = hashlib.sha256()
            with part.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() != sha256:
                raise UpdateRefused(f"{what} does not match its checksum (altered)")
        return part

    def _unpack(self, update: UpdateInfo, archive: Path, manifest: tuple[ManifestEntry, ...]) -> None:
        staging = self._staging_path(update)
        final = self._bundles / update.package_hash
        self._fs.remove_tree(staging)
        try:
            extract_archive(
                archive, staging, manifest, make_dir=self._fs.make_dir, open_output=self._fs.create
            )
        except InvalidBundle as exc:
            raise UpdateRefused(f"{update.label} does not match its manifest: {exc.message}") from exc
        self._fs.sync_tree(staging)
        self._fs.remove_tree(final)
        self._fs.replace(staging, final)
        self._fs.remove(archive)

    # -- installing ---------------------------------------------------------------------------------

    def install(self, downloaded: DownloadedUpdate, mode: InstallMode | None = None) -> Path | None:
        """Install a downloaded update.

        ON_NEXT_RESTART (default) and ON_NEXT_RESUME return None: the update starts at the next
        ``start()`` / ``resume()``. IMMEDIATE returns the new folder: the host app reloads it now, and
        the update runs on trial until :meth:`notify_app_ready`.
        """
        mode = mode or self.install_mode
        with self._lock:
            update = downloaded.update
            bundle = Bundle(update.label, update.package_hash, update.sync_before_update, update.sequence)
            if self._trust.requires_signatures and update.sequence <= self._installed_sequence():
                raise UpdateRefused(
                    f"{update.label} has sequence {update.sequence}, not newer than the installed "
                    f"{self._installed_sequence()}: refused"
                )
            if not self._complete(bundle):
                raise UpdateError(f"{bundle.label} is not downloaded; download it again")
            if bundle.sync_before_update and self._unsynced() > 0:
                # it stays downloaded; sync_completed() installs it (unsynced records are never put at risk)
                log.info("%s waits until the app's offline data is synced", bundle.label)
                return None
            with self._changing() as state:
                state.downloaded = None
                if mode is InstallMode.IMMEDIATE:
                    self._apply(state, bundle)
                    state.trial_launches = 1  # running from now on
                else:
                    state.pending, state.pending_mode = bundle, mode.value
            return self.bundle_path(bundle) if mode is InstallMode.IMMEDIATE else None

    # -- reports ------------------------------------------------------------------------------------

    def flush_reports(self) -> int:
        """Deliver queued status reports; undelivered ones stay queued for the next try."""
        delivered = 0
        with self._lock:
            queue = list(self._state.reports)
        for report in queue:
            try:
                response = self._http.post(f"{self.server_url}/v1/report", json=report)
            except httpx.HTTPError as exc:
                log.info("status reports not delivered yet: %s", exc)
                break
            if response.status_code >= 500:
                break
            if response.status_code != 200:
                log.warning("status report dropped (HTTP %s): %s", response.status_code, response.text[:200])
            delivered += 1
        if delivered:
            with self._lock:
                try:
                    with self._changing() as state:
                        for report in queue[:delivered]:
                            if report in state.reports:
                                state.reports.remove(report)
                except OSError as exc:  # they stay queued; the server may count them twice, never lose them
                    log.warning("could not record delivered reports: %s", exc)
        return delivered

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


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
