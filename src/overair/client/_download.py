"""Downloading an update: resumable transfers, free-space checks, verified unpacking, deltas with fallback."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from overair.client._device import Device
from overair.client._journal import Bundle
from overair.client._reports import Reports
from overair.client._types import (
    DeltaInfo,
    DownloadedUpdate,
    DownloadFailed,
    InsufficientSpace,
    UpdateError,
    UpdateInfo,
    UpdateRefused,
)
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
_CHUNK = 64 * 1024
_SPACE_MARGIN = 1024 * 1024

Progress = Callable[[int, int], None]
"""Called with (bytes received, bytes expected) as a download goes."""


class Downloader:
    """Brings an update into ``bundles/<package_hash>``, verified, or raises and leaves nothing behind.

    One download at a time. The network and the unpacking run outside the device lock, so ``start()``,
    ``notify_app_ready()`` and ``install()`` on the app's thread never wait for a download.
    """

    def __init__(self, device: Device, reports: Reports) -> None:
        self._device = device
        self._reports = reports
        self._fs = device.fs
        self._lock = threading.Lock()
        self._bad_deltas: set[str] = set()  # deltas that failed here: the full package is used instead

    def download(self, update: UpdateInfo, progress: Progress | None = None) -> DownloadedUpdate:
        """Download, verify and unpack ``update`` (see ``UpdateEngine.download``)."""
        device = self._device
        with self._lock:
            with device.lock:
                if update.label in device.state.failed_labels:
                    raise UpdateRefused(
                        f"{update.label} failed on this device before; it is not installed again."
                    )
                try:
                    signed = device.trust.check_update(update, device.installed_sequence())
                except UpdateRefused as exc:
                    self._reports.refusal(update, exc.message)
                    raise
                state = device.state
                for known in (state.current, state.previous, state.pending, state.downloaded):
                    if (
                        known is not None
                        and known.package_hash == update.package_hash
                        and device.complete(known)
                    ):
                        return self._downloaded(update)
                device.downloading = update.package_hash
                base = state.current
            via_delta, delta_failure = False, None
            try:
                manifest = self._fetch_manifest(update)
                device.trust.check_files(update, signed, manifest)
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
                    self._require_space(self._part_path(update), update.size, manifest, update.label)
                    archive = self._fetch_archive(update, progress)
                    self._unpack(update, archive, manifest)
            except UpdateRefused as exc:
                with device.lock:
                    self._refuse(update, exc.message)
                raise
            except OSError as exc:
                self._fs.remove_tree(self._staging_path(update))
                where = device.settings.data_dir
                raise DownloadFailed(
                    f"{update.label} could not be written to {where}: {exc.strerror or exc}"
                ) from exc
            finally:
                device.downloading = None
            with device.lock:
                return self._downloaded(update, via_delta, delta_failure)

    def _downloaded(
        self, update: UpdateInfo, via_delta: bool = False, delta_failure: str | None = None
    ) -> DownloadedUpdate:
        self._device.manifests.downloaded(update)
        with self._device.changing() as state:
            state.downloaded = Bundle(
                update.label, update.package_hash, update.sync_before_update, update.sequence
            )
            reason = (
                f"the delta failed ({delta_failure}); installed from the full package"
                if delta_failure
                else ""
            )
            self._reports.queue(update.label, "downloaded", reason)
        return DownloadedUpdate(update, self._device.bundles / update.package_hash, via_delta, delta_failure)

    def _refuse(self, update: UpdateInfo, reason: str) -> None:
        log.error("update %s refused: %s", update.label, reason)
        self._fs.remove(self._part_path(update))
        self._fs.remove_tree(self._staging_path(update))
        with self._device.changing():
            self._reports.queue(update.label, "failed", reason)

    def _part_path(self, update: UpdateInfo) -> Path:
        return self._device.downloads / f"{update.package_hash}.zip.part"

    def _staging_path(self, update: UpdateInfo) -> Path:
        return self._device.bundles / f".staging-{update.package_hash}"

    # -- binary deltas ------------------------------------------------------------------------------

    def _delta_usable(self, update: UpdateInfo, delta: DeltaInfo, base: Bundle | None) -> bool:
        # the delta's size is not signed: never download more for it than the (signed) full package
        return (
            delta.size < update.size
            and base is not None
            and base.package_hash == delta.base_package_hash
            and delta.sha256 not in self._bad_deltas
            and self._device.complete(base)
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
        part = self._device.downloads / f"{delta.sha256}.delta.part"
        what = f"the delta of {update.label}"
        self._require_space(part, delta.size, manifest, what)
        self._fetch(delta.url, delta.size, part, what, delta.sha256, progress)
        staging = self._staging_path(update)
        self._fs.remove_tree(staging)
        try:
            applied = apply_delta(
                self._device.bundle_path(base),
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
        self._promote(update, made_from=part)

    # -- full packages ------------------------------------------------------------------------------

    def _fetch_manifest(self, update: UpdateInfo) -> tuple[ManifestEntry, ...]:
        try:
            response = self._device.http.get(update.manifest_url)
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

    def _require_space(
        self, part: Path, download_size: int, manifest: tuple[ManifestEntry, ...], what: str
    ) -> None:
        """Refuse to start when the rest of the download plus the unpacked files would not fit."""
        have = part.stat().st_size if part.exists() else 0
        needed = max(0, download_size - have) + sum(e.size for e in manifest) + _SPACE_MARGIN
        free = shutil.disk_usage(self._device.settings.data_dir).free
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
        for other in self._device.downloads.glob("*.part"):
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
                with self._device.http.stream("GET", url, headers=headers) as response:
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
        self._fs.remove_tree(staging)
        try:
            extract_archive(
                archive, staging, manifest, make_dir=self._fs.make_dir, open_output=self._fs.create
            )
        except InvalidBundle as exc:
            raise UpdateRefused(f"{update.label} does not match its manifest: {exc.message}") from exc
        self._promote(update, made_from=archive)

    def _promote(self, update: UpdateInfo, made_from: Path) -> None:
        """Give the verified staging folder its final name, then delete the download it was made from.

        Everything in it is fsynced first: a bundle folder under its final name is always complete.
        """
        staging, final = self._staging_path(update), self._device.bundles / update.package_hash
        self._fs.sync_tree(staging)
        self._fs.remove_tree(final)
        self._fs.replace(staging, final)
        self._fs.remove(made_from)
