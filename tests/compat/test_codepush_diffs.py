"""CodePush diff archives: built in the background, served to devices on an older package, and applied
with the clients' algorithm they give exactly the new package (codepush-protocol.md §3.3, §3.5)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

from starlette.testclient import TestClient

from conftest import make_zip, publish
from overair.packages import DIFF_MANIFEST, ManifestEntry, apply_diff, package_hash


def folder_hash(folder: Path) -> str:
    """The clients' package hash over an extracted folder (files only)."""
    entries = [
        ManifestEntry(
            p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size
        )
        for p in folder.rglob("*")
        if p.is_file()
    ]
    return package_hash(entries)


IMAGE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(1000))  # incompressible

V1 = {
    "CodePush/index.android.bundle": b"console.log('v1');" * 50,
    "CodePush/assets/kept.png": IMAGE,
    "CodePush/assets/removed.txt": b"going away",
}
V2 = {
    "CodePush/index.android.bundle": b"console.log('v2');" * 50,
    "CodePush/assets/kept.png": IMAGE,
    "CodePush/assets/added.txt": b"new file",
}


def extract(data: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return folder


def test_diff_is_served_and_applies_to_the_new_package(
    api: TestClient, device: TestClient, server, tmp_path: Path
) -> None:
    key = {
        d["name"]: d["key"] for d in api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"]
    }["Production"]
    v1 = publish(api, content=make_zip(V1)).json()
    v2 = publish(api, content=make_zip(V2)).json()
    server.state.releases.drain()

    query = f"deploymentKey={key}&appVersion=1.0.0&label=v1&packageHash={v1['package_hash']}"
    info = device.get(f"/updateCheck?{query}").json()["updateInfo"]
    assert info["label"] == "v2" and info["packageHash"] == v2["package_hash"]
    diff = device.get(info["downloadURL"])
    assert diff.status_code == 200 and int(diff.headers["content-length"]) == info["packageSize"] == len(
        diff.content
    )
    assert info["packageSize"] < v2["size"]
    with zipfile.ZipFile(io.BytesIO(diff.content)) as zf:
        assert zf.namelist()[0] == DIFF_MANIFEST
        assert json.loads(zf.read(DIFF_MANIFEST)) == {"deletedFiles": ["CodePush/assets/removed.txt"]}
        assert sorted(zf.namelist()[1:]) == ["CodePush/assets/added.txt", "CodePush/index.android.bundle"]

    current = extract(make_zip(V1), tmp_path / "current")
    updated = tmp_path / "updated"
    archive = tmp_path / "diff.zip"
    archive.write_bytes(diff.content)
    apply_diff(current, archive, updated)
    assert folder_hash(updated) == v2["package_hash"]
    assert not (updated / DIFF_MANIFEST).exists()

    # a device without a package (or on a package with no diff) gets the full package
    full = device.get(f"/updateCheck?deploymentKey={key}&appVersion=1.0.0").json()["updateInfo"]
    assert full["packageSize"] == v2["size"]


def test_no_diff_across_unrelated_targets(api: TestClient, device: TestClient, server) -> None:
    key = {
        d["name"]: d["key"] for d in api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"]
    }["Production"]
    v1 = publish(api, content=make_zip(V1), target_version="1.0.0").json()
    v2 = publish(api, content=make_zip(V2), target_version="2.0.0").json()
    assert server.state.releases.downloads.build_diffs(2) == 0
    info = device.get(
        f"/updateCheck?deploymentKey={key}&appVersion=2.0.0&label=v1&packageHash={v1['package_hash']}"
    ).json()["updateInfo"]
    assert info["label"] == "v2" and info["packageSize"] == v2["size"]
