"""Shared pieces of the device engine tests."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from overair.client import UpdateEngine
from overair.packages import Limits, inspect_archive
from overair.packages import signing as sig

BASE = "http://testserver"


def make_bundle(text: str, **extra: str) -> bytes:
    """A bundle zip: a welcome text, a style, an image; ``extra`` adds files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", f"showWelcome({text!r});\n")
        zf.writestr("styles/main.css", "h1 { color: #333 }\n")
        zf.writestr("assets/logo.png", hashlib.sha256(text.encode()).digest() * 64)
        for name, data in extra.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def push(api: TestClient, text: str, app: str = "CoolApp", **options: object) -> dict:
    options.setdefault("target_version", "1.0.0")
    response = api.post(
        f"/api/v1/apps/{app}/deployments/Production/releases",
        files={"package": ("b.zip", make_bundle(text), "application/zip")},
        data={"release": json.dumps(options)},
    )
    assert response.status_code == 201, response.text
    return response.json()


def signed_release(
    api: TestClient,
    tmp_path: Path,
    key: Ed25519PrivateKey,
    content: bytes,
    deployment: str,
    changes: dict[str, object],
    app: str = "CoolApp",
) -> dict[str, str]:
    """What `push-update --signing-key` sends for ``content``; ``changes`` alter the manifest."""
    archive = tmp_path / f"upload-{hashlib.sha256(content).hexdigest()[:8]}.zip"
    archive.write_bytes(content)
    info = inspect_archive(archive, Limits())
    upcoming = api.get(f"/api/v1/apps/{app}/deployments/{deployment}/next-release").json()
    fields: dict[str, object] = {
        "app": app,
        "deployment": deployment,
        "label": upcoming["label"],
        "sequence": upcoming["sequence"],
        "target_version": "1.0.0",
        "build_number": None,
        "package_hash": info.package_hash,
        "download_limit": info.archive_size,
        "files": sig.signed_files(info.manifest),
    }
    fields.update(changes)
    data, signature = sig.sign_manifest(sig.ReleaseManifest(**fields), key)  # type: ignore[arg-type]
    return {"manifest": base64.b64encode(data).decode(), "signature": signature}


def release_metrics(api: TestClient, label: str, app: str = "CoolApp") -> dict:
    for release in api.get(f"/api/v1/apps/{app}/deployments/Production/releases").json():
        if release["label"] == label:
            return release
    raise AssertionError(label)


def folder_files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def manifest_files(device: TestClient, manifest_url: str) -> dict[str, str]:
    manifest = device.get(manifest_url).json()
    return {f["path"]: f["sha256"] for f in manifest["files"] if not f["path"].endswith("/")}


def embedded(tmp_path: Path) -> Path:
    folder = tmp_path / "embedded"
    folder.mkdir(exist_ok=True)
    (folder / "index.js").write_text("showWelcome('Welcom to CoolApp');\n")
    return folder


def engine_for(
    http: httpx.Client, key: str, data_dir: Path, embedded_bundle: Path, **kw: object
) -> UpdateEngine:
    return UpdateEngine(
        BASE,
        key,
        "1.0.0",
        1,
        embedded_bundle=embedded_bundle,
        data_dir=data_dir,
        http=http,
        **kw,  # type: ignore[arg-type]
    )


class Proxy:
    """An httpx transport in front of the in-process server: counts, rewrites or breaks traffic."""

    def __init__(self, device: TestClient) -> None:
        self.device = device
        self.requests: list[httpx.Request] = []
        self.rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None
        self.offline = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.offline:
            raise httpx.ConnectError("network is down", request=request)
        upstream = self.device.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.content
        )
        response = httpx.Response(upstream.status_code, headers=upstream.headers, content=upstream.content)
        if self.rewrite is not None:
            response = self.rewrite(request, response)
        return response

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)
