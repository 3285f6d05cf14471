"""Numbers and JSON from requests (overair.inputs): what is read, what is refused and why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overair.inputs import MAX_SAFE_INTEGER, UnreadableJson, parse_json, whole_number


@pytest.mark.parametrize(
    ("text", "maximum", "expected"),
    [
        ("0", 10, 0),
        ("10", 10, 10),
        ("11", 10, None),
        ("007", 10, 7),
        ("0" * 5000 + "1", 10, 1),
        (str(MAX_SAFE_INTEGER), MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        (str(MAX_SAFE_INTEGER + 1), MAX_SAFE_INTEGER, None),
        ("1" * 4301, MAX_SAFE_INTEGER, None),  # int() would raise past 4,300 digits
        ("\u00b2", 10, None),  # superscript two: isdigit() is true, int() refuses it
        ("\u2460", 10, None),  # circled one: the same
        ("\u0663", 10, None),  # Arabic-Indic three: int() reads it, a request may not send it
        ("", 10, None),
        ("-1", 10, None),
        ("+1", 10, None),
        (" 1", 10, None),
        ("1_0", 100, None),
        ("1.0", 10, None),
        ("1e3", 10_000, None),
    ],
)
def test_whole_number(text: str, maximum: int, expected: int | None) -> None:
    assert whole_number(text, maximum) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"ttl": 1}', {"ttl": 1}),
        ('{"ttl": 1.5}', {"ttl": 1.5}),
        (b'{"ttl": 1e300}', {"ttl": 1e300}),  # finite: whether it is in range is the field's rule
        (b"[" * 32 + b"]" * 32, json.loads(b"[" * 32 + b"]" * 32)),
        ('"caf\u00e9"', "caf\u00e9"),
    ],
)
def test_parse_json_reads(data: bytes | str, expected: Any) -> None:
    assert parse_json(data) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[" * 100_000, "it is nested too deeply (at most 32 levels)"),
        (b"[" * 33 + b"]" * 33, "it is nested too deeply (at most 32 levels)"),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, "it is nested too deeply (at most 32 levels)"),
        (b"NaN", "NaN is not a number JSON allows"),
        (b"[Infinity]", "Infinity is not a number JSON allows"),
        (b"[-Infinity]", "-Infinity is not a number JSON allows"),
        (b"1e400", "the number 1e400 is out of range"),
        (b"-" + b"1" * 301, "a number has more than 300 digits"),
        (b"1" * 5000, "a number has more than 300 digits"),
        (b"\xff", "it is not UTF-8 text"),
        (b"{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_parse_json_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableJson) as refused:
        parse_json(data)
    assert str(refused.value) == reason


def test_the_depth_limit_is_a_parameter() -> None:
    assert parse_json(b"[[1]]", max_depth=2) == [[1]]
    with pytest.raises(UnreadableJson, match=r"at most 1 levels"):
        parse_json(b"[[1]]", max_depth=1)
