"""Signed release manifests (Ed25519): what the publisher's offline key vouches for, and how it is checked.

A release manifest binds everything a device acts on: the app and deployment it is for, its label, a
sequence number that only grows per app (so an old signed release cannot be replayed as new), the binaries
it targets, its package hash, the most bytes its download may take, and every file's path, size and
SHA-256. It travels as canonical JSON bytes plus a detached signature; the signature covers a domain
prefix and the exact bytes, so nothing is re-serialised before it is checked.

The same module is used by the CLI (sign), the server (check an upload) and the device engine (check an
update before trusting anything it downloads).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from overair.files import create_once
from overair.packages.manifest import ManifestEntry

FORMAT = "overair-release/1"
_DOMAIN = b"overair-release/1\n"
_FRESHNESS_DOMAIN = b"overair-freshness/1\n"
PUBLIC_KEY_PREFIX = "ed25519:"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SEQUENCE = 2**31 - 1
"""Sequence numbers fit a 32-bit integer column on every database."""


class SigningError(Exception):
    """A key, manifest or signature that cannot be used; ``message`` says what and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SignedFile:
    """One file a signed manifest vouches for."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ReleaseManifest:
    """The facts a publisher signs for one release."""

    app: str
    deployment: str
    label: str
    sequence: int
    target_version: str
    build_number: int | None
    package_hash: str
    download_limit: int
    files: tuple[SignedFile, ...]

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, ASCII only, files sorted by path."""
        body: dict[str, Any] = {
            "format": FORMAT,
            "app": self.app,
            "deployment": self.deployment,
            "label": self.label,
            "sequence": self.sequence,
            "target_version": self.target_version,
            "build_number": self.build_number,
            "package_hash": self.package_hash,
            "download_limit": self.download_limit,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReleaseManifest:
        """Parse and validate manifest bytes (raises :class:`SigningError` with the reason)."""
        if len(data) > _MAX_MANIFEST_BYTES:
            raise SigningError("the signed manifest is larger than 16 MB")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SigningError(f"the signed manifest is not JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise SigningError(f'the signed manifest is not an "{FORMAT}" manifest')
        try:
            files = tuple(
                SignedFile(_text(f["path"]), _count(f["size"]), _digest(f["sha256"])) for f in body["files"]
            )
            build = body["build_number"]
            manifest = cls(
                app=_text(body["app"]),
                deployment=_text(body["deployment"]),
                label=_text(body["label"]),
                sequence=_count(body["sequence"], MAX_SEQUENCE),
                target_version=_text(body["target_version"]),
                build_number=None if build is None else _count(build),
                package_hash=_digest(body["package_hash"]),
                download_limit=_count(body["download_limit"]),
                files=files,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SigningError(f"the signed manifest is incomplete or malformed: {exc!r}") from exc
        if manifest.to_bytes() != data:
            raise SigningError("the signed manifest is not in canonical form")
        return manifest

    def file_entries(self) -> frozenset[SignedFile]:
        """The signed files as a set, for comparison with a package manifest."""
        return frozenset(self.files)


def signed_files(manifest: Iterable[ManifestEntry]) -> tuple[SignedFile, ...]:
    """The files of a package manifest (folder entries skipped) as a signed manifest lists them."""
    return tuple(
        sorted(
            (SignedFile(e.path, e.size, e.sha256) for e in manifest if not e.is_directory),
            key=lambda f: f.path,
        )
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _count(value: object, limit: int = 2**63 - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ValueError(f"expected a whole number from 0 to {limit}, got {value!r}")
    return value


def _digest(value: object) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ValueError(f"expected a SHA-256 in lowercase hex, got {value!r}")
    return value


# -- keys -------------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    """A new Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (the file must be kept offline and private)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Read a PEM signing key made by ``overair keys generate``."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(
            "this is not an unencrypted PEM private key: make one with `overair keys generate`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(
            "this private key is not Ed25519: overair release manifests are signed with Ed25519 keys "
            "made by `overair keys generate` (RSA keys are for CodePush's .codepushrelease only)"
        )
    return key


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``ed25519:<base64 of the 32 raw bytes>``, the form devices and the server are given."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>`` (or a PEM public key) into a key, with a clear error otherwise."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise SigningError("this PEM public key cannot be read") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningError("this public key is not Ed25519")
        return key
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise SigningError(
            f'a public key looks like "{PUBLIC_KEY_PREFIX}<base64>", as `overair keys generate` prints it'
        )
    try:
        raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError("the public key is not valid base64") from exc
    if len(raw) != 32:
        raise SigningError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | str) -> str:
    """A short stable name for a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    if isinstance(key, str):
        key = parse_public_key(key)
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The SHA-256 of the public key's raw bytes, in hex (:func:`key_id` is its first 16 digits)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# -- signing and checking ---------------------------------------------------------------------------


def sign_manifest(manifest: ReleaseManifest, key: Ed25519PrivateKey) -> tuple[bytes, str]:
    """The manifest's canonical bytes and their base64 signature."""
    data = manifest.to_bytes()
    return data, base64.b64encode(key.sign(_DOMAIN + data)).decode()


def decode_signature(signature: str) -> bytes:
    """The raw 64 bytes of a base64 signature, or :class:`SigningError`."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError("the signature is not valid base64") from exc
    if len(raw) != 64:
        raise SigningError(f"an Ed25519 signature is 64 bytes, this one is {len(raw)}")
    return raw


def verify_manifest(
    data: bytes, signature: str, keys: Sequence[Ed25519PublicKey]
) -> tuple[ReleaseManifest, Ed25519PublicKey]:
    """Check ``signature`` over ``data`` with any of ``keys``; return the manifest and the key that signed.

    Raises :class:`SigningError` when no key verifies it or the manifest is malformed.
    """
    raw = decode_signature(signature)
    for key in keys:
        try:
            key.verify(raw, _DOMAIN + data)
        except InvalidSignature:
            continue
        return ReleaseManifest.from_bytes(data), key
    raise SigningError("the signature does not verify with any trusted key")


# The answer's freshness signature travels in these response headers; the signature header holds
# ``<key id>:<base64 signature>``.
ISSUED_AT_HEADER = "overair-issued-at"
EXPIRES_AT_HEADER = "overair-expires-at"
SIGNATURE_HEADER = "overair-signature"

FRESHNESS_SCOPE_FIELDS = ("deployment_key", "app_version", "build_number", "label", "package_hash", "failed")
"""The update-check parameters a signed answer is bound to, in order: all but the client id, so one
signature serves every device that asks the same question."""


def freshness_scope(params: Mapping[str, object]) -> str:
    """The scope of an update-check answer: its :data:`FRESHNESS_SCOPE_FIELDS` as sent, joined by ``|``.

    Server and device both call this on the query parameters (absent ones count as ""), so they agree.
    """
    return "|".join([str(params.get(name, "")) for name in FRESHNESS_SCOPE_FIELDS])


def freshness_message(issued_at: int, expires_at: int, scope: str, body: bytes) -> bytes:
    """What the server's online key signs for an update-check answer: its time window, scope and body."""
    digest = hashlib.sha256(body).hexdigest()
    return _FRESHNESS_DOMAIN + f"{issued_at}|{expires_at}|{scope}|{digest}".encode()


def sign_freshness(key: Ed25519PrivateKey, issued_at: int, expires_at: int, scope: str, body: bytes) -> str:
    """Base64 signature of :func:`freshness_message`."""
    return base64.b64encode(key.sign(freshness_message(issued_at, expires_at, scope, body))).decode()


def verify_freshness(
    key: Ed25519PublicKey, signature: str, issued_at: int, expires_at: int, scope: str, body: bytes
) -> None:
    """Raise :class:`SigningError` unless ``signature`` is the server's over this answer and window."""
    raw = decode_signature(signature)
    try:
        key.verify(raw, freshness_message(issued_at, expires_at, scope, body))
    except InvalidSignature:
        raise SigningError("the answer's freshness signature does not verify with the server key") from None


def load_or_create_key_file(path: Path) -> Ed25519PrivateKey:
    """Read the Ed25519 key at ``path``, creating it (mode 0600, atomically) when it does not exist.

    Several server processes may start at once: the key is written to a temporary file and linked
    into place, so each process reads either nothing or the complete key, and all end up with the same.
    """
    create_once(path, lambda: private_key_pem(generate_private_key()))
    try:
        return load_private_key(path.read_bytes())
    except OSError as exc:
        raise SigningError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
