"""The engine's state: one small JSON document with a checksum, kept in two generations.

``state.json`` holds the state and the SHA-256 of its canonical JSON; ``state.json.prev`` holds the
generation before it. A save writes ``state.json.tmp`` (fsynced), renames the intact ``state.json`` to
``state.json.prev``, then renames the temporary file to ``state.json``; each rename is made durable. A kill
at any step leaves a generation that verifies: the new one, the old one as ``state.json``, or (between the
two renames) the old one as ``state.json.prev``. A damaged ``state.json`` (a flipped byte: bad checksum,
unparsable, wrong shape) is passed over for ``state.json.prev``; see :class:`Loaded` for what a load found.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from overair.client._fs import FileSystem

log = logging.getLogger("overair.client")

VERSION = 2
"""The document's layout: ``{"version": 2, "sha256": …, "state": {…}}``."""
LEGACY_VERSION = 1
"""Engines before the checksum wrote the state's fields at the top level, without a checksum."""


@dataclass(slots=True)
class Bundle:
    """A verified bundle in ``bundles/<package_hash>``, known under a label."""

    label: str
    package_hash: str
    sync_before_update: bool = False
    sequence: int = 0


@dataclass(slots=True)
class State:
    """Everything the engine must remember across launches and power losses."""

    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    current: Bundle | None = None
    """What ``start()`` returns; None is the embedded bundle."""
    confirmed: bool = True
    """The app called ``notify_app_ready()`` while running ``current``."""
    trial_launches: int = 0
    """Launches of an unconfirmed ``current``; one without confirmation means it failed."""
    previous: Bundle | None = None
    """The last confirmed bundle before ``current``: where a failed update goes back to."""
    downloaded: Bundle | None = None
    """Verified and unpacked, not yet installed."""
    pending: Bundle | None = None
    """Installed, starting at the next restart (or resume, per ``pending_mode``)."""
    pending_mode: str = ""
    failed_labels: list[str] = field(default_factory=list)
    reports: list[dict[str, str]] = field(default_factory=list)
    running_label: str = ""
    """The label last reported as running (or installed): ``running`` is sent again only on a change..."""
    running_at: float = 0.0
    """...or a day after this wall-clock time (seconds since the epoch)."""
    sequence_floor: int = 0
    """The highest release sequence ever installed: signed updates must be newer (no downgrade)."""
    fresh_at: float | None = None
    """Wall-clock time of the last update-check answer whose freshness signature verified."""
    fresh_issued: int = 0
    """The issue time of that answer: an older one is a replay."""


class DamagedJournal(ValueError):
    """A journal file that cannot be used; the message says what is wrong with it."""


# -- the document -----------------------------------------------------------------------------------------


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode(state: State) -> bytes:
    """The document as stored: the state and the SHA-256 of its canonical JSON."""
    body = asdict(state)
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps({"version": VERSION, "sha256": digest, "state": body}, indent=1).encode()


def decode(data: bytes, *, accept_legacy: bool) -> tuple[State, bool]:
    """The state in a stored document, and whether it was a legacy one (no checksum).

    Raises :class:`DamagedJournal` when the document does not parse, its checksum does not match, or its
    fields are missing or of the wrong type.
    """
    try:
        raw = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise DamagedJournal(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DamagedJournal("not a JSON object")
    version = raw.get("version")
    if type(version) is not int:
        raise DamagedJournal(f"no version ({version!r})")
    if version == LEGACY_VERSION and accept_legacy:
        del raw["version"]
        return _state(raw), True
    if version != VERSION:
        raise DamagedJournal(f"unknown version {version!r}")
    body, digest = raw.get("state"), raw.get("sha256")
    if not isinstance(body, dict) or not isinstance(digest, str):
        raise DamagedJournal("no state or no checksum")
    if hashlib.sha256(_canonical(body)).hexdigest() != digest:
        raise DamagedJournal("the checksum does not match")
    return _state(body), False


def _field(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``raw[key]`` if it is of ``kind`` (a bool is no number here), ``default`` if absent and given."""
    value = raw.get(key, default)
    if value is ...:
        raise DamagedJournal(f"{key} is missing")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise DamagedJournal(f"{key} has the wrong type")
    return value


def _bundle(raw: dict[str, Any], key: str) -> Bundle | None:
    value = _field(raw, key, (dict, type(None)))
    if value is None:
        return None
    return Bundle(
        label=_field(value, "label", str),
        package_hash=_field(value, "package_hash", str),
        sync_before_update=_field(value, "sync_before_update", bool, False),
        sequence=_field(value, "sequence", int, 0),
    )


def _list(raw: dict[str, Any], key: str, check: Callable[[Any], bool]) -> list[Any]:
    value: list[Any] = _field(raw, key, list)
    if not all(check(item) for item in value):
        raise DamagedJournal(f"{key} has an item of the wrong type")
    return value


def _report(item: Any) -> bool:
    return isinstance(item, dict) and all(isinstance(v, str) for v in item.values())


def _state(raw: dict[str, Any]) -> State:
    """The state from its fields (the legacy layout's optional ones default as its older engines did)."""
    fresh_at = _field(raw, "fresh_at", (int, float, type(None)), None)
    return State(
        client_id=_field(raw, "client_id", str),
        current=_bundle(raw, "current"),
        confirmed=_field(raw, "confirmed", bool),
        trial_launches=_field(raw, "trial_launches", int),
        previous=_bundle(raw, "previous"),
        downloaded=_bundle(raw, "downloaded"),
        pending=_bundle(raw, "pending"),
        pending_mode=_field(raw, "pending_mode", str),
        failed_labels=_list(raw, "failed_labels", lambda item: isinstance(item, str)),
        reports=_list(raw, "reports", _report),
        running_label=_field(raw, "running_label", str, ""),
        running_at=float(_field(raw, "running_at", (int, float), 0.0)),
        sequence_floor=_field(raw, "sequence_floor", int, 0),
        fresh_at=None if fresh_at is None else float(fresh_at),
        fresh_issued=_field(raw, "fresh_issued", int, 0),
    )


_CLIENT_ID = re.compile(rb'"client_id"\s*:\s*"([0-9a-f-]{36})"')


def salvage_client_id(damaged: Sequence[bytes]) -> str | None:
    """The client id in damaged journal files, if it can be trusted: at least two copies (the state's,
    the queued reports', the other generation's) and none that differs. A single flipped byte changes at
    most one copy, so it cannot make two agree on another id."""
    found = [match.group(1).decode() for data in damaged for match in _CLIENT_ID.finditer(data)]
    if len(found) < 2 or len(set(found)) != 1:
        return None
    try:
        client_id = str(uuid.UUID(found[0]))
    except ValueError:
        return None
    return client_id if client_id == found[0] else None


# -- the two generations ----------------------------------------------------------------------------------


class Source(enum.Enum):
    """Where a loaded state came from."""

    CURRENT = "current"
    LEGACY = "legacy"
    """``state.json`` of an engine before the checksum: accepted once, then written back with one."""
    PREVIOUS = "previous"
    """``state.json.prev``: the current generation was damaged, or missing after an interrupted save."""
    NONE = "none"
    """Neither generation could be used: a new state."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What :meth:`Journal.load` found."""

    state: State
    source: Source
    damage: tuple[str, ...] = ()
    """Why each journal file that exists could not be used ("state.json: the checksum does not match")."""
    damaged: tuple[bytes, ...] = ()
    """The contents of the damaged files (the client id may be salvaged from them)."""


class Journal:
    """Loads and saves :class:`State` in ``state.json``, with the previous generation in ``.prev``."""

    def __init__(self, path: Path, fs: FileSystem) -> None:
        self.path = path
        self.previous = path.with_name(path.name + ".prev")
        self._tmp = path.with_name(path.name + ".tmp")
        self._fs = fs

    def load(self) -> Loaded:
        """The newest generation that verifies (a legacy ``state.json`` too); never raises."""
        damage: list[str] = []
        damaged: list[bytes] = []
        for path, source in ((self.path, Source.CURRENT), (self.previous, Source.PREVIOUS)):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                damage.append(f"{path.name}: cannot be read ({exc.strerror or exc})")
                continue
            try:
                state, legacy = decode(data, accept_legacy=source is Source.CURRENT)
            except DamagedJournal as exc:
                damage.append(f"{path.name}: {exc}")
                damaged.append(data)
                continue
            return Loaded(state, Source.LEGACY if legacy else source, tuple(damage), tuple(damaged))
        return Loaded(State(), Source.NONE, tuple(damage), tuple(damaged))

    def save(self, state: State) -> None:
        """Make ``state`` the current generation and the current one the previous, atomically.

        A current generation that does not verify is not rotated: the previous one stays the fallback.
        """
        self._write_tmp(encode(state))
        if self._intact(self.path):
            self._fs.replace(self.path, self.previous)
        self._fs.replace(self._tmp, self.path)

    def rewrite(self, state: State) -> None:
        """Write ``state`` as both generations: after a migration, a recovery or on a new device, so that
        neither a legacy nor a damaged file remains to fall back to."""
        data = encode(state)
        self._write_tmp(data)
        self._fs.replace(self._tmp, self.previous)
        self._write_tmp(data)
        self._fs.replace(self._tmp, self.path)

    def _write_tmp(self, data: bytes) -> None:
        self._fs.remove(self._tmp)
        with self._fs.create(self._tmp) as out:
            out.write(data)

    @staticmethod
    def _intact(path: Path) -> bool:
        try:
            decode(path.read_bytes(), accept_legacy=False)
        except (OSError, DamagedJournal):
            return False
        return True
