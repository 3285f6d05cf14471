"""CodePush code signing: a ``.codepushrelease`` JWT (RS256) that apps with a public key verify.

The token is ``{"claimVersion": "1.0.0", "contentHash": <package hash>, "iat": <now>}`` signed with the
publisher's RSA private key, as the CodePush CLI's ``--privateKeyPath`` writes it. The file is part of the
archive but excluded from the package hash, so signing does not change what devices compare.
"""

from __future__ import annotations

import base64
import json
import time
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from overair.cli.errors import CliError
from overair.packages import InvalidBundle, inspect_archive, is_signature_path, rewrite_archive, top_folder

SIGNATURE_FILE = ".codepushrelease"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """Read an RSA private key in PEM (``openssl genrsa -out private.pem``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read the private key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CliError(
            f"{path} is not an unencrypted PEM private key ({exc}). "
            "Make one with: openssl genrsa -out private.pem 2048"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CliError(f"{path} is not an RSA key: CodePush apps verify RS256 signatures (openssl genrsa).")
    return key


def release_token(key: rsa.RSAPrivateKey, content_hash: str, issued_at: int | None = None) -> str:
    """The compact RS256 JWT the CodePush clients expect."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {
        "claimVersion": "1.0.0",
        "contentHash": content_hash,
        "iat": int(time.time()) if issued_at is None else issued_at,
    }
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def sign_archive(archive: Path, key: rsa.RSAPrivateKey, destination: Path) -> str:
    """Write ``destination``: ``archive`` plus a fresh ``.codepushrelease``; return the signed hash."""
    try:
        content_hash = inspect_archive(archive).package_hash
    except InvalidBundle as exc:
        raise CliError(exc.message) from None
    with zipfile.ZipFile(archive) as source:
        names = [i.filename for i in source.infolist() if not is_signature_path(i.filename)]
    # the signature goes where clients look for it: in the single top folder (CodePush/), else at the root
    signature = {top_folder(names) + SIGNATURE_FILE: release_token(key, content_hash).encode()}
    rewrite_archive(archive, destination, is_signature_path, signature)
    return content_hash
