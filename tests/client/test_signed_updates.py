"""Signed releases end to end: the server checks what publishers sign, the device refuses what it must.

Each attack of the threat model (docs/security.md) is played against a real server in-process, through a
proxy that stands where a network attacker or a compromised storage would. A refused update is reported
with its reason, and nothing is downloaded into place or installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import Proxy, embedded, engine_for, make_bundle, signed_release
from starlette.testclient import TestClient

from overair.cli.hints import cli_hints
from overair.client import CheckStatus, InstallMode, SyncStatus, UpdateEngine, UpdateRefused
from overair.packages import signing as sig

APP = "CoolApp"


@pytest.fixture
def publisher() -> Ed25519PrivateKey:
    return sig.generate_private_key()


@pytest.fixture
def keys(api: TestClient) -> dict[str, str]:
    """Deployment name -> key of CoolApp."""
    app = api.post("/api/v1/apps", json={"name": APP}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}


def trust(api: TestClient, key: Ed25519PrivateKey) -> None:
    response = api.post(f"/api/v1/apps/{APP}/signing-keys", json={"public_key": sig.public_key_text(key)})
    assert response.status_code == 201, response.text


def push(
    api: TestClient,
    tmp_path: Path,
    text: str,
    key: Ed25519PrivateKey | None,
    deployment: str = "Production",
    changes: dict[str, object] | None = None,
) -> httpx.Response:
    content = make_bundle(text)
    options: dict[str, object] = {"target_version": "1.0.0"}
    if key is not None:
        options["signed"] = signed_release(api, tmp_path, key, content, deployment, changes or {})
    return api.post(
        f"/api/v1/apps/{APP}/deployments/{deployment}/releases",
        files={"package": ("b.zip", content, "application/zip")},
        data={"release": json.dumps(options)},
    )


def signed_push(api: TestClient, tmp_path: Path, text: str, key: Ed25519PrivateKey, **kw: object) -> dict:
    response = push(api, tmp_path, text, key, **kw)  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return response.json()


def device(
    proxy: Proxy,
    keys: dict[str, str],
    tmp_path: Path,
    trusted: list[Ed25519PrivateKey],
    name: str = "device",
    **kw: object,
) -> UpdateEngine:
    return engine_for(
        proxy.client(),
        keys["Production"],
        tmp_path / name,
        embedded(tmp_path),
        public_keys=[sig.public_key_text(k) for k in trusted],
        app_name=APP,
        deployment_name="Production",
        **kw,
    )


def refused(engine: UpdateEngine, proxy: Proxy, *reason: str) -> None:
    """The check refuses the offer with ``reason``, reports it, and nothing is downloaded or installed."""
    result = engine.check_for_update()
    assert result.status is CheckStatus.REFUSED, result
    for part in reason:
        assert part in result.message, result.message
    assert engine.sync().status is SyncStatus.FAILED
    engine.flush_reports()
    reports = [json.loads(r.content) for r in proxy.requests if r.url.path == "/v1/report"]
    assert any(r["status"] == "failed" and reason[0] in r.get("reason", "") for r in reports), reports
    assert engine.pending_label is None
    assert engine.start().name == "embedded"
    assert not any(r.url.path.startswith("/v1/blobs/") for r in proxy.requests)


@pytest.fixture
def proxy(device_client: TestClient) -> Proxy:
    return Proxy(device_client)


@pytest.fixture
def device_client(server) -> TestClient:  # type: ignore[no-untyped-def]
    with TestClient(server, base_url="http://testserver") as client:
        yield client  # type: ignore[misc]


def rewrite_update(proxy: Proxy, change) -> None:  # type: ignore[no-untyped-def]
    """Let ``change(update_dict)`` alter every update offer on its way to the device."""

    def handler(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check" and response.status_code == 200:
            body = response.json()
            if body.get("update"):
                change(body["update"])
            return httpx.Response(200, json=body)
        return response

    proxy.rewrite = handler


def answer_of(proxy: Proxy, deployment_key: str) -> dict:
    """What the server answers an embedded 1.0.0 device now (to be replayed later)."""
    return dict(
        proxy.device.get(
            "/v1/update-check", params={"deployment_key": deployment_key, "app_version": "1.0.0"}
        ).json()
    )


def serve_instead(proxy: Proxy, answer: dict) -> None:
    """Every update check gets ``answer``, as an attacker in the network would hand it out."""

    def handler(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            return httpx.Response(200, json=answer)
        return response

    proxy.rewrite = handler


# -- the server side ---------------------------------------------------------------------------------


def test_a_signed_release_installs_and_carries_its_sequence(
    api: TestClient, keys, proxy: Proxy, tmp_path: Path, publisher
) -> None:
    trust(api, publisher)
    release = signed_push(api, tmp_path, "Welcome", publisher)
    assert release["signing_key_id"] == sig.key_id(publisher) and release["sequence"] == 1
    engine = device(proxy, keys, tmp_path, [publisher])
    result = engine.check_for_update()
    assert result.status is CheckStatus.UPDATE and result.update is not None
    assert result.update.sequence == 1
    engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
    assert engine.current_label == "v1"


def test_an_app_with_keys_refuses_unsigned_uploads_with_the_reason(
    api: TestClient, keys, tmp_path, publisher
):
    trust(api, publisher)
    response = push(api, tmp_path, "Welcome", None)
    assert response.status_code == 422
    assert "signed releases only" in response.json()["detail"]
    # the flag is the CLI's word for the fix the server names (domain errors know no CLI flags)
    assert response.json()["fixes"] == [{"action": "sign-release"}]
    assert "--signing-key" in " ".join(cli_hints(response.json()["fixes"]))
    assert api.get(f"/api/v1/apps/{APP}/deployments/Production/releases").json() == []


def test_the_server_refuses_wrong_keys_retired_keys_and_manifests_of_other_releases(
    api: TestClient, keys, tmp_path, publisher
) -> None:
    trust(api, publisher)
    stranger = sig.generate_private_key()
    response = push(api, tmp_path, "A", stranger)
    assert response.status_code == 422 and "does not verify" in response.json()["detail"]
    response = push(api, tmp_path, "B", publisher, changes={"target_version": "2.0.0"})
    assert response.status_code == 422 and "target_version" in response.json()["detail"]
    response = push(api, tmp_path, "C", publisher, changes={"deployment": "Staging"})
    assert response.status_code == 422 and "deployment" in response.json()["detail"]
    response = push(api, tmp_path, "D", publisher, changes={"sequence": 0})
    assert response.status_code == 409 and "Run the command again" in response.json()["detail"]
    api.post(f"/api/v1/apps/{APP}/signing-keys/{sig.key_id(publisher)}/retire")
    response = push(api, tmp_path, "E", publisher)
    assert response.status_code == 422 and "no active signing key" in response.json()["detail"]
    assert api.get(f"/api/v1/apps/{APP}/deployments/Production/releases").json() == []


def test_a_signed_release_cannot_be_retargeted_by_a_patch(api: TestClient, keys, tmp_path, publisher) -> None:
    trust(api, publisher)
    signed_push(api, tmp_path, "Welcome", publisher)
    response = api.patch(
        f"/api/v1/apps/{APP}/deployments/Production/releases/v1", json={"target_version": "2.0.0"}
    )
    assert response.status_code == 422 and "signed" in response.json()["detail"]
    response = api.patch(f"/api/v1/apps/{APP}/deployments/Production/releases/v1", json={"mandatory": True})
    assert response.status_code == 200


def test_keys_are_listed_and_a_retired_key_cannot_come_back(api: TestClient, keys, publisher) -> None:
    trust(api, publisher)
    kid = sig.key_id(publisher)
    assert api.post(f"/api/v1/apps/{APP}/signing-keys/{kid}/retire").json()["retired_at"]
    listed = api.get(f"/api/v1/apps/{APP}/signing-keys").json()
    assert [k["key_id"] for k in listed] == [kid]
    again = api.post(f"/api/v1/apps/{APP}/signing-keys", json={"public_key": sig.public_key_text(publisher)})
    assert again.status_code == 409 and "retired" in again.json()["detail"]
    bad = api.post(f"/api/v1/apps/{APP}/signing-keys", json={"public_key": "ed25519:AAAA"})
    assert bad.status_code == 422 and "32 bytes" in bad.json()["detail"]
    missing = api.post(f"/api/v1/apps/{APP}/signing-keys/0000000000000000/retire")
    assert missing.status_code == 404


# -- the device side: every refusal of the threat model ------------------------------------------------


def test_tampered_file_is_refused(api: TestClient, keys, proxy: Proxy, tmp_path: Path, publisher) -> None:
    """An attacker serves another archive and points the offer at it: its files fail the signed manifest."""
    trust(api, publisher)
    release = signed_push(api, tmp_path, "Welcome", publisher)
    # the same files but one, altered within the signed download limit: the files themselves must be caught
    original = zipfile.ZipFile(io.BytesIO(make_bundle("Welcome")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in original.namelist():
            data = original.read(name)
            zf.writestr(name, data.replace(b"Welcome", b"Evil!!!") if name == "index.js" else data)
    evil = buffer.getvalue()
    assert len(evil) <= release["size"]
    evil_digest = hashlib.sha256(evil).hexdigest()

    def handler(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            body = response.json()
            body["update"]["download_url"] = f"http://testserver/v1/blobs/{evil_digest}"
            body["update"]["size"] = len(evil)
            return httpx.Response(200, json=body)
        if request.url.path == f"/v1/blobs/{evil_digest}":
            return httpx.Response(200, content=evil)
        return response

    proxy.rewrite = handler
    engine = device(proxy, keys, tmp_path, [publisher])
    result = engine.check_for_update()
    assert result.status is CheckStatus.UPDATE and result.update is not None
    with pytest.raises(UpdateRefused, match="does not match its manifest"):
        engine.download(result.update)
    assert engine.pending_label is None and engine.start().name == "embedded"
    assert not any(p.name.startswith(".staging") for p in (tmp_path / "device" / "bundles").iterdir())


def test_tampered_manifest_is_refused(api: TestClient, keys, proxy: Proxy, tmp_path: Path, publisher) -> None:
    trust(api, publisher)
    signed_push(api, tmp_path, "Welcome", publisher)

    def widen(update: dict) -> None:
        manifest = json.loads(base64.b64decode(update["signed_manifest"]))
        manifest["target_version"] = "*"
        update["signed_manifest"] = base64.b64encode(
            json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        ).decode()

    rewrite_update(proxy, widen)
    refused(device(proxy, keys, tmp_path, [publisher]), proxy, "does not verify", "altered")


def test_release_signed_with_another_key_is_refused(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    other = sig.generate_private_key()
    trust(api, publisher)
    trust(api, other)  # the server accepts both; this device trusts only the publisher's key
    signed_push(api, tmp_path, "Welcome", other)
    refused(device(proxy, keys, tmp_path, [publisher]), proxy, "does not verify")


def test_release_signed_with_a_retired_key_is_refused(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    old = sig.generate_private_key()
    trust(api, old)
    signed_push(api, tmp_path, "Welcome", old)  # e.g. replayed by someone who stole the old key
    engine = device(proxy, keys, tmp_path, [publisher], retired_keys=[sig.public_key_text(old)])
    refused(engine, proxy, "retired key")


def test_replayed_older_signed_release_is_refused(api: TestClient, keys, proxy, tmp_path, publisher) -> None:
    trust(api, publisher)
    signed_push(api, tmp_path, "Old and vulnerable", publisher)
    old_answer = answer_of(proxy, keys["Production"])
    signed_push(api, tmp_path, "Fixed", publisher)
    engine = device(proxy, keys, tmp_path, [publisher])
    result = engine.check_for_update()
    assert result.update is not None and result.update.label == "v2"
    engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
    engine.notify_app_ready()

    serve_instead(proxy, old_answer)
    result = engine.check_for_update()
    assert result.status is CheckStatus.REFUSED and "not newer than the installed 2" in result.message
    with pytest.raises(UpdateRefused, match="replayed"):
        engine.download(result.update)  # type: ignore[arg-type]
    assert engine.current_label == "v2" and engine.start().name != "embedded"


def test_manifest_for_another_deployment_is_refused(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    trust(api, publisher)
    signed_push(api, tmp_path, "Staging build", publisher, deployment="Staging")
    serve_instead(proxy, answer_of(proxy, keys["Staging"]))
    refused(device(proxy, keys, tmp_path, [publisher]), proxy, "deployment 'Staging'")


def test_oversized_download_is_refused(api: TestClient, keys, proxy, tmp_path, publisher) -> None:
    trust(api, publisher)
    signed_push(api, tmp_path, "Welcome", publisher)
    rewrite_update(proxy, lambda update: update.update(size=10**12))
    refused(device(proxy, keys, tmp_path, [publisher]), proxy, "more than the", "signed")


def test_unsigned_release_is_refused_by_a_device_that_requires_signatures(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    assert push(api, tmp_path, "Welcome", None).status_code == 201  # the app has no keys on the server
    refused(device(proxy, keys, tmp_path, [publisher]), proxy, "not signed")


def test_a_signed_rollback_moves_devices_back_with_a_newer_sequence(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    trust(api, publisher)
    first = signed_push(api, tmp_path, "Good", publisher)
    signed_push(api, tmp_path, "Bad", publisher)
    engine = device(proxy, keys, tmp_path, [publisher])
    result = engine.check_for_update()
    assert result.update is not None and result.update.label == "v2"
    engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
    engine.notify_app_ready()
    unsigned = api.post(f"/api/v1/apps/{APP}/deployments/Production/rollback", json={})
    assert unsigned.status_code == 422
    upcoming = api.get(f"/api/v1/apps/{APP}/deployments/Production/next-release").json()
    manifest = sig.ReleaseManifest.from_bytes(base64.b64decode(first["signed_manifest"]))
    data, signature = sig.sign_manifest(
        sig.ReleaseManifest(
            **{**manifest.__dict__, "label": upcoming["label"], "sequence": upcoming["sequence"]}
        ),
        publisher,
    )
    rolled = api.post(
        f"/api/v1/apps/{APP}/deployments/Production/rollback",
        json={"signed": {"manifest": base64.b64encode(data).decode(), "signature": signature}},
    )
    assert rolled.status_code == 201, rolled.text
    result = engine.check_for_update()
    assert result.update is not None and result.update.label == "v3" and result.update.sequence == 3
    engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
    assert engine.current_label == "v3"


# -- freshness ----------------------------------------------------------------------------------------


def server_key(api: TestClient) -> str:
    return str(api.get("/api/v1/server-key").json()["public_key"])


def test_fresh_answers_verify_and_tampered_or_expired_ones_are_refused(
    api: TestClient, keys, proxy, tmp_path
) -> None:
    engine = device(proxy, keys, tmp_path, [], server_key=server_key(api))
    assert engine.check_for_update().status is CheckStatus.RUN_EMBEDDED
    assert engine.freshness_age() is not None and engine.freshness_age() < 60  # type: ignore[operator]

    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            body = response.content.replace(b"run_embedded", b"no_update")
            return httpx.Response(200, headers=response.headers, content=body)
        return response

    proxy.rewrite = tamper
    result = engine.check_for_update()
    assert result.status is CheckStatus.REFUSED and "does not verify" in result.message
    proxy.rewrite = None
    late = device(proxy, keys, tmp_path, [], "late", server_key=server_key(api), wall_clock=lambda: 4e9)
    result = late.check_for_update()
    assert result.status is CheckStatus.REFUSED and "expired" in result.message


def test_an_answer_signed_by_another_server_key_or_unsigned_is_refused(
    api: TestClient, keys, proxy, tmp_path
):
    other = sig.public_key_text(sig.generate_private_key())
    engine = device(proxy, keys, tmp_path, [], server_key=other)
    assert engine.check_for_update().status is CheckStatus.REFUSED

    def strip(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return httpx.Response(response.status_code, content=response.content)

    proxy.rewrite = strip
    engine = device(proxy, keys, tmp_path, [], "second", server_key=server_key(api))
    result = engine.check_for_update()
    assert result.status is CheckStatus.REFUSED and "not signed by the server" in result.message


def test_a_device_kept_from_fresh_answers_tells_the_app(api: TestClient, keys, proxy, tmp_path) -> None:
    now = [1_000_000.0]
    stale: list[float] = []
    engine = device(
        proxy,
        keys,
        tmp_path,
        [],
        server_key=server_key(api),
        max_staleness=3 * 86_400,
        on_stale=stale.append,
        wall_clock=lambda: now[0],
        min_check_interval=0,
    )
    proxy.offline = True  # an attacker drops every update check
    assert engine.check_for_update().status is CheckStatus.OFFLINE
    assert stale == []
    now[0] += 4 * 86_400
    assert engine.check_for_update().status is CheckStatus.OFFLINE
    assert len(stale) == 1 and stale[0] >= 4 * 86_400


def test_an_altered_sequence_in_the_offer_is_refused_and_cannot_lower_the_floor(
    api: TestClient, keys, proxy, tmp_path, publisher
) -> None:
    """The offer's `sequence` is not signed by itself: it must equal the signed manifest's."""
    trust(api, publisher)
    signed_push(api, tmp_path, "Old and vulnerable", publisher)
    old_answer = answer_of(proxy, keys["Production"])
    signed_push(api, tmp_path, "Fixed", publisher)
    engine = device(proxy, keys, tmp_path, [publisher], min_check_interval=0)
    rewrite_update(proxy, lambda update: update.update(sequence=0))
    refused(engine, proxy, "sequence")
    proxy.rewrite = None
    result = engine.check_for_update()
    assert result.update is not None
    engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
    engine.notify_app_ready()

    serve_instead(proxy, old_answer)
    result = engine.check_for_update()
    assert result.status is CheckStatus.REFUSED and "not newer than the installed 2" in result.message


def test_answers_from_several_workers_in_the_same_minute_are_not_taken_for_replays(
    api: TestClient, keys, proxy, tmp_path
) -> None:
    from overair.client._trust import Trust
    from overair.protocols.native import AnswerSigner

    key = sig.generate_private_key()
    now = [1_000.0]
    first, second = (AnswerSigner(key, 86_400, clock=lambda: now[0]) for _ in range(2))
    checker = Trust(
        public_keys=[],
        retired_keys=[],
        server_key=sig.public_key_text(key),
        app_name=None,
        deployment_name=None,
        app_version="1.0.0",
        build_number=None,
    )
    body, scope = b'{"status":"no_update"}', "k|1.0.0|||v1|"

    def as_text(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in headers}

    first.headers(scope, body)  # another device's check, cached by worker 1
    now[0] = 1_040
    seen = checker.check_answer(as_text(second.headers(scope, body)), body, scope, now[0], 0)
    now[0] = 1_050  # worker 1 answers from its cache
    assert checker.check_answer(as_text(first.headers(scope, body)), body, scope, now[0], seen or 0)
