"""overair's device update engine, for Python-built apps and device fleets.

Depends on httpx and the standard library only (plus overair's own stdlib-only bundle format).

>>> from overair.client import UpdateEngine, CheckTrigger  # doctest: +SKIP
"""

from overair.client._engine import UpdateEngine
from overair.client._fs import FileSystem
from overair.client._types import (
    CheckResult,
    CheckStatus,
    CheckTrigger,
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

__all__ = [
    "CheckResult",
    "CheckStatus",
    "CheckTrigger",
    "DownloadFailed",
    "DownloadedUpdate",
    "FileSystem",
    "InstallMode",
    "InsufficientSpace",
    "SyncResult",
    "SyncStatus",
    "TextUI",
    "UpdateEngine",
    "UpdateError",
    "UpdateInfo",
    "UpdateRefused",
    "UpdateUI",
]
