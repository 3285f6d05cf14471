"""End to end: `overair serve` keeping its blobs in the S3 server the tests start, handing out presigned
URLs; the real CodePush acquisition SDK and overair's device engine update from the bucket directly."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from base64 import b64decode
from pathlib import Path

import httpx
import pytest

from conftest import admin_api, ensure_npm_packages, running_server
from overair.client import CheckStatus, UpdateEngine

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent


def _bundle(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("CodePush/index.android.bundle", f"console.log({text!r});")
        zf.writestr("index.js", f"showWelcome({text!r});\n")
    return buffer.getvalue()


def test_sdk_and_engine_download_from_presigned_bucket_urls(
    tmp_path: Path, s3_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_npm_packages(HERE, "code-push")
    for name, value in {**s3_settings, "s3_presign": "true"}.items():
        monkeypatch.setenv(f"OVERAIR_{name.upper()}", value)
    with running_server(tmp_path / "server") as server, admin_api(server) as api:
        created = api.post("/apps", json={"name": "CoolApp"}).json()
        key = {d["name"]: d["key"] for d in created["deployments"]}["Production"]
        content = _bundle("from the bucket")
        published = api.post(
            "/apps/CoolApp/deployments/Production/releases",
            files={"package": ("b.zip", content)},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text

        payload = {
            "sdk": "4.2.3",
            "serverUrl": server.url,
            "deploymentKey": key,
            "steps": [{"op": "check", "clientUniqueId": "d1"}],
        }
        run = ["node", str(HERE / "codepush_harness.js")]
        done = subprocess.run(run, input=json.dumps(payload), capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        update = json.loads(done.stdout)[0]["update"]
        url = update["downloadUrl"]
        assert url.startswith(s3_settings["s3_endpoint"]) and "X-Amz-Signature=" in url
        payload["steps"] = [{"op": "fetch", "url": url}]
        done = subprocess.run(run, input=json.dumps(payload), capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        fetched = json.loads(done.stdout)[0]
        assert fetched["status"] == 200 and b64decode(fetched["base64"]) == content
        assert int(fetched["contentLength"]) == len(content)

        embedded = tmp_path / "embedded"
        embedded.mkdir()
        (embedded / "index.js").write_text("showWelcome('embedded');\n")

        def engine() -> UpdateEngine:
            return UpdateEngine(
                server.url, key, "1.0.0", 1, embedded_bundle=embedded, data_dir=tmp_path / "device"
            )

        phone = engine()
        phone.start()
        result = phone.check_for_update()
        assert result.status is CheckStatus.UPDATE and result.update is not None
        assert result.update.download_url.startswith(s3_settings["s3_endpoint"])
        phone.install(phone.download(result.update))
        phone = engine()
        folder = phone.start()
        assert phone.current_label == "v1" and "from the bucket" in (folder / "index.js").read_text()
        # the bucket holds the bundle; overair's own folder holds no blobs
        assert not (tmp_path / "server" / "blobs").exists() or not any(
            (tmp_path / "server" / "blobs").rglob("*")
        )
        assert httpx.get(url).headers["cache-control"] == "public, max-age=31536000, immutable"
        assert hashlib.sha256(content).hexdigest() in url
