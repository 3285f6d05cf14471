"""Rewriting an archive: drop some entries, add others (signatures, descriptors)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def top_folder(names: list[str]) -> str:
    """``"CodePush/"`` when every entry sits in one top folder (as CodePush bundles do), else ``""``."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and names and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""


def rewrite_archive(
    source: Path, destination: Path, drop: Callable[[str], bool], add: Mapping[str, bytes]
) -> None:
    """Copy ``source`` to ``destination`` without the entries ``drop`` selects, then add ``add``'s files."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if not drop(info.filename):
                out.writestr(info, src.read(info))
        for name, data in add.items():
            entry = zipfile.ZipInfo(name, _FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o100644 << 16
            out.writestr(entry, data)
