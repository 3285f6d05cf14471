"""The signed manifests of the installed releases, kept on disk apart from the journal.

The journal's sequence floor keeps an old, vulnerable release from being replayed to the device. Should the
journal and its previous generation both be lost, the floor is proven again from these files: each is a
publisher-signed manifest naming its release's sequence, so a damaged or planted file does not count.

``manifests/<package hash>.downloaded``  the manifest of a verified download, not installed yet
``manifests/<package hash>.json``        the manifest of an installed release: kept while its bundle is
                                         (pending, current, previous), and the highest one even after
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from overair.client._fs import FileSystem
from overair.client._trust import Trust
from overair.client._types import UpdateInfo
from overair.packages import signing as sig

log = logging.getLogger("overair.client")

_DOWNLOADED, _INSTALLED = ".downloaded", ".json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("manifest", "signature")):
        return None
    return raw


class SignedManifests:
    """``<data_dir>/manifests``: written when a signed release is downloaded, and installed."""

    def __init__(self, folder: Path, fs: FileSystem, trust: Trust) -> None:
        self.folder = folder
        self._fs = fs
        self._trust = trust

    def downloaded(self, update: UpdateInfo) -> None:
        """Keep the verified signed manifest of a downloaded update (nothing when releases are unsigned)."""
        if not (self._trust.requires_signatures and update.signed_manifest and update.signature):
            return
        data = json.dumps({"manifest": update.signed_manifest, "signature": update.signature}).encode()
        self._fs.write_atomic(self.folder / f"{update.package_hash}{_DOWNLOADED}", data)

    def installed(self, package_hash: str) -> None:
        """The downloaded release is being installed: from now on its manifest proves the floor.

        Called before the journal records the install, so a crash in between errs on the safe side: the
        floor proven later may count a release that was not installed, never miss one that was.
        """
        source = self.folder / f"{package_hash}{_DOWNLOADED}"
        if source.exists():
            self._fs.replace(source, self.folder / f"{package_hash}{_INSTALLED}")

    def any_installed(self) -> bool:
        """Whether any installed release's manifest is kept (the device has installed signed releases)."""
        return any(self.folder.glob(f"*{_INSTALLED}"))

    def proven_floor(self) -> int:
        """The highest sequence among the installed releases' manifests that verify (0 when none does)."""
        floor = 0
        for path in sorted(self.folder.glob(f"*{_INSTALLED}")):
            raw = _read(path)
            sequence = None if raw is None else self._trust.proven_sequence(raw["manifest"], raw["signature"])
            if sequence is None:
                log.warning("the signed manifest %s does not verify; it proves nothing", path.name)
                continue
            floor = max(floor, sequence)
        return floor

    def clean_up(self, bundles: set[str], downloaded: str | None, floor: int) -> None:
        """Drop the manifests of bundles no longer kept, except the one that proves ``floor``.

        ``bundles`` are the package hashes kept (pending, current, previous, downloaded), ``downloaded`` the
        one downloaded and not installed. Unsigned, unreadable and temporary files go too.
        """
        for path in self.folder.iterdir():
            name = path.name
            if name.endswith(_DOWNLOADED) and name.removesuffix(_DOWNLOADED) == downloaded:
                continue
            if name.endswith(_INSTALLED) and (
                name.removesuffix(_INSTALLED) in bundles or self._sequence(path) >= floor
            ):
                continue
            try:
                self._fs.remove(path)
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)

    @staticmethod
    def _sequence(path: Path) -> int:
        """The sequence a manifest names (unverified: it only decides what is kept), -1 if unreadable."""
        raw = _read(path)
        if raw is None:
            return -1
        try:
            return sig.ReleaseManifest.from_bytes(base64.b64decode(raw["manifest"], validate=True)).sequence
        except (ValueError, sig.SigningError):
            return -1
