"""overair's device update engine, for Python-built apps and device fleets.

Depends on httpx, the standard library and hdiffpatch (binary deltas, through overair's bundle format).

>>> from overair.client import UpdateEngine, CheckTrigger  # doctest: +SKIP
"""

from overair.client._engine import UpdateEngine
from overair.client._fs import FileSystem
from overair.client._types import (
    CheckResult,
    CheckStatus,
    CheckTrigger,
    DeltaInfo,
    DownloadedUpdate,
    DownloadFailed,
    InstallMode,
    InsufficientSpace,
    JournalRecovery,
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
    "DeltaInfo",
    "DownloadFailed",
    "DownloadedUpdate",
    "FileSystem",
    "InstallMode",
    "InsufficientSpace",
    "JournalRecovery",
    "SyncResult",
    "SyncStatus",
    "TextUI",
    "UpdateEngine",
    "UpdateError",
    "UpdateInfo",
    "UpdateRefused",
    "UpdateUI",
]
