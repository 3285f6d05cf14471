"""Signed release manifests and signed answers: the pure parts, table-driven where they are rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from overair.packages import EMPTY_SHA256, ManifestEntry
from overair.packages import signing as sig
from overair.protocols.native import AnswerSigner

H = "a" * 64


def manifest(**changes: object) -> sig.ReleaseManifest:
    fields: dict[str, object] = {
        "app": "CoolApp",
        "deployment": "Production",
        "label": "v3",
        "sequence": 7,
        "target_version": "^1.0.0",
        "build_number": None,
        "package_hash": H,
        "download_limit": 1000,
        "files": (sig.SignedFile("b.js", 2, "b" * 64), sig.SignedFile("a.js", 1, "c" * 64)),
    }
    fields.update(changes)
    return sig.ReleaseManifest(**fields)  # type: ignore[arg-type]


def test_canonical_bytes_are_stable_sorted_and_round_trip() -> None:
    data = manifest().to_bytes()
    assert data == manifest(files=tuple(reversed(manifest().files))).to_bytes()
    assert data.index(b'"a.js"') < data.index(b'"b.js"')
    assert b" " not in data
    parsed = sig.ReleaseManifest.from_bytes(data)
    assert parsed.to_bytes() == data and parsed.sequence == 7


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "overair-release/1"),
        (json.dumps({"format": "other"}).encode(), "overair-release/1"),
        (json.dumps({"format": "overair-release/1"}).encode(), "incomplete"),
        (manifest().to_bytes().replace(b'"sequence":7', b'"sequence":-1'), "malformed"),
        (manifest().to_bytes().replace(b'"sequence":7', b'"sequence":true'), "malformed"),
        (manifest().to_bytes().replace(H.encode(), b"A" * 64), "malformed"),
        (manifest().to_bytes().replace(b",", b", "), "canonical"),
        (b"x" * (16 * 1024 * 1024 + 1), "16 MB"),
    ],
)
def test_malformed_manifests_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(sig.SigningError, match=reason):
        sig.ReleaseManifest.from_bytes(data)


def test_signatures_verify_only_with_the_signing_key_and_over_the_exact_bytes() -> None:
    key, other = sig.generate_private_key(), sig.generate_private_key()
    data, signature = sig.sign_manifest(manifest(), key)
    parsed, signer = sig.verify_manifest(data, signature, [other.public_key(), key.public_key()])
    assert parsed == manifest(files=tuple(sorted(manifest().files, key=lambda f: f.path)))
    assert sig.key_id(signer) == sig.key_id(key)
    with pytest.raises(sig.SigningError, match="does not verify"):
        sig.verify_manifest(data, signature, [other.public_key()])
    with pytest.raises(sig.SigningError, match="does not verify"):
        sig.verify_manifest(data.replace(b'"v3"', b'"v4"'), signature, [key.public_key()])
    with pytest.raises(sig.SigningError, match="64 bytes"):
        sig.verify_manifest(data, base64.b64encode(b"short").decode(), [key.public_key()])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ssh-ed25519 AAAA", "looks like"),
        ("ed25519:!!!", "base64"),
        ("ed25519:" + base64.b64encode(b"x" * 31).decode(), "32 bytes"),
        ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "cannot be read"),
    ],
)
def test_public_keys_that_cannot_be_used_say_why(text: str, reason: str) -> None:
    with pytest.raises(sig.SigningError, match=reason):
        sig.parse_public_key(text)


def test_public_key_text_round_trips_and_key_ids_are_stable() -> None:
    key = sig.generate_private_key()
    text = sig.public_key_text(key)
    assert sig.key_id(sig.parse_public_key(text)) == sig.key_id(key) == sig.key_id(text)
    assert len(sig.key_id(key)) == 16


def test_signed_files_skip_folder_entries_and_sort_by_path() -> None:
    entries = [
        ManifestEntry("z.js", "d" * 64, 3),
        ManifestEntry("dir/", EMPTY_SHA256, 0),
        ManifestEntry("a.js", H, 1),
    ]
    assert [f.path for f in sig.signed_files(entries)] == ["a.js", "z.js"]


def test_the_server_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "server-key.pem"
    first = sig.load_or_create_key_file(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert sig.key_id(sig.load_or_create_key_file(path)) == sig.key_id(first)
    assert [p.name for p in path.parent.iterdir()] == ["server-key.pem"]
    path.write_text("garbage")
    with pytest.raises(sig.SigningError, match="not an unencrypted PEM private key"):
        sig.load_or_create_key_file(path)


def test_answer_signatures_are_reused_for_a_minute_then_renewed() -> None:
    key = sig.generate_private_key()
    now = [1_200.0]  # the start of a minute window
    signer = AnswerSigner(key, ttl=3600, clock=lambda: now[0])
    first = dict(signer.headers("k|1.0.0|", b"{}"))
    now[0] += 30
    assert dict(signer.headers("k|1.0.0|", b"{}")) == first
    now[0] += 31
    renewed = dict(signer.headers("k|1.0.0|", b"{}"))
    assert renewed[b"overair-issued-at"] == b"1260" and renewed[b"overair-expires-at"] == b"4860"
    kid, _, signature = renewed[b"overair-signature"].decode().partition(":")
    assert kid == sig.key_id(key)
    sig.verify_freshness(key.public_key(), signature, 1260, 4860, "k|1.0.0|", b"{}")
    with pytest.raises(sig.SigningError):
        sig.verify_freshness(key.public_key(), signature, 1260, 4860, "k|2.0.0|", b"{}")


def test_sequence_numbers_stay_within_what_every_database_stores() -> None:
    huge = manifest(sequence=2**31).to_bytes()
    with pytest.raises(sig.SigningError, match="malformed"):
        sig.ReleaseManifest.from_bytes(huge)


def test_server_and_device_bind_an_answer_to_the_same_scope() -> None:
    """The device sends typed parameters, the server reads strings: both give one scope (no client id)."""
    sent: dict[str, object] = {
        "deployment_key": "k",
        "app_version": "1.0.0",
        "client_id": "d1",
        "build_number": 7,
    }
    received = {name: str(value) for name, value in sent.items()}
    assert sig.freshness_scope(sent) == sig.freshness_scope(received) == "k|1.0.0|7|||"
    assert sig.freshness_scope({**sent, "failed": "v2,v5", "label": "v1"}) == "k|1.0.0|7|v1||v2,v5"
    assert "client_id" not in sig.FRESHNESS_SCOPE_FIELDS


def test_the_device_checks_an_answer_against_its_own_query() -> None:
    from overair.client._trust import Trust
    from overair.client._types import UpdateRefused

    key = sig.generate_private_key()
    trust = Trust(
        public_keys=[],
        retired_keys=[],
        server_key=sig.public_key_text(key),
        app_name=None,
        deployment_name=None,
        app_version="1.0.0",
        build_number=7,
    )
    sent: dict[str, object] = {
        "deployment_key": "k",
        "app_version": "1.0.0",
        "client_id": "d1",
        "build_number": 7,
    }
    body = b'{"status":"no_update"}'
    signer = AnswerSigner(key, ttl=3600, clock=lambda: 1_200.0)
    headers = {k.decode(): v.decode() for k, v in signer.headers(sig.freshness_scope(sent), body)}
    assert trust.check_answer(headers, body, sent, 1_300.0, 0) == 1_200
    assert trust.check_answer(headers, body, sig.freshness_scope(sent), 1_300.0, 0) == 1_200
    with pytest.raises(UpdateRefused, match="does not verify"):
        trust.check_answer(headers, body, {**sent, "build_number": 8}, 1_300.0, 0)
