"""BSDIFF40 launch-asset patches (overair.packages.bsdiff): independent appliers agree on what overair builds.

Every built patch is applied by two appliers that share no code with the builder: Debian's ``bspatch`` (the
classic C program, ``make system-deps`` installs it) and :func:`reference_bspatch` below, a line-by-line
Python reading of the bspatch.c that expo-updates vendors (tests/bspatch_reference.py). The
second half feeds :func:`verify_patch` patches the client would refuse or that give other bytes.
"""

from __future__ import annotations

import bz2
import hashlib
import os
import random
from pathlib import Path

import pytest

from bspatch_reference import BSPATCH, debian_bspatch, offtin, offtout, reference_bspatch
from overair.packages.bsdiff import INT_MAX, InvalidPatch, build_patch, verify_patch

needs_bspatch = pytest.mark.skipif(BSPATCH is None, reason="bspatch is a system package: make system-deps")


def metro_like_bundle(modules: int, seed: int = 7) -> bytes:
    """A minified bundle shaped as Metro writes one: a prelude, then ``__d(function…, id, [deps])``."""
    rng = random.Random(seed)
    words = ["render", "state", "props", "useEffect", "dispatch", "fetch", "navigate", "theme", "style"]
    parts = ["var __BUNDLE_START_TIME__=this.nativePerformanceNow?nativePerformanceNow():Date.now();\n"]
    for module in range(modules):
        body = ";".join(
            f"var {rng.choice(words)}{i}=r(d[{rng.randrange(8)}]).{rng.choice(words)}({rng.randrange(999)})"
            for i in range(rng.randrange(2, 9))
        )
        deps = ",".join(str(rng.randrange(modules)) for _ in range(rng.randrange(1, 6)))
        parts.append(
            f'__d(function(g,r,i,a,m,e,d){{"use strict";{body};e.default=m{module}}},{module},[{deps}]);\n'
        )
    parts.append("__r(0);\n")
    return "".join(parts).encode()


BUNDLE = metro_like_bundle(1500)
MIDDLE = BUNDLE.index(b"__d(", len(BUNDLE) // 2)

ROUND_TRIPS = {
    # name: (old, new, largest patch expected, in bytes)
    "one-line change": (BUNDLE, BUNDLE.replace(b"e.default=m42}", b'e.default=m42,"v2"}', 1), 400),
    "module added": (
        BUNDLE,
        BUNDLE[:MIDDLE] + b"__d(function(){return 1},9999,[]);\n" + BUNDLE[MIDDLE:],
        400,
    ),
    "module removed": (BUNDLE, BUNDLE[:MIDDLE] + BUNDLE[BUNDLE.index(b"\n", MIDDLE) + 1 :], 400),
    "everything shifted": (BUNDLE, b"/* build 2 */" + BUNDLE, 400),
    "identical": (BUNDLE, BUNDLE, 200),
    "from nothing": (b"", BUNDLE[:5000], 5000),
    "to nothing": (BUNDLE[:5000], b"", 200),
    "unrelated bytes": (os.urandom(20_000), os.urandom(20_000), 22_000),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_a_built_patch_is_bsdiff40_and_the_clients_bspatch_gives_the_target(name: str) -> None:
    old, new, largest = ROUND_TRIPS[name]
    patch = build_patch(old, new)
    assert patch[:8] == b"BSDIFF40"
    assert len(patch) <= largest
    assert reference_bspatch(old, patch) == new
    verify_patch(old, patch, hashlib.sha256(new).hexdigest())


@needs_bspatch
@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_debian_bspatch_applies_every_built_patch(name: str, tmp_path: Path) -> None:
    old, new, _largest = ROUND_TRIPS[name]
    assert debian_bspatch(old, build_patch(old, new), tmp_path) == new


def hand_made(controls: list[tuple[int, int, int]], diff: bytes, extra: bytes, new_size: int) -> bytes:
    """A BSDIFF40 patch written field by field (to make ones bsdiff4 never would)."""
    control = bz2.compress(b"".join(offtout(v) for triple in controls for v in triple))
    diff_block = bz2.compress(diff)
    return (
        b"BSDIFF40"
        + offtout(len(control))
        + offtout(len(diff_block))
        + offtout(new_size)
        + (control + diff_block + bz2.compress(extra))
    )


def test_a_hand_made_patch_means_the_same_to_every_applier(tmp_path: Path) -> None:
    """Add 1 to each of the first 3 old bytes, then copy 'XY', skipping 2 old bytes; then 2 more unchanged."""
    old = b"abcdefgh"
    patch = hand_made([(3, 2, 2), (2, 0, 0)], b"\x01\x01\x01\x00\x00", b"XY", 7)
    assert reference_bspatch(old, patch) == b"bcdXYfg"
    verify_patch(old, patch, hashlib.sha256(b"bcdXYfg").hexdigest())
    if BSPATCH is not None:
        assert debian_bspatch(old, patch, tmp_path) == b"bcdXYfg"


GOOD = build_patch(BUNDLE, BUNDLE.replace(b"e.default=m42}", b"e.default=m43}", 1))
TARGET = hashlib.sha256(BUNDLE.replace(b"e.default=m42}", b"e.default=m43}", 1)).hexdigest()
CONTROL_END = 32 + offtin(GOOD[8:16])

REFUSED = {
    # name: (patch, target SHA-256, words the reason holds)
    "BSDIFF43 header": (b"ENDSLEY/BSDIFF43" + GOOD[16:], TARGET, "starts with"),
    "too short": (GOOD[:20], TARGET, "starts with"),
    "cut short": (GOOD[: len(GOOD) // 2], TARGET, "shorter than its header"),
    "negative new size": (GOOD[:24] + offtout(-5) + GOOD[32:], TARGET, "negative"),
    "control block not bzip2": (GOOD[:32] + b"\0" * (CONTROL_END - 32) + GOOD[CONTROL_END:], TARGET, "bzip2"),
    "diff block damaged": (
        GOOD[:CONTROL_END] + b"BZh9" + b"\xff" * 40 + GOOD[CONTROL_END + 44 :],
        TARGET,
        "applied",
    ),
    "another target": (GOOD, hashlib.sha256(b"something else").hexdigest(), "SHA-256"),
    "length over INT_MAX": (hand_made([(INT_MAX + 1, 0, 0)], b"", b"", INT_MAX + 1), TARGET, "refuses"),
    "negative copy": (hand_made([(0, -1, 0)], b"", b"", 4), TARGET, "refuses"),
    "writes past the end": (hand_made([(2, 3, 0)], b"\0\0", b"abc", 4), TARGET, "past the end"),
    "controls end early": (hand_made([(1, 0, 0)], b"\0", b"", 4), TARGET, "ends before"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_patch_the_client_would_refuse_or_that_gives_other_bytes_fails_verification(name: str) -> None:
    patch, target, reason = REFUSED[name]
    with pytest.raises(InvalidPatch) as raised:
        verify_patch(BUNDLE, patch, target)
    assert reason in raised.value.message
