"""Independent BSDIFF40 appliers for tests: Debian's ``bspatch``, and expo-updates' bspatch.c in Python.

Neither shares code with ``bsdiff4``, which overair builds (and verifies) patches with.
"""

from __future__ import annotations

import bz2
import shutil
import subprocess
from pathlib import Path

INT_MAX = 2**31 - 1
BSPATCH = shutil.which("bspatch")
"""Debian's bspatch (package ``bsdiff``, installed by ``make system-deps``), or None."""


def offtout(value: int) -> bytes:
    """bsdiff's ``offtout``: little-endian magnitude, sign in the top bit."""
    return (abs(value) | (1 << 63 if value < 0 else 0)).to_bytes(8, "little")


def offtin(data: bytes) -> int:
    raw = int.from_bytes(data, "little")
    magnitude = raw & ((1 << 63) - 1)
    return -magnitude if raw >> 63 else magnitude


def reference_bspatch(old: bytes, patch: bytes) -> bytes:
    """What expo-updates' vendored bspatch.c does, in Python (ValueError where it fails)."""
    if len(patch) < 32 or patch[:8] != b"BSDIFF40":
        raise ValueError("header")
    ctrl_len, diff_len, new_size = offtin(patch[8:16]), offtin(patch[16:24]), offtin(patch[24:32])
    if ctrl_len < 0 or diff_len < 0 or new_size < 0:
        raise ValueError("lengths")
    control = bz2.BZ2Decompressor().decompress(patch[32 : 32 + ctrl_len])  # one stream, as BZ2_bzRead
    diff = bz2.BZ2Decompressor().decompress(patch[32 + ctrl_len : 32 + ctrl_len + diff_len])
    extra = bz2.BZ2Decompressor().decompress(patch[32 + ctrl_len + diff_len :])
    new = bytearray(new_size)
    old_pos = new_pos = at_control = at_diff = at_extra = 0
    while new_pos < new_size:
        if at_control + 24 > len(control):
            raise ValueError("control block ends early")
        add, copy, seek = (offtin(control[at_control + i : at_control + i + 8]) for i in (0, 8, 16))
        at_control += 24
        if not (0 <= add <= INT_MAX and 0 <= copy <= INT_MAX) or new_pos + add > new_size:
            raise ValueError("control triple")
        chunk = diff[at_diff : at_diff + add]
        if len(chunk) < add:
            raise ValueError("diff block ends early")
        at_diff += add
        for i, byte in enumerate(chunk):
            source = old_pos + i
            new[new_pos + i] = (byte + old[source]) & 0xFF if 0 <= source < len(old) else byte
        new_pos += add
        old_pos += add
        if new_pos + copy > new_size:
            raise ValueError("control triple")
        chunk = extra[at_extra : at_extra + copy]
        if len(chunk) < copy:
            raise ValueError("extra block ends early")
        at_extra += copy
        new[new_pos : new_pos + copy] = chunk
        new_pos += copy
        old_pos += seek
    return bytes(new)


def debian_bspatch(old: bytes, patch: bytes, tmp_path: Path) -> bytes:
    """``old`` patched by Debian's bspatch, through files in ``tmp_path``."""
    assert BSPATCH is not None
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "patch").write_bytes(patch)
    subprocess.run(
        [BSPATCH, str(tmp_path / "old"), str(tmp_path / "new"), str(tmp_path / "patch")], check=True
    )
    return (tmp_path / "new").read_bytes()
