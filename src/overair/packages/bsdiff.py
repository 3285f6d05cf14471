"""BSDIFF40 patches: the binary patch format ``expo-updates`` applies to a launch asset.

The client (iOS and Android alike) calls one vendored C file of expo/expo,
``packages/expo-updates/vendor/bsdiff/bspatch.c``: Colin Percival's classic bspatch. A patch is

- a 32-byte header: ``BSDIFF40``, then three signed 64-bit numbers (little-endian magnitude, sign in the top
  bit): the length of the compressed control block, of the compressed diff block, and of the new file;
- three bzip2 streams: control triples (bytes to add from the old file, bytes to copy from the extra block,
  how far to move in the old file), the diff block, the extra block.

:func:`build_patch` writes one with ``bsdiff4`` (a pinned C extension of that same algorithm);
:func:`verify_patch` checks one the way the client will use it: the header and every control triple against
the client's own limits (lengths between 0 and ``INT_MAX``, nothing written past the new file's size), then
the patched bytes against the target's SHA-256. A patch that fails is never offered.
"""

from __future__ import annotations

import bz2
import hashlib

import bsdiff4

MAGIC = b"BSDIFF40"
HEADER_SIZE = 32
INT_MAX = 2**31 - 1
"""The client refuses a control triple whose first two lengths exceed a C ``int``."""


class InvalidPatch(Exception):
    """A patch the client would refuse, or one that does not give the target's bytes."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def build_patch(old: bytes, new: bytes) -> bytes:
    """The BSDIFF40 patch that turns ``old`` into ``new`` (bzip2-compressed blocks, as bspatch reads)."""
    patch = bytes(bsdiff4.diff(old, new))
    if not patch.startswith(MAGIC):  # bsdiff4 has only ever written this format; a change must not slip by
        raise InvalidPatch(f"the patch builder wrote {patch[:8]!r} where {MAGIC!r} was expected")
    return patch


def _offtin(data: bytes) -> int:
    """bspatch's ``offtin``: 8 bytes, little-endian magnitude with the sign in the top bit."""
    raw = int.from_bytes(data, "little")
    magnitude = raw & 0x7FFF_FFFF_FFFF_FFFF
    return -magnitude if raw >> 63 else magnitude


def _check_controls(patch: bytes) -> int:
    """Walk the header and control triples as the client's bspatch does; the new file's size."""
    if len(patch) < HEADER_SIZE or not patch.startswith(MAGIC):
        raise InvalidPatch(f"a BSDIFF40 patch starts with {MAGIC!r} and a {HEADER_SIZE}-byte header")
    control_length = _offtin(patch[8:16])
    diff_length = _offtin(patch[16:24])
    new_size = _offtin(patch[24:32])
    if control_length < 0 or diff_length < 0 or new_size < 0:
        raise InvalidPatch("the patch header holds a negative length")
    if HEADER_SIZE + control_length + diff_length > len(patch):
        raise InvalidPatch("the patch is shorter than its header says")
    try:
        controls = bz2.decompress(patch[HEADER_SIZE : HEADER_SIZE + control_length])
    except (OSError, ValueError) as exc:
        raise InvalidPatch(f"the patch's control block is not a bzip2 stream ({exc})") from exc
    position = offset = 0
    while position < new_size:
        if offset + 24 > len(controls):
            raise InvalidPatch("the patch's control block ends before the new file is complete")
        add, extra, _seek = (_offtin(controls[offset + i : offset + i + 8]) for i in (0, 8, 16))
        offset += 24
        if not (0 <= add <= INT_MAX and 0 <= extra <= INT_MAX):
            raise InvalidPatch("a control triple of the patch has a length the client refuses")
        if position + add + extra > new_size:
            raise InvalidPatch("the patch writes past the end of the new file")
        position += add + extra
    return new_size


def verify_patch(old: bytes, patch: bytes, target_sha256: str) -> None:
    """Raise :class:`InvalidPatch` unless the client would accept ``patch`` and, applied to ``old``, it
    gives bytes whose SHA-256 (hex) is ``target_sha256``."""
    new_size = _check_controls(patch)
    try:
        new = bytes(bsdiff4.patch(old, patch))
    except Exception as exc:  # bsdiff4 raises ValueError or bz2's errors on damaged blocks
        raise InvalidPatch(f"the patch cannot be applied ({exc})") from exc
    if len(new) != new_size:
        raise InvalidPatch(f"the patch gives {len(new)} bytes where its header says {new_size}")
    if hashlib.sha256(new).hexdigest() != target_sha256:
        raise InvalidPatch("the patched bytes do not have the target's SHA-256")
