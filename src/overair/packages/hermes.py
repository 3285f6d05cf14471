"""A reversible transform of Hermes bytecode files that makes binary deltas between them small.

A Hermes bytecode file (``hermesc -emit-binary`` output, the ``index.android.bundle`` /
``main.jsbundle`` of an app that uses Hermes) stores absolute offsets in two tables: every function header
holds the offset of its bytecode and of its info block, and every string-table entry holds the offset of
its characters in the string storage. One function or string inserted near the start shifts every later
offset, so a binary diff sees a change in every entry of both tables. :func:`to_delta_form` rewrites each
of those offsets as the difference from the previous entry's offset (modulo the field's width), so one
insertion changes one entry; :func:`from_delta_form` undoes it exactly. Nothing else in the file changes,
and the length stays the same.

Parsing is strict and version-specific (the header layout differs between bytecode versions): only the
versions listed in :data:`SUPPORTED_VERSIONS` are recognised, every table must lie inside the file where
the header says, every offset must point inside its area, and the file's own footer (SHA-1 of everything
before it) must match. Anything else is :class:`NotHermes`, and the caller uses a plain binary delta.
The caller also checks that the inverse gives back the original bytes before relying on the transform.

Standard library only; nothing here imports the rest of overair.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from dataclasses import dataclass

MAGIC = 0x1F1903C103BC1FC6
"""The first 8 bytes of every Hermes bytecode file (little-endian)."""

_FOOTER = 20  # SHA-1 of everything before it
_ALIGN = 4
_MASK25 = (1 << 25) - 1


class NotHermes(ValueError):
    """The bytes are not a Hermes bytecode file of a supported version, or are malformed."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the header of one bytecode version keeps what the transform needs.

    ``counts`` names the header's uint32 fields from offset 32 on; the tables follow the 128-byte header
    in ``segments`` order, each aligned to 4 bytes, each ``(count field, entry size)`` or
    ``(size field, 1)``.
    """

    counts: tuple[str, ...]
    segments: tuple[tuple[str, int], ...]
    function_header: int = 16
    large_function_header: int = 28


# Bytecode version 96's header (react-native 0.74.7's hermesc, which the tests run): three literal
# buffers (array, object keys, object values) and the BigInt tables. Other versions' layouts differ (newer
# Hermes has two literal buffers and another function header); each is added only with a test that
# compiles with its hermesc.
_V96 = _Layout(
    counts=(
        "file_length",
        "global_code_index",
        "function_count",
        "string_kind_count",
        "identifier_count",
        "string_count",
        "overflow_string_count",
        "string_storage_size",
        "bigint_count",
        "bigint_storage_size",
        "regexp_count",
        "regexp_storage_size",
        "array_buffer_size",
        "obj_key_buffer_size",
        "obj_value_buffer_size",
        "segment_id",
        "cjs_module_count",
        "function_source_count",
        "debug_info_offset",
    ),
    segments=(
        ("function_count", 16),
        ("string_kind_count", 4),
        ("identifier_count", 4),
        ("string_count", 4),
        ("overflow_string_count", 8),
        ("string_storage_size", 1),
        ("array_buffer_size", 1),
        ("obj_key_buffer_size", 1),
        ("obj_value_buffer_size", 1),
        ("bigint_count", 8),
        ("bigint_storage_size", 1),
        ("regexp_count", 8),
        ("regexp_storage_size", 1),
        ("cjs_module_count", 8),
        ("function_source_count", 8),
    ),
)

SUPPORTED_VERSIONS: dict[int, _Layout] = {96: _V96}
"""Bytecode version → header layout, for the versions whose files are transformed."""

_HEADER = 128
_PREFIX = struct.Struct("<QI20s")


def bytecode_version(data: bytes) -> int | None:
    """The bytecode version in a Hermes file's header, or None when ``data`` is not Hermes bytecode."""
    if len(data) < _PREFIX.size:
        return None
    magic, version, _ = _PREFIX.unpack_from(data)
    return int(version) if magic == MAGIC else None


def _words(data: bytes | bytearray, start: int, count: int) -> array[int]:
    words = array("I")
    words.frombytes(bytes(data[start : start + 4 * count]))
    if sys.byteorder == "big":
        words.byteswap()
    return words


def _store(out: bytearray, start: int, words: array[int]) -> None:
    if sys.byteorder == "big":
        words = array("I", words)
        words.byteswap()
    out[start : start + 4 * len(words)] = words.tobytes()


@dataclass(frozen=True, slots=True)
class _Tables:
    functions: int  # file offset of the small function headers
    function_count: int
    strings: int  # file offset of the small string table
    string_count: int
    overflow: int  # file offset of the overflow string table
    overflow_count: int
    large_size: int
    end: int  # where function bodies may start (after the last table)
    limit: int  # where they must end (the debug info)
    storage_size: int  # bytes of string storage


def _parse(data: bytes | bytearray) -> _Tables:
    """The table positions of a supported bytecode file, checked against its size (not its offsets)."""
    if len(data) < _HEADER + _FOOTER:
        raise NotHermes("shorter than a bytecode header")
    version = bytecode_version(bytes(data[: _PREFIX.size]))
    if version is None:
        raise NotHermes("no Hermes bytecode magic number")
    layout = SUPPORTED_VERSIONS.get(version)
    if layout is None:
        raise NotHermes(f"bytecode version {version} is not one this transform knows")
    fields = dict(zip(layout.counts, struct.unpack_from(f"<{len(layout.counts)}I", data, 32), strict=True))
    options_at = 32 + 4 * len(layout.counts)
    if any(data[options_at + 1 : _HEADER]):
        raise NotHermes("the header's padding is not zero")
    if fields["file_length"] != len(data):
        raise NotHermes("the header's file length is not the file's")
    position = _HEADER
    starts: dict[str, int] = {}
    for name, size in layout.segments:
        position = (position + _ALIGN - 1) // _ALIGN * _ALIGN
        starts[name] = position
        position += fields[name] * size
    limit = fields["debug_info_offset"]
    if not position <= limit <= len(data) - _FOOTER:
        raise NotHermes("the tables do not fit before the debug info")
    if fields["function_count"] and fields["global_code_index"] >= fields["function_count"]:
        raise NotHermes("the global code index names no function")
    return _Tables(
        functions=starts["function_count"],
        function_count=fields["function_count"],
        strings=starts["string_count"],
        string_count=fields["string_count"],
        overflow=starts["overflow_string_count"],
        overflow_count=fields["overflow_string_count"],
        large_size=layout.large_function_header,
        end=position,
        limit=limit,
        storage_size=fields["string_storage_size"],
    )


def _rewrite(data: bytes | bytearray, forward: bool) -> bytes:
    """Both directions: offsets become differences (``forward``) or differences become offsets again.

    In either direction the table positions come from the header alone, and the chain walks entries in
    file order, so the inverse meets each entry's predecessor already restored.
    """
    tables = _parse(data)
    out = bytearray(data)

    # small function headers: word 0 bits 0-24 = bytecode offset, word 2 bits 0-24 = info offset;
    # byte 15 bit 5 = overflowed (then the real header is a large one, at (info offset << 16) | (offset
    # & 0xFFFF): version 96 keeps it in those two fields)
    heads = _words(data, tables.functions, 4 * tables.function_count)
    previous_code = previous_info = 0
    large: list[int] = []
    for index in range(tables.function_count):
        base = 4 * index
        if (heads[base + 3] >> 29) & 1:
            where = (heads[base] & 0xFFFF) | ((heads[base + 2] & _MASK25) << 16)
            if not tables.end <= where <= tables.limit - tables.large_size:
                raise NotHermes("a large function header lies outside the function area")
            large.append(where)
            continue
        code, info = heads[base] & _MASK25, heads[base + 2] & _MASK25
        if forward:
            new_code, new_info = (code - previous_code) & _MASK25, (info - previous_info) & _MASK25
            previous_code, previous_info = code, info
        else:
            new_code, new_info = (code + previous_code) & _MASK25, (info + previous_info) & _MASK25
            previous_code, previous_info = new_code, new_info
        actual_code = code if forward else new_code
        actual_info = info if forward else new_info
        size = heads[base + 1] & 0x7FFF
        if not (tables.end <= actual_code and actual_code + size <= tables.limit):
            raise NotHermes(f"function {index}'s bytecode lies outside the function area")
        if not tables.end <= actual_info <= tables.limit:
            raise NotHermes(f"function {index}'s info lies outside the function area")
        heads[base] = (heads[base] & ~_MASK25 & 0xFFFFFFFF) | new_code
        heads[base + 2] = (heads[base + 2] & ~_MASK25 & 0xFFFFFFFF) | new_info
    _store(out, tables.functions, heads)

    # large function headers (uint32 fields: offset, paramCount, size, name, info offset, ...)
    previous_code = previous_info = 0
    for where in sorted(set(large)):
        code, _, size, _, info = struct.unpack_from("<5I", data, where)
        if forward:
            new_code, new_info = (code - previous_code) & 0xFFFFFFFF, (info - previous_info) & 0xFFFFFFFF
            previous_code, previous_info = code, info
        else:
            new_code, new_info = (code + previous_code) & 0xFFFFFFFF, (info + previous_info) & 0xFFFFFFFF
            previous_code, previous_info = new_code, new_info
        actual_code = code if forward else new_code
        actual_info = info if forward else new_info
        if not (tables.end <= actual_code and actual_code + size <= tables.limit):
            raise NotHermes("a large function's bytecode lies outside the function area")
        if not tables.end <= actual_info <= tables.limit:
            raise NotHermes("a large function's info lies outside the function area")
        struct.pack_into("<I", out, where, new_code)
        struct.pack_into("<I", out, where + 16, new_info)

    # small string entries: bit 0 = UTF-16, bits 1-23 = offset in the string storage, bits 24-31 =
    # length (255: the offset is an index into the overflow table, left as it is)
    entries = _words(data, tables.strings, tables.string_count)
    previous = 0
    mask23 = (1 << 23) - 1
    for index in range(tables.string_count):
        word = entries[index]
        if word >> 24 == 255:
            if (word >> 1) & mask23 >= tables.overflow_count:
                raise NotHermes(f"string {index} names a missing overflow entry")
            continue
        offset = (word >> 1) & mask23
        if forward:
            stored = (offset - previous) & mask23
            previous = offset
        else:
            stored = (offset + previous) & mask23
            previous = stored
        actual = offset if forward else stored
        if actual + (word >> 24) * (2 if word & 1 else 1) > tables.storage_size:
            raise NotHermes(f"string {index} lies outside the string storage")
        entries[index] = (word & 0xFF000001) | (stored << 1)
    _store(out, tables.strings, entries)

    overflow = _words(data, tables.overflow, 2 * tables.overflow_count)
    previous = 0
    for index in range(tables.overflow_count):
        offset = overflow[2 * index]
        if forward:
            overflow[2 * index] = (offset - previous) & 0xFFFFFFFF
            previous = offset
        else:
            overflow[2 * index] = previous = (offset + previous) & 0xFFFFFFFF
    _store(out, tables.overflow, overflow)
    return bytes(out)


def to_delta_form(data: bytes) -> bytes:
    """``data`` with its offset tables stored as differences; :class:`NotHermes` if it cannot be.

    Checks the file's footer hash first, so a damaged file is never transformed.
    """
    _parse(data)
    if hashlib.sha1(data[:-_FOOTER], usedforsecurity=False).digest() != data[-_FOOTER:]:
        raise NotHermes("the file's footer hash does not match its content")
    return _rewrite(data, forward=True)


def from_delta_form(data: bytes) -> bytes:
    """The bytecode file :func:`to_delta_form` made ``data`` from; :class:`NotHermes` if ``data`` is not
    such a form (the caller still checks the result's SHA-256)."""
    restored = _rewrite(data, forward=False)
    if hashlib.sha1(restored[:-_FOOTER], usedforsecurity=False).digest() != restored[-_FOOTER:]:
        raise NotHermes("the restored file's footer hash does not match its content")
    return restored


def transformable(data: bytes) -> bytes | None:
    """The delta form of ``data`` when it is supported Hermes bytecode and the transform round-trips
    exactly, else None (use a plain binary delta)."""
    if bytecode_version(data) is None:
        return None
    try:
        form = to_delta_form(data)
        if from_delta_form(form) != data:
            return None
    except NotHermes:
        return None
    return form
