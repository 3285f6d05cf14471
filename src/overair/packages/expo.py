"""Expo updates as overair packages: reading ``npx expo export`` output, and the Expo manifest's bytes.

An Expo export (``dist/``) holds both platforms: ``metadata.json`` names, per platform, the launch bundle
and the assets (``{"path", "ext"}``). overair stores one package per platform: the launch bundle and the
assets at their ``dist/`` paths plus :data:`EXPO_FILE`, which says which file is the launch asset and what
each asset's extension is. Every file is stored content-addressed, so an asset shared by both platforms
or by many releases is stored once.

The manifest a device receives (Expo Updates protocol §2.3) is built by :func:`manifest_bytes` from a
release's facts and the assets' download URLs; it is serialised exactly once, so the bytes signed are the
bytes sent. Standard library only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overair.packages.errors import InvalidBundle
from overair.packages.manifest import ManifestEntry

EXPO_FILE = "expo.json"
"""overair's description of an Expo update inside a package: launch asset, assets, public config."""

METADATA_FILE = "metadata.json"
PLATFORMS = ("ios", "android")
MAX_RUNTIME_VERSION = 200
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,16}$")
_CONTENT_TYPES = {
    "js": "application/javascript",
    "hbc": "application/javascript",
    "bundle": "application/javascript",
    "json": "application/json",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "mp4": "video/mp4",
}


def iso_millis(moment: dt.datetime) -> str:
    """``2026-10-01T12:00:00.000Z``: how manifests write a time (``createdAt``, ``commitTime``)."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def content_type(extension: str) -> str:
    """The MIME type an asset with ``extension`` (no dot) is served with; never one a browser renders as a
    page (assets share the server's origin), so unknown extensions are ``application/octet-stream``."""
    return _CONTENT_TYPES.get(extension.lower(), "application/octet-stream")


def b64url_sha256(sha256_hex: str) -> str:
    """The manifest's ``hash`` of a file: base64url (no padding) of its SHA-256 (protocol §4.4)."""
    return base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class ExportedPlatform:
    """One platform of an export: the launch bundle and the assets (``(path, extension)``), dist-relative."""

    platform: str
    bundle: str
    assets: tuple[tuple[str, str], ...]


def _bad(path: str, problem: str) -> InvalidBundle:
    return InvalidBundle(f"{path}: {problem}")


def _json_object(raw: bytes, where: str, shape: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object, else :class:`InvalidBundle` naming ``where`` and the problem."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(where, f"not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise _bad(where, shape)
    return data


def _relative(where: str, value: object, root: Path | None) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(where, "a file path must be a non-empty string.")
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise _bad(where, f'"{value}" is not a plain relative path inside the export.')
    if root is not None and not (root / value).is_file():
        raise _bad(where, f'names "{value}", which is not in the export: run `npx expo export` again.')
    return value


def parse_metadata(raw: bytes, root: Path | None = None) -> list[ExportedPlatform]:
    """The platforms of an export's ``metadata.json`` (``root``: the export folder, to check the files).

    Refuses anything ``npx expo export`` does not write, naming the file and the problem.
    """
    data = _json_object(raw, METADATA_FILE, "must be a JSON object, as `npx expo export` writes it.")
    if data.get("version") != 0 or data.get("bundler") != "metro":
        raise _bad(
            METADATA_FILE,
            'expected "version": 0 and "bundler": "metro" (the format of `npx expo export`); got '
            f"version {data.get('version')!r}, bundler {data.get('bundler')!r}.",
        )
    files = data.get("fileMetadata")
    if not isinstance(files, dict):
        raise _bad(METADATA_FILE, '"fileMetadata" is missing or not an object.')
    found: list[ExportedPlatform] = []
    for platform in PLATFORMS:
        entry = files.get(platform)
        if entry is None:
            continue
        where = f"{METADATA_FILE} fileMetadata.{platform}"
        if not isinstance(entry, dict):
            raise _bad(where, "must be an object with bundle and assets.")
        bundle = _relative(f"{where}.bundle", entry.get("bundle"), root)
        raw_assets = entry.get("assets", [])
        if not isinstance(raw_assets, list):
            raise _bad(f"{where}.assets", "must be a list of {path, ext}.")
        assets: list[tuple[str, str]] = []
        for index, asset in enumerate(raw_assets):
            at = f"{where}.assets[{index}]"
            if not isinstance(asset, dict):
                raise _bad(at, "must be an object with path and ext.")
            path = _relative(f"{at}.path", asset.get("path"), root)
            ext = asset.get("ext")
            if not isinstance(ext, str) or not _EXTENSION.match(ext):
                raise _bad(f"{at}.ext", f"{ext!r} is not a file extension (letters and digits, no dot).")
            assets.append((path, ext))
        found.append(ExportedPlatform(platform, bundle, tuple(assets)))
    if not found:
        raise _bad(METADATA_FILE, 'fileMetadata has neither "ios" nor "android": export for a platform.')
    return found


def check_runtime_version(value: str) -> str:
    """A runtime version as devices send it: any non-empty printable string, compared exactly."""
    text = value.strip()
    if not text or len(text) > MAX_RUNTIME_VERSION or not text.isprintable():
        raise InvalidBundle(
            f"runtime version {value!r}: give the runtime version of the builds, e.g. 1.0.0 (at most "
            f"{MAX_RUNTIME_VERSION} printable characters)."
        )
    return text


def describe(exported: ExportedPlatform, extra: Mapping[str, Any] | None = None) -> bytes:
    """The :data:`EXPO_FILE` of one platform's package."""
    body = {
        "launchAsset": exported.bundle,
        "assets": [{"path": p, "ext": e} for p, e in exported.assets],
        "extra": dict(extra or {}),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class ExpoAsset:
    """A stored asset: where it is in the package, its SHA-256 (hex) and its extension (no dot)."""

    path: str
    sha256: str
    ext: str


@dataclass(frozen=True, slots=True)
class ExpoContent:
    """What an Expo package holds: its launch asset, the other assets and the public config (``extra``)."""

    launch: ExpoAsset
    assets: tuple[ExpoAsset, ...]
    extra: Mapping[str, Any]

    def to_json(self) -> str:
        """Canonical JSON, as stored with the package."""
        return json.dumps(
            {
                "launch": [self.launch.path, self.launch.sha256, self.launch.ext],
                "assets": [[a.path, a.sha256, a.ext] for a in self.assets],
                "extra": self.extra,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ExpoContent:
        """The inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            ExpoAsset(*data["launch"]), tuple(ExpoAsset(*a) for a in data["assets"]), data.get("extra", {})
        )


def read_content(raw: bytes, manifest: Sequence[ManifestEntry]) -> ExpoContent:
    """Check a package's :data:`EXPO_FILE` against the package's files; its :class:`ExpoContent`."""
    data = _json_object(raw, EXPO_FILE, "must be a JSON object.")
    files = {e.path: e.sha256 for e in manifest if not e.path.endswith("/")}

    def stored(where: str, path: object, ext: str) -> ExpoAsset:
        name = _relative(where, path, None)
        if name not in files:
            raise _bad(where, f'names "{name}", which is not in the package.')
        return ExpoAsset(name, files[name], ext)

    launch_path = data.get("launchAsset")
    launch = stored(f"{EXPO_FILE} launchAsset", launch_path, str(launch_path).rpartition(".")[2] or "js")
    raw_assets = data.get("assets", [])
    if not isinstance(raw_assets, list):
        raise _bad(f"{EXPO_FILE} assets", "must be a list of {path, ext}.")
    assets = []
    for index, asset in enumerate(raw_assets):
        where = f"{EXPO_FILE} assets[{index}]"
        if not isinstance(asset, dict):
            raise _bad(where, "must be an object with path and ext.")
        ext = asset.get("ext")
        if not isinstance(ext, str) or not _EXTENSION.match(ext):
            raise _bad(f"{where}.ext", f"{ext!r} is not a file extension (letters and digits, no dot).")
        assets.append(stored(f"{where}.path", asset.get("path"), ext))
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise _bad(f"{EXPO_FILE} extra", "must be an object.")
    return ExpoContent(launch, tuple(assets), extra)


def _asset(asset: ExpoAsset, url: str, launch: bool) -> dict[str, str]:
    body = {
        "hash": b64url_sha256(asset.sha256),
        "key": asset.sha256,
        "contentType": "application/javascript" if launch else content_type(asset.ext),
        "url": url,
    }
    if not launch:
        body["fileExtension"] = "." + asset.ext
    return body


def manifest_bytes(
    *,
    update_id: str,
    created_at: str,
    runtime_version: str,
    content: ExpoContent,
    url: Callable[[ExpoAsset], str],
    overair: Mapping[str, Any],
) -> bytes:
    """The manifest part's body (protocol §2.3), serialised once: sign and send these very bytes.

    An asset's ``key`` is its SHA-256: the client reuses a file it has under the same key, so the key
    names content. ``extra.overair`` carries what the protocol has no field for (label, description,
    mandatory) for the app's JS; ``extra.expoClient`` is the public config the export was made with.
    """
    seen: set[str] = set()
    assets = []
    for asset in content.assets:
        if asset.sha256 not in seen and asset.sha256 != content.launch.sha256:
            seen.add(asset.sha256)
            assets.append(_asset(asset, url(asset), launch=False))
    body = {
        "id": update_id,
        "createdAt": created_at,
        "runtimeVersion": runtime_version,
        "launchAsset": _asset(content.launch, url(content.launch), launch=True),
        "assets": assets,
        "metadata": {},
        "extra": {**content.extra, "overair": dict(overair)},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


NO_UPDATE_DIRECTIVE = b'{"type":"noUpdateAvailable"}'
"""The ``noUpdateAvailable`` directive's exact bytes: the publisher signs them once, at publish time."""

ALGORITHM = "rsa-v1_5-sha256"


def embedded_directive(commit_time: str) -> bytes:
    """The ``rollBackToEmbedded`` directive's exact bytes for ``commit_time`` (spec §2.6)."""
    body = {"type": "rollBackToEmbedded", "parameters": {"commitTime": commit_time}}
    return json.dumps(body, separators=(",", ":")).encode()


def check_embedded_directive(raw: bytes, created_at: str) -> None:
    """A publisher's pre-signed ``rollBackToEmbedded``: it must be one, dated after its update."""
    data = _json_object(raw, "signed rollBackToEmbedded", "must be a JSON object.")
    parameters = data.get("parameters")
    commit = parameters.get("commitTime") if isinstance(parameters, dict) else None
    if (
        data.get("type") != "rollBackToEmbedded"
        or not isinstance(commit, str)
        or not _CREATED_AT.match(commit)
    ):
        raise _bad(
            "signed rollBackToEmbedded", "must be {type: rollBackToEmbedded, parameters: {commitTime}}."
        )
    if commit <= created_at:
        raise _bad("signed rollBackToEmbedded", f"commitTime {commit} is not after createdAt {created_at}.")


def signature_header(signature: str, keyid: str) -> str:
    """The ``expo-signature`` part header (spec §3.3)."""
    return f'sig="{signature}", keyid="{keyid}", alg="{ALGORITHM}"'


def check_signed_manifest(raw: bytes, content: ExpoContent, runtime_version: str) -> tuple[str, str]:
    """(update id, createdAt) of a publisher-built manifest, once it is shown to describe ``content`` for
    ``runtime_version``: the server serves these bytes as they are, so it checks what it can."""
    data = _json_object(raw, "signed manifest", "must be a JSON object.")
    update_id = data.get("id")
    if not isinstance(update_id, str) or not _UUID.match(update_id):
        raise _bad("signed manifest", f"id {update_id!r} is not a UUID.")
    created_at = data.get("createdAt")
    if not isinstance(created_at, str) or not _CREATED_AT.match(created_at):
        raise _bad("signed manifest", f"createdAt {created_at!r} is not like 2026-10-01T12:00:00.000Z.")
    if data.get("runtimeVersion") != runtime_version:
        raise _bad("signed manifest", f"runtimeVersion is not {runtime_version!r}, the release's.")
    launch = data.get("launchAsset")
    if not isinstance(launch, dict) or launch.get("hash") != b64url_sha256(content.launch.sha256):
        raise _bad("signed manifest", "launchAsset.hash is not the hash of the package's launch asset.")
    hashes = {b64url_sha256(a.sha256) for a in content.assets}
    assets = data.get("assets")
    if not isinstance(assets, list) or any(
        not isinstance(a, dict) or a.get("hash") not in hashes for a in assets
    ):
        raise _bad("signed manifest", "assets name a file the package does not hold.")
    return update_id.lower(), created_at


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
