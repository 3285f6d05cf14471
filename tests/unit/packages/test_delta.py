"""Binary deltas (overair.packages.delta): the format, applying into a new folder, hostile input.

The property test at the end makes random file trees and random edits and checks that applying the delta
to the old tree gives exactly the new tree.
"""

from __future__ import annotations

import json
import os
import random
import struct
import zlib
from pathlib import Path

import hdiffpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overair.packages import (
    EMPTY_SHA256,
    InvalidBundle,
    InvalidDelta,
    Limits,
    ManifestEntry,
    apply_delta,
    build_delta,
    build_delta_between,
    package_hash,
    read_delta,
    tree_manifest,
    verify_tree,
)
from overair.packages.delta import MAGIC, patch_sizes


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def header_of(delta: bytes) -> dict:
    (length,) = struct.unpack_from(">I", delta, 9)
    return json.loads(zlib.decompress(delta[13 : 13 + length]))


def with_header(delta: bytes, header: dict, payloads: bytes | None = None) -> bytes:
    (length,) = struct.unpack_from(">I", delta, 9)
    packed = zlib.compress(json.dumps(header).encode())
    rest = delta[13 + length :] if payloads is None else payloads
    return MAGIC + bytes([1]) + struct.pack(">I", len(packed)) + packed + rest


JS = b"".join(b"function f%d(a){return a*%d+'%s'}\n" % (i, i, b"x" * (i % 7)) for i in range(3000))
OLD = {
    "CodePush/main.jsbundle": JS,
    "CodePush/assets/logo.png": bytes(random.Random(1).randbytes(5000)),
    "CodePush/assets/old.png": b"old asset",
    "CodePush/config.json": b'{"a":1}',
}


@pytest.fixture
def old_tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "old", OLD)


def roundtrip(tmp_path: Path, old: Path, new_files: dict[str, bytes]) -> tuple[bytes, Path]:
    new = write_tree(tmp_path / "new", new_files)
    delta = build_delta_between(old, new)
    out = tmp_path / "out"
    apply_delta(old, delta, out)
    verify_tree(out, tree_manifest(new))
    assert read_tree(out) == new_files
    return delta, out


# -- building and applying -----------------------------------------------------------------------------------


def test_a_one_string_hotfix_costs_a_few_hundred_bytes(tmp_path, old_tree):
    new = dict(OLD, **{"CodePush/main.jsbundle": JS.replace(b"f1234(", b"g1234(")})
    delta, _ = roundtrip(tmp_path, old_tree, new)
    assert len(delta) < 400, len(delta)
    ops = header_of(delta)["ops"]
    assert [(o["op"], o["path"]) for o in ops] == [("patch", "CodePush/main.jsbundle")]


def test_unchanged_renamed_added_and_deleted_files(tmp_path, old_tree):
    new = {
        "CodePush/main.jsbundle": JS,  # unchanged: kept implicitly
        "CodePush/img/logo.png": OLD["CodePush/assets/logo.png"],  # moved: copied by content
        "CodePush/fresh.txt": b"brand new",
        "CodePush/config.json": b'{"a":2}',
    }
    delta, _ = roundtrip(tmp_path, old_tree, new)
    header = header_of(delta)
    kinds = {o["path"]: o["op"] for o in header["ops"]}
    assert kinds == {
        "CodePush/img/logo.png": "copy",
        "CodePush/fresh.txt": "add",
        "CodePush/config.json": "add",
    }
    assert header["deleted"] == ["CodePush/assets/logo.png", "CodePush/assets/old.png"]
    assert header["base"] == package_hash(tree_manifest(old_tree))
    assert header["target"] == package_hash(tree_manifest(tmp_path / "new"))
    assert read_tree(old_tree) == OLD  # the base is never modified


def test_a_file_that_moved_and_changed_is_patched_from_its_old_place(tmp_path, old_tree):
    new = dict(OLD)
    del new["CodePush/main.jsbundle"]
    new["CodePush/js/main.jsbundle"] = JS + b"console.log(1)\n"
    delta, _ = roundtrip(tmp_path, old_tree, new)
    (op,) = header_of(delta)["ops"]
    assert (op["op"], op["from"]) == ("patch", "CodePush/main.jsbundle")
    assert len(delta) < 500


def test_empty_files_and_identical_trees(tmp_path, old_tree):
    roundtrip(tmp_path, old_tree, dict(OLD, **{"CodePush/empty": b""}))
    same = build_delta_between(old_tree, old_tree)
    assert header_of(same)["ops"] == [] and header_of(same)["deleted"] == []


def test_folder_entries_of_the_target_are_created(tmp_path, old_tree):
    new = write_tree(tmp_path / "new", OLD)
    target = (*tree_manifest(new), ManifestEntry("CodePush/empty-dir/", EMPTY_SHA256, 0))
    delta = build_delta(tree_manifest(old_tree), target, lambda e: b"", lambda e: (new / e.path).read_bytes())
    out = tmp_path / "out"
    apply_delta(old_tree, delta, out)
    verify_tree(out, target)
    assert (out / "CodePush" / "empty-dir").is_dir()


def test_apply_refuses_a_destination_that_has_files(tmp_path, old_tree):
    delta = build_delta_between(old_tree, old_tree)
    busy = write_tree(tmp_path / "busy", {"x": b"1"})
    with pytest.raises(FileExistsError):
        apply_delta(old_tree, delta, busy)


# -- verify_tree ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root: (root / "CodePush/config.json").write_bytes(b'{"a":9}'), "does not match"),
        (lambda root: (root / "CodePush/config.json").unlink(), "is missing"),
        (lambda root: (root / "CodePush/stray.js").write_bytes(b"x"), "not in the manifest"),
    ],
)
def test_verify_tree_names_the_first_difference(tmp_path, old_tree, change, message):
    manifest = tree_manifest(old_tree)
    change(old_tree)
    with pytest.raises(InvalidBundle, match=message):
        verify_tree(old_tree, manifest)


# -- hostile and broken deltas -------------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path, old_tree) -> bytes:
    new = write_tree(
        tmp_path / "new",
        dict(OLD, **{"CodePush/main.jsbundle": JS + b"//x", "CodePush/new.txt": b"new file " * 10}),
    )
    return build_delta_between(old_tree, new)


def patched(good: bytes, edit) -> bytes:
    header = header_of(good)
    edit(header)
    return with_header(good, header)


HOSTILE = {
    "empty": lambda good: b"",
    "not a delta": lambda good: b"PK\x03\x04" + good[4:],
    "future version": lambda good: good[:8] + bytes([3]) + good[9:],
    "truncated header": lambda good: good[:20],
    "truncated payload": lambda good: good[:-3],
    "trailing bytes": lambda good: good + b"junk",
    "huge header length": lambda good: good[:9] + struct.pack(">I", 2**31) + good[13:],
    "garbage header": lambda good: with_header(good, {})[:13] + b"\x00" * 8,
    "header not an object": lambda good: patched(good, lambda h: h.clear()),
    "path traversal": lambda good: patched(good, lambda h: h["ops"][0].update(path="../../etc/passwd")),
    "absolute path": lambda good: patched(good, lambda h: h["ops"][0].update(path="/etc/passwd")),
    "backslash": lambda good: patched(good, lambda h: h["ops"][0].update(path="a\\..\\b")),
    "traversal in source": lambda good: patched(good, lambda h: h["ops"][0].update({"from": "../x"})),
    "duplicate path": lambda good: patched(good, lambda h: h["ops"].append(dict(h["ops"][0], length=0))),
    "file and folder clash": lambda good: patched(
        good, lambda h: h["folders"].append(h["ops"][0]["path"] + "/")
    ),
    "huge declared size": lambda good: patched(good, lambda h: h["ops"][0].update(size=2**40)),
    "negative size": lambda good: patched(good, lambda h: h["ops"][0].update(size=-1)),
    "bad hash": lambda good: patched(good, lambda h: h["ops"][0].update(sha256="ab" * 10)),
    "unknown op": lambda good: patched(good, lambda h: h["ops"][0].update(op="exec")),
    "extra field": lambda good: patched(good, lambda h: h["ops"][0].update(mode=0o777)),
    "length past the end": lambda good: patched(good, lambda h: h["ops"][-1].update(length=10**6)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_deltas_are_refused_before_anything_is_written(tmp_path, old_tree, good, name):
    bad = HOSTILE[name](good)
    out = tmp_path / "out"
    with pytest.raises(InvalidDelta) as caught:
        apply_delta(old_tree, bad, out)
    assert "the delta is unusable" in caught.value.message
    assert not out.exists()


def test_limits_cap_what_a_delta_may_create(old_tree, good):
    with pytest.raises(InvalidDelta, match="over the limit"):
        read_delta(good, Limits(max_total_size=100))
    with pytest.raises(InvalidDelta, match="more than 1 entries"):
        read_delta(good, Limits(max_entries=1))


def test_a_delta_for_another_base_is_refused(tmp_path, old_tree, good):
    other = write_tree(tmp_path / "other", dict(OLD, **{"CodePush/main.jsbundle": b"something else"}))
    with pytest.raises(InvalidDelta, match="not the one the delta was made from"):
        apply_delta(other, good, tmp_path / "out")
    (old_tree / "CodePush/main.jsbundle").unlink()
    with pytest.raises(InvalidDelta, match="has no file"):
        apply_delta(old_tree, good, tmp_path / "out2")


def test_a_damaged_payload_is_refused(tmp_path, old_tree, good):
    header = header_of(good)
    (length,) = struct.unpack_from(">I", good, 9)
    payloads = bytearray(good[13 + length :])
    payloads[len(payloads) // 2] ^= 0xFF
    bad = with_header(good, header, bytes(payloads))
    with pytest.raises(InvalidDelta, match=r"damaged|does not come out|not a valid patch|declares"):
        apply_delta(old_tree, bad, tmp_path / "out")


def test_a_patch_that_declares_a_huge_output_is_refused_before_it_runs(tmp_path, old_tree):
    old = OLD["CodePush/config.json"]
    real = hdiffpatch.diff(old, b'{"a":2}', compression="zstd")
    assert patch_sizes(real) == (7, len(old))
    # the same patch claiming 2**40 output bytes
    end = real.index(b"\x00", 8) + 1
    lie = real[:end] + bytes([0x80 | 0x20, 0x80, 0x80, 0x80, 0x80, 0x00]) + real[end + 1 :]
    assert patch_sizes(lie)[0] == 2**40
    new = write_tree(tmp_path / "new", dict(OLD, **{"CodePush/config.json": b'{"a":2}'}))
    delta = build_delta_between(old_tree, new)
    header = header_of(delta)
    (op,) = header["ops"]
    op["length"] = len(lie)
    with pytest.raises(InvalidDelta, match="declares"):
        apply_delta(old_tree, with_header(delta, header, lie), tmp_path / "out")


def test_a_link_in_the_base_is_refused(tmp_path, old_tree, good):
    os.symlink("/etc/passwd", old_tree / "CodePush" / "link")
    with pytest.raises(InvalidDelta, match="link"):
        apply_delta(old_tree, good, tmp_path / "out")


# -- the property: apply(old, build(old, new)) == new --------------------------------------------------------

NAMES = st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..")
)
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda seed, n: random.Random(seed).randbytes(n), st.integers(0, 2**32), st.integers(0, 5000)),
    st.builds(lambda word, n: word * n, st.binary(min_size=1, max_size=20), st.integers(1, 400)),
)
TREES = st.dictionaries(PATHS, CONTENT, max_size=12)


def consistent(files: dict[str, bytes]) -> dict[str, bytes]:
    """Drop paths that would be both a file and a folder (or clash once case is ignored)."""
    kept: dict[str, bytes] = {}
    seen: set[str] = set()
    for path in sorted(files, key=len):
        folded = path.casefold()
        parents = {"/".join(folded.split("/")[:i]) for i in range(1, folded.count("/") + 1)}
        if folded in seen or parents & seen or any(s.startswith(folded + "/") for s in seen):
            continue
        seen.add(folded)
        kept[path] = files[path]
    return kept


@st.composite
def edits(draw, old: dict[str, bytes]) -> dict[str, bytes]:
    new = dict(old)
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["change", "add", "delete", "rename", "noise", "copy"]))
        names = sorted(new)
        if kind == "add" or not names:
            new[draw(PATHS)] = draw(CONTENT)
            continue
        name = draw(st.sampled_from(names))
        if kind == "change":
            data = bytearray(new[name])
            position = draw(st.integers(0, len(data)))
            data[position:position] = draw(st.binary(min_size=1, max_size=30))
            new[name] = bytes(data)
        elif kind == "delete":
            del new[name]
        elif kind == "rename":
            new[draw(PATHS)] = new.pop(name)
        elif kind == "copy":
            new[draw(PATHS)] = new[name]
        else:  # binary noise over part of the file
            data = bytearray(new[name])
            if data:
                start = draw(st.integers(0, len(data) - 1))
                noise = draw(st.binary(min_size=1, max_size=64))
                data[start : start + len(noise)] = noise
            new[name] = bytes(data)
    return new


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_applying_a_delta_to_the_old_tree_gives_exactly_the_new_tree(tmp_path_factory, data):
    old_files = consistent(data.draw(TREES, label="old"))
    new_files = consistent(data.draw(edits(old_files), label="new"))
    root = tmp_path_factory.mktemp("case")
    old = write_tree(root / "old", old_files)
    new = write_tree(root / "new", new_files)
    delta = build_delta_between(old, new)
    out = root / "out"
    parsed = apply_delta(old, delta, out)
    assert read_tree(out) == new_files
    assert read_tree(old) == old_files
    verify_tree(out, tree_manifest(new))
    assert parsed.target == package_hash(tree_manifest(new))
