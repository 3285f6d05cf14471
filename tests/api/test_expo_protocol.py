"""The Expo Updates protocol through HTTP: publishing Expo packages, manifest requests, directives, assets.

Table-driven where the rules are: runtime-version matching, channels (deployment keys), rollout buckets
on ``EAS-Client-ID``, failed update ids, protocol 0 against 1, ``expo-expect-signature``, malformed
headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import bsdiff4
import httpx
import pytest
from starlette.testclient import TestClient

from conftest import make_zip, publish
from overair.app import OverairApp
from overair.storage import content_key

EMBEDDED = "9433b1ed-4006-46b8-8aa7-fdc7eeb203fd"


@pytest.fixture
def keys(api: TestClient) -> dict[str, str]:
    app = api.post("/api/v1/apps", json={"name": "ExpoApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}


def expo_package(text: str, image: bytes = b"\x89PNG shared image", bundle: bytes | None = None) -> bytes:
    """One platform's package as `overair release push-expo` builds it (its launch asset: ``bundle``, by
    default a line naming ``text``)."""
    return make_zip(
        {
            "bundles/app.hbc": f"bundle {text}".encode() if bundle is None else bundle,
            "assets/4f1cb2ca": image,
            "expo.json": json.dumps(
                {
                    "launchAsset": "bundles/app.hbc",
                    "assets": [{"path": "assets/4f1cb2ca", "ext": "png"}],
                    "extra": {"expoClient": {"name": "ExpoApp"}},
                }
            ).encode(),
        }
    )


def push(
    api: TestClient,
    text: str,
    platform: str = "ios",
    runtime: str = "1.0.0",
    deployment: str = "Production",
    **options: object,
) -> dict[str, Any]:
    response = publish(
        api,
        app="ExpoApp",
        deployment=deployment,
        content=expo_package(f"{text} {platform}"),
        target_version="*",
        expo={"platform": platform, "runtime_version": runtime},
        **options,
    )
    assert response.status_code == 201, response.text
    release: dict[str, Any] = response.json()
    return release


def headers(
    platform: str = "ios",
    runtime: str = "1.0.0",
    current: str = EMBEDDED,
    client: str = "6b1f0a9e-2c53-4c8e-9b8a-3f1d2e4c5a6b",
    protocol: str = "1",
    **extra: str,
) -> dict[str, str]:
    """The headers expo-updates sends (spec §1.2)."""
    sent = {
        "Accept": "multipart/mixed,application/expo+json,application/json",
        "Expo-Platform": platform,
        "Expo-Protocol-Version": protocol,
        "Expo-API-Version": "1",
        "Expo-Updates-Environment": "BARE",
        "Expo-JSON-Error": "true",
        "EAS-Client-ID": client,
        "Expo-Runtime-Version": runtime,
        "Expo-Current-Update-ID": current,
        "Expo-Embedded-Update-ID": EMBEDDED,
    }
    sent.update({k.replace("_", "-"): v for k, v in extra.items()})
    return {k: v for k, v in sent.items() if v}


def parts(response: httpx.Response) -> dict[str, tuple[dict[str, str], bytes]]:
    """The multipart answer's parts by name: (part headers, exact body bytes)."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/mixed; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(
        b"content-type: " + content_type.encode() + b"\r\n\r\n" + response.content
    )
    found = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        found[str(name)] = (dict(part.items()), part.get_payload(decode=True))
    return found


def ask(device: TestClient, key: str, **kwargs: str) -> httpx.Response:
    return device.get(f"/expo/{key}", headers=headers(**kwargs))


def manifest_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found = parts(response)
    assert "manifest" in found, found
    manifest: dict[str, Any] = json.loads(found["manifest"][1])
    return manifest


def directive_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    directive: dict[str, Any] = json.loads(parts(response)["directive"][1])
    return directive


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_manifest_answer_headers_and_assets(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    release = push(api, "hello", description="Fixes the typo", mandatory=True)
    response = ask(device, keys["Production"])
    assert response.headers["expo-protocol-version"] == "1"
    assert response.headers["expo-sfv-version"] == "0"
    assert response.headers["cache-control"] == "private, max-age=0"
    manifest = manifest_of(response)
    assert manifest["id"] == release["update_id"] and uuid.UUID(manifest["id"])
    assert manifest["runtimeVersion"] == "1.0.0"
    assert manifest["createdAt"].endswith("Z") and len(manifest["createdAt"]) == 24
    assert manifest["extra"]["overair"] == {"label": "v1", "description": "Fixes the typo", "mandatory": True}
    assert manifest["extra"]["expoClient"] == {"name": "ExpoApp"}
    assert json.loads(parts(response)["extensions"][1]) == {"assetRequestHeaders": {}}
    launch = manifest["launchAsset"]
    body = device.get(launch["url"])
    assert body.status_code == 200 and body.content == b"bundle hello ios"
    assert launch["hash"] == b64url_sha256(body.content) and launch["contentType"] == "application/javascript"
    assert body.headers["content-type"] == "application/javascript"
    assert body.headers["cache-control"] == "public, max-age=31536000, immutable"
    (image,) = manifest["assets"]
    assert image["fileExtension"] == ".png" and image["contentType"] == "image/png"
    got = device.get(image["url"])
    assert got.headers["content-type"] == "image/png" and image["hash"] == b64url_sha256(got.content)
    assert image["key"] == hashlib.sha256(got.content).hexdigest()


@pytest.mark.parametrize(
    ("runtime", "platform", "offered"),
    [
        ("1.0.0", "ios", "v1"),
        ("1.0.0", "android", "v2"),
        ("1.0", "ios", None),  # exact strings: no semver
        ("1.0.0 ", "ios", "v1"),  # a header's surrounding blanks are not part of it
        ("2.0.0", "ios", "v3"),
        ("2.0.0", "android", None),
        ("exposdk:51.0.0", "ios", None),
    ],
)
def test_runtime_version_matching(
    api: TestClient,
    device: TestClient,
    keys: dict[str, str],
    runtime: str,
    platform: str,
    offered: str | None,
) -> None:
    push(api, "a")
    push(api, "a", platform="android")
    push(api, "b", runtime="2.0.0")
    response = ask(device, keys["Production"], runtime=runtime, platform=platform)
    if offered is None:
        assert directive_of(response) == {"type": "noUpdateAvailable"}
    else:
        assert manifest_of(response)["extra"]["overair"]["label"] == offered


@pytest.mark.parametrize(("deployment", "text"), [("Production", "prod"), ("Staging", "beta")])
def test_each_deployment_key_is_a_channel(
    api: TestClient, device: TestClient, keys: dict[str, str], deployment: str, text: str
) -> None:
    push(api, "prod")
    push(api, "beta", deployment="Staging")
    launch = manifest_of(ask(device, keys[deployment]))["launchAsset"]
    assert device.get(launch["url"]).content == f"bundle {text} ios".encode()


@pytest.mark.parametrize(
    ("channel", "text"),
    [("", "prod"), ("Staging", "beta"), ("staging", "beta"), ("Production", "prod"), ("Nightly", None)],
)
def test_expo_channel_name_picks_a_deployment_of_the_same_app(
    api: TestClient, device: TestClient, keys: dict[str, str], channel: str, text: str | None
) -> None:
    push(api, "prod")
    push(api, "beta", deployment="Staging")
    other = api.post("/api/v1/apps", json={"name": "Other"}).json()
    assert other["deployments"]
    response = ask(device, keys["Production"], expo_channel_name=channel)
    if text is None:
        assert response.status_code == 404 and "Nightly" in response.json()["error"]
        return
    launch = manifest_of(response)["launchAsset"]
    assert device.get(launch["url"]).content == f"bundle {text} ios".encode()


def test_rollout_buckets_on_the_lower_cased_eas_client_id(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    push(api, "old")
    push(api, "new", rollout=30)
    clients = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(200)]

    def gets_new(client: str) -> bool:
        return (
            manifest_of(ask(device, keys["Production"], client=client))["extra"]["overair"]["label"] == "v2"
        )

    inside = {c for c in clients if gets_new(c)}
    assert 30 <= len(inside) <= 90  # about 30% of 200
    assert {c for c in clients if gets_new(c.upper())} == inside  # iOS sends it upper-case: same bucket
    assert {c for c in clients if gets_new(c)} == inside  # deterministic
    api.patch("/api/v1/apps/ExpoApp/deployments/Production/releases", json={"rollout": 60})
    wider = {c for c in clients if gets_new(c)}
    assert inside < wider  # monotonic: raising the share only adds devices
    assert not gets_new("")  # no id: never inside a partial rollout


def test_failed_update_ids_are_never_offered_again(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    first = push(api, "one")
    second = push(api, "two")
    failed = f'"{second["update_id"]}"'
    answer = ask(device, keys["Production"], current=first["update_id"], Expo_Recent_Failed_Update_IDs=failed)
    assert directive_of(answer) == {"type": "noUpdateAvailable"}
    fresh = ask(device, keys["Production"], Expo_Recent_Failed_Update_IDs=failed)
    assert manifest_of(fresh)["id"] == first["update_id"]


@pytest.mark.parametrize(
    ("protocol", "situation", "expected"),
    [
        ("1", "update", "manifest"),
        ("0", "update", "manifest"),
        ("1", "latest", "noUpdateAvailable"),
        ("0", "latest", "manifest"),  # protocol 0 has no directives: the manifest it runs
        ("1", "embedded-none", "noUpdateAvailable"),
        ("0", "embedded-none", 204),
        ("1", "rolled-back", "rollBackToEmbedded"),
        ("0", "rolled-back", "manifest"),  # not expressible in 0: it keeps what it runs
    ],
)
def test_protocol_0_and_1_answers(
    api: TestClient,
    device: TestClient,
    keys: dict[str, str],
    protocol: str,
    situation: str,
    expected: object,
) -> None:
    current = EMBEDDED
    if situation != "embedded-none":
        release = push(api, "x")
        if situation != "update":
            current = release["update_id"]
    created = ""
    if situation == "rolled-back":
        created = manifest_of(ask(device, keys["Production"]))["createdAt"]
        api.patch("/api/v1/apps/ExpoApp/deployments/Production/releases", json={"disabled": True})
    response = ask(device, keys["Production"], protocol=protocol, current=current)
    assert response.headers["expo-protocol-version"] == protocol
    if isinstance(expected, int):
        assert response.status_code == expected and response.content == b""
    elif expected == "manifest":
        assert manifest_of(response)["id"] in (current, release["update_id"])
    else:
        directive = directive_of(response)
        assert directive["type"] == expected
        if expected == "rollBackToEmbedded":
            commit = directive["parameters"]["commitTime"]
            assert commit > created and commit.endswith("Z") and len(commit) == len(created)


@pytest.mark.parametrize("expects", [None, 'sig, keyid="main", alg="rsa-v1_5-sha256"'])
def test_expect_signature_present_and_absent(
    api: TestClient, device: TestClient, keys: dict[str, str], expects: str | None
) -> None:
    release = push(api, "x")
    extra = {"expo-expect-signature": expects} if expects else {}
    response = device.get(
        f"/expo/{keys['Production']}", headers={**headers(current=release["update_id"]), **extra}
    )
    if expects:  # nothing the server would have to sign: no body at all
        assert response.status_code == 204 and response.headers["expo-protocol-version"] == "1"
    else:
        assert directive_of(response) == {"type": "noUpdateAvailable"}
        assert "expo-signature" not in parts(response)["directive"][0]


@pytest.mark.parametrize(
    ("changed", "complaint"),
    [
        ({"Expo-Platform": "web"}, "expo-platform"),
        ({"Expo-Platform": ""}, "expo-platform"),
        ({"Expo-Runtime-Version": ""}, "expo-runtime-version"),
        ({"Expo-Runtime-Version": "x" * 201}, "expo-runtime-version"),
        ({"Expo-Protocol-Version": "2"}, "expo-protocol-version"),
        ({"Expo-Current-Update-ID": "not-a-uuid"}, "expo-current-update-id"),
        ({"Expo-Embedded-Update-ID": "1234"}, "expo-embedded-update-id"),
        ({"Expo-Recent-Failed-Update-IDs": "39242af2-7424-46cb-a89b-464bb9779dbd"}, "quoted"),
        ({"Expo-Recent-Failed-Update-IDs": '"x", "y"'}, "quoted"),
        ({"Expo-Recent-Failed-Update-IDs": '"' + "a" * 3000 + '"'}, "longer"),
        ({"EAS-Client-ID": "c" * 300}, "eas-client-id"),
    ],
)
def test_malformed_headers_get_a_clear_400(
    device: TestClient, keys: dict[str, str], changed: dict[str, str], complaint: str
) -> None:
    sent = {**headers(current=""), **changed}
    response = device.get(f"/expo/{keys['Production']}", headers={k: v for k, v in sent.items() if v})
    assert response.status_code == 400
    assert complaint in response.json()["error"]


def test_repeated_protocol_version_header_is_refused(device: TestClient, keys: dict[str, str]) -> None:
    sent = [(k, v) for k, v in headers().items()] + [("Expo-Protocol-Version", "0")]
    response = device.get(f"/expo/{keys['Production']}", headers=httpx.Headers(sent))
    assert response.status_code == 400 and "once" in response.json()["error"]


def test_unknown_key_and_paths(device: TestClient) -> None:
    assert device.get("/expo/nokey", headers=headers()).status_code == 404
    assert device.post("/expo/nokey", headers=headers()).status_code == 405
    assert device.get("/expo/assets/nothing").status_code == 404
    assert device.get("/expo/assets/" + "0" * 64 + ".png").status_code == 404


def test_rollback_is_a_newer_manifest_with_the_earlier_content(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    first = push(api, "one")
    push(api, "one", platform="android")
    second = push(api, "two")
    rollback = api.post("/api/v1/apps/ExpoApp/deployments/Production/rollback", json={})
    assert rollback.status_code == 201, rollback.text
    again = rollback.json()
    assert again["platform"] == "ios" and again["origin_label"] == first["label"]
    assert again["update_id"] not in (first["update_id"], second["update_id"])
    manifest = manifest_of(ask(device, keys["Production"], current=second["update_id"]))
    assert manifest["id"] == again["update_id"]
    assert device.get(manifest["launchAsset"]["url"]).content == b"bundle one ios"


def test_refuses_an_expo_release_without_its_description(api: TestClient, keys: dict[str, str]) -> None:
    response = publish(
        api,
        app="ExpoApp",
        content=make_zip({"index.js": b"x"}),
        target_version="*",
        expo={"platform": "ios", "runtime_version": "1.0.0"},
    )
    assert response.status_code == 422 and "expo.json" in response.text
    broken = make_zip({"expo.json": json.dumps({"launchAsset": "bundles/missing.js"}).encode()})
    response = publish(
        api, app="ExpoApp", content=broken, expo={"platform": "ios", "runtime_version": "1.0.0"}
    )
    assert response.status_code == 422 and "bundles/missing.js" in response.text


def test_check_headers_feed_the_release_metrics(
    server: Any, api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    first = push(api, "one")
    second = push(api, "two")
    failed = f'"{second["update_id"]}"'
    for _ in range(3):  # the client repeats the headers on every check: each fact counts once
        ask(
            device,
            keys["Production"],
            current=first["update_id"],
            Expo_Recent_Failed_Update_IDs=failed,
            Expo_Fatal_Error="TypeError: undefined is not a function",
        )
    ask(device, keys["Production"], current=first["update_id"], client="another-device")
    server.state.metrics.flush()
    history = {r["label"]: r for r in api.get("/api/v1/apps/ExpoApp/deployments/Production/releases").json()}
    assert history["v2"]["failures"] == 1
    metrics = api.get("/api/v1/apps/ExpoApp/deployments/Production/metrics").json()
    by_label = {m["label"]: m for m in metrics["labels"]} if "labels" in metrics else metrics
    assert "TypeError: undefined is not a function" in json.dumps(by_label)
    assert '"active": 2' in json.dumps(by_label).replace(" ", "").replace('"active":2', '"active": 2')


def test_console_and_release_list_show_platform_and_runtime_version(
    server: Any, api: TestClient, admin_key: str
) -> None:
    api.post("/api/v1/apps", json={"name": "ExpoApp"})
    push(api, "one", runtime="exposdk:51.0.0")
    push(api, "one", platform="android", runtime="exposdk:51.0.0")
    client = TestClient(server, base_url="http://testserver", follow_redirects=False)
    assert client.post("/console/sign-in", data={"access_key": admin_key}).status_code == 303
    page = client.get("/console/apps/ExpoApp/deployments/Production").text
    assert "ios runtime exposdk:51.0.0" in page and "android runtime exposdk:51.0.0" in page
    release = client.get("/console/apps/ExpoApp/deployments/Production/releases/v2").text
    assert "Runtime version" in release and "android" in release


EMBEDDED_DIRECTIVE = b'{"type":"rollBackToEmbedded","parameters":{"commitTime":"2026-10-01T12:00:00.001Z"}}'


def signed_options(release_manifest: bytes, signature: str) -> dict[str, str]:
    return {
        "signed_manifest": base64.b64encode(release_manifest).decode(),
        "signature": signature,
        "no_update_signature": "bm8tdXBkYXRl",
        "embedded_directive": base64.b64encode(EMBEDDED_DIRECTIVE).decode(),
        "embedded_signature": "ZW1iZWRkZWQ=",
        "keyid": "main",
    }


@pytest.mark.parametrize("expects", [True, False])
def test_signed_manifests_are_served_as_published_with_their_signature(
    api: TestClient, device: TestClient, keys: dict[str, str], expects: bool
) -> None:
    bundle = b"bundle signed"
    image = b"\x89PNG shared image"
    manifest = json.dumps(
        {
            "id": "b15ed6d8-f39b-04ad-a248-fa3b95fd7e0e",
            "createdAt": "2026-10-01T12:00:00.000Z",
            "runtimeVersion": "1.0.0",
            "launchAsset": {"hash": b64url_sha256(bundle), "key": "k", "url": "https://cdn/x"},
            "assets": [{"hash": b64url_sha256(image), "key": "i", "url": "https://cdn/y"}],
            "metadata": {},
            "extra": {},
        },
        indent=1,  # not how the server would write it: the bytes are the publisher's
    ).encode()
    response = publish(
        api,
        app="ExpoApp",
        content=expo_package("signed", image),
        target_version="*",
        expo={"platform": "ios", "runtime_version": "1.0.0", **signed_options(manifest, "c2ln")},
    )
    assert response.status_code == 201, response.text
    extra = {"expo-expect-signature": 'sig, keyid="main"'} if expects else {}
    answer = device.get(f"/expo/{keys['Production']}", headers={**headers(), **extra})
    part_headers, body = parts(answer)["manifest"]
    assert body == manifest
    assert part_headers["expo-signature"] == 'sig="c2ln", keyid="main", alg="rsa-v1_5-sha256"'
    again = device.get(
        f"/expo/{keys['Production']}",
        headers={**headers(current="b15ed6d8-f39b-04ad-a248-fa3b95fd7e0e"), **extra},
    )
    directive_headers, directive = parts(again)["directive"]
    assert directive == b'{"type":"noUpdateAvailable"}'
    assert ("expo-signature" in directive_headers) is expects
    api.patch("/api/v1/apps/ExpoApp/deployments/Production/releases", json={"disabled": True})
    back = device.get(
        f"/expo/{keys['Production']}",
        headers={**headers(current="b15ed6d8-f39b-04ad-a248-fa3b95fd7e0e"), **extra},
    )
    rollback_headers, rollback = parts(back)["directive"]
    if expects:  # the publisher's pre-signed one, byte for byte
        assert rollback == EMBEDDED_DIRECTIVE
        assert rollback_headers["expo-signature"].startswith('sig="ZW1iZWRkZWQ="')
    else:
        assert (
            json.loads(rollback)["type"] == "rollBackToEmbedded" and "expo-signature" not in rollback_headers
        )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"runtimeVersion": "2.0.0"}, "runtimeVersion"),
        ({"id": "not-a-uuid"}, "UUID"),
        ({"createdAt": "yesterday"}, "createdAt"),
        ({"launchAsset": {"hash": "AAAA"}}, "launchAsset"),
        ({"assets": [{"hash": "AAAA"}]}, "assets"),
        ({"createdAt": "2026-10-01T12:00:00.001Z"}, "is not after createdAt"),
    ],
)
def test_a_signed_manifest_must_describe_its_package(
    api: TestClient, keys: dict[str, str], change: dict[str, Any], complaint: str
) -> None:
    manifest = {
        "id": str(uuid.uuid4()),
        "createdAt": "2026-10-01T12:00:00.000Z",
        "runtimeVersion": "1.0.0",
        "launchAsset": {"hash": b64url_sha256(b"bundle x")},
        "assets": [],
        **change,
    }
    response = publish(
        api,
        app="ExpoApp",
        content=expo_package("x"),
        target_version="*",
        expo={
            "platform": "ios",
            "runtime_version": "1.0.0",
            **signed_options(json.dumps(manifest).encode(), "c2ln"),
        },
    )
    assert response.status_code == 422 and complaint in response.text


def test_answers_are_encoded_once_whatever_the_client_id(
    server: Any, api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    """The client id only picks one of the cached answers: it is not part of what is cached (it was, and
    every check built its answer anew)."""
    push(api, "one")
    for n in range(20):
        manifest_of(ask(device, keys["Production"], client=f"device-{n}"))
    entry = server.state.device_cache._entries[keys["Production"]]
    assert len([k for k in entry.memo if k[0] == "expo"]) == 1


def test_one_rollout_at_a_time_per_platform(api: TestClient, keys: dict[str, str]) -> None:
    """push-expo with --rollout-percentage publishes both platforms: the iOS rollout under way does not
    stop the Android release, only another iOS one."""
    push(api, "one", rollout=30)
    push(api, "one", platform="android", rollout=30)
    refused = publish(
        api,
        app="ExpoApp",
        content=expo_package("two ios"),
        target_version="*",
        expo={"platform": "ios", "runtime_version": "1.0.0"},
    )
    assert refused.status_code == 409 and "v1 reaches 30%" in refused.text


def test_a_patch_request_gets_the_full_launch_asset_while_no_patches_are_built(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    first = push(api, "one")
    second = push(api, "two")
    launch = manifest_of(ask(device, keys["Production"], current=first["update_id"]))["launchAsset"]
    patch_headers = {
        "A-IM": "bsdiff",
        "Expo-Current-Update-ID": first["update_id"],
        "Expo-Requested-Update-ID": second["update_id"],
    }
    full = device.get(launch["url"], headers=patch_headers)
    assert full.status_code == 200 and full.content == b"bundle two ios" and "im" not in full.headers
    assert device.head(launch["url"]).headers["content-length"] == str(len(b"bundle two ios"))


BUNDLE = "".join(
    f'__d(function(g,r,i,a,m,e,d){{"use strict";var s{i}=r(d[0]).render({i});e.default=s{i}}},{i},[0]);\n'
    for i in range(3000)
).encode()


def test_a_device_asking_for_a_patch_gets_the_bsdiff_patch_from_the_update_it_runs(
    api: TestClient, device: TestClient, server: OverairApp, keys: dict[str, str]
) -> None:
    hotfix = BUNDLE.replace(b"render(1234)", b"render(4321)", 1)
    released = []
    for bundle in (BUNDLE, hotfix):
        response = publish(
            api,
            app="ExpoApp",
            deployment="Production",
            content=expo_package("", bundle=bundle),
            target_version="*",
            expo={"platform": "ios", "runtime_version": "1.0.0"},
        )
        assert response.status_code == 201, response.text
        released.append(response.json())
    first, second = released
    launch = manifest_of(ask(device, keys["Production"], current=first["update_id"]))["launchAsset"]
    asking = {
        "A-IM": "bsdiff",
        "Expo-Current-Update-ID": first["update_id"].upper(),  # ids are compared without case
        "Expo-Requested-Update-ID": second["update_id"],
    }
    assert server.state.jobs.drain(timeout=60)  # publishing queued the patch from the release before

    patched = device.get(launch["url"], headers=asking)
    assert patched.status_code == 226, patched.text
    assert patched.headers["im"] == "bsdiff" and patched.headers["content-type"] == "application/vnd.bsdiff"
    assert patched.headers["expo-base-update-id"] == first["update_id"]
    assert "no-store" in patched.headers["cache-control"] and "A-IM" in patched.headers["vary"]
    assert len(patched.content) < len(hotfix) // 100
    assert bsdiff4.patch(BUNDLE, patched.content) == hotfix

    # a device on an update overair does not know (its embedded one), or not asking, or asking when the
    # patch's blob is lost from the store: the whole asset, never an error
    unknown = {**asking, "Expo-Current-Update-ID": EMBEDDED}
    server.state.blobs.delete(content_key(hashlib.sha256(patched.content).hexdigest()))
    for sent in (unknown, {}, asking):
        whole = device.get(launch["url"], headers=sent)
        assert whole.status_code == 200 and whole.content == hotfix


def test_a_device_that_keeps_checking_in_keeps_counting_as_active(
    server: Any, api: TestClient, device: TestClient, keys: dict[str, str], clock: Any
) -> None:
    """Every check says which update the device runs; the server remembers a fact it has recorded, but only
    for a day, so a device seen every day is never expired as silent (``active_days``, 30 by default)."""
    first = push(api, "one")

    def active() -> int:
        server.state.metrics.flush()
        series = api.get("/api/v1/apps/ExpoApp/deployments/Production/metrics").json()["series"]
        return int([hour for hour in series if hour["label"] == "v1"][-1]["active"])

    for _ in range(30):  # a check a day for 30 days, from a server process that never restarts
        ask(device, keys["Production"], current=first["update_id"])
        server.state.metrics.flush()
        clock.advance(24 * 3600)
    assert server.state.metrics.prune(clock()) == (0, 0)  # seen yesterday: not silent
    assert active() == 1


def test_a_device_that_returns_to_its_embedded_update_leaves_the_label_the_same_day(
    server: Any, api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    """embedded → v1 → embedded (a rollBackToEmbedded) → v1 within minutes: each move counts, though the
    device said each of those things before that day."""
    first = push(api, "one")

    def active() -> int:
        server.state.metrics.flush()
        series = api.get("/api/v1/apps/ExpoApp/deployments/Production/metrics").json()["series"]
        return int([hour for hour in series if hour["label"] == "v1"][-1]["active"])

    assert ask(device, keys["Production"]).status_code == 200  # on its embedded update
    ask(device, keys["Production"], current=first["update_id"])
    assert active() == 1
    ask(device, keys["Production"])  # back on the embedded update
    assert active() == 0
    ask(device, keys["Production"], current=first["update_id"])
    assert active() == 1
