"""Differential test: overair.selection.semver against the real npm ``semver`` under node.

The pinned package (tests/compat/package.json + package-lock.json) is installed with
``npm ci`` into tests/compat/node_modules on first use. Every version x range of a
deterministic matrix is evaluated by ONE node process (semver_oracle.js) and compared with
the Python port; any mismatch fails with the full list.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from overair.selection import semver

pytestmark = pytest.mark.no_database

COMPAT_DIR = Path(__file__).resolve().parent
ORACLE = COMPAT_DIR / "semver_oracle.js"
PINNED_VERSION = "7.6.3"
SEED = 20240603

# ---------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------

HAND_VERSIONS = [
    # plain and normalised forms
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "0.1.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "1.1.5",
    "1.2.0",
    "1.2.3",
    "1.2.4",
    "1.3.0",
    "2.0.0",
    "2.0.1",
    "3.0.0",
    "10.20.30",
    "v1.2.3",
    " 1.2.3 ",
    "\t1.2.3\n",
    "\ufeff1.2.3",
    "\u00a01.2.3\u3000",
    "\u20281.0.0",
    # prereleases and build metadata
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-x",
    "1.0.0-0a",
    "1.0.0--",
    "1.2.3-pr.1",
    "1.2.3-pr.2",
    "1.2.4-alpha.notready",
    "2.0.0-0",
    "2.0.0-rc.1",
    "0.0.0-0",
    "1.2.3+b",
    "1.2.3+build.5",
    "1.0.0-beta+exp.sha.5114f85",
    "1.2.3+01",
    "v1.0.0-rc.1+b",
    # numeric identifiers past 2**53 (node compares them as doubles)
    "1.0.0-9007199254740991",
    "1.0.0-9007199254740992",
    "1.0.0-9007199254740993",
    "1.0.0-9007199254740993.1",
    "1.0.0-9007199254740992.2",
    "9007199254740991.0.0",
    # invalid
    "",
    " ",
    "=1.2.3",
    "==1.2.3",
    "v 1.2.3",
    "V1.2.3",
    "vv1.2.3",
    "1.2",
    "1",
    "1.2.3.4",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2.3-01",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-a..b",
    "1.2.3 - 1.2.4",
    "^1.2.3",
    "*",
    "x",
    "1.x.0",
    "a.b.c",
    "1.2.3beta",
    "9007199254740992.0.0",
    "\u00851.2.3",
    "\x1c1.2.3",
    "1.2.3-\u00e9",
    "\u0661.2.3",
    "1.2.3-" + "a" * 251,
    "1.2.3-" + "a" * 249,
    " " * 252 + "1.2.3",
]

HAND_RANGES = [
    # the forms OTA releases target
    "1.0.0",
    "^1.2.0",
    "~1.2.0",
    "1.2.x",
    "1.x",
    "1",
    "1.0",
    ">=1.0.0 <2.0.0",
    "1.0.0 - 2.0.0",
    "1.x || 2.x",
    "*",
    "",
    "x",
    "X",
    "^1.0.0",
    ">=1.1.0 <1.2.0",
    "2.0.0",
    "3.0.0",
    # caret / tilde corners
    "^0.0.1",
    "^0.1.0",
    "^0.0",
    "^0.0.x",
    "^0.x",
    "^0",
    "^1.2.3-beta.2",
    "^0.0.1-beta",
    "^0.1.2-rc.1",
    "^ 1.2",
    "^*",
    "~0",
    "~1",
    "~1.2",
    "~>1.2",
    "~> 1.2.3",
    "~ 1.2",
    "~1.2.3-beta.2",
    "~*",
    "^x.1",
    # x-ranges with operators
    ">1",
    ">1.2",
    ">1.x",
    ">=1.2",
    "<1.2",
    "<=1.2",
    "<=1",
    "=1.x",
    ">*",
    "<*",
    ">=*",
    "<=*",
    "=*",
    "1.x.3",
    "1.*.3",
    "1.X",
    "*.1.2",
    "x.x.x",
    # plain comparators and spacing
    ">=1.2.3",
    "> 1.2.3",
    ">= 1.2.3",
    "> = 1.2.3",
    "=1.2.3",
    "v1.2.3",
    "=v1.2.3",
    "v=1.2.3",
    "<1.0.0-0",
    "<0.0.0-0",
    "<0.0.0",
    ">=0.0.0",
    ">=0.0.0-0",
    "  >=1.0.0   <2.0.0  ",
    "\t^1.0.0\n",
    ">1.0.0 <1.0.0",
    ">=1.0.0 <=1.0.0",
    "1.2.3+build",
    "1.2.3-beta+build",
    "1.0.0-alpha",
    ">=1.0.0-alpha",
    ">=1.0.0-alpha <1.0.0",
    ">1.0.0-alpha <1.0.0-rc",
    "<=1.0.0-beta.2",
    ">=1.0.0-9007199254740992",
    "<1.0.0-9007199254740993",
    # hyphen ranges
    "1.2 - 2.3.4",
    "1.2.3 - 2.3",
    "1.2.3 - 2",
    "1 - 2.3.4-beta",
    "1.2.3-x - 2",
    "1.2.3 - *",
    "* - 1.2",
    "1.2.3+b - 2.0.0+c",
    "v1.0.0 - v2.0.0",
    "=1.2.3 - 2",
    "1.2.3 - = 2",
    "1.2.3 -2",
    "1.2.3- 2",
    "1.2.3 - 2.0.0 - 3.0.0",
    # unions and degenerate sets
    "||",
    "1.0 || ",
    " || 2.0",
    "<0.0.0-0 || 1.0",
    "1.0 || <0.0.0-0",
    "* || 1.0",
    "1.0||2.0",
    "1.x || >=2.5.0 || 5.0.0 - 7.2.3",
    "^1.0.0 || ^2.0.0-rc.1",
    "1.0.0 || *",
    # the odd star-stripping of node-semver
    "1.2.3*",
    "*1.2.3",
    ">=*1.2.3",
    "**",
    "* *",
    "1.2.3 *",
    # invalid
    "a || 1.0",
    "1.2.3.4",
    "01.2.3",
    ">=01.0.0",
    "^01.0",
    "~1.2.3.4",
    "1.2.3 junk",
    "not-a-range",
    "^9007199254740991",
    "9007199254740991.x",
    "<=9007199254740991.x",
    ">>1.0.0",
    "=>1.0.0",
    "1.2.3-01",
    "\u0661.x",
]

NUMS = ["0", "1", "2", "3", "10"]
PRES = ["alpha", "alpha.1", "beta", "beta.2", "rc.1", "0", "1", "x", "alpha.beta", "1.2"]
OPS = ["", "=", ">", ">=", "<", "<=", "^", "~", "~>"]


def _random_version(rng: random.Random) -> str:
    parts = [rng.choice(NUMS) for _ in range(3)]
    text = ".".join(parts)
    if rng.random() < 0.35:
        text += "-" + rng.choice(PRES)
    if rng.random() < 0.1:
        text += "+" + rng.choice(["b", "build.1", "001", "sha-5114f85"])
    roll = rng.random()
    if roll < 0.05:
        text = "v" + text
    elif roll < 0.08:
        text = f" {text} "
    elif roll < 0.14:  # a broken one
        text = rng.choice([".".join(parts[:2]), text + ".4", "0" + text, text + "-", "=" + text])
    return text


def _random_partial(rng: random.Random) -> str:
    count = rng.choice([1, 2, 3, 3, 3])
    parts = [rng.choice(NUMS) if rng.random() < 0.85 else rng.choice(["x", "X", "*"]) for _ in range(count)]
    text = ".".join(parts)
    if count == 3 and rng.random() < 0.25:
        text += "-" + rng.choice(PRES)
    return text


def _random_term(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return f"{_random_partial(rng)} - {_random_partial(rng)}"
    op = rng.choice(OPS)
    space = " " if op and rng.random() < 0.15 else ""
    return f"{op}{space}{_random_partial(rng)}"


def _random_range(rng: random.Random) -> str:
    sets = [
        " ".join(_random_term(rng) for _ in range(rng.choice([1, 1, 2, 2, 3])))
        for _ in range(rng.choice([1, 1, 1, 2, 3]))
    ]
    return rng.choice([" || ", "||"]).join(sets)


def _matrix() -> tuple[list[str], list[str]]:
    rng = random.Random(SEED)
    versions = list(dict.fromkeys(HAND_VERSIONS + [_random_version(rng) for _ in range(260)]))
    ranges = list(dict.fromkeys(HAND_RANGES + [_random_range(rng) for _ in range(260)]))
    return versions, ranges


VERSIONS, RANGES = _matrix()

# ---------------------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------------------


def _installed_version() -> str | None:
    manifest = COMPAT_DIR / "node_modules" / "semver" / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


@pytest.fixture(scope="session")
def node_semver() -> Iterator[str]:
    """Make sure node and the pinned npm ``semver`` are available; yield the node binary."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the semver differential test needs node and npm on PATH "
            f"(node={node!r}, npm={npm!r}); install Node.js >= 18 with npm",
            pytrace=False,
        )
    if _installed_version() != PINNED_VERSION:
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=COMPAT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0 or _installed_version() != PINNED_VERSION:
            pytest.fail(
                f"`npm ci` in {COMPAT_DIR} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                pytrace=False,
            )
    yield node


@pytest.fixture(scope="session")
def oracle(node_semver: str) -> dict[str, Any]:
    proc = subprocess.run(
        [node_semver, str(ORACLE)],
        input=json.dumps({"versions": VERSIONS, "ranges": RANGES}),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"semver_oracle.js failed (exit {proc.returncode}):\n{proc.stderr}", pytrace=False)
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["semver"] == PINNED_VERSION
    return result


def _report(what: str, mismatches: list[str]) -> None:
    if mismatches:
        shown = "\n".join(mismatches[:200])
        more = f"\n... and {len(mismatches) - 200} more" if len(mismatches) > 200 else ""
        pytest.fail(
            f"{len(mismatches)} {what} mismatch(es) against node-semver:\n{shown}{more}", pytrace=False
        )


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------


def test_matrix_is_large_and_interesting(oracle: dict[str, Any]) -> None:
    assert len(VERSIONS) >= 250 and len(RANGES) >= 250
    flat = "".join(oracle["satisfies"])
    # enough of both answers, and node throws from gtr/ltr for invalid input
    assert flat.count("1") > 2000 and flat.count("0") > 20000
    assert "E" in "".join(oracle["gtr"]) and "1" in "".join(oracle["gtr"]) and "1" in "".join(oracle["ltr"])
    assert sum(v is None for v in oracle["valid"]) > 30
    assert sum(r is None for r in oracle["validRange"]) > 10


def test_valid_matches_node(oracle: dict[str, Any]) -> None:
    mismatches = [
        f"valid({v!r}): node={want!r} python={semver.valid(v)!r}"
        for v, want in zip(VERSIONS, oracle["valid"], strict=True)
        if semver.valid(v) != want
    ]
    _report("valid", mismatches)


def test_valid_range_matches_node(oracle: dict[str, Any]) -> None:
    mismatches = [
        f"valid_range({r!r}): node={want!r} python={semver.valid_range(r)!r}"
        for r, want in zip(RANGES, oracle["validRange"], strict=True)
        if semver.valid_range(r) != want
    ]
    _report("valid_range", mismatches)


@pytest.mark.parametrize(
    ("name", "fn"),
    [("satisfies", semver.satisfies), ("gtr", semver.gtr), ("ltr", semver.ltr)],
)
def test_range_functions_match_node(
    oracle: dict[str, Any], name: str, fn: Callable[[str, str], bool]
) -> None:
    mismatches = []
    for v, row in zip(VERSIONS, oracle[name], strict=True):
        for r, flag in zip(RANGES, row, strict=True):
            want = flag == "1"  # "E" (node threw on invalid input) is False in the port
            got = fn(v, r)
            if got is not want:
                mismatches.append(f"{name}({v!r}, {r!r}): node={flag} python={got!r}")
    _report(name, mismatches)


def test_compare_matches_node(oracle: dict[str, Any]) -> None:
    signs = {-1: "<", 0: "=", 1: ">"}
    mismatches = []
    for a, row in zip(VERSIONS, oracle["compare"], strict=True):
        for b, want in zip(VERSIONS, row, strict=True):
            try:
                got = signs[semver.compare(a, b)]
            except ValueError:
                got = "E"
            if got != want:
                mismatches.append(f"compare({a!r}, {b!r}): node={want} python={got}")
    _report("compare", mismatches)
