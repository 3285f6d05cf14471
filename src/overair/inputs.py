"""Reading numbers and JSON that arrive in requests: the one place that turns untrusted text into values.

Python's own parsers accept more than a request should carry and fail in ways a handler does not expect:
``str.isdigit()`` is true for ``²`` and ``①``, which ``int()`` then refuses; ``int()`` takes Arabic-Indic
digits, and raises ``ValueError`` past 4,300 digits; ``json.loads`` accepts ``NaN`` and ``Infinity``, turns
``1e400`` into infinity, and raises ``RecursionError`` on deeply nested arrays. Every surface (the device
protocols, the CodePush management dialects and their uploads, the management API, the console) reads
such values through :func:`whole_number` and :func:`parse_json`, and answers a refusal in its own format.
Nothing here does I/O or knows HTTP.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``: the largest whole number every client reads exactly."""

MAX_JSON_DEPTH = 32
"""How deeply arrays and objects may nest in a request body (overair's own bodies nest 3 levels)."""

MAX_NUMBER_DIGITS = 300
"""The most digits a JSON integer may have (a double's range ends near 1.8e308)."""

_ASCII_DIGITS = frozenset("0123456789")


def whole_number(text: str, maximum: int = MAX_SAFE_INTEGER) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``, or None.

    Only ASCII digits count (no sign, spaces, ``_`` or other scripts' digits), and text longer than
    ``maximum`` is never converted, so the cost is bounded whatever arrives.
    """
    if not text or not _ASCII_DIGITS.issuperset(text):
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if value <= maximum else None


class UnreadableJson(ValueError):
    """A request body (or field) that is not JSON overair reads; the message says why, in a few words."""


def _refuse_constant(name: str) -> Any:
    raise UnreadableJson(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnreadableJson(f"the number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise UnreadableJson(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _nests_deeper(value: Any, limit: int) -> bool:
    """True when arrays and objects in ``value`` nest more than ``limit`` levels (without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            if level > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return False


def parse_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``data`` (UTF-8), or :class:`UnreadableJson` saying what is wrong with it.

    Refused besides malformed JSON: text that is not UTF-8, ``NaN``/``Infinity``, numbers out of a
    double's range or longer than :data:`MAX_NUMBER_DIGITS` digits, and nesting deeper than ``max_depth``.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UnreadableJson("it is not UTF-8 text") from exc
    too_deep = UnreadableJson(f"it is nested too deeply (at most {max_depth} levels)")
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except RecursionError as exc:
        raise too_deep from exc
    except UnreadableJson:
        raise
    except ValueError as exc:  # json.JSONDecodeError: its message says where
        raise UnreadableJson(str(exc)) from exc
    if _nests_deeper(value, max_depth):
        raise too_deep
    return value
