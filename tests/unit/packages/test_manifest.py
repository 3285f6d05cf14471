"""Manifests: the reference package hash over hand-made manifests, JSON round trips, validation.

The expected hashes were computed once with the reference snippet of the protocol notes (section
3.2, ``package_hash`` over a dict built in the same order) and are pinned here as fixed strings.
"""

from __future__ import annotations

import hashlib

import pytest

from overair.packages import (
    EMPTY_SHA256,
    InvalidBundle,
    ManifestEntry,
    is_ignored_path,
    is_signature_path,
    manifest_from_json,
    manifest_to_json,
    package_hash,
)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def entries(*items: tuple[str, bytes]) -> list[ManifestEntry]:
    return [
        ManifestEntry(path, EMPTY_SHA256 if path.endswith("/") else sha(content), len(content))
        for path, content in items
    ]


CASES: dict[str, tuple[list[ManifestEntry], str]] = {
    "empty": ([], "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"),
    # UTF-16 code-unit order: "a.js." < "a.js:", astral (surrogates) < U+E000, "Z" < "z" < "é"
    "sort": (
        entries(
            ("CodePush/a.js", b"1"),
            ("CodePush/a.js.map", b"2"),
            ("CodePush/\ue000.txt", b"3"),
            ("CodePush/😀.txt", b"4"),
            ("CodePush/Z.txt", b"5"),
            ("CodePush/é.txt", b"6"),
            ("CodePush/z.txt", b"7"),
        ),
        "54ebf2501faed5899adb98b7ad57ed6d6ef2bc31877323f6e2e3baffcffe5bb9",
    ),
    # JSON escaping as JSON.stringify does it: quotes, backslashes, control characters; "/", DEL and
    # U+2028/U+2029 left as they are
    "escapes": (
        entries(
            ('q"uote', b"1"),
            ("back\\slash", b"2"),
            ("new\nline", b"3"),
            ("unit\x1fsep", b"4"),
            ("del\x7f", b"5"),
            ("ls\u2028ps\u2029", b"6"),
            ("tab\there", b"7"),
            ("slash/ok", b"8"),
        ),
        "bba3cf994c4d62c8fb87e3d272ae7d2d0c7f4a1268b98af5d65b21ddfa45e9d6",
    ),
    # directory entries count; only files named exactly .codepushrelease are left out
    "signatures_and_dirs": (
        entries(
            ("CodePush/", b""),
            (".codepushrelease", b"s"),
            ("CodePush/.codepushrelease", b"t"),
            ("CodePush/x.codepushrelease", b"u"),
            ("CodePush/main.jsbundle", b"m"),
        ),
        "2199a0bad84593381c0986d73dfad60a80e31f63d2a003d7b0a28f28ba84b34f",
    ),
    # the reference builds a map: a later duplicate replaces the earlier hash
    "duplicates": (
        entries(("a.js", b"old"), ("b.js", b"b"), ("a.js", b"new")),
        "bdf3f5abe2cf8ba828cc5160d96f13ce3012d74c67ed4c760701bf5f5755e385",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_package_hash_matches_the_reference(case: str) -> None:
    manifest, expected = CASES[case]
    assert package_hash(manifest) == expected
    assert package_hash(iter(manifest)) == expected  # any iterable


def test_package_hash_ignores_manifest_order() -> None:
    manifest, expected = CASES["sort"]
    assert package_hash(reversed(manifest)) == expected


def test_signature_files_do_not_change_the_hash() -> None:
    manifest = entries(("CodePush/main.jsbundle", b"m"))
    signed = [*manifest, *entries(("CodePush/.codepushrelease", b"jwt"))]
    assert package_hash(signed) == package_hash(manifest)


def test_manifest_json_is_compact_stable_and_round_trips() -> None:
    manifest = tuple(entries(("CodePush/", b""), ("CodePush/ä 😀.js", b"x"), ('CodePush/q"/.js', b"")))
    data = manifest_to_json(manifest)
    assert (
        data
        == (
            '{"files":[{"path":"CodePush/","sha256":"' + EMPTY_SHA256 + '","size":0},'
            '{"path":"CodePush/ä 😀.js","sha256":"' + sha(b"x") + '","size":1},'
            '{"path":"CodePush/q\\"/.js","sha256":"' + EMPTY_SHA256 + '","size":0}]}'
        ).encode()
    )
    assert manifest_from_json(data) == manifest
    assert manifest_to_json(manifest_from_json(data)) == data
    assert manifest_to_json([]) == b'{"files":[]}'
    assert manifest_from_json(b'{"files":[]}') == ()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"files":{}}',
        b'{"files":[1]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'"}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":0,"extra":1}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.upper().encode() + b'","size":0}]}',
        b'{"files":[{"path":"a","sha256":"abc","size":0}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":-1}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":true}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":1.5}]}',
        b'{"files":[{"path":"","sha256":"' + EMPTY_SHA256.encode() + b'","size":0}]}',
        b'{"files":[{"path":"\\ud800","sha256":"' + EMPTY_SHA256.encode() + b'","size":0}]}',
        b'{"files":[{"path":"d/","sha256":"' + sha(b"x").encode() + b'","size":1}]}',
        b'{"files":[{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":0},'
        b'{"path":"a","sha256":"' + EMPTY_SHA256.encode() + b'","size":0}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_manifest_json_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidBundle) as caught:
        manifest_from_json(data)
    assert "manifest" in caught.value.message


def test_manifest_entry_validates_itself() -> None:
    assert ManifestEntry("CodePush/", EMPTY_SHA256, 0).is_directory
    assert not ManifestEntry("CodePush/a.js", sha(b"a"), 1).is_directory
    for path, digest, size in [
        ("", EMPTY_SHA256, 0),
        ("a\x00b", EMPTY_SHA256, 0),
        ("a", "x" * 64, 0),
        ("a", EMPTY_SHA256, -1),
        ("dir/", EMPTY_SHA256, 3),
        ("dir/", sha(b"a"), 0),
    ]:
        with pytest.raises(ValueError):
            ManifestEntry(path, digest, size)


def test_ignored_and_signature_paths() -> None:
    assert is_ignored_path("__MACOSX/CodePush/._main.jsbundle")
    assert is_ignored_path(".DS_Store")
    assert is_ignored_path("CodePush/assets/.DS_Store")
    assert not is_ignored_path("CodePush/__MACOSX/x")
    assert not is_ignored_path("CodePush/x.DS_Store")
    assert is_signature_path(".codepushrelease")
    assert is_signature_path("CodePush/.codepushrelease")
    assert not is_signature_path("CodePush/.codepushrelease.bak")
