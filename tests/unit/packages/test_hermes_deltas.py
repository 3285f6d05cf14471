"""The Hermes bytecode transform (overair.packages.hermes) and the version-2 deltas that use it, on real
bytecode: react-native 0.74.7's own ``hermesc`` compiles generated JavaScript."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import hdiffpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import hermes_compile, hermes_edit, hermes_program
from overair.packages import (
    InvalidDelta,
    apply_delta,
    build_delta_between,
    hermes,
    read_delta,
    tree_manifest,
    verify_tree,
)
from overair.packages.delta import HERMES, PLAIN_VERSION, VERSION

pytestmark = pytest.mark.slow  # needs the npm react-native package (make npm-deps)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hermes")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    functions=st.integers(1, 120),
    long_strings=st.booleans(),
    huge=st.integers(0, 2),
)
def test_the_transform_round_trips_real_bytecode(
    workdir: Path, seed: int, functions: int, long_strings: bool, huge: int
) -> None:
    data = hermes_compile(hermes_program(seed, functions, long_strings, huge), workdir / "p")
    assert hermes.bytecode_version(data) == 96
    form = hermes.to_delta_form(data)
    assert len(form) == len(data)
    assert hermes.from_delta_form(form) == data
    assert hermes.transformable(data) == form


def test_one_insertion_patches_smaller_in_the_delta_form(workdir: Path) -> None:
    source = hermes_program(7, 300)
    old = hermes_compile(source, workdir / "old")
    new = hermes_compile(hermes_edit(source, 3), workdir / "new")
    plain = hdiffpatch.diff(old, new, compression="zstd")
    transformed = hdiffpatch.diff(hermes.to_delta_form(old), hermes.to_delta_form(new), compression="zstd")
    assert len(transformed) < len(plain)


def tree(root: Path, bundle: bytes) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.android.bundle").write_bytes(bundle)
    (root / "assets" / "logo.png").write_bytes(bytes(range(256)) * 8)
    return root


def test_a_bytecode_delta_is_version_2_smaller_and_applies_to_the_exact_target(
    workdir: Path, tmp_path: Path
) -> None:
    source = hermes_program(11, 400)
    old = tree(tmp_path / "old", hermes_compile(source, workdir / "o"))
    new = tree(tmp_path / "new", hermes_compile(hermes_edit(source, 5), workdir / "n"))
    plain = build_delta_between(old, new)
    transformed = build_delta_between(old, new, transforms=True)
    assert plain[8] == PLAIN_VERSION and transformed[8] == VERSION
    (op,) = read_delta(transformed).ops
    assert op.kind == "patch" and op.transform == HERMES
    assert len(transformed) < len(plain)
    apply_delta(old, transformed, tmp_path / "out")
    verify_tree(tmp_path / "out", tree_manifest(new))


def test_without_bytecode_a_delta_stays_version_1(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", b"var a = 1;\n" * 1000)
    new = tree(tmp_path / "new", b"var a = 2;\n" * 1000)
    assert build_delta_between(old, new, transforms=True) == build_delta_between(old, new)


def damage(data: bytes, how: str) -> bytes:
    changed = bytearray(data)
    if how == "unknown version":
        struct.pack_into("<I", changed, 8, 97)
    elif how == "truncated":
        return data[: len(data) // 2]
    elif how == "file length":
        struct.pack_into("<I", changed, 32, len(data) + 4)
    elif how == "function offset":
        changed[128] ^= 0x40  # the first function's bytecode offset
    elif how == "string count":
        struct.pack_into("<I", changed, 52, 10**7)
    elif how == "footer":
        changed[-1] ^= 1
    elif how == "not bytecode":
        return b"\x00" * 200
    return bytes(changed)


DAMAGE = ["unknown version", "truncated", "file length", "function offset", "string count", "footer"]


@pytest.mark.parametrize("how", [*DAMAGE, "not bytecode"])
def test_unknown_or_malformed_bytecode_is_not_transformed(workdir: Path, how: str) -> None:
    data = damage(hermes_compile(hermes_program(3, 50), workdir / "d"), how)
    assert hermes.transformable(data) is None
    with pytest.raises(hermes.NotHermes):
        hermes.to_delta_form(data)


@pytest.mark.parametrize("how", DAMAGE)
def test_unknown_or_malformed_bytecode_gets_a_plain_delta_that_still_applies(
    workdir: Path, tmp_path: Path, how: str
) -> None:
    source = hermes_program(5, 80)
    old = tree(tmp_path / "old", damage(hermes_compile(source, workdir / "o"), how))
    new = tree(tmp_path / "new", damage(hermes_compile(hermes_edit(source, 1), workdir / "n"), how))
    delta = build_delta_between(old, new, transforms=True)
    assert delta[8] == PLAIN_VERSION
    apply_delta(old, delta, tmp_path / "out")
    verify_tree(tmp_path / "out", tree_manifest(new))


def test_a_delta_naming_an_unknown_transform_or_version_is_refused(workdir: Path, tmp_path: Path) -> None:
    source = hermes_program(9, 60)
    old = tree(tmp_path / "old", hermes_compile(source, workdir / "o"))
    new = tree(tmp_path / "new", hermes_compile(hermes_edit(source, 2), workdir / "n"))
    delta = build_delta_between(old, new, transforms=True)
    (length,) = struct.unpack_from(">I", delta, 9)
    header = json.loads(zlib.decompress(delta[13 : 13 + length]))
    header["ops"][0]["transform"] = "hermes-bytecode-99"
    packed = zlib.compress(json.dumps(header).encode())
    forged = delta[:9] + struct.pack(">I", len(packed)) + packed + delta[13 + length :]
    with pytest.raises(InvalidDelta, match="unknown transform"):
        read_delta(forged)
    with pytest.raises(InvalidDelta, match="format version 3"):
        read_delta(delta[:8] + bytes([3]) + delta[9:])
    as_version_1 = delta[:8] + bytes([PLAIN_VERSION]) + delta[9:]
    with pytest.raises(InvalidDelta, match="must have exactly the fields"):
        read_delta(as_version_1)  # what a version-1 reader would see: fields it does not know
