"""Bundle archives: hostile uploads, the reference package hash, deterministic zipping, safe unpacking.

Every archive is built in ``tmp_path`` with :mod:`zipfile` (patched byte-wise where zipfile refuses
to write something hostile). The package-hash vectors below were computed once by running the
reference Python snippet of the protocol notes (section 3.2) over these very archives; they are
fixed strings on purpose, so nothing here re-implements the algorithm under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import struct
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from overair.packages import (
    EMPTY_SHA256,
    InvalidBundle,
    Limits,
    ManifestEntry,
    NotAZipArchive,
    extract_archive,
    inspect_archive,
    package_hash,
    zip_directory,
)

EPOCH = (1980, 1, 1, 0, 0, 0)
MIB = 1024 * 1024

Entry = tuple[str | zipfile.ZipInfo, bytes]


def make_zip(path: Path, entries: Sequence[Entry], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write ``entries`` (name or ZipInfo, data) in order with fixed timestamps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicates we want
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, date_time=EPOCH)
                if not isinstance(name, zipfile.ZipInfo):
                    info.compress_type = compression
                archive.writestr(info, data)
    return path


def patch(path: Path, old: bytes, new: bytes, count: int = 2) -> Path:
    """Replace raw bytes (a name appears twice: local header and central directory)."""
    data = path.read_bytes()
    assert data.count(old) == count, (old, data.count(old))
    path.write_bytes(data.replace(old, new))
    return path


def quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def invalid(path: Path, limits: Limits = Limits()) -> str:
    with pytest.raises(InvalidBundle) as caught:
        inspect_archive(path, limits)
    assert str(caught.value) == caught.value.message
    return caught.value.message


# --------------------------------------------------------------------------------------------------
# Archives whose reference hashes are pinned


BUNDLE = b"console.log('hello, world');\n" * 40
LOGO = bytes(range(256)) * 8
README = "Grüße — ünïcödé\n".encode()


def cli_zip(path: Path) -> Path:
    """What the CodePush CLI uploads: files only, prefixed with the folder name."""
    return make_zip(
        path,
        [
            ("CodePush/index.android.bundle", BUNDLE),
            ("CodePush/assets/logo.png", LOGO),
            ("CodePush/assets/readme.txt", README),
        ],
    )


def zip_r_zip(path: Path) -> Path:
    """What ``zip -r`` makes of the same folder: with directory entries."""
    return make_zip(
        path,
        [
            ("CodePush/", b""),
            ("CodePush/index.android.bundle", BUNDLE),
            ("CodePush/assets/", b""),
            ("CodePush/assets/logo.png", LOGO),
            ("CodePush/assets/readme.txt", README),
        ],
    )


TRICKY_ENTRIES: list[tuple[str, bytes]] = [
    ("CodePush/", b""),
    ("CodePush/a.js", b"a"),
    ("CodePush/a.js.map", b"{}"),
    ("CodePush/ä.js", b"umlaut"),
    ("CodePush/😀.png", b"emoji"),
    ("CodePush/\ue000.txt", b"private use"),
    ("CodePush/ｆｕｌｌ.txt", b"full width"),
    ('CodePush/q"uote.txt', b"quote"),
    ("CodePush/ctl\x01.txt", b"control"),  # ASCII, so written without the UTF-8 flag: CP437 "☺"
    ("CodePush/ctl\x01é.txt", b"control, UTF-8"),  # flagged: the control character stays
    ("CodePush/sub/", b""),
    ("CodePush/sub/deep.txt", b"deep"),
    ("__MACOSX/CodePush/._a.js", b"resource fork"),
    (".DS_Store", b"finder"),
    ("CodePush/.DS_Store", b"finder"),
    (".codepushrelease", b"signature at the root"),
    ("CodePush/.codepushrelease", b"signature"),
]
TRICKY_IGNORED = {"__MACOSX/CodePush/._a.js", ".DS_Store", "CodePush/.DS_Store"}
TRICKY_PATHS = {"CodePush/ctl\x01.txt": "CodePush/ctl☺.txt"}  # entry name -> manifest path


def tricky_zip(path: Path) -> Path:
    return make_zip(path, list(TRICKY_ENTRIES))


CP437_RAW = b"CodePush/caf\x82\x01\x7f\xe1.txt"  # no UTF-8 flag: é, control byte, DEL, ß
CP437_NAME = "CodePush/café☺⌂ß.txt"  # how yauzl (hence the reference server) decodes it


def cp437_zip(path: Path) -> Path:
    make_zip(path, [("CodePush/index.ios.bundle", BUNDLE), ("CodePush/cafABCD.txt", b"cp437")])
    return patch(path, b"CodePush/cafABCD.txt", CP437_RAW)


# Computed once with the reference snippet of protocol notes section 3.2 (manifest_from_zip +
# package_hash), never with overair's code.
REFERENCE_HASHES = {
    "cli": "1271d77eb64fc3ca17e60ddf7231051e2baa5c053cd6f306a7a7a33f63c29d37",
    "zip_r": "d2a9fcb4b74d6bc3b40c6b62e68a77f034f18649b92672e3684bed6b3e1c47b0",
    "tricky": "126238319ad23a9ceafc95e162f4e34e715f5d8d5e2a1ef7454e1be9f9a36c4f",
    "cp437": "c4786cd890917f6cb33c7fe3407be60fd513910a1dae1c4b766b6a101c3c846a",
}
BUILDERS = {"cli": cli_zip, "zip_r": zip_r_zip, "tricky": tricky_zip, "cp437": cp437_zip}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_package_hash_matches_the_reference_server(tmp_path: Path, kind: str) -> None:
    info = inspect_archive(BUILDERS[kind](tmp_path / f"{kind}.zip"))
    assert info.package_hash == REFERENCE_HASHES[kind]
    assert package_hash(info.manifest) == REFERENCE_HASHES[kind]


def test_cli_and_zip_r_archives_differ_only_by_directory_entries(tmp_path: Path) -> None:
    cli = inspect_archive(cli_zip(tmp_path / "cli.zip"))
    zip_r = inspect_archive(zip_r_zip(tmp_path / "zip_r.zip"))
    assert [entry for entry in zip_r.manifest if not entry.is_directory] == list(cli.manifest)
    assert [entry.path for entry in zip_r.manifest if entry.is_directory] == ["CodePush/", "CodePush/assets/"]
    assert cli.package_hash != zip_r.package_hash  # the reference hashes directory entries


def test_tricky_manifest_keeps_order_and_signatures_but_skips_mac_metadata(tmp_path: Path) -> None:
    info = inspect_archive(tricky_zip(tmp_path / "tricky.zip"))
    expected = [
        ManifestEntry(TRICKY_PATHS.get(name, name), hashlib.sha256(data).hexdigest(), len(data))
        for name, data in TRICKY_ENTRIES
        if name not in TRICKY_IGNORED
    ]
    assert list(info.manifest) == expected
    assert info.manifest[0] == ManifestEntry("CodePush/", EMPTY_SHA256, 0)
    assert {".codepushrelease", "CodePush/.codepushrelease"} <= {entry.path for entry in info.manifest}
    assert info.total_size == sum(entry.size for entry in expected)


def test_cp437_name_is_decoded_like_yauzl(tmp_path: Path) -> None:
    info = inspect_archive(cp437_zip(tmp_path / "cp437.zip"))
    assert [entry.path for entry in info.manifest] == ["CodePush/index.ios.bundle", CP437_NAME]


def test_archive_digest_and_size_describe_the_file(tmp_path: Path) -> None:
    path = cli_zip(tmp_path / "cli.zip")
    info = inspect_archive(path)
    assert info.archive_size == path.stat().st_size
    assert info.archive_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.total_size == len(BUNDLE) + len(LOGO) + len(README)


def test_stored_entries_are_accepted(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "stored.zip", [("CodePush/main.jsbundle", BUNDLE)], zipfile.ZIP_STORED)
    assert inspect_archive(path).manifest == (
        ManifestEntry("CodePush/main.jsbundle", hashlib.sha256(BUNDLE).hexdigest(), len(BUNDLE)),
    )


# --------------------------------------------------------------------------------------------------
# Hostile or broken uploads: one test per problem, each message naming the entry


def test_plain_file_is_not_a_zip_archive(tmp_path: Path) -> None:
    path = tmp_path / "main.jsbundle"
    path.write_bytes(BUNDLE)
    with pytest.raises(NotAZipArchive) as caught:
        inspect_archive(path)
    assert "is not a zip archive" in caught.value.message


def test_empty_file_is_not_a_zip_archive(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(NotAZipArchive):
        inspect_archive(path)


def test_missing_file_is_reported_not_raised_as_os_error(tmp_path: Path) -> None:
    assert "could not be read" in invalid(tmp_path / "nope.zip")


def test_empty_archive_has_no_files(tmp_path: Path) -> None:
    assert "contains no files" in invalid(make_zip(tmp_path / "empty.zip", []))


def test_archive_of_folders_and_mac_metadata_has_no_files(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "dirs.zip", [("CodePush/", b""), ("__MACOSX/._x", b"x"), (".DS_Store", b"x")])
    assert "contains no files" in invalid(path)


def test_truncated_archive(tmp_path: Path) -> None:
    path = cli_zip(tmp_path / "cli.zip")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "truncated or corrupt" in invalid(path)


def test_crc_mismatch_names_the_entry(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "crc.zip", [("CodePush/main.jsbundle", b"0123456789")], zipfile.ZIP_STORED)
    patch(path, b"0123456789", b"0123456780", count=1)
    message = invalid(path)
    assert quoted("CodePush/main.jsbundle") in message
    assert "CRC-32" in message


def test_damaged_deflate_data_names_the_entry(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "zlib.zip", [("CodePush/main.jsbundle", os.urandom(4096))])
    data = bytearray(path.read_bytes())
    start = 30 + len("CodePush/main.jsbundle")  # first (only) local header, no extra field
    data[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    message = invalid(path)
    assert quoted("CodePush/main.jsbundle") in message
    assert "truncated or corrupt" in message


def test_damaged_local_header_names_the_entry(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "header.zip", [("a.js", b"a"), ("b.js", b"b")])
    data = path.read_bytes()
    second = data.index(b"PK\x03\x04", 4)
    path.write_bytes(data[:second] + b"XX\x03\x04" + data[second + 4 :])
    assert quoted("b.js") in invalid(path)


def test_declared_size_larger_than_content_names_the_entry(tmp_path: Path) -> None:
    content = b"x" * 50
    path = make_zip(tmp_path / "size.zip", [("CodePush/a.js", content)])
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<L", data, central + 24, 100)  # uncompressed size in the central directory
    path.write_bytes(bytes(data))
    message = invalid(path)
    assert quoted("CodePush/a.js") in message
    assert "declares 100 bytes but contains 50" in message


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/evil.dll", "c:evil.js", "\\\\server\\share\\x"])
def test_absolute_paths_are_refused(tmp_path: Path, name: str) -> None:
    message = invalid(make_zip(tmp_path / "abs.zip", [("CodePush/ok.js", b"ok"), (name, b"evil")]))
    assert f"entry {quoted(name)} is an absolute path" in message
    assert "relative to the bundle root" in message


@pytest.mark.parametrize("name", ["../etc/passwd", "CodePush/../../x.js", "__MACOSX/../../evil"])
def test_dot_dot_segments_are_refused(tmp_path: Path, name: str) -> None:
    message = invalid(make_zip(tmp_path / "dotdot.zip", [("CodePush/ok.js", b"ok"), (name, b"evil")]))
    assert message == (
        f'entry {quoted(name)} escapes the bundle folder ("..") — rebuild the archive with paths relative'
        " to the bundle root"
    )


def test_backslashes_are_refused(tmp_path: Path) -> None:
    name = "CodePush\\index.android.bundle"
    message = invalid(make_zip(tmp_path / "backslash.zip", [(name, BUNDLE)]))
    assert quoted(name) in message
    assert "backslash" in message


def test_nul_in_name_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "nul.zip", [("CodePush/aXb.js", b"x")])
    patch(path, b"CodePush/aXb.js", b"CodePush/a\x00b.js")
    assert quoted("CodePush/a\x00b.js") in invalid(path)


def test_name_that_names_nothing_is_refused(tmp_path: Path) -> None:
    message = invalid(make_zip(tmp_path / "dot.zip", [("CodePush/a.js", b"a"), ("./", b"")]))
    assert quoted("./") in message
    assert "does not name a file or folder" in message


def test_invalid_utf8_name_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "utf8.zip", [("CodePush/é.js", b"x")])
    patch(path, "é".encode(), b"\xc3\x28")
    message = invalid(path)
    assert "CodePush/\ufffd(.js" in message
    assert "not valid UTF-8" in message


def test_symlinks_are_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("CodePush/passwd", date_time=EPOCH)
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    message = invalid(make_zip(tmp_path / "link.zip", [("CodePush/a.js", b"a"), (link, b"/etc/passwd")]))
    assert f"entry {quoted('CodePush/passwd')} is a symbolic link" in message


def test_special_files_are_refused(tmp_path: Path) -> None:
    fifo = zipfile.ZipInfo("CodePush/pipe", date_time=EPOCH)
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    message = invalid(make_zip(tmp_path / "fifo.zip", [(fifo, b"")]))
    assert quoted("CodePush/pipe") in message
    assert "special file" in message


def test_exact_duplicates_are_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "dup.zip", [("CodePush/a.js", b"one"), ("CodePush/a.js", b"two")])
    assert f"entry {quoted('CodePush/a.js')} appears more than once" in invalid(path)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("CodePush/a.js", "CodePush/./a.js"),
        ("CodePush/a.js", "CodePush//a.js"),
        ("CodePush/e\u0301.js", "CodePush/\u00e9.js"),  # NFD and NFC spellings of é
        ("CodePush/sub/", "CodePush/./sub/"),
    ],
)
def test_duplicates_after_normalisation_are_refused(tmp_path: Path, first: str, second: str) -> None:
    data = b"" if first.endswith("/") else b"x"
    message = invalid(make_zip(tmp_path / "dup.zip", [(first, data), (second, data)]))
    expected = f"entry {quoted(second)} appears more than once in the archive (also as {quoted(first)},"
    assert expected in message


@pytest.mark.parametrize(
    ("first", "second"),
    [("CodePush/a", "CodePush/a/b.js"), ("CodePush/a/b.js", "CodePush/a"), ("CodePush/a/", "CodePush/a")],
)
def test_file_and_folder_clashes_are_refused(tmp_path: Path, first: str, second: str) -> None:
    entries = [(name, b"" if name.endswith("/") else b"x") for name in (first, second)]
    message = invalid(make_zip(tmp_path / "clash.zip", entries))
    assert f"entry {quoted(second)} clashes with entry {quoted(first)}" in message


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "many.zip", [(f"CodePush/{index}.js", b"x") for index in range(5)])
    message = invalid(path, Limits(max_entries=4))
    assert "more than 4 entries" in message
    assert quoted("CodePush/4.js") in message
    assert len(inspect_archive(path, Limits(max_entries=5)).manifest) == 5


def test_declared_total_size_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", [("CodePush/a.bin", b"a" * 600), ("CodePush/b.bin", b"b" * 600)])
    message = invalid(path, Limits(max_total_size=1000))
    assert quoted("CodePush/b.bin") in message
    assert "limit" in message
    assert inspect_archive(path, Limits(max_total_size=1200)).total_size == 1200


def test_compression_bomb_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bomb.zip", [("CodePush/a.js", b"a"), ("CodePush/zeros.bin", bytes(4 * MIB))])
    message = invalid(path)
    assert quoted("CodePush/zeros.bin") in message
    assert "zip bomb" in message
    assert inspect_archive(path, Limits(max_ratio=10_000)).total_size == 4 * MIB + 1


def test_highly_compressible_small_entries_are_fine(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "small.zip", [("CodePush/zeros.bin", bytes(MIB))])
    assert inspect_archive(path).total_size == MIB


def test_encrypted_entries_are_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "secret.zip", [("CodePush/a.js", b"a"), ("CodePush/secret.js", b"s")])
    data = bytearray(path.read_bytes())
    local = data.rindex(b"PK\x03\x04")
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<H", data, local + 6, 0x1)
    struct.pack_into("<H", data, central + 8, 0x1)
    path.write_bytes(bytes(data))
    assert f"entry {quoted('CodePush/secret.js')} is encrypted" in invalid(path)


def test_unsupported_compression_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bzip2.zip", [("CodePush/a.js", b"a" * 100)], zipfile.ZIP_BZIP2)
    message = invalid(path)
    assert quoted("CodePush/a.js") in message
    assert "bzip2 compression" in message


def test_folder_entry_with_data_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "dirdata.zip", [("CodePush/a.js", b"a"), ("CodePush/dirX", b"data")])
    patch(path, b"CodePush/dirX", b"CodePush/dir/")
    assert f"folder entry {quoted('CodePush/dir/')} contains data" in invalid(path)


def test_stored_entry_with_inconsistent_sizes_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "stored.zip", [("CodePush/a.js", b"abcdef")], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<L", data, central + 20, 3)  # compressed size
    path.write_bytes(bytes(data))
    assert quoted("CodePush/a.js") in invalid(path)


def test_damaged_archives_never_escape_as_tracebacks(tmp_path: Path) -> None:
    original = tricky_zip(tmp_path / "tricky.zip").read_bytes()
    path = tmp_path / "damaged.zip"
    rng = random.Random(1234)
    outcomes = set()
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(4, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data[: rng.choice([len(data), rng.randrange(4, len(data))])]))
        try:
            inspect_archive(path)
            outcomes.add("accepted")
        except InvalidBundle:
            outcomes.add("refused")
    assert "refused" in outcomes


def zip64_zip(path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    with monkeypatch.context() as patched:
        patched.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # forces the zip64 end records
        make_zip(path, [(f"CodePush/{index}.js", b"x") for index in range(count)])
    assert b"PK\x06\x06" in path.read_bytes()
    return path


@pytest.mark.parametrize("zip64", [False, True])
def test_entry_count_is_checked_before_zipfile_parses_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64: bool
) -> None:
    path = tmp_path / "many.zip"
    if zip64:
        zip64_zip(path, 5, monkeypatch)
    else:
        make_zip(path, [(f"CodePush/{index}.js", b"x") for index in range(5)])
    assert len(inspect_archive(path).manifest) == 5

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile parsed the central directory")

    monkeypatch.setattr(zipfile, "ZipFile", refuse)
    assert quoted("CodePush/4.js") in invalid(path, Limits(max_entries=4))


# --------------------------------------------------------------------------------------------------
# zip_directory


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "index.android.bundle": BUNDLE,
        "assets/logo.png": LOGO,
        "assets/docs/readme.txt": README,
        "assets/ünïcödé 😀.txt": b"unicode",
        "assets/empty.txt": b"",
        ".codepushrelease": b"signature",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "assets/empty-folder").mkdir()
    return files


def test_zip_directory_is_deterministic(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    make_tree(tree)
    zip_directory(tree, tmp_path / "first.zip")
    os.utime(tree / "assets/logo.png", (1_700_000_000, 1_700_000_000))
    (tree / "index.android.bundle").chmod(0o755)
    zip_directory(tree, tmp_path / "second.zip")
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.zip") as archive:
        assert all(info.date_time == EPOCH for info in archive.infolist())


def test_zip_directory_round_trips_the_tree_and_its_hash(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    files = make_tree(tree)
    archive = tmp_path / "bundle.zip"
    zip_directory(tree, archive)

    info = inspect_archive(archive)
    expected = tuple(
        ManifestEntry(name, hashlib.sha256(data).hexdigest(), len(data))
        for name, data in sorted(files.items())
    )
    assert info.manifest == expected  # sorted, files only, names relative to the folder
    assert info.package_hash == package_hash(expected)

    out = tmp_path / "out"
    extract_archive(archive, out, info.manifest)
    unpacked = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert unpacked == files


def test_zip_directory_reports_progress(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    total = sum(len(data) for data in make_tree(tree).values())
    calls: list[tuple[int, int]] = []
    zip_directory(tree, tmp_path / "bundle.zip", progress=lambda done, of: calls.append((done, of)))
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_zip_directory_follows_links_inside_the_folder(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    (tree / "assets").mkdir(parents=True)
    (tree / "assets/logo.png").write_bytes(LOGO)
    (tree / "logo-link.png").symlink_to("assets/logo.png")
    (tree / "assets-link").symlink_to("assets", target_is_directory=True)
    zip_directory(tree, tmp_path / "bundle.zip")
    info = inspect_archive(tmp_path / "bundle.zip")
    paths = [entry.path for entry in info.manifest]
    assert paths == ["assets-link/logo.png", "assets/logo.png", "logo-link.png"]


def test_zip_directory_refuses_links_leaving_the_folder(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (tree / "index.android.bundle").write_bytes(BUNDLE)
    (tree / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidBundle) as caught:
        zip_directory(tree, tmp_path / "bundle.zip")
    assert quoted("leak.txt") in caught.value.message
    assert "outside" in caught.value.message
    assert not (tmp_path / "bundle.zip").exists()
    assert list(tmp_path.glob("*.part")) == []


def test_zip_directory_refuses_dangling_and_looping_links(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    (tree / "index.android.bundle").write_bytes(BUNDLE)
    (tree / "dangling").symlink_to(tree / "missing")
    with pytest.raises(InvalidBundle, match='"dangling" is a symbolic link that points nowhere'):
        zip_directory(tree, tmp_path / "bundle.zip")
    (tree / "dangling").unlink()
    (tree / "sub").mkdir()
    (tree / "sub/loop").symlink_to(tree, target_is_directory=True)
    with pytest.raises(InvalidBundle, match="sub/loop"):
        zip_directory(tree, tmp_path / "bundle.zip")


def test_zip_directory_refuses_empty_folder_and_bad_names(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    with pytest.raises(InvalidBundle, match="contains no files"):
        zip_directory(tree, tmp_path / "bundle.zip")
    (tree / "back\\slash.js").write_bytes(b"x")
    with pytest.raises(InvalidBundle, match="backslash"):
        zip_directory(tree, tmp_path / "bundle.zip")
    with pytest.raises(InvalidBundle, match="not a folder"):
        zip_directory(tree / "back\\slash.js", tmp_path / "bundle.zip")


def test_zip_directory_skips_its_own_output(tmp_path: Path) -> None:
    tree = tmp_path / "CodePush"
    tree.mkdir()
    (tree / "index.android.bundle").write_bytes(BUNDLE)
    zip_directory(tree, tree / "bundle.zip")
    zip_directory(tree, tree / "bundle.zip")
    assert [entry.path for entry in inspect_archive(tree / "bundle.zip").manifest] == ["index.android.bundle"]


# --------------------------------------------------------------------------------------------------
# extract_archive


def test_extract_creates_folder_entries_and_skips_mac_metadata(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "bundle.zip",
        [
            ("CodePush/", b""),
            ("CodePush/empty/", b""),
            ("CodePush/main.jsbundle", BUNDLE),
            ("__MACOSX/CodePush/._main.jsbundle", b"fork"),
            ("CodePush/.DS_Store", b"finder"),
        ],
    )
    info = inspect_archive(path)
    out = tmp_path / "out"
    extract_archive(path, out, info.manifest)
    assert (out / "CodePush/empty").is_dir()
    assert (out / "CodePush/main.jsbundle").read_bytes() == BUNDLE
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "CodePush",
        "CodePush/empty",
        "CodePush/main.jsbundle",
    ]


def test_extract_writes_cp437_names_as_the_manifest_spells_them(tmp_path: Path) -> None:
    path = cp437_zip(tmp_path / "cp437.zip")
    out = tmp_path / "out"
    extract_archive(path, out, inspect_archive(path).manifest)
    assert (out / CP437_NAME).read_bytes() == b"cp437"


def test_extract_refuses_a_tampered_archive(tmp_path: Path) -> None:
    original = make_zip(tmp_path / "original.zip", [("CodePush/a.js", b"a" * 9), ("CodePush/b.js", b"good!")])
    manifest = inspect_archive(original).manifest
    tampered = make_zip(tmp_path / "tampered.zip", [("CodePush/a.js", b"a" * 9), ("CodePush/b.js", b"evil!")])
    out = tmp_path / "out"
    with pytest.raises(InvalidBundle) as caught:
        extract_archive(tampered, out, manifest)
    assert f"entry {quoted('CodePush/b.js')} does not match the bundle's manifest" in caught.value.message
    assert not (out / "CodePush/b.js").exists()


def test_extract_stops_writing_an_entry_longer_than_the_manifest_says(tmp_path: Path) -> None:
    manifest = (ManifestEntry("a.bin", hashlib.sha256(b"x" * 10).hexdigest(), 10),)
    path = make_zip(tmp_path / "long.zip", [("a.bin", b"x" * 1000)])
    out = tmp_path / "out"
    with pytest.raises(InvalidBundle, match="larger than the 10 bytes"):
        extract_archive(path, out, manifest)
    assert not (out / "a.bin").exists()


def test_extract_refuses_entries_missing_from_either_side(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bundle.zip", [("a.js", b"a"), ("b.js", b"b")])
    manifest = inspect_archive(path).manifest
    with pytest.raises(InvalidBundle) as caught:
        extract_archive(path, tmp_path / "out1", manifest[:1])
    assert f"entry {quoted('b.js')} is not in the bundle's manifest" in caught.value.message
    extra = ManifestEntry("c.js", hashlib.sha256(b"c").hexdigest(), 1)
    with pytest.raises(InvalidBundle) as caught:
        extract_archive(path, tmp_path / "out2", (*manifest, extra))
    assert f"entry {quoted('c.js')} is listed in the bundle's manifest but missing" in caught.value.message


def test_extract_refuses_unsafe_manifest_paths(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bundle.zip", [("a.js", b"a")])
    manifest = (ManifestEntry("../a.js", hashlib.sha256(b"a").hexdigest(), 1),)
    with pytest.raises(InvalidBundle, match=r"escapes the bundle folder"):
        extract_archive(path, tmp_path / "out", manifest)
    assert not (tmp_path / "out").exists()


def test_extract_refuses_hostile_entries_even_if_ignored(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bundle.zip", [("a.js", b"a"), ("__MACOSX/../../evil", b"x")])
    manifest = (ManifestEntry("a.js", hashlib.sha256(b"a").hexdigest(), 1),)
    with pytest.raises(InvalidBundle, match="escapes the bundle folder"):
        extract_archive(path, tmp_path / "out", manifest)
    assert not (tmp_path / "evil").exists()


def test_extract_needs_an_empty_destination(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bundle.zip", [("a.js", b"a")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.js").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        extract_archive(path, out, inspect_archive(path).manifest)
    assert (out / "a.js").read_bytes() == b"old"


def test_extract_translates_a_corrupt_archive(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bundle.zip", [("a.js", b"0123456789")], zipfile.ZIP_STORED)
    manifest = inspect_archive(path).manifest
    patch(path, b"0123456789", b"0123456780", count=1)
    with pytest.raises(InvalidBundle) as caught:
        extract_archive(path, tmp_path / "out", manifest)
    assert quoted("a.js") in caught.value.message
    assert not (tmp_path / "out/a.js").exists()
