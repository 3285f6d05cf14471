"""The engine's state: one small JSON document, replaced atomically on every change."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from overair.client._fs import FileSystem

log = logging.getLogger("overair.client")

VERSION = 1


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

    def to_json(self) -> bytes:
        """The document as stored."""
        return json.dumps({"version": VERSION, **asdict(self)}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> State:
        """Parse a stored document (raises ValueError/KeyError/TypeError when damaged)."""
        raw: dict[str, Any] = json.loads(data)
        if raw.pop("version", None) != VERSION:
            raise ValueError("unknown state version")

        def bundle(value: Any) -> Bundle | None:
            if value is None:
                return None
            return Bundle(
                label=str(value["label"]),
                package_hash=str(value["package_hash"]),
                sync_before_update=bool(value.get("sync_before_update", False)),
                sequence=int(value.get("sequence", 0)),
            )

        return cls(
            client_id=str(raw["client_id"]),
            current=bundle(raw["current"]),
            confirmed=bool(raw["confirmed"]),
            trial_launches=int(raw["trial_launches"]),
            previous=bundle(raw["previous"]),
            downloaded=bundle(raw["downloaded"]),
            pending=bundle(raw["pending"]),
            pending_mode=str(raw["pending_mode"]),
            failed_labels=[str(x) for x in raw["failed_labels"]],
            reports=[{str(k): str(v) for k, v in r.items()} for r in raw["reports"]],
            running_label=str(raw.get("running_label", "")),  # absent in journals of older engines
            running_at=float(raw.get("running_at", 0.0)),
            sequence_floor=int(raw.get("sequence_floor", 0)),
            fresh_at=None if raw.get("fresh_at") is None else float(raw["fresh_at"]),
            fresh_issued=int(raw.get("fresh_issued", 0)),
        )


class Journal:
    """Loads and saves :class:`State` in ``<data_dir>/state.json``."""

    def __init__(self, path: Path, fs: FileSystem) -> None:
        self.path = path
        self._fs = fs

    def load(self) -> State:
        """The saved state; a fresh one (embedded bundle) when there is none or it cannot be read."""
        try:
            return State.from_json(self.path.read_bytes())
        except FileNotFoundError:
            return State()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Atomic replacement means this only happens if the storage itself was damaged: start over
            # on the embedded bundle rather than fail the app's launch.
            log.error(
                "overair state %s is unreadable (%s); starting from the embedded bundle", self.path, exc
            )
            return State()

    def save(self, state: State) -> None:
        """Replace the stored state atomically (old or new survives a power loss, never a mix)."""
        self._fs.write_atomic(self.path, state.to_json())
