"""Reading, writing and unpacking bundle archives (protocol notes, section 3).

Uploads are untrusted: :func:`inspect_archive` parses them defensively, refusing anything a device
should not unpack (paths escaping the bundle folder, links, duplicates, encrypted or exotic
compression, zip bombs) with an :class:`InvalidBundle` whose message names the offending entry, and
returns the manifest and package hash the reference server would compute. :func:`zip_directory`
builds deterministic archives from a folder; :func:`extract_archive` unpacks one, writing only what
a manifest lists and checking every byte against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from overair.packages.errors import InvalidBundle, NotAZipArchive
from overair.packages.manifest import ManifestEntry, is_ignored_path, package_hash

_MIB = 1024 * 1024
_CHUNK = 256 * 1024
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

_LOCAL_HEADER_SIG = b"PK\x03\x04"
_CENTRAL_HEADER_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_END64_LOCATOR_SIG = b"PK\x06\x07"
_END64_SIG = b"PK\x06\x06"
_END = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_END64_LOCATOR_SIZE = 20
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (56 bytes)
_CENTRAL_HEADER_SIZE = 46

_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_METHOD_NAMES = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ", 98: "PPMd"}

# Everything the standard library can raise while parsing or decompressing hostile input.
_READ_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,  # includes UnicodeDecodeError
    NotImplementedError,
    RuntimeError,
    LookupError,
    OverflowError,
)

# Entry names without the UTF-8 flag are decoded like yauzl does: CP437, except that yauzl maps the
# control bytes 0x01-0x1F to the IBM PC glyphs and 0x7F to "⌂" (protocol notes, section 3.2).
_CP437_LOW = "\u0000☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"
_CP437 = tuple(
    _CP437_LOW[byte] if byte < 0x20 else "⌂" if byte == 0x7F else bytes([byte]).decode("cp437")
    for byte in range(256)
)
_DRIVE = re.compile(r"[A-Za-z]:")
_REBUILD_RELATIVE = "rebuild the archive with paths relative to the bundle root"
_REUPLOAD = "re-create the archive and upload it again"


@dataclass(frozen=True)
class Limits:
    """Caps applied to untrusted archives.

    ``max_ratio`` is the compression ratio above which an entry counts as a zip bomb; it is only
    checked for entries whose uncompressed size is over 1 MiB.
    """

    max_entries: int = 20_000
    max_total_size: int = 512 * 1024 * 1024
    max_ratio: int = 200


@dataclass(frozen=True)
class PackageInfo:
    """What :func:`inspect_archive` learnt about an archive.

    ``total_size`` is the uncompressed size of the manifest's entries; ``archive_size`` and
    ``archive_sha256`` describe the archive file itself.
    """

    package_hash: str
    manifest: tuple[ManifestEntry, ...]
    total_size: int
    archive_size: int
    archive_sha256: str


# --------------------------------------------------------------------------------------------------
# Messages


def _quote(name: str) -> str:
    text = json.dumps(name, ensure_ascii=False)
    return text if len(text) <= 160 else text[:150] + '…"'


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
    while True:
        value /= 1024
        unit = units.pop(0)
        if value < 1024 or not units:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"


_ZIPFILE_MESSAGES = (
    ("CRC", "its CRC-32 checksum does not match its data"),
    ("File is not a zip file", "its end-of-archive record is missing, often because the upload was cut"),
    ("file header", "its local file header is missing or damaged"),
    ("differ", "its name differs between the local header and the central directory"),
    ("central directory", "its central directory is damaged"),
)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the archive ends in the middle of it"
    if isinstance(exc, zlib.error):
        return "its compressed data is damaged"
    if isinstance(exc, zipfile.BadZipFile):
        text = str(exc)
        for clue, meaning in _ZIPFILE_MESSAGES:
            if clue in text:
                return meaning
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return "a name is marked as UTF-8 but is not valid UTF-8"
    return str(exc) or type(exc).__name__


def _corrupt_entry(name: str, exc: BaseException) -> InvalidBundle:
    return InvalidBundle(f"entry {_quote(name)} is truncated or corrupt ({_detail(exc)}) — {_REUPLOAD}")


def _corrupt_archive(exc: BaseException) -> InvalidBundle:
    if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
        return InvalidBundle(f"the archive could not be read ({_detail(exc)}) — upload it again")
    return InvalidBundle(f"the zip archive is truncated or corrupt ({_detail(exc)}) — {_REUPLOAD}")


def _no_files() -> InvalidBundle:
    return InvalidBundle(
        "the archive contains no files — zip the bundle folder with its files and upload that archive"
    )


def _too_many(name: str, limits: Limits) -> InvalidBundle:
    return InvalidBundle(
        f"the archive has more than {limits.max_entries:,} entries (entry {_quote(name)} is one too many)"
        " — leave out files the app does not need, or ask the server operator to raise the limit"
    )


# --------------------------------------------------------------------------------------------------
# Entry names and kinds


def _decode_raw_name(raw: bytes, flags: int) -> str:
    if flags & _FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    return "".join(_CP437[byte] for byte in raw)


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry name as the reference server sees it (UTF-8 if flagged, else yauzl's CP437)."""
    if info.flag_bits & _FLAG_UTF8:
        return info.orig_filename
    return "".join(_CP437[byte] for byte in info.orig_filename.encode("cp437"))


def _check_name(name: str) -> tuple[str, ...]:
    """Refuse names a device must not unpack; return the path segments (without ``.`` and empty ones)."""
    quoted = _quote(name)
    if "\x00" in name:
        raise InvalidBundle(
            f"entry {quoted} contains a NUL character — rename the file and rebuild the archive"
        )
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise InvalidBundle(f"entry {quoted} is an absolute path — {_REBUILD_RELATIVE}")
    if "\\" in name:
        raise InvalidBundle(
            f'entry {quoted} contains a backslash ("\\") — rebuild the archive with a zip tool that'
            ' separates folders with "/"'
        )
    segments = name.split("/")
    if ".." in segments:
        raise InvalidBundle(f'entry {quoted} escapes the bundle folder ("..") — {_REBUILD_RELATIVE}')
    parts = tuple(segment for segment in segments if segment not in ("", "."))
    if not parts:
        raise InvalidBundle(
            f"entry {quoted} does not name a file or folder — remove it and rebuild the archive"
        )
    return parts


class _Layout:
    """The paths an archive would create, to refuse duplicates and file/folder clashes.

    Paths are compared after dropping ``.``/empty segments, Unicode NFC normalisation and case
    folding, since that is how they end up on a device's file system (iOS and Android external storage
    are case-insensitive: ``Logo.png`` and ``logo.png`` would be one file there).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}  # key -> (kind, entry name)

    def add(self, name: str, parts: tuple[str, ...], is_directory: bool) -> None:
        keys = [
            "/".join(unicodedata.normalize("NFC", part).casefold() for part in parts[: i + 1])
            for i in range(len(parts))
        ]
        for key in keys[:-1]:
            kind, other = self._seen.setdefault(key, ("parent", name))
            if kind == "file":
                raise self._clash(name, other)
        kind, other = self._seen.get(keys[-1], ("new", name))
        if kind == "new" or (kind == "parent" and is_directory):
            self._seen[keys[-1]] = ("folder" if is_directory else "file", name)
        elif kind == ("folder" if is_directory else "file"):
            also = (
                ""
                if other == name
                else f" (also as {_quote(other)}, the same path once case and Unicode form are ignored)"
            )
            raise InvalidBundle(
                f"entry {_quote(name)} appears more than once in the archive{also}"
                " — remove the duplicate and rebuild the archive"
            )
        else:
            raise self._clash(name, other)

    @staticmethod
    def _clash(name: str, other: str) -> InvalidBundle:
        return InvalidBundle(
            f"entry {_quote(name)} clashes with entry {_quote(other)}: the same path would be both a file"
            " and a folder — rename one of them and rebuild the archive"
        )


def _check_entry(info: zipfile.ZipInfo, name: str, limits: Limits) -> None:
    """Refuse entry kinds, compressions and sizes a device must not unpack (declared values only)."""
    quoted = _quote(name)
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise InvalidBundle(f"entry {quoted} is encrypted — rebuild the archive without a password")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidBundle(
            f"entry {quoted} is a symbolic link — replace the link with the file it points to and rebuild"
            " the archive"
        )
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidBundle(
            f"entry {quoted} is a special file (device, pipe or socket) — remove it and rebuild the archive"
        )
    if info.compress_type not in _SUPPORTED_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise InvalidBundle(
            f"entry {quoted} uses {method} compression, which devices cannot unpack — rebuild the archive"
            " with standard (deflate) compression"
        )
    if name.endswith("/") and info.file_size:
        raise InvalidBundle(f"folder entry {quoted} contains data — {_REUPLOAD}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _corrupt_entry(name, ValueError("its stored and declared sizes differ"))
    if info.file_size > _MIB and info.file_size > limits.max_ratio * info.compress_size:
        raise _bomb(name, info.file_size, info.compress_size, limits)


def _bomb(name: str, size: int, compressed: int, limits: Limits) -> InvalidBundle:
    ratio = f"{size // compressed:,}x" if compressed else "without limit"
    return InvalidBundle(
        f"entry {_quote(name)} expands {ratio} ({_size(compressed)} to at least {_size(size)}), more than"
        f" the {limits.max_ratio}x allowed — this looks like a zip bomb; if the file is genuine, ask the"
        " server operator to raise the limit"
    )


# --------------------------------------------------------------------------------------------------
# Opening and reading archives


def _check_signature(head: bytes) -> None:
    if head == _LOCAL_HEADER_SIG:
        return
    if head == _END_SIG:
        raise _no_files()
    raise NotAZipArchive(
        "the file is not a zip archive (it does not start with a zip file header) — zip the bundle"
        " folder and upload the .zip file"
    )


def _central_directory(stream: BinaryIO) -> bytes | None:
    """Return the central directory bytes, located exactly as :mod:`zipfile` locates them.

    ``None`` when the records do not add up; :class:`zipfile.ZipFile` then reports the damage.
    """
    stream.seek(0, os.SEEK_END)
    file_size = stream.tell()
    tail_start = max(0, file_size - 0xFFFF - _END.size)
    stream.seek(tail_start)
    tail = stream.read()
    if tail[-_END.size : -_END.size + 4] == _END_SIG and tail.endswith(b"\x00\x00"):
        at = len(tail) - _END.size
    else:
        at = tail.rfind(_END_SIG)
        if at < 0 or at + _END.size > len(tail):
            return None
    end_offset = tail_start + at
    directory_size: int = _END.unpack_from(tail, at)[5]
    start = end_offset - directory_size
    record64_offset = end_offset - _END64_LOCATOR_SIZE - _END64.size
    if record64_offset >= 0:
        stream.seek(end_offset - _END64_LOCATOR_SIZE)
        if stream.read(4) == _END64_LOCATOR_SIG:
            stream.seek(record64_offset)
            record = stream.read(_END64.size)
            if len(record) == _END64.size and record.startswith(_END64_SIG):
                directory_size = _END64.unpack(record)[8]
                start = record64_offset - directory_size
    if start < 0 or directory_size > file_size:
        return None
    stream.seek(start)
    return stream.read(directory_size)


def _prescan(stream: BinaryIO, limits: Limits) -> None:
    """Count central directory records before :mod:`zipfile` builds an object for each of them."""
    directory = _central_directory(stream)
    if directory is None:
        return
    position = count = 0
    while directory[position : position + 4] == _CENTRAL_HEADER_SIG:
        if position + _CENTRAL_HEADER_SIZE > len(directory):
            return
        (flags,) = struct.unpack_from("<H", directory, position + 8)
        name_length, extra_length, comment_length = struct.unpack_from("<3H", directory, position + 28)
        raw_name = directory[position + _CENTRAL_HEADER_SIZE : position + _CENTRAL_HEADER_SIZE + name_length]
        count += 1
        if count > limits.max_entries:
            raise _too_many(_decode_raw_name(raw_name, flags), limits)
        if flags & _FLAG_UTF8:
            try:
                raw_name.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidBundle(
                    f"entry {_quote(_decode_raw_name(raw_name, flags))} is marked as having a UTF-8 name"
                    f" but its name is not valid UTF-8 — {_REUPLOAD} with a standard zip tool"
                ) from None
        position += _CENTRAL_HEADER_SIZE + name_length + extra_length + comment_length


def _hash_stream(stream: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@contextmanager
def _open_archive(
    path: Path, limits: Limits, *, hash_file: bool
) -> Iterator[tuple[zipfile.ZipFile, str, int]]:
    """Open an untrusted archive; yield it with the file's SHA-256 and size (empty/0 unless asked)."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise _corrupt_archive(exc) from exc
    with stream:
        try:
            digest, size = _hash_stream(stream) if hash_file else ("", 0)
            stream.seek(0)
            _check_signature(stream.read(4))
            _prescan(stream, limits)
            stream.seek(0)
            archive = zipfile.ZipFile(stream)
        except _READ_ERRORS as exc:
            raise _corrupt_archive(exc) from exc
        with archive:
            yield archive, digest, size


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Generator[bytes, None, None]:
    """Yield an entry's uncompressed bytes in chunks, translating every read failure."""
    try:
        with archive.open(info) as entry:
            while chunk := entry.read(_CHUNK):
                yield chunk
    except _READ_ERRORS as exc:
        raise _corrupt_entry(name, exc) from exc


def _size_mismatch(name: str, declared: int, actual: int) -> InvalidBundle:
    return InvalidBundle(
        f"entry {_quote(name)} declares {declared:,} bytes but contains {actual:,} — {_REUPLOAD}"
    )


# --------------------------------------------------------------------------------------------------
# Public API


def inspect_archive(path: Path, limits: Limits = Limits()) -> PackageInfo:
    """Validate an uploaded bundle archive and compute its manifest and package hash.

    Every entry is read (in chunks, never trusting declared sizes) and checked; any problem —
    not a zip, corrupt data, unsafe or duplicate paths, links, encryption, unsupported
    compression, limits exceeded, no files — raises :class:`InvalidBundle` naming the entry.
    The manifest is in central-directory order and leaves out ``__MACOSX/`` and ``.DS_Store``.
    """
    with _open_archive(path, limits, hash_file=True) as (archive, archive_sha256, archive_size):
        manifest = _scan(archive, limits)
    return PackageInfo(
        package_hash=package_hash(manifest),
        manifest=manifest,
        total_size=sum(entry.size for entry in manifest),
        archive_size=archive_size,
        archive_sha256=archive_sha256,
    )


def _scan(archive: zipfile.ZipFile, limits: Limits) -> tuple[ManifestEntry, ...]:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise _too_many(_entry_name(infos[limits.max_entries]), limits)
    layout = _Layout()
    names: list[str] = []
    declared_total = 0
    for info in infos:
        name = _entry_name(info)
        parts = _check_name(name)
        _check_entry(info, name, limits)
        layout.add(name, parts, name.endswith("/"))
        declared_total += info.file_size
        if declared_total > limits.max_total_size:
            raise InvalidBundle(
                f"entry {_quote(name)} brings the archive's uncompressed size past the"
                f" {_size(limits.max_total_size)} limit — make the bundle smaller or ask the server operator"
                " to raise the limit"
            )
        names.append(name)

    manifest: list[ManifestEntry] = []
    actual_total = 0
    for info, name in zip(infos, names, strict=True):
        digest = hashlib.sha256()
        size = 0
        with closing(_read_entry(archive, info, name)) as chunks:
            for chunk in chunks:
                size += len(chunk)
                actual_total += len(chunk)
                if actual_total > limits.max_total_size:
                    raise InvalidBundle(
                        f"entry {_quote(name)} unpacks past the {_size(limits.max_total_size)} limit for"
                        " the whole bundle — make the bundle smaller or ask the server operator to raise"
                        " the limit"
                    )
                if size > _MIB and size > limits.max_ratio * info.compress_size:
                    raise _bomb(name, size, info.compress_size, limits)
                digest.update(chunk)
        if size != info.file_size:
            raise _size_mismatch(name, info.file_size, size)
        if not is_ignored_path(name):
            manifest.append(ManifestEntry(path=name, sha256=digest.hexdigest(), size=size))
    if all(entry.is_directory for entry in manifest):
        raise _no_files()
    return tuple(manifest)


def zip_directory(
    source: Path, destination: Path, *, progress: Callable[[int, int], None] | None = None
) -> None:
    """Zip every regular file below ``source`` into ``destination``, reproducibly.

    Entry names are relative to ``source`` with ``/`` separators, in sorted order, without directory
    entries; timestamps are 1980-01-01 and permissions fixed, so the same tree always gives the same
    bytes. Symbolic links inside ``source`` are followed; links pointing outside it, dangling or
    looping links and unusable file names raise :class:`InvalidBundle`. ``progress(done, total)``
    is called with byte counts as the files are compressed. The archive is written to a temporary
    file next to ``destination`` and renamed into place when complete.
    """
    if not source.is_dir():
        raise InvalidBundle(f"{source} is not a folder — pass the folder that holds the bundle files")
    files = _collect_files(source.resolve(), destination.resolve())
    if not files:
        raise InvalidBundle(f"{source} contains no files — build the bundle into it first")
    total = sum(size for _, _, size in files)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    try:
        with os.fdopen(descriptor, "w+b") as raw, zipfile.ZipFile(raw, "w") as archive:
            done = 0
            if progress is not None:
                progress(done, total)
            for arcname, file_path, size in files:
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, whatever platform built the archive
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.file_size = size  # lets zipfile decide on zip64 up front
                with file_path.open("rb") as source_file, archive.open(info, "w") as entry:
                    while chunk := source_file.read(_CHUNK):
                        entry.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _collect_files(root: Path, skip: Path) -> list[tuple[str, Path, int]]:
    """List ``(entry name, file to read, size)`` for every regular file below ``root``, sorted by name."""
    found: list[tuple[str, Path, int]] = []

    def add(parts: tuple[str, ...], file_path: Path) -> None:
        arcname = "/".join(parts)
        problem = _unusable_file_name(parts)
        if problem:
            raise InvalidBundle(f"file {_quote(arcname)} {problem} — rename it and try again")
        if file_path.resolve() != skip:
            found.append((arcname, file_path, file_path.stat().st_size))

    def visit(directory: Path, prefix: tuple[str, ...], ancestors: frozenset[Path]) -> None:
        with os.scandir(directory) as listing:
            children = sorted(listing, key=lambda child: child.name)
        for child in children:
            parts = (*prefix, child.name)
            child_path = Path(child.path)
            if child.is_symlink():
                shown = _quote("/".join(parts))
                try:
                    target = child_path.resolve(strict=True)
                except (OSError, RuntimeError):
                    raise InvalidBundle(
                        f"{shown} is a symbolic link that points nowhere or loops — remove it or replace it"
                        " with the file it should point to"
                    ) from None
                if not target.is_relative_to(root):
                    raise InvalidBundle(
                        f"{shown} is a symbolic link to {target}, outside {root} — copy the file into the"
                        " bundle folder instead of linking to it"
                    )
                if target.is_dir():
                    if target in ancestors:
                        raise InvalidBundle(
                            f"{shown} is a symbolic link to a folder that contains it — remove it"
                        )
                    visit(target, parts, ancestors | {target})
                elif target.is_file():
                    add(parts, target)
            elif child.is_dir(follow_symlinks=False):
                visit(child_path, parts, ancestors | {child_path.resolve()})
            elif child.is_file(follow_symlinks=False):
                add(parts, child_path)

    visit(root, (), frozenset({root}))
    found.sort(key=lambda item: item[0])
    return found


def _unusable_file_name(parts: tuple[str, ...]) -> str | None:
    name = "/".join(parts)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    if any("\\" in part for part in parts):
        return 'has a backslash ("\\") in its name, which zip archives use for nothing else'
    if _DRIVE.match(name):
        return 'has a name that starts like a Windows drive ("C:")'
    return None


class OutputFile(Protocol):
    """What :func:`extract_archive` needs of a file it writes: ``write`` and use as a context manager."""

    def write(self, data: bytes, /) -> int: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Any: ...


def _default_make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _default_open_output(path: Path) -> OutputFile:
    return path.open("xb")  # never follows a link or overwrites


def extract_archive(
    path: Path,
    destination: Path,
    manifest: tuple[ManifestEntry, ...],
    *,
    limits: Limits = Limits(),
    make_dir: Callable[[Path], None] = _default_make_dir,
    open_output: Callable[[Path], OutputFile] = _default_open_output,
) -> None:
    """Unpack an archive into ``destination``, writing only what ``manifest`` lists.

    ``destination`` must not exist or be an empty folder (otherwise :class:`FileExistsError`).
    Each file's size and SHA-256 are checked while it is written; an entry missing from the
    manifest (other than ``__MACOSX/`` and ``.DS_Store``), a manifest entry missing from the
    archive, or any difference raises :class:`InvalidBundle` after removing the file being written.
    Files completed before the failure stay; the caller deletes ``destination``. ``limits`` only
    caps the number of entries (sizes are capped by the manifest). ``make_dir`` (create a folder and
    its parents) and ``open_output`` (create a new file for writing, failing if it exists) let a caller
    route every write through its own file layer, e.g. to fsync or to inject faults.
    """
    expected: dict[str, tuple[ManifestEntry, tuple[str, ...]]] = {}
    layout = _Layout()
    for entry in manifest:
        parts = _check_name(entry.path)
        layout.add(entry.path, parts, entry.is_directory)
        expected[entry.path] = (entry, parts)
    _prepare_destination(destination, make_dir)

    done: set[str] = set()
    with _open_archive(path, limits, hash_file=False) as (archive, _, _):
        for info in archive.infolist():
            name = _entry_name(info)
            _check_name(name)
            if name not in expected:
                if is_ignored_path(name):
                    continue
                raise InvalidBundle(
                    f"entry {_quote(name)} is not in the bundle's manifest — the archive changed after it was"
                    " checked; upload the release again"
                )
            if name in done:
                raise InvalidBundle(
                    f"entry {_quote(name)} appears more than once in the archive — {_REUPLOAD}"
                )
            done.add(name)
            entry, parts = expected[name]
            _check_entry(info, name, limits)
            target = destination.joinpath(*parts)
            if entry.is_directory:
                make_dir(target)
            else:
                make_dir(target.parent)
                _extract_file(archive, info, entry, target, open_output)
    for entry_path in expected:
        if entry_path not in done:
            raise InvalidBundle(
                f"entry {_quote(entry_path)} is listed in the bundle's manifest but missing from the archive"
                " — upload the release again"
            )


def _prepare_destination(destination: Path, make_dir: Callable[[Path], None]) -> None:
    if destination.exists():
        if not destination.is_dir() or any(destination.iterdir()):
            raise FileExistsError(
                f"{destination} must be an empty folder (or not exist yet) to unpack a bundle"
            )
    else:
        make_dir(destination)


def _extract_file(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    entry: ManifestEntry,
    target: Path,
    open_output: Callable[[Path], OutputFile],
) -> None:
    name = entry.path
    output = open_output(target)
    try:
        with output, closing(_read_entry(archive, info, name)) as chunks:
            digest = hashlib.sha256()
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > entry.size:
                    raise InvalidBundle(
                        f"entry {_quote(name)} is larger than the {entry.size:,} bytes the bundle's manifest"
                        " records — the stored archive was altered or damaged; upload the release again"
                    )
                digest.update(chunk)
                output.write(chunk)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise InvalidBundle(
                f"entry {_quote(name)} does not match the bundle's manifest ({size:,} bytes with SHA-256"
                f" {digest.hexdigest()[:12]}…, expected {entry.size:,} bytes with {entry.sha256[:12]}…)"
                " — the stored archive was altered or damaged; upload the release again"
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
