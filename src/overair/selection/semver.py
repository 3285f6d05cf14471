"""A dependency-free port of the parts of node-semver 7.6.3 that an OTA server needs.

Semantics are those of the npm ``semver`` package with ``loose=false`` and
``includePrerelease=false`` (the defaults used by CodePush-style servers), including its
quirks: the ``-0`` upper bounds emitted when desugaring carets, tildes and x-ranges, the
rule that pre-release versions only match comparators carrying a pre-release on the same
``major.minor.patch`` tuple, and the whitespace/regex handling of the JavaScript original.

The port is faithful rather than idiomatic: ranges are desugared with the same regular
expressions (in their "safe", length-bounded form) and the same sequence of string
rewrites as ``classes/range.js``, so odd inputs are accepted or rejected exactly as node
does. A differential test (``tests/compat/test_semver_differential.py``) runs the real
package under node to keep it that way.

Public API: :func:`valid`, :func:`valid_range`, :func:`satisfies`, :func:`gtr`,
:func:`ltr` and :func:`compare`. Parsed versions and compiled ranges are memoised, so
repeated :func:`satisfies` calls on the same inputs cost a few microseconds.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["compare", "gtr", "ltr", "satisfies", "valid", "valid_range"]

_MAX_LENGTH = 256
_MAX_SAFE_INTEGER = 9007199254740991  # Number.MAX_SAFE_INTEGER
_MAX_SAFE_BUILD_LENGTH = _MAX_LENGTH - 6
# Integers at or above 2**53 can collide when node turns them into doubles.
_FLOAT_EXACT_LIMIT = 2**53

_T = TypeVar("_T")

# ---------------------------------------------------------------------------------------
# Regular expressions (internal/re.js), translated to Python's dialect.
# ---------------------------------------------------------------------------------------

# JavaScript's \s (and String.prototype.trim) set: WhiteSpace + LineTerminator. Python's
# \s differs (it has \x1c-\x1f and \x85 but not \ufeff), so the class is spelled out.
_JS_WS_CLASS_BODY = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_WS_CHARS = (
    "\t\n\x0b\x0c\r \xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_LETTERDASHNUMBER = "[a-zA-Z0-9-]"


def _make_safe(src: str) -> str:
    """Bound greedy quantifiers exactly as node-semver's ``makeSafeRegex`` does."""
    for token, limit in (("\\s", 1), ("\\d", _MAX_LENGTH), (_LETTERDASHNUMBER, _MAX_SAFE_BUILD_LENGTH)):
        src = src.replace(f"{token}*", f"{token}{{0,{limit}}}")
        src = src.replace(f"{token}+", f"{token}{{1,{limit}}}")
    return src


def _to_python(src: str) -> str:
    """Translate a JavaScript regex source (as node-semver builds it) to Python syntax."""
    src = src.replace("[v=\\s]", f"[v={_JS_WS_CLASS_BODY}]")
    src = src.replace("\\s", f"[{_JS_WS_CLASS_BODY}]")
    src = src.replace("\\d", "[0-9]")  # Python's \d also matches non-ASCII digits
    return src.replace("$", r"\Z")  # Python's $ also matches before a trailing newline


# JavaScript-flavoured sources, composed as in internal/re.js.
_SRC_NUMERICIDENTIFIER = "0|[1-9]\\d*"
_SRC_NUMERICIDENTIFIERLOOSE = "\\d+"
_SRC_NONNUMERICIDENTIFIER = f"\\d*[a-zA-Z-]{_LETTERDASHNUMBER}*"
_SRC_MAINVERSION = f"({_SRC_NUMERICIDENTIFIER})\\.({_SRC_NUMERICIDENTIFIER})\\.({_SRC_NUMERICIDENTIFIER})"
_SRC_MAINVERSIONLOOSE = (
    f"({_SRC_NUMERICIDENTIFIERLOOSE})\\.({_SRC_NUMERICIDENTIFIERLOOSE})\\.({_SRC_NUMERICIDENTIFIERLOOSE})"
)
_SRC_PRERELEASEIDENTIFIER = f"(?:{_SRC_NUMERICIDENTIFIER}|{_SRC_NONNUMERICIDENTIFIER})"
_SRC_PRERELEASEIDENTIFIERLOOSE = f"(?:{_SRC_NUMERICIDENTIFIERLOOSE}|{_SRC_NONNUMERICIDENTIFIER})"
_SRC_PRERELEASE = f"(?:-({_SRC_PRERELEASEIDENTIFIER}(?:\\.{_SRC_PRERELEASEIDENTIFIER})*))"
_SRC_PRERELEASELOOSE = f"(?:-?({_SRC_PRERELEASEIDENTIFIERLOOSE}(?:\\.{_SRC_PRERELEASEIDENTIFIERLOOSE})*))"
_SRC_BUILDIDENTIFIER = f"{_LETTERDASHNUMBER}+"
_SRC_BUILD = f"(?:\\+({_SRC_BUILDIDENTIFIER}(?:\\.{_SRC_BUILDIDENTIFIER})*))"
_SRC_FULLPLAIN = f"v?{_SRC_MAINVERSION}{_SRC_PRERELEASE}?{_SRC_BUILD}?"
_SRC_FULL = f"^{_SRC_FULLPLAIN}$"
_SRC_LOOSEPLAIN = f"[v=\\s]*{_SRC_MAINVERSIONLOOSE}{_SRC_PRERELEASELOOSE}?{_SRC_BUILD}?"
_SRC_GTLT = "((?:<|>)?=?)"
_SRC_XRANGEIDENTIFIER = f"{_SRC_NUMERICIDENTIFIER}|x|X|\\*"
_SRC_XRANGEPLAIN = (
    f"[v=\\s]*({_SRC_XRANGEIDENTIFIER})"
    f"(?:\\.({_SRC_XRANGEIDENTIFIER})"
    f"(?:\\.({_SRC_XRANGEIDENTIFIER})"
    f"(?:{_SRC_PRERELEASE})?{_SRC_BUILD}?"
    ")?)?"
)
_SRC_XRANGE = f"^{_SRC_GTLT}\\s*{_SRC_XRANGEPLAIN}$"
_SRC_LONETILDE = "(?:~>?)"
_SRC_TILDETRIM = f"(\\s*){_SRC_LONETILDE}\\s+"
_SRC_TILDE = f"^{_SRC_LONETILDE}{_SRC_XRANGEPLAIN}$"
_SRC_LONECARET = "(?:\\^)"
_SRC_CARETTRIM = f"(\\s*){_SRC_LONECARET}\\s+"
_SRC_CARET = f"^{_SRC_LONECARET}{_SRC_XRANGEPLAIN}$"
_SRC_COMPARATOR = f"^{_SRC_GTLT}\\s*({_SRC_FULLPLAIN})$|^$"
_SRC_COMPARATORTRIM = f"(\\s*){_SRC_GTLT}\\s*({_SRC_LOOSEPLAIN}|{_SRC_XRANGEPLAIN})"
_SRC_HYPHENRANGE = f"^\\s*({_SRC_XRANGEPLAIN})\\s+-\\s+({_SRC_XRANGEPLAIN})\\s*$"
_SRC_STAR = "(<|>)?=?\\s*\\*"
_SRC_GTE0 = "^\\s*>=\\s*0\\.0\\.0\\s*$"


def _compile(src: str) -> re.Pattern[str]:
    return re.compile(_to_python(_make_safe(src)))


_RE_FULL = _compile(_SRC_FULL)
_RE_XRANGE = _compile(_SRC_XRANGE)
_RE_TILDETRIM = _compile(_SRC_TILDETRIM)
_RE_TILDE = _compile(_SRC_TILDE)
_RE_CARETTRIM = _compile(_SRC_CARETTRIM)
_RE_CARET = _compile(_SRC_CARET)
_RE_COMPARATOR = _compile(_SRC_COMPARATOR)
_RE_COMPARATORTRIM = _compile(_SRC_COMPARATORTRIM)
_RE_HYPHENRANGE = _compile(_SRC_HYPHENRANGE)
_RE_STAR = _compile(_SRC_STAR)
_RE_GTE0 = _compile(_SRC_GTE0)
_RE_WS_RUN = re.compile(f"[{_JS_WS_CLASS_BODY}]+")  # unbounded, like range.js's SPACE_CHARACTERS
_RE_NUMERIC = re.compile(r"[0-9]+\Z")


def _js_trim(value: str) -> str:
    return value.strip(_JS_WS_CHARS)


def _split_ws(value: str) -> list[str]:
    """``value.split(/\\s+/)`` with JavaScript's notion of whitespace."""
    return _RE_WS_RUN.split(value)


# ---------------------------------------------------------------------------------------
# Versions (classes/semver.js)
# ---------------------------------------------------------------------------------------

_PreKey = tuple[tuple[int, int | str], ...]
_Key = tuple[int, int, int, int, _PreKey]


@dataclass(frozen=True, slots=True)
class _SemVer:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]
    version: str
    # Total-order key equivalent to node's compare() unless ``exotic``.
    key: _Key
    # True if a numeric pre-release identifier is >= 2**53: node compares those as
    # (possibly colliding) doubles, so the slow, literal comparison must be used.
    exotic: bool


class _InvalidError(ValueError):
    """Raised internally for anything node-semver would reject with a TypeError."""


def _parse_semver(version: str) -> _SemVer:
    if len(version) > _MAX_LENGTH:
        raise _InvalidError(f"version is longer than {_MAX_LENGTH} characters")
    m = _RE_FULL.search(_js_trim(version))
    if m is None:
        raise _InvalidError(f"Invalid Version: {version}")
    major, minor, patch = int(m[1]), int(m[2]), int(m[3])
    if major > _MAX_SAFE_INTEGER or minor > _MAX_SAFE_INTEGER or patch > _MAX_SAFE_INTEGER:
        raise _InvalidError(f"Invalid version component: {version}")
    prerelease: tuple[str, ...] = tuple(m[4].split(".")) if m[4] else ()
    pre_key: list[tuple[int, int | str]] = []
    exotic = False
    for ident in prerelease:
        if _RE_NUMERIC.match(ident):
            number = int(ident)
            exotic = exotic or number >= _FLOAT_EXACT_LIMIT
            pre_key.append((0, number))
        else:
            pre_key.append((1, ident))
    text = f"{major}.{minor}.{patch}"
    if prerelease:
        text += "-" + ".".join(prerelease)
    key: _Key = (major, minor, patch, 0 if prerelease else 1, tuple(pre_key))
    return _SemVer(major, minor, patch, prerelease, text, key, exotic)


def _memoised(parse: Callable[[str], _T]) -> functools._lru_cache_wrapper[_T | None]:
    """``parse`` with its results remembered, and ``None`` for what it refuses as invalid.

    Callers refuse over-long input before it can become a cache key (the input comes from requests).
    """

    @functools.lru_cache(maxsize=4096)
    def parsed(text: str) -> _T | None:
        try:
            return parse(text)
        except _InvalidError:
            return None

    return parsed


_parse_cached_inner = _memoised(_parse_semver)


def _parse_cached(version: str) -> _SemVer | None:
    return None if len(version) > _MAX_LENGTH else _parse_cached_inner(version)


def _compare_identifiers(a: str, b: str) -> int:
    """internal/identifiers.js: numeric identifiers compare as JavaScript numbers."""
    a_num = _RE_NUMERIC.match(a) is not None
    b_num = _RE_NUMERIC.match(b) is not None
    if a_num and b_num:
        fa, fb = float(a), float(b)
        return 0 if fa == fb else (-1 if fa < fb else 1)
    if a == b:
        return 0
    if a_num:
        return -1
    if b_num:
        return 1
    return -1 if a < b else 1


def _compare_literal(a: _SemVer, b: _SemVer) -> int:
    """SemVer.prototype.compare, step by step (used only for ``exotic`` versions)."""
    if a.version == b.version:
        return 0
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if a.prerelease and not b.prerelease:
        return -1
    if not a.prerelease and b.prerelease:
        return 1
    if not a.prerelease and not b.prerelease:
        return 0
    i = 0
    while True:
        a_end, b_end = i >= len(a.prerelease), i >= len(b.prerelease)
        if a_end and b_end:
            return 0
        if b_end:
            return 1
        if a_end:
            return -1
        if a.prerelease[i] != b.prerelease[i]:
            return _compare_identifiers(a.prerelease[i], b.prerelease[i])
        i += 1


def _compare(a: _SemVer, b: _SemVer) -> int:
    if a.exotic or b.exotic:
        return _compare_literal(a, b)
    return (a.key > b.key) - (a.key < b.key)


# ---------------------------------------------------------------------------------------
# Comparators (classes/comparator.js)
# ---------------------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[int], bool]] = {
    "": lambda c: c == 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}
_KEY_OPERATORS: dict[str, Callable[[_Key, _Key], bool]] = {
    "": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class _Comparator:
    operator: str  # one of "", ">", ">=", "<", "<="
    semver: _SemVer | None  # None is node's Comparator.ANY
    value: str

    def test(self, version: _SemVer) -> bool:
        if self.semver is None:
            return True
        return _OPERATORS[self.operator](_compare(version, self.semver))


def _make_comparator(comp: str) -> _Comparator:
    comp = " ".join(_split_ws(_js_trim(comp)))
    m = _RE_COMPARATOR.search(comp)
    if m is None:
        raise _InvalidError(f"Invalid comparator: {comp}")
    op = m[1] or ""
    if op == "=":
        op = ""
    if not m[2]:
        return _Comparator(op, None, "")
    semver = _parse_semver(m[2])
    return _Comparator(op, semver, op + semver.version)


_NULL_SET_VALUE = "<0.0.0-0"
_GTE0_COMPARATOR = _make_comparator(">=0.0.0")

# ---------------------------------------------------------------------------------------
# Range desugaring (classes/range.js)
# ---------------------------------------------------------------------------------------


def _is_x(ident: str | None) -> bool:
    return not ident or ident.lower() == "x" or ident == "*"


def _inc(number: str) -> int:
    return int(number) + 1


def _next_major(major: str) -> str:
    """The first version past major ``M``, as an exclusive upper bound."""
    return f"{_inc(major)}.0.0-0"


def _next_minor(major: str, minor: str) -> str:
    """The first version past ``M.m``, as an exclusive upper bound."""
    return f"{major}.{_inc(minor)}.0-0"


def _any_minor(major: str) -> str:
    """``M.x``: every version of major ``M`` (nothing to add when ``M`` is x itself)."""
    return "" if _is_x(major) else f">={major}.0.0 <{_next_major(major)}"


def _any_patch(major: str, minor: str) -> str:
    """``M.m.x``: every version of ``M.m``."""
    return f">={major}.{minor}.0 <{_next_minor(major, minor)}"


def _caret_end(major: str, minor: str, patch: str) -> str:
    """Where ``^M.m.p`` stops: before the next version of its first non-zero part (``0.0.x`` counts its
    minor)."""
    if major != "0":
        return _next_major(major)
    if minor != "0" or _is_x(patch):
        return _next_minor(major, minor)
    return f"{major}.{minor}.{_inc(patch)}-0"


def _tilde_end(major: str, minor: str, _patch: str) -> str:
    """Where ``~M.m.p`` stops: before the next minor."""
    return _next_minor(major, minor)


def _desugar(m: re.Match[str], end: Callable[[str, str, str], str]) -> str:
    """A caret or tilde range as comparators: from the version given (x parts as 0) to ``end``."""
    major, minor, patch, pre = m[1], m[2], m[3], m[4]
    if _is_x(major) or _is_x(minor):
        return _any_minor(major)
    if _is_x(patch):
        return f">={major}.{minor}.0 <{end(major, minor, patch)}"
    start = f"{major}.{minor}.{patch}-{pre}" if pre else f"{major}.{minor}.{patch}"
    return f">={start} <{end(major, minor, patch)}"


def _caret(m: re.Match[str]) -> str:
    return _desugar(m, _caret_end)


def _tilde(m: re.Match[str]) -> str:
    return _desugar(m, _tilde_end)


def _xrange(m: re.Match[str]) -> str:
    gtlt, major_s, minor_s, patch_s = m[1], m[2], m[3], m[4]
    x_major = _is_x(major_s)
    x_minor = x_major or _is_x(minor_s)
    any_x = x_minor or _is_x(patch_s)
    if gtlt == "=" and any_x:
        gtlt = ""
    if x_major:
        # ">*" and "<*" allow nothing; "*", ">=*", "<=*" forbid nothing.
        return "<0.0.0-0" if gtlt in (">", "<") else "*"
    if gtlt and any_x:
        major = int(major_s)
        minor = 0 if x_minor else int(minor_s)
        patch = 0
        if gtlt == ">":
            # >1 => >=2.0.0, >1.2 => >=1.3.0
            gtlt = ">="
            if x_minor:
                major, minor = major + 1, 0
            else:
                minor += 1
        elif gtlt == "<=":
            # <=0.7.x is really <0.8.0-0, <=7.x is <8.0.0-0
            gtlt = "<"
            if x_minor:
                major += 1
            else:
                minor += 1
        pre = "-0" if gtlt == "<" else ""
        return f"{gtlt}{major}.{minor}.{patch}{pre}"
    if x_minor:
        return _any_minor(major_s)
    if any_x:
        return _any_patch(major_s, minor_s)
    return m[0]


def _hyphen(m: re.Match[str]) -> str:
    # Groups 5/6 (from's pre-release/build) and 12 (to's build) need no special case when
    # includePrerelease is off: a full "from" is kept verbatim.
    frm, f_major, f_minor, f_patch = m[1], m[2], m[3], m[4]
    to, t_major, t_minor, t_patch, t_pre = m[7], m[8], m[9], m[10], m[11]
    if _is_x(f_major):
        frm = ""
    elif _is_x(f_minor) or _is_x(f_patch):
        frm = f">={f_major}.{'0' if _is_x(f_minor) else f_minor}.0"
    else:
        frm = f">={frm}"
    if _is_x(t_major):
        to = ""
    elif _is_x(t_minor):
        to = f"<{_next_major(t_major)}"
    elif _is_x(t_patch):
        to = f"<{_next_minor(t_major, t_minor)}"
    else:
        to = f"<={t_major}.{t_minor}.{t_patch}-{t_pre}" if t_pre else f"<={to}"
    return _js_trim(f"{frm} {to}")


def _replace_each(comp: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    return " ".join(pattern.sub(repl, part, count=1) for part in _split_ws(_js_trim(comp)))


def _parse_comparator(comp: str) -> str:
    comp = _replace_each(comp, _RE_CARET, _caret)
    comp = _replace_each(comp, _RE_TILDE, _tilde)
    comp = " ".join(_RE_XRANGE.sub(_xrange, _js_trim(part), count=1) for part in _split_ws(comp))
    return _RE_STAR.sub("", _js_trim(comp), count=1)


def _parse_range(range_: str) -> tuple[_Comparator, ...]:
    range_ = _RE_HYPHENRANGE.sub(_hyphen, range_, count=1)
    range_ = _RE_COMPARATORTRIM.sub(r"\1\2\3", range_)
    range_ = _RE_TILDETRIM.sub(r"\1~", range_)
    range_ = _RE_CARETTRIM.sub(r"\1^", range_)
    joined = " ".join(_parse_comparator(comp) for comp in range_.split(" "))
    range_list = [_RE_GTE0.sub("", _js_trim(comp), count=1) for comp in _split_ws(joined)]
    comparators = [_make_comparator(comp) for comp in range_list]
    by_value: dict[str, _Comparator] = {}
    for comp in comparators:
        if comp.value == _NULL_SET_VALUE:
            return (comp,)
        by_value[comp.value] = comp
    if len(by_value) > 1:
        by_value.pop("", None)
    return tuple(by_value.values())


_FastCheck = tuple[Callable[[_Key, _Key], bool], _Key]


class _Range:
    """A compiled range: ``||``-separated sets of AND-ed comparators."""

    __slots__ = ("_fast", "_literal_only", "range", "sets")

    def __init__(self, raw: str) -> None:
        raw = _RE_WS_RUN.sub(" ", _js_trim(raw))
        sets = [s for s in (_parse_range(_js_trim(part)) for part in raw.split("||")) if s]
        if not sets:
            raise _InvalidError(f"Invalid SemVer Range: {raw}")
        if len(sets) > 1:
            first = sets[0]
            sets = [s for s in sets if s[0].value != _NULL_SET_VALUE] or [first]
            if len(sets) > 1:
                for s in sets:
                    if len(s) == 1 and s[0].value == "":
                        sets = [s]
                        break
        self.sets: tuple[tuple[_Comparator, ...], ...] = tuple(sets)
        self.range: str = "||".join(" ".join(c.value for c in s) for s in self.sets)
        self._literal_only = any(c.semver is not None and c.semver.exotic for s in self.sets for c in s)
        fast: list[tuple[tuple[_FastCheck, ...], frozenset[tuple[int, int, int]]]] = []
        for s in self.sets:
            checks = tuple((_KEY_OPERATORS[c.operator], c.semver.key) for c in s if c.semver is not None)
            allowed = frozenset(
                (c.semver.major, c.semver.minor, c.semver.patch)
                for c in s
                if c.semver is not None and c.semver.prerelease
            )
            fast.append((checks, allowed))
        self._fast = tuple(fast)

    def test(self, version: _SemVer) -> bool:
        """Range.prototype.test: does any comparator set admit ``version``?"""
        if self._literal_only or version.exotic:
            return any(_test_set(s, version) for s in self.sets)
        key = version.key
        pre = bool(version.prerelease)
        for checks, allowed in self._fast:
            for op, bound in checks:
                if not op(key, bound):
                    break
            else:
                if not pre or (version.major, version.minor, version.patch) in allowed:
                    return True
        return False


def _test_set(comparators: tuple[_Comparator, ...], version: _SemVer) -> bool:
    if not all(c.test(version) for c in comparators):
        return False
    if version.prerelease:
        # A pre-release only passes if some comparator in the set names a pre-release of
        # the same major.minor.patch (^1.2.3-pr.1 admits 1.2.3-pr.2 but not 1.2.4-x).
        return any(
            c.semver is not None
            and c.semver.prerelease
            and (c.semver.major, c.semver.minor, c.semver.patch)
            == (version.major, version.minor, version.patch)
            for c in comparators
        )
    return True


_MAX_RANGE_LENGTH = 1024
"""Longer ranges are refused (node-semver has no limit, but parsing some long inputs is quadratic)."""


_compile_range_inner = _memoised(_Range)


def _compile_range(range_: str) -> _Range | None:
    return None if len(range_) > _MAX_RANGE_LENGTH else _compile_range_inner(range_)


# ---------------------------------------------------------------------------------------
# outside() (ranges/outside.js)
# ---------------------------------------------------------------------------------------


def _outside(version: str, range_: str, hilo: str) -> bool:
    semver = _parse_cached(version)
    compiled = _compile_range(range_)
    if semver is None or compiled is None:
        return False
    if hilo == ">":
        gtfn: Callable[[int], bool] = _OPERATORS[">"]
        ltefn = _OPERATORS["<="]
        ltfn = _OPERATORS["<"]
        comp, ecomp = ">", ">="
    else:
        gtfn, ltefn, ltfn = _OPERATORS["<"], _OPERATORS[">="], _OPERATORS[">"]
        comp, ecomp = "<", "<="
    if compiled.test(semver):
        return False
    for comparators in compiled.sets:
        high: _Comparator | None = None
        low: _Comparator | None = None
        for comparator in comparators:
            if comparator.semver is None:
                comparator = _GTE0_COMPARATOR
            assert comparator.semver is not None
            high = high or comparator
            low = low or comparator
            assert high.semver is not None and low.semver is not None
            if gtfn(_compare(comparator.semver, high.semver)):
                high = comparator
            elif ltfn(_compare(comparator.semver, low.semver)):
                low = comparator
        assert high is not None and low is not None and low.semver is not None
        # If the edge comparator points our way, the version is not outside this set.
        if high.operator in (comp, ecomp):
            return False
        # If the lowest comparator is bounded from our side and the version does not
        # clear it, it is not beyond this set either.
        if low.operator in ("", comp) and ltefn(_compare(semver, low.semver)):
            return False
        if low.operator == ecomp and ltfn(_compare(semver, low.semver)):
            return False
    return True


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def valid(version: str) -> str | None:
    """Return the normalised version string, or ``None`` if ``version`` is not a valid semver.

    Mirrors node-semver's ``semver.valid(v)``: surrounding whitespace and a leading ``v``
    are accepted and dropped, build metadata is dropped (``"v1.2.3+b"`` -> ``"1.2.3"``).
    Ranges, four-part versions, leading zeros and (unlike ranges) a leading ``=`` are rejected.
    """
    semver = _parse_cached(version)
    return None if semver is None else semver.version


def valid_range(range_: str) -> str | None:
    """Return node-semver's ``validRange(range)``: the desugared range, or ``None`` if invalid.

    Sets are joined with ``||`` and comparators with a space, e.g. ``"1.0"`` ->
    ``">=1.0.0 <1.1.0-0"``, ``"^1.2.3 || 2.x"`` -> ``">=1.2.3 <2.0.0-0||>=2.0.0 <3.0.0-0"``.
    A range matching everything (``""``, ``"*"``, ``"x"``, ``">=0.0.0"``) is ``"*"``.
    """
    compiled = _compile_range(range_)
    if compiled is None:
        return None
    return compiled.range or "*"


def satisfies(version: str, range_: str) -> bool:
    """Return whether ``version`` is in ``range_`` (node-semver ``satisfies`` semantics).

    Invalid versions or ranges give ``False``. A pre-release version only matches a set
    of comparators if one of them carries a pre-release on the same ``major.minor.patch``
    (so ``1.0.0-beta`` does not satisfy ``*`` or ``^1.0.0``). Build metadata is ignored.
    """
    compiled = _compile_range(range_)
    if compiled is None:
        return False
    semver = _parse_cached(version)
    if semver is None:
        return False
    return compiled.test(semver)


def gtr(version: str, range_: str) -> bool:
    """Return whether ``version`` is greater than every version ``range_`` could admit.

    node-semver's ``gtr`` (``outside(version, range, ">")``), except that invalid input
    gives ``False`` instead of throwing.
    """
    return _outside(version, range_, ">")


def ltr(version: str, range_: str) -> bool:
    """Return whether ``version`` is lower than every version ``range_`` could admit.

    node-semver's ``ltr`` (``outside(version, range, "<")``), except that invalid input
    gives ``False`` instead of throwing.
    """
    return _outside(version, range_, "<")


def compare(a: str, b: str) -> int:
    """Compare two versions by semver 2 precedence: ``-1`` if ``a < b``, ``0`` if equal, else ``1``.

    Build metadata is ignored. Raises :class:`ValueError` if either version is invalid
    (node-semver throws a ``TypeError``).
    """
    left, right = _parse_cached(a), _parse_cached(b)
    if left is None:
        raise ValueError(f"Invalid Version: {a}")
    if right is None:
        raise ValueError(f"Invalid Version: {b}")
    return _compare(left, right)
