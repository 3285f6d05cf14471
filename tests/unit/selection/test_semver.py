"""Unit tests for overair.selection.semver (node-semver 7.6.3 semantics).

Every expected value here was checked against node-semver 7.6.3; the exhaustive
comparison lives in tests/compat/test_semver_differential.py.
"""

from __future__ import annotations

import pytest

from overair.selection import semver
from overair.selection.semver import compare, gtr, ltr, satisfies, valid, valid_range

# ---------------------------------------------------------------------------------------
# valid()
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.2.3", "1.2.3"),
        ("0.0.0", "0.0.0"),
        ("10.20.30", "10.20.30"),
        ("v1.2.3", "1.2.3"),
        (" 1.2.3 ", "1.2.3"),
        ("\t1.2.3\n", "1.2.3"),
        ("\ufeff1.2.3", "1.2.3"),  # JavaScript's trim() strips the BOM ...
        ("\u00a01.2.3\u3000", "1.2.3"),  # ... and Unicode spaces
        ("1.2.3-beta", "1.2.3-beta"),
        ("1.2.3-beta.1", "1.2.3-beta.1"),
        ("1.2.3-0a", "1.2.3-0a"),
        ("1.2.3--", "1.2.3--"),
        ("1.2.3+build.5", "1.2.3"),  # build metadata is dropped
        ("1.2.3+01", "1.2.3"),  # leading zeros are fine in build identifiers
        ("v1.0.0-rc.1+b", "1.0.0-rc.1"),
        ("9007199254740991.0.0", "9007199254740991.0.0"),
    ],
)
def test_valid_accepts(version: str, expected: str) -> None:
    assert valid(version) == expected


@pytest.mark.parametrize(
    "version",
    [
        "",
        " ",
        "=1.2.3",  # accepted as a range, not as a version (node: valid("=1.2.3") === null)
        "v 1.2.3",
        "V1.2.3",
        "vv1.2.3",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",  # leading zero in a numeric pre-release identifier
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3beta",
        "^1.2.3",
        "~1.2.3",
        ">=1.2.3",
        "1.x",
        "*",
        "1.2.3 - 1.2.4",
        "a.b.c",
        "9007199254740992.0.0",  # > Number.MAX_SAFE_INTEGER
        "\u00851.2.3",  # NEL is whitespace to Python, not to JavaScript
        "\x1c1.2.3",
        "\u0661.2.3",  # Arabic-Indic digit: Python's \d would match it
        "1.2.3-\u00e9",
        "1.2.3-" + "a" * 251,  # longer than 256 characters
        " " * 252 + "1.2.3",  # the length limit applies before trimming
    ],
)
def test_valid_rejects(version: str) -> None:
    assert valid(version) is None


# ---------------------------------------------------------------------------------------
# valid_range()
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        # exact versions
        ("1.0.0", "1.0.0"),
        ("=1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("=v1.2.3", "1.2.3"),
        ("1.2.3+build", "1.2.3"),
        ("1.2.3-beta+build", "1.2.3-beta"),
        # stars
        ("*", "*"),
        ("", "*"),
        ("x", "*"),
        ("X", "*"),
        ("x.x.x", "*"),
        (">=0.0.0", "*"),
        (">=*", "*"),
        ("=*", "*"),
        ("<=*", "*"),
        (">*", "<0.0.0-0"),
        ("<*", "<0.0.0-0"),
        ("||", "*"),
        ("1.0 || ", "*"),
        ("1.0.0 || *", "*"),
        # caret
        ("^1.2.0", ">=1.2.0 <2.0.0-0"),
        ("^1.2.3", ">=1.2.3 <2.0.0-0"),
        ("^1.2", ">=1.2.0 <2.0.0-0"),
        ("^1", ">=1.0.0 <2.0.0-0"),
        ("^1.x", ">=1.0.0 <2.0.0-0"),
        ("^0.1.0", ">=0.1.0 <0.2.0-0"),
        ("^0.0.1", ">=0.0.1 <0.0.2-0"),
        ("^0.1", ">=0.1.0 <0.2.0-0"),
        ("^0.0", "<0.1.0-0"),  # >=0.0.0 is dropped as "any"
        ("^0", "<1.0.0-0"),
        ("^1.2.3-beta.2", ">=1.2.3-beta.2 <2.0.0-0"),
        ("^0.0.1-beta", ">=0.0.1-beta <0.0.2-0"),
        ("^0.1.2-rc.1", ">=0.1.2-rc.1 <0.2.0-0"),
        ("^ 1.2", ">=1.2.0 <2.0.0-0"),
        ("^*", "*"),
        # tilde
        ("~1.2.0", ">=1.2.0 <1.3.0-0"),
        ("~1.2.3", ">=1.2.3 <1.3.0-0"),
        ("~1.2", ">=1.2.0 <1.3.0-0"),
        ("~1", ">=1.0.0 <2.0.0-0"),
        ("~0", "<1.0.0-0"),
        ("~>1.2", ">=1.2.0 <1.3.0-0"),
        ("~> 1.2.3", ">=1.2.3 <1.3.0-0"),
        ("~ 1.2", ">=1.2.0 <1.3.0-0"),
        ("~1.2.3-beta.2", ">=1.2.3-beta.2 <1.3.0-0"),
        # x-ranges
        ("1.2.x", ">=1.2.0 <1.3.0-0"),
        ("1.x", ">=1.0.0 <2.0.0-0"),
        ("1", ">=1.0.0 <2.0.0-0"),
        ("1.0", ">=1.0.0 <1.1.0-0"),
        ("1.X", ">=1.0.0 <2.0.0-0"),
        ("1.x.3", ">=1.0.0 <2.0.0-0"),
        ("1.*.3", ">=1.0.0 <2.0.0-0"),
        ("=1.x", ">=1.0.0 <2.0.0-0"),
        (">1", ">=2.0.0"),
        (">1.2", ">=1.3.0"),
        (">1.x", ">=2.0.0"),
        (">=1.2", ">=1.2.0"),
        ("<1.2", "<1.2.0-0"),
        ("<=1.2", "<1.3.0-0"),
        ("<=1", "<2.0.0-0"),
        # comparators
        (">=1.0.0 <2.0.0", ">=1.0.0 <2.0.0"),
        (">= 1.2.3", ">=1.2.3"),
        ("> 1.2.3", ">1.2.3"),
        ("  >=1.0.0   <2.0.0  ", ">=1.0.0 <2.0.0"),
        ("\t^1.0.0\n", ">=1.0.0 <2.0.0-0"),
        ("<0.0.0", "<0.0.0"),
        ("<1.2.3-x", "<1.2.3-x"),
        (">=1.0.0 >=1.0.0", ">=1.0.0"),  # duplicates collapse
        ("* 1.2.3", "1.2.3"),  # "any" is dropped next to another comparator
        # hyphen ranges
        ("1.0.0 - 2.0.0", ">=1.0.0 <=2.0.0"),
        ("1.2 - 2.3.4", ">=1.2.0 <=2.3.4"),
        ("1.2.3 - 2.3", ">=1.2.3 <2.4.0-0"),
        ("1.2.3 - 2", ">=1.2.3 <3.0.0-0"),
        ("1 - 2.3.4-beta", ">=1.0.0 <=2.3.4-beta"),
        ("1.2.3-x - 2", ">=1.2.3-x <3.0.0-0"),
        ("1.2.3 - *", ">=1.2.3"),
        ("* - 1.2", "<1.3.0-0"),
        ("v1.0.0 - v2.0.0", ">=1.0.0 <=2.0.0"),
        # unions
        ("1.x || 2.x", ">=1.0.0 <2.0.0-0||>=2.0.0 <3.0.0-0"),
        ("1.0||2.0", ">=1.0.0 <1.1.0-0||>=2.0.0 <2.1.0-0"),
        ("^1.0.0 || ^2.0.0-rc.1", ">=1.0.0 <2.0.0-0||>=2.0.0-rc.1 <3.0.0-0"),
        ("<0.0.0-0 || 1.0", ">=1.0.0 <1.1.0-0"),  # null sets are dropped from unions
        ("1.0 || <0.0.0-0", ">=1.0.0 <1.1.0-0"),
        (">1.0.0 <0.0.0-0 || <0.0.0-0", "<0.0.0-0"),  # ... unless nothing else is left
        # node-semver strips the first "*" anywhere in a comparator
        ("1.2.3*", "1.2.3"),
        ("*1.2.3", "1.2.3"),
    ],
)
def test_valid_range_formats_like_node(range_: str, expected: str) -> None:
    assert valid_range(range_) == expected


@pytest.mark.parametrize(
    "range_",
    [
        "a || 1.0",
        "not-a-range",
        "1.2.3.4",
        "01.2.3",
        ">=01.0.0",
        "^01.0",
        "~1.2.3.4",
        "1.2.3 junk",
        "> = 1.2.3",
        ">>1.0.0",
        "=>1.0.0",
        "v=1.2.3",
        "**",
        "1.2.3-01",
        "=1.2.3 - 2",
        "^9007199254740991",  # the upper bound 9007199254740992.0.0-0 is not a safe integer
        "\u0661.x",
    ],
)
def test_valid_range_rejects(range_: str) -> None:
    assert valid_range(range_) is None


# ---------------------------------------------------------------------------------------
# satisfies()
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "range_", "expected"),
    [
        # exact
        ("1.0.0", "1.0.0", True),
        ("1.0.1", "1.0.0", False),
        ("1.2.3", "=1.2.3", True),
        ("v1.2.3", "1.2.3", True),
        (" 1.2.3 ", "1.2.3", True),
        # caret
        ("1.2.0", "^1.2.0", True),
        ("1.9.9", "^1.2.0", True),
        ("2.0.0", "^1.2.0", False),
        ("1.1.9", "^1.2.0", False),
        ("0.1.5", "^0.1.0", True),
        ("0.2.0", "^0.1.0", False),
        ("0.0.1", "^0.0.1", True),
        ("0.0.2", "^0.0.1", False),
        # tilde
        ("1.2.9", "~1.2.0", True),
        ("1.3.0", "~1.2.0", False),
        ("1.9.0", "~1", True),
        # x-ranges
        ("1.2.7", "1.2.x", True),
        ("1.3.0", "1.2.x", False),
        ("1.99.0", "1.x", True),
        ("2.0.0", "1.x", False),
        ("1.5.0", "1", True),
        ("1.0.9", "1.0", True),
        ("1.1.0", "1.0", False),
        # comparators and hyphens
        ("1.5.0", ">=1.0.0 <2.0.0", True),
        ("2.0.0", ">=1.0.0 <2.0.0", False),
        ("0.9.9", ">=1.0.0 <2.0.0", False),
        ("2.0.0", "1.0.0 - 2.0.0", True),
        ("2.0.1", "1.0.0 - 2.0.0", False),
        ("2.3.9", "1.2.3 - 2.3", True),
        # unions and stars
        ("2.5.0", "1.x || 2.x", True),
        ("3.0.0", "1.x || 2.x", False),
        ("0.0.0", "*", True),
        ("99.0.0", "*", True),
        ("99.0.0", "", True),
        ("1.0.0", "<0.0.0-0", False),
        ("1.0.0", ">*", False),
        # pre-releases need a pre-release comparator on the same major.minor.patch
        ("1.0.0-beta", "*", False),
        ("1.0.0-beta", "", False),
        ("1.0.0-beta", "^1.0.0", False),
        ("1.0.0-beta", ">=1.0.0-alpha", True),
        ("1.0.0-alpha", ">=1.0.0-alpha", True),
        ("1.0.0-0", ">=1.0.0-alpha", False),  # 0 sorts before alpha
        ("1.0.1-beta", ">=1.0.0-alpha", False),  # other tuple
        ("1.2.3-pr.2", "^1.2.3-pr.1", True),
        ("1.2.4-alpha.notready", "^1.2.3-pr.1", False),
        ("1.0.0-rc.1", "^1.0.0-beta", True),
        ("1.0.0-rc.1", "1.0.0-rc.1", True),
        ("1.0.0-rc.1", "1.0.0 - 2.0.0", False),
        ("2.3.4-alpha", "1 - 2.3.4-beta", True),
        ("2.0.0-rc.1", "^1.0.0 || ^2.0.0-rc.1", True),
        ("1.9.0-rc.1", "^1.0.0 || ^2.0.0-rc.1", False),
        ("1.0.0-beta", "<1.0.0", False),  # below the bound, but no pre-release comparator
        ("1.0.0-beta", "<1.0.0-rc", True),
        # build metadata is ignored on both sides
        ("1.2.3+b", "1.2.3", True),
        ("1.2.3+b", "1.2.3+other", True),
        ("1.2.3", "1.2.3+b", True),
        ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta", True),
        # invalid version or range
        ("1.2", "*", False),
        ("=1.2.3", "*", False),
        ("not a version", "*", False),
        ("", "*", False),
        ("1.2.3", "not-a-range", False),
        ("1.2.3", "a || 1.x", False),
        ("1.2.3", ">>1.0.0", False),
    ],
)
def test_satisfies(version: str, range_: str, expected: bool) -> None:
    assert satisfies(version, range_) is expected


# ---------------------------------------------------------------------------------------
# gtr() / ltr()
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "range_", "expected"),
    [
        ("2.0.0", "^1.0.0", True),
        ("1.9.9", "^1.0.0", False),
        ("0.9.0", "^1.0.0", False),
        ("2.0.0-0", "^1.0.0", True),  # the -0 upper bound: 2.0.0-0 is already outside
        ("1.0.0-rc.1", "^1.0.0", False),  # unmatched pre-release below the range
        ("1.3.0", "~1.2.0", True),
        ("1.2.5", "~1.2.0", False),
        ("2.0.0", "1.x", True),
        ("1.1.0", "1.0", True),
        ("2.0.0", ">=1.0.0 <2.0.0", True),
        ("2.0.1", "1.0.0 - 2.0.0", True),
        ("2.0.0", "1.0.0 - 2.0.0", False),
        ("1.2.3", "1.2.2", True),
        ("1.2.3", "1.2.3", False),
        ("3.0.0", "1.x || 2.x", True),
        ("2.5.0", "1.x || >=3.0.0", False),  # inside the gap of a union
        ("9.9.9", "*", False),
        ("1.0.0", ">=1.0.0", False),
        ("5.0.0", ">=1.0.0", False),
        ("1.0.0", "<1.0.0", True),
        ("1.0.0", "<=0.9.0", True),
        ("1.0.0", "<0.0.0-0", True),
        ("1.0.0", "<0.0.0", True),
        ("0.0.0", "<0.0.0", True),
        # invalid input is False (node throws)
        ("1.2", "^1.0.0", False),
        ("2.0.0", "not-a-range", False),
    ],
)
def test_gtr(version: str, range_: str, expected: bool) -> None:
    assert gtr(version, range_) is expected


@pytest.mark.parametrize(
    ("version", "range_", "expected"),
    [
        ("0.9.0", "^1.0.0", True),
        ("1.0.0-rc.1", "^1.0.0", True),
        ("1.0.0", "^1.0.0", False),
        ("2.0.0", "^1.0.0", False),
        ("1.1.9", "~1.2.0", True),
        ("0.0.9", "1.x", True),
        ("0.9.9", "1.0.0 - 2.0.0", True),
        ("0.0.1", ">=1.1.0 <1.2.0", True),
        ("1.1.0", ">=1.1.0 <1.2.0", False),
        ("1.2.0", "1.2.3", True),
        ("0.5.0", "1.x || 2.x", True),
        ("1.5.0", "<1.0.0 || >=2.0.0", False),
        ("0.0.0", "*", False),
        ("0.0.0", "<1.0.0", False),
        ("0.0.0", ">0.0.0", True),
        ("1.0.0", ">1.0.0", True),
        ("0.0.0-0", "*", True),
        ("1.0.0", "<0.0.0-0", False),
        # invalid input is False (node throws)
        ("x", "^1.0.0", False),
        ("0.1.0", "1.2.3.4", False),
    ],
)
def test_ltr(version: str, range_: str, expected: bool) -> None:
    assert ltr(version, range_) is expected


# ---------------------------------------------------------------------------------------
# compare()
# ---------------------------------------------------------------------------------------

# semver.org section 11 precedence chain, lowest first
PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "10.0.0",
]


@pytest.mark.parametrize("i", range(len(PRECEDENCE) - 1))
def test_compare_precedence_chain(i: int) -> None:
    lower, higher = PRECEDENCE[i], PRECEDENCE[i + 1]
    assert compare(lower, higher) == -1
    assert compare(higher, lower) == 1
    assert compare(lower, lower) == 0


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.2.3", "v1.2.3", 0),
        ("1.2.3+a", "1.2.3+b", 0),  # build metadata does not affect precedence
        ("1.0.0-1", "1.0.0-alpha", -1),  # numeric identifiers sort before alphanumeric ones
        ("1.0.0-2", "1.0.0-10", -1),  # and compare numerically
        ("1.0.0-a-b", "1.0.0-a", 1),
        ("1.0.0-alpha", "1.0.0-alpha.0", -1),
        ("1.0.0-0", "0.9.9", 1),
        # node compares numeric identifiers as doubles: these collide and compare equal
        ("1.0.0-9007199254740992", "1.0.0-9007199254740993", 0),
        ("1.0.0-9007199254740993.1", "1.0.0-9007199254740992.2", 0),
        ("1.0.0-9007199254740991", "1.0.0-9007199254740992", -1),
    ],
)
def test_compare(a: str, b: str, expected: int) -> None:
    assert compare(a, b) == expected


@pytest.mark.parametrize(("a", "b"), [("1.2", "1.2.3"), ("1.2.3", "=1.2.3"), ("", "")])
def test_compare_rejects_invalid(a: str, b: str) -> None:
    with pytest.raises(ValueError, match="Invalid Version"):
        compare(a, b)


# ---------------------------------------------------------------------------------------
# The examples of docs/codepush-protocol.md section 2.3 / acquisition tests
# ---------------------------------------------------------------------------------------


def test_spec_section_2_3_examples() -> None:
    assert not satisfies("1.0.0-beta", "*")
    assert not satisfies("1.0.0-beta", "^1.0.0")
    assert satisfies("1.0.0-beta", ">=1.0.0-alpha")
    assert satisfies("1.2.3+b", "1.2.3")
    assert satisfies("1.2.3", "") and valid_range("") == "*"
    assert not satisfies("1.2.3", "not a range")
    assert gtr("2.0.0", "^1.0.0") and not gtr("1.5.0", "^1.0.0")
    assert valid("v1.2.3") == "1.2.3" and valid(" 1.2.3 ") == "1.2.3"
    assert valid("1.2") is None and valid("1.2.3.4") is None and valid("01.2.3") is None
    assert valid_range("1.0") == ">=1.0.0 <1.1.0-0"
    assert valid_range("*") == "*"


@pytest.mark.parametrize(
    ("app_version", "newest_satisfying"),
    [("2.0.0", "v1"), ("1.0.1", "v2"), ("1.1.5", "v3"), ("0.0.1", "v1")],
)
def test_spec_updates_can_target_a_range(app_version: str, newest_satisfying: str) -> None:
    history = [("v1", "*"), ("v2", "^1.0.0"), ("v3", ">=1.1.0 <1.2.0")]
    matching = [label for label, target in history if satisfies(app_version, target)]
    assert matching[-1] == newest_satisfying


def test_spec_same_range_comparison_uses_valid_range() -> None:
    assert (
        valid_range("1.0") == valid_range("1.0.x") == valid_range("~1.0") == valid_range(">=1.0.0 <1.1.0-0")
    )
    assert valid_range("1.0") != valid_range(">=1.0.0 <1.1.0")


# ---------------------------------------------------------------------------------------
# Caching
# ---------------------------------------------------------------------------------------


def test_ranges_are_compiled_once() -> None:
    range_ = ">=4.4.4 <4.5.0 || 7.x"  # used by no other test in this module
    assert satisfies("4.4.9", range_)
    before = semver._compile_range_inner.cache_info()
    for _ in range(100):
        assert satisfies("7.1.0", range_)
        assert not satisfies("5.0.0", range_)
    after = semver._compile_range_inner.cache_info()
    assert after.misses == before.misses
    assert after.hits - before.hits == 200


def test_over_long_input_is_refused_before_it_is_cached() -> None:
    before = semver._parse_cached_inner.cache_info().currsize
    assert valid("1" * 300) is None
    assert not satisfies("1.0.0" + " " * 300, "*")
    assert semver._parse_cached_inner.cache_info().currsize == before
    assert valid_range("v" * 20_000) is None  # quadratic to parse; refused at once
    assert not satisfies("1.0.0", "1.0.0 || " * 200)
