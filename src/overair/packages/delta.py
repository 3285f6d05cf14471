"""Binary deltas between two bundles (overair's native protocol; format in docs/protocol.md).

A delta turns the files of one package (the *base*, the bundle a device runs) into those of another (the
*target*). Files the target shares with the base cost nothing: a file unchanged at its path is kept
implicitly, a file whose content the base has at another path (a rename or a move) is copied from there.
A changed file is an hdiffpatch patch over the uncompressed base file (zstd inside); a new file is its
zstd-compressed content; deleted files are listed by path.

Layout (all integers big-endian)::

    magic "OVERAIRD" (8 bytes) | version (1 byte, 1 or 2) | header length H (4 bytes)
    | header: H bytes of zlib-compressed UTF-8 JSON | payloads, one after another, in header order

The header names the base and target package hashes and lists the operations (``copy``, ``patch``,
``add``), the deleted paths and the target's folder entries. Payloads must tile the rest of the file
exactly. Version 2 adds one thing: a ``patch`` may name a ``transform`` (``hermes-bytecode``,
:mod:`overair.packages.hermes`): the patch turns the transformed base file into the transformed target, and
the reader applies the inverse. A delta with no transformed patch is written as version 1, byte for byte
as before, so engines that read only version 1 keep working. :func:`read_delta` checks everything
before anything is written; :func:`apply_delta` writes a new folder and never touches the base; the
caller then checks the result against the target manifest (:func:`verify_tree`), which covers the
implicitly kept files too.

Standard library plus hdiffpatch; nothing here imports the rest of overair.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import hdiffpatch

from overair.packages import hermes
from overair.packages.archive import (
    Limits,
    OutputFile,
    _check_name,
    _default_make_dir,
    _default_open_output,
    _Layout,
)
from overair.packages.errors import InvalidBundle
from overair.packages.manifest import EMPTY_SHA256, ManifestEntry, package_hash

MAGIC = b"OVERAIRD"
VERSION = 2
"""The newest delta format version this module reads and writes."""
PLAIN_VERSION = 1
"""The version of a delta without transformed patches (what engines before version 2 read)."""
HERMES = "hermes-bytecode"
"""The ``transform`` of a patch over Hermes bytecode files (:mod:`overair.packages.hermes`)."""
_PREFIX = struct.Struct(">8sBI")
MAX_HEADER_BYTES = 16 * 1024 * 1024
"""Cap on the compressed header and, separately, on the decompressed header."""
_PATCH_MAGIC = b"HDIFF13&"
_CHUNK = 256 * 1024
_HEX64 = frozenset("0123456789abcdef")


class InvalidDelta(InvalidBundle):
    """A delta is malformed, truncated, hostile, or made for another base; nothing usable was written."""


# --------------------------------------------------------------------------------------------------
# The parsed form


@dataclass(frozen=True)
class DeltaOp:
    """One target file the delta produces.

    ``copy``: the base file ``source`` (content ``source_sha256``) unchanged. ``patch``: an hdiffpatch
    patch over ``source`` (over both files' ``transform``-ed forms, when ``transform`` is set). ``add``:
    the whole file, compressed. ``sha256`` and ``size`` describe the result (``size`` is -1 for
    ``copy``: the base file's); ``offset``/``length`` locate the payload (0/0 for ``copy``).
    """

    kind: Literal["copy", "patch", "add"]
    path: str
    sha256: str
    size: int
    source: str = ""
    source_sha256: str = ""
    offset: int = 0
    length: int = 0
    transform: str = ""


@dataclass(frozen=True)
class Delta:
    """A parsed, checked delta: which base it applies to, what it produces, and its payload bytes."""

    base: str
    target: str
    ops: tuple[DeltaOp, ...]
    deleted: tuple[str, ...]
    folders: tuple[str, ...]
    payloads: bytes

    def payload(self, op: DeltaOp) -> bytes:
        """The payload bytes of ``op``."""
        return self.payloads[op.offset : op.offset + op.length]


# --------------------------------------------------------------------------------------------------
# Building


# zstd level 19: level 22 (hdiffpatch's "zstd") is 3x slower for a fraction of a percent; window 2^23 keeps
# the device's decompression memory at 8 MiB.
_ZSTD = hdiffpatch.ZStdConfig(level=19, window=23)


def _compress_whole(data: bytes) -> bytes:
    return b"" if not data else hdiffpatch.diff(b"", data, compression=_ZSTD, validate=False)


def _patch(old: bytes, new: bytes) -> bytes:
    return hdiffpatch.diff(old, new, compression=_ZSTD, validate=False)


def _hermes_patch(old: bytes, new: bytes, plain: bytes) -> bytes | None:
    """A patch between the Hermes delta forms of ``old`` and ``new`` when both are supported bytecode of
    the same version and the patch is smaller than ``plain``; else None."""
    if hermes.bytecode_version(old) is None or hermes.bytecode_version(old) != hermes.bytecode_version(new):
        return None
    old_form, new_form = hermes.transformable(old), hermes.transformable(new)
    if old_form is None or new_form is None:
        return None
    patch = _patch(old_form, new_form)
    return patch if len(patch) < len(plain) else None


def build_delta(
    old_manifest: Iterable[ManifestEntry],
    new_manifest: Iterable[ManifestEntry],
    read_old: Callable[[ManifestEntry], bytes],
    read_new: Callable[[ManifestEntry], bytes],
    *,
    transforms: bool = False,
) -> bytes:
    """The delta that turns the package ``old_manifest`` describes into the one ``new_manifest`` describes.

    ``read_old`` / ``read_new`` give the bytes of a file entry. Unchanged files cost nothing; renamed and
    moved files are copied by content; a changed file is patched from its old version (or from a deleted
    file with the same name, for a file that moved and changed), unless storing it whole is smaller.
    With ``transforms``, a Hermes bytecode file is patched in its delta form when that is smaller, and
    the delta is format version 2 if any file is; without, it is always version 1.
    """
    old = tuple(old_manifest)
    new = tuple(new_manifest)
    old_files = {e.path: e for e in old if not e.is_directory}
    new_files = {e.path: e for e in new if not e.is_directory}
    by_content: dict[str, str] = {}
    for entry in old_files.values():
        by_content.setdefault(entry.sha256, entry.path)
    deleted = sorted(p for p in old_files if p not in new_files)
    gone_by_name: dict[str, list[ManifestEntry]] = {}
    for path in deleted:
        gone_by_name.setdefault(PurePosixPath(path).name, []).append(old_files[path])

    ops: list[dict[str, Any]] = []
    payloads: list[bytes] = []
    for entry in new_files.values():
        before = old_files.get(entry.path)
        if before is not None and before.sha256 == entry.sha256:
            continue  # kept implicitly
        if entry.sha256 in by_content:
            source = by_content[entry.sha256]
            ops.append({"op": "copy", "path": entry.path, "from": source, "sha256": entry.sha256})
            continue
        data = read_new(entry)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise InvalidBundle(f"{entry.path!r} does not match the new package's manifest")
        base = before
        if base is None:
            namesakes = gone_by_name.get(PurePosixPath(entry.path).name, [])
            base = namesakes[0] if len(namesakes) == 1 else None
        op: dict[str, Any] = {"op": "add", "path": entry.path, "sha256": entry.sha256, "size": entry.size}
        payload = b""
        if base is not None and data:
            old_data = read_old(base)
            if hashlib.sha256(old_data).hexdigest() != base.sha256:
                raise InvalidBundle(f"{base.path!r} does not match the old package's manifest")
            payload = _patch(old_data, data)
            transformed = _hermes_patch(old_data, data, payload) if transforms else None
            # a patch that found little to reuse: storing the file whole may be smaller (compressing
            # is the slow part, so it is only tried then)
            whole = _compress_whole(data) if len(payload) > len(data) // 4 else None
            if whole is not None and len(whole) <= len(payload):
                payload = whole
            else:
                op = {
                    "op": "patch",
                    "path": entry.path,
                    "from": base.path,
                    "from_sha256": base.sha256,
                    "sha256": entry.sha256,
                    "size": entry.size,
                }
            if transformed is not None and len(transformed) < len(payload):
                payload = transformed
                op.update({"op": "patch", "from": base.path, "from_sha256": base.sha256, "transform": HERMES})
        else:
            payload = _compress_whole(data)
        op["length"] = len(payload)
        ops.append(op)
        payloads.append(payload)

    header = {
        "base": package_hash(old),
        "target": package_hash(new),
        "ops": ops,
        "deleted": deleted,
        "folders": [e.path for e in new if e.is_directory],
    }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    packed = zlib.compress(text, 9)
    version = VERSION if any("transform" in op for op in ops) else PLAIN_VERSION
    return _PREFIX.pack(MAGIC, version, len(packed)) + packed + b"".join(payloads)


def delta_format(data: bytes) -> int:
    """The format version byte of a delta :func:`build_delta` wrote (0 when ``data`` is not one)."""
    return data[len(MAGIC)] if len(data) > len(MAGIC) and data.startswith(MAGIC) else 0


def tree_manifest(root: Path) -> tuple[ManifestEntry, ...]:
    """The manifest of the files below ``root`` (sorted by path; links are refused)."""
    entries = []
    for path in sorted(_walk_files(root)):
        digest = hashlib.sha256()
        size = 0
        with (root / path).open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        entries.append(ManifestEntry(path, digest.hexdigest(), size))
    return tuple(entries)


def build_delta_between(old_root: Path, new_root: Path, *, transforms: bool = False) -> bytes:
    """:func:`build_delta` between two folders of files."""
    return build_delta(
        tree_manifest(old_root),
        tree_manifest(new_root),
        lambda e: (old_root / e.path).read_bytes(),
        lambda e: (new_root / e.path).read_bytes(),
        transforms=transforms,
    )


# --------------------------------------------------------------------------------------------------
# Reading


def _bad(detail: str) -> InvalidDelta:
    return InvalidDelta(f"the delta is unusable: {detail} — download the full package instead")


def _field(item: dict[str, Any], name: str, where: str) -> Any:
    if name not in item:
        raise _bad(f'{where} has no "{name}"')
    return item[name]


def _text_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode("utf-8", "surrogatepass")) > 4096:
        raise _bad(f"{where} must be a non-empty path of at most 4096 bytes")
    if value.endswith("/"):
        raise _bad(f"{where} {value!r} names a folder, not a file")
    try:
        parts = _check_name(value)
    except InvalidBundle as exc:
        raise _bad(f"{where}: {exc.message}") from None
    if "/".join(parts) != value:
        raise _bad(f"{where} {value!r} is not in canonical form (no empty or '.' segments)")
    return value


def _hash(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX64:
        raise _bad(f"{where} must be a SHA-256 of 64 lowercase hex digits")
    return value


def _count(value: Any, where: str, cap: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{where} must be a non-negative integer")
    if value > cap:
        raise _bad(f"{where} ({value:,}) is over the limit of {cap:,}")
    return value


def _unpack_uint(data: bytes, position: int) -> tuple[int, int]:
    """HDiffPatch's packed unsigned integer: 7 bits a byte, most significant first, high bit = more."""
    value = 0
    for _ in range(10):
        if position >= len(data):
            raise ValueError("truncated")
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position
    raise ValueError("too long")


def patch_sizes(patch: bytes) -> tuple[int, int]:
    """(new size, old size) declared in an hdiffpatch compressed patch's header.

    Read before applying, so a hostile patch cannot make the applier allocate what it declares.
    """
    if not patch.startswith(_PATCH_MAGIC):
        raise ValueError("not an hdiffpatch patch")
    end = patch.find(b"\x00", len(_PATCH_MAGIC), len(_PATCH_MAGIC) + 32)
    if end < 0:
        raise ValueError("no compression name")
    new_size, position = _unpack_uint(patch, end + 1)
    old_size, _ = _unpack_uint(patch, position)
    return new_size, old_size


def read_delta(data: bytes, limits: Limits = Limits()) -> Delta:
    """Parse and check a delta; :class:`InvalidDelta` says what is wrong.

    Checks the magic and version, caps the header, every path (no absolute paths, ``..``, backslashes,
    duplicates or file/folder clashes), every hash and size (the target's total size and file count are
    capped by ``limits``), and that the payloads tile the rest of the file exactly.
    """
    if len(data) < _PREFIX.size:
        raise _bad("it is truncated (shorter than its fixed header)")
    magic, version, header_length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _bad("it does not start with the overair delta signature")
    if version not in (PLAIN_VERSION, VERSION):
        raise _bad(f"it is format version {version}; this client reads versions 1 and {VERSION}")
    if header_length > MAX_HEADER_BYTES:
        raise _bad(f"its header declares {header_length:,} bytes, over the limit of {MAX_HEADER_BYTES:,}")
    start = _PREFIX.size + header_length
    if len(data) < start:
        raise _bad("it is truncated (it ends inside its header)")
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(data[_PREFIX.size : start], MAX_HEADER_BYTES)
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise _bad("its header is damaged, truncated or too large")
        header: Any = json.loads(text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidDelta):
            raise
        raise _bad(f"its header cannot be read ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise _bad("its header is not a JSON object")
    expected = {"base", "target", "ops", "deleted", "folders"}
    if set(header) != expected:
        raise _bad(f"its header must have exactly the fields {sorted(expected)}")
    base = _hash(header["base"], "the base package hash")
    target = _hash(header["target"], "the target package hash")
    raw_ops, raw_deleted, raw_folders = header["ops"], header["deleted"], header["folders"]
    if not all(isinstance(x, list) for x in (raw_ops, raw_deleted, raw_folders)):
        raise _bad('"ops", "deleted" and "folders" must be lists')
    if len(raw_ops) + len(raw_folders) > limits.max_entries:
        raise _bad(f"it creates more than {limits.max_entries:,} entries")

    layout = _Layout()
    ops: list[DeltaOp] = []
    offset = 0
    total = 0
    payload_size = len(data) - start
    for index, item in enumerate(raw_ops):
        where = f"operation #{index + 1}"
        if not isinstance(item, dict):
            raise _bad(f"{where} is not an object")
        kind = _field(item, "op", where)
        fields = (
            {
                "copy": {"op", "path", "from", "sha256"},
                "patch": {"op", "path", "from", "from_sha256", "sha256", "size", "length"},
                "add": {"op", "path", "sha256", "size", "length"},
            }.get(kind)
            if isinstance(kind, str)
            else None
        )
        if fields is None:
            raise _bad(f'{where} has the unknown kind {kind!r} (expected "copy", "patch" or "add")')
        if kind == "patch" and version >= 2 and "transform" in item:
            fields = fields | {"transform"}
        if set(item) != fields:
            raise _bad(f"{where} ({kind}) must have exactly the fields {sorted(fields)}")
        path = _text_path(item["path"], f"{where}'s path")
        try:
            layout.add(path, _check_name(path), False)
        except InvalidBundle as exc:
            raise _bad(exc.message) from None
        sha256 = _hash(item["sha256"], f"{where}'s sha256")
        if kind == "copy":
            source = _text_path(item["from"], f"{where}'s source")
            ops.append(DeltaOp("copy", path, sha256, -1, source, sha256))
            continue
        size = _count(item["size"], f"{where}'s size", limits.max_total_size)
        length = _count(item["length"], f"{where}'s payload length", payload_size)
        total += size
        if total > limits.max_total_size:
            raise _bad(f"it writes more than {limits.max_total_size:,} bytes")
        if size == 0 and (kind != "add" or length != 0 or sha256 != EMPTY_SHA256):
            raise _bad(f"{where} writes an empty file, which must be an add with no payload")
        if size > 0 and length == 0:
            raise _bad(f"{where} has no payload")
        source, source_sha256, transform = "", "", ""
        if kind == "patch":
            source = _text_path(item["from"], f"{where}'s source")
            source_sha256 = _hash(item["from_sha256"], f"{where}'s from_sha256")
            transform = item.get("transform", "")
            if "transform" in item and transform != HERMES:
                raise _bad(f'{where} names the unknown transform {transform!r} (expected "{HERMES}")')
        ops.append(DeltaOp(kind, path, sha256, size, source, source_sha256, offset, length, transform))
        offset += length
        if offset > payload_size:
            raise _bad("it is truncated (its payloads end before the last one)")
    if offset != payload_size:
        raise _bad(f"it has {payload_size - offset:,} bytes after its last payload")

    deleted = tuple(_text_path(p, "a deleted path") for p in raw_deleted)
    if len(set(deleted)) != len(deleted):
        raise _bad("a deleted path is listed twice")
    folders = []
    for value in raw_folders:
        if not isinstance(value, str) or not value.endswith("/"):
            raise _bad("a folder entry must be a path ending with /")
        name = _text_path(value[:-1], "a folder entry") + "/"
        try:
            layout.add(name, _check_name(name), True)
        except InvalidBundle as exc:
            raise _bad(exc.message) from None
        folders.append(name)
    return Delta(base, target, tuple(ops), deleted, tuple(folders), data[start:])


# --------------------------------------------------------------------------------------------------
# Applying


def _walk_files(root: Path) -> list[str]:
    """Relative ``/`` paths of the files below ``root``; a link or special file is refused."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise InvalidDelta(
                    f"the base bundle has a link or special file {name!r}; it cannot be reused"
                )
        relative = Path(folder).relative_to(root)
        found.extend((relative / name).as_posix() for name in files)
    return found


def _read_base(root: Path, path: str, sha256: str) -> bytes:
    file = root.joinpath(*path.split("/"))
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            raise _bad(f"the base file {path!r} is not a regular file")
        data = file.read_bytes()
    except FileNotFoundError:
        raise _bad(f"the base bundle has no file {path!r}: the delta was made for another base") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _bad(f"the base file {path!r} is not the one the delta was made from (its hash differs)")
    return data


def _write(
    target: Path,
    chunks: Iterable[bytes],
    make_dir: Callable[[Path], None],
    open_output: Callable[[Path], OutputFile],
) -> None:
    make_dir(target.parent)
    with open_output(target) as out:
        for chunk in chunks:
            out.write(chunk)


def _chunks(data: bytes) -> Iterable[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _CHUNK):
        yield bytes(view[start : start + _CHUNK])


def _stream(path: Path) -> Iterable[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def _produce(delta: Delta, op: DeltaOp, base_root: Path) -> bytes:
    payload = delta.payload(op)
    if op.kind == "add" and op.size == 0:
        return b""
    old = _read_base(base_root, op.source, op.source_sha256) if op.kind == "patch" else b""
    if op.transform:
        try:
            old = hermes.to_delta_form(old)
        except hermes.NotHermes as exc:
            raise _bad(f"the base file {op.source!r} cannot be transformed ({exc})") from None
    try:
        new_size, old_size = patch_sizes(payload)
    except ValueError as exc:
        raise _bad(f"the payload of {op.path!r} is not a valid patch ({exc})") from None
    if new_size != op.size or old_size != len(old):
        raise _bad(
            f"the payload of {op.path!r} declares {new_size:,} bytes from {old_size:,}, "
            f"not {op.size:,} from {len(old):,}"
        )
    try:
        data = hdiffpatch.apply(old, payload)
    except (hdiffpatch.HDiffPatchError, MemoryError, ValueError, TypeError) as exc:
        raise _bad(f"the payload of {op.path!r} is damaged ({exc})") from None
    if op.transform:
        try:
            data = hermes.from_delta_form(data)
        except hermes.NotHermes as exc:
            raise _bad(f"the patched {op.path!r} is not valid bytecode ({exc})") from None
    if len(data) != op.size or hashlib.sha256(data).hexdigest() != op.sha256:
        raise _bad(f"{op.path!r} does not come out as the delta says (size or hash differs)")
    return data


def apply_delta(
    base_root: Path,
    delta: Delta | bytes,
    destination: Path,
    *,
    limits: Limits = Limits(),
    make_dir: Callable[[Path], None] = _default_make_dir,
    open_output: Callable[[Path], OutputFile] = _default_open_output,
) -> Delta:
    """Write the target bundle into ``destination`` (a new or empty folder) from ``base_root`` and a delta.

    ``base_root`` is only read. Every file the delta produces is checked against the hash the delta
    records; kept files are copied as they are, so the caller must check the result against the target
    manifest (:func:`verify_tree`). Raises :class:`InvalidDelta` (a malformed or hostile delta, or a base
    that is not the one the delta was made from) or :class:`OSError`; the caller deletes ``destination``.
    ``make_dir`` and ``open_output`` route writes through the caller's file layer (fsync, fault injection).
    """
    parsed = delta if isinstance(delta, Delta) else read_delta(delta, limits)
    base_files = set(_walk_files(base_root))
    for path in parsed.deleted:
        if path not in base_files:
            raise _bad(
                f"it deletes {path!r}, which the base bundle does not have: it was made for another base"
            )
    written = {op.path for op in parsed.ops}
    gone = set(parsed.deleted)
    kept = sorted(p for p in base_files if p not in written and p not in gone)
    if len(kept) + len(parsed.ops) + len(parsed.folders) > limits.max_entries:
        raise _bad(f"the result would have more than {limits.max_entries:,} entries")
    layout = _Layout()
    for path in (*kept, *written):
        try:
            layout.add(path, _check_name(path), False)
        except InvalidBundle as exc:
            raise _bad(exc.message) from None
    for folder in parsed.folders:
        try:
            layout.add(folder, _check_name(folder), True)
        except InvalidBundle as exc:
            raise _bad(exc.message) from None

    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise FileExistsError(f"{destination} must be an empty folder (or not exist yet) to apply a delta")
    make_dir(destination)
    for folder in parsed.folders:
        make_dir(destination.joinpath(*_check_name(folder)))
    for path in kept:
        _write(destination.joinpath(*path.split("/")), _stream(base_root / path), make_dir, open_output)
    for op in parsed.ops:
        if op.kind == "copy":
            if op.source not in base_files:
                raise _bad(f"the base bundle has no file {op.source!r}: the delta was made for another base")
            data = _read_base(base_root, op.source, op.source_sha256)
        else:
            data = _produce(parsed, op, base_root)
        _write(destination.joinpath(*op.path.split("/")), _chunks(data), make_dir, open_output)
    return parsed


def verify_tree(root: Path, manifest: Sequence[ManifestEntry]) -> None:
    """Check that ``root`` holds exactly the manifest's files (sizes and SHA-256) and folder entries.

    Raises :class:`InvalidBundle` naming the first difference.
    """
    expected = {e.path: e for e in manifest if not e.is_directory}
    found = set(_walk_files(root))
    missing = sorted(set(expected) - found)
    if missing:
        raise InvalidBundle(f"{missing[0]!r} is missing ({len(missing)} file(s) missing in all)")
    extra = sorted(found - set(expected))
    if extra:
        raise InvalidBundle(f"{extra[0]!r} is not in the manifest ({len(extra)} extra file(s) in all)")
    for path, entry in expected.items():
        digest = hashlib.sha256()
        size = 0
        for chunk in _stream(root.joinpath(*path.split("/"))):
            digest.update(chunk)
            size += len(chunk)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise InvalidBundle(f"{path!r} does not match the manifest (size or SHA-256 differs)")
    for entry in manifest:
        if entry.is_directory and not root.joinpath(*_check_name(entry.path)).is_dir():
            raise InvalidBundle(f"the folder {entry.path!r} is missing")
