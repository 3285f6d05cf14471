"""The CodePush management API against `overair serve` on 127.0.0.1, driven by real clients from npm:

* the management SDK of `code-push` 2.0.7 (`AccountManager`, the standalone server's dialect), through
  `codepush_management_harness.js`;
* the `code-push` command of `code-push-cli` 3.0.0, whose SDK (`code-push` 4.0.2) speaks App Center's API to a
  custom server URL;
* plain HTTP for the reference's error answers.

Every change made through a CodePush client is checked through overair's own API as well.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import LiveServer, admin_api, ensure_npm_packages, running_server
from overair.protocols.codepush_management import UNAUTHORIZED

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
CLI = HERE / "node_modules" / "code-push-cli" / "script" / "cli.js"
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(HERE, "code-push-cli", "code-push-2")
    with running_server(tmp_path_factory.mktemp("codepush-management")) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """overair's own API, with the admin key."""
    with admin_api(server) as client:
        yield client


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """The CodePush management API over plain HTTP, as the standalone CLI authenticates."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def sdk(server: LiveServer, cwd: Path, *steps: dict, dialect: str = "standalone") -> list[dict]:
    """Run AccountManager 2.0.7 steps (``dialect="appcenter"``: the 4.0.2 inside code-push-cli 3.0.0);
    each gives {"result": …} or {"error": {"message", "statusCode"}}."""
    payload = {"serverUrl": server.url, "accessKey": server.key, "sdk": dialect, "steps": list(steps)}
    done = subprocess.run(
        ["node", str(HERE / "codepush_management_harness.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NODE_PATH": str(HERE / "node_modules")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ok(result: dict) -> object:
    assert "error" not in result, result
    return result["result"]


def folder(root: Path, text: str) -> Path:
    """A release folder `CodePush/` with a bundle whose content depends on `text`."""
    bundle = root / unique("release") / "CodePush"
    (bundle / "assets").mkdir(parents=True)
    (bundle / "index.android.bundle").write_text(f"console.log({text!r});")
    (bundle / "assets" / "logo.txt").write_text("logo")
    return bundle


def releases(api: httpx.Client, app: str, deployment: str) -> list[dict]:
    response = api.get(f"/apps/{app}/deployments/{deployment}/releases")
    assert response.status_code == 200, response.text
    return response.json()


# -- the management SDK of code-push 2.0.7 (standalone dialect) ----------------------------------------


def test_sdk_authentication_and_account(server: LiveServer, tmp_path: Path) -> None:
    results = sdk(
        server,
        tmp_path,
        {"call": "isAuthenticated"},
        {"call": "isAuthenticated", "accessKey": "oa_" + "x" * 43},
        {"call": "isAuthenticated", "args": [True], "accessKey": "short"},
        {"call": "getAccountInfo"},
    )
    assert [r.get("result") for r in results[:2]] == [True, False]
    assert results[2]["error"] == {"message": UNAUTHORIZED, "statusCode": 401}
    assert ok(results[3]) == {"email": "admin", "linkedProviders": [], "name": "admin"}


def test_sdk_access_keys(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    name, renamed = unique("ci-"), unique("ci-renamed-")
    added = ok(sdk(server, tmp_path, {"call": "addAccessKey", "args": [name, 3_600_000]})[0])
    assert isinstance(added, dict)
    assert added["name"] == name and added["key"].startswith("oa_")
    assert 3_590_000 <= added["expires"] - added["createdTime"] <= 3_610_000  # the ttl applies
    assert name in [k["name"] for k in api.get("/access-keys").json()]
    listed, one, works, patched, duplicate = sdk(
        server,
        tmp_path,
        {"call": "getAccessKeys"},
        {"call": "getAccessKey", "args": [name]},
        {"call": "isAuthenticated", "accessKey": added["key"]},
        {"call": "patchAccessKey", "args": [name, renamed]},
        {"call": "addAccessKey", "args": [renamed]},
    )
    assert name in [k["name"] for k in ok(listed)]  # type: ignore[union-attr]
    assert ok(one) == {"createdTime": added["createdTime"], "expires": added["expires"], "name": name}
    assert ok(works) is True
    assert ok(patched)["name"] == renamed  # type: ignore[index]
    assert duplicate["error"] == {"message": f'The access key "{renamed}" already exists.', "statusCode": 409}
    assert renamed in [k["name"] for k in api.get("/access-keys").json()]
    removed, rejected, missing = sdk(
        server,
        tmp_path,
        {"call": "removeAccessKey", "args": [renamed]},
        {"call": "isAuthenticated", "accessKey": added["key"]},
        {"call": "getAccessKey", "args": [renamed]},
    )
    assert ok(removed) is None and ok(rejected) is False
    assert missing["error"] == {"message": f'Access key "{renamed}" does not exist.', "statusCode": 404}
    assert renamed not in [k["name"] for k in api.get("/access-keys").json()]


def test_sdk_apps(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    app, renamed, bare = unique("SdkApp"), unique("SdkRenamed"), unique("SdkBare")
    added, duplicate, _manual, listed, one = sdk(
        server,
        tmp_path,
        {"call": "addApp", "args": [app, "Android", "React-Native"]},
        {"call": "addApp", "args": [app]},
        {"call": "addApp", "args": [bare, "iOS", "Cordova", True]},
        {"call": "getApps"},
        {"call": "getApp", "args": [app]},
    )
    assert ok(added)["name"] == app  # type: ignore[index]
    assert duplicate["error"] == {"message": f"An app named '{app}' already exists.", "statusCode": 409}
    expected = {
        "name": app,
        "collaborators": {"admin": {"isCurrentAccount": True, "permission": "Owner"}},
        "deployments": ["Production", "Staging"],
    }
    assert expected in ok(listed)  # type: ignore[operator]
    assert ok(one) == expected
    assert {"name": bare, "collaborators": expected["collaborators"], "deployments": []} in ok(listed)  # type: ignore[operator]
    ours = api.get(f"/apps/{app}").json()
    assert ours["platforms"] == ["android"] and {d["name"] for d in ours["deployments"]} == {
        "Production",
        "Staging",
    }
    assert api.get(f"/apps/{bare}").json()["deployments"] == []

    renamed_result, gone, removed = sdk(
        server,
        tmp_path,
        {"call": "renameApp", "args": [app, renamed]},
        {"call": "getApp", "args": [app]},
        {"call": "removeApp", "args": [renamed]},
    )
    assert ok(renamed_result) is None
    assert gone["error"] == {"message": f'App "{app}" does not exist.', "statusCode": 404}
    assert ok(removed) is None
    assert api.get(f"/apps/{renamed}").status_code == 404
    assert api.get(f"/apps/{app}").status_code == 404


def test_sdk_deployments(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    app = unique("DeployApp")
    key = "kept-from-the-old-server_" + unique("k")
    ok(sdk(server, tmp_path, {"call": "addApp", "args": [app]})[0])
    with_key, generated, taken, listed, one = sdk(
        server,
        tmp_path,
        {"raw": "post", "path": f"/apps/{app}/deployments/", "body": {"name": "Legacy", "key": key}},
        {"call": "addDeployment", "args": [app, "QA"]},
        {"call": "addDeployment", "args": [app, "qa"]},
        {"call": "getDeployments", "args": [app]},
        {"call": "getDeployment", "args": [app, "Legacy"]},
    )
    assert ok(with_key) == {"deployment": {"name": "Legacy", "key": key}}
    qa_key = ok(generated)["key"]  # type: ignore[index]
    assert taken["error"] == {"message": "A deployment named 'qa' already exists.", "statusCode": 409}
    assert [(d["name"], d["package"]) for d in ok(listed)] == [  # type: ignore[union-attr]
        ("Legacy", None),
        ("Production", None),
        ("QA", None),
        ("Staging", None),
    ]
    assert ok(one) == {"name": "Legacy", "key": key, "package": None}
    ours = {d["name"]: d["key"] for d in api.get(f"/apps/{app}/deployments").json()}
    assert ours["Legacy"] == key and ours["QA"] == qa_key

    renamed, removed, missing = sdk(
        server,
        tmp_path,
        {"call": "renameDeployment", "args": [app, "QA", "Beta"]},
        {"call": "removeDeployment", "args": [app, "Legacy"]},
        {"call": "getDeployment", "args": [app, "Legacy"]},
    )
    assert ok(renamed) is None and ok(removed) is None
    assert missing["error"] == {"message": 'Deployment "Legacy" does not exist.', "statusCode": 404}
    ours = {d["name"]: d["key"] for d in api.get(f"/apps/{app}/deployments").json()}
    assert ours == {"Production": ours["Production"], "Staging": ours["Staging"], "Beta": qa_key}


def test_sdk_release_promote_patch_rollback_history_metrics_clear(
    server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    app = unique("FlowApp")
    ok(sdk(server, tmp_path, {"call": "addApp", "args": [app]})[0])
    one, two = folder(tmp_path, "one"), folder(tmp_path, "two")
    info = {"description": "first", "isMandatory": False, "isDisabled": False, "rollout": None}
    released, promoted, blocked, patched, released_two, promoted_two, rolled_back = sdk(
        server,
        tmp_path,
        {"call": "release", "args": [app, "Staging", str(one), "1.0.0", info]},
        {"call": "promote", "args": [app, "Staging", "Production", {"rollout": 50}]},
        {"call": "release", "args": [app, "Production", str(two), "1.0.0", {}]},
        {"call": "patchRelease", "args": [app, "Production", None, {"rollout": 100, "isMandatory": True}]},
        {"call": "release", "args": [app, "Staging", str(two), "1.0.0", {"description": "second"}]},
        {"call": "promote", "args": [app, "Staging", "Production", {}]},
        {"call": "rollback", "args": [app, "Production"]},
    )
    package = ok(released)
    assert isinstance(package, dict)
    assert (package["label"], package["appVersion"], package["description"]) == ("v1", "1.0.0", "first")
    assert (package["releaseMethod"], package["releasedBy"], package["rollout"]) == ("Upload", "admin", 100)
    assert package["blobUrl"].startswith(server.url + "/v1/blobs/")
    staging = releases(api, app, "Staging")
    assert (staging[0]["label"], staging[0]["package_hash"]) == ("v1", package["packageHash"])
    assert staging[0]["size"] == package["size"] and staging[1]["description"] == "second"

    promoted_package = ok(promoted)
    assert isinstance(promoted_package, dict)
    assert promoted_package["releaseMethod"] == "Promote" and promoted_package["rollout"] == 50
    assert (promoted_package["originalLabel"], promoted_package["originalDeployment"]) == ("v1", "Staging")
    assert blocked["error"] == {
        "message": "Please update the previous release to 100% rollout before releasing a new package.",
        "statusCode": 409,
    }
    assert ok(patched) is None
    assert ok(released_two)["label"] == "v2"  # type: ignore[index]
    assert ok(promoted_two)["label"] == "v2"  # type: ignore[index]
    assert ok(rolled_back) is None

    history, metrics_before = sdk(
        server,
        tmp_path,
        {"call": "getDeploymentHistory", "args": [app, "Production"]},
        {"call": "getDeploymentMetrics", "args": [app, "Production"]},
    )
    entries = ok(history)
    assert isinstance(entries, list)
    assert [(e["label"], e["releaseMethod"], e.get("originalLabel")) for e in entries] == [
        ("v1", "Promote", "v1"),
        ("v2", "Promote", "v2"),
        ("v3", "Rollback", "v1"),
    ]
    assert entries[0]["isMandatory"] is True and entries[0]["rollout"] == 100
    assert entries[2]["packageHash"] == entries[0]["packageHash"]
    ours = releases(api, app, "Production")
    assert [(r["label"], r["package_hash"], r["method"]) for r in ours] == [
        (e["label"], e["packageHash"], e["releaseMethod"].lower()) for e in entries
    ]
    assert ok(metrics_before) == {}

    # the blob URL serves the zip the package hash was computed over
    zipped = httpx.get(entries[2]["blobUrl"]).content
    assert hashlib.sha256(zipped).hexdigest() == entries[2]["blobUrl"].rsplit("/", 1)[1]
    assert len(zipped) == entries[2]["size"]
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        assert "CodePush/index.android.bundle" in zf.namelist()

    # devices report through the acquisition API; the CodePush metrics show it
    key = {d["name"]: d["key"] for d in api.get(f"/apps/{app}/deployments").json()}["Production"]
    acquisition = server.url + "/v0.1/public/codepush/report_status/"
    report = {"deployment_key": key, "label": "v3", "app_version": "1.0.0", "client_unique_id": "d1"}
    assert httpx.post(acquisition + "download", json=report).status_code == 200
    assert (
        httpx.post(acquisition + "deploy", json={**report, "status": "DeploymentSucceeded"}).status_code
        == 200
    )
    metrics, cleared, after = sdk(
        server,
        tmp_path,
        {"call": "getDeploymentMetrics", "args": [app, "Production"]},
        {"call": "clearDeploymentHistory", "args": [app, "Production"]},
        {"call": "getDeploymentHistory", "args": [app, "Production"]},
    )
    assert ok(metrics) == {"v3": {"active": 1, "downloaded": 1, "failed": 0, "installed": 1}}
    assert ok(cleared) is None and ok(after) == []
    assert releases(api, app, "Production") == []
    assert [r["label"] for r in releases(api, app, "Staging")] == ["v1", "v2"]


def test_sdk_release_takes_a_zip_file(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    app = unique("ZipApp")
    ok(sdk(server, tmp_path, {"call": "addApp", "args": [app]})[0])
    archive = tmp_path / "update.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("CodePush/main.jsbundle", "console.log('zip')")
    released, identical = sdk(
        server,
        tmp_path,
        {"call": "release", "args": [app, "Production", str(archive), "^1.0.0", {"isMandatory": True}]},
        {"call": "release", "args": [app, "Production", str(archive), "^1.0.0", {}]},
    )
    package = ok(released)
    assert isinstance(package, dict)
    assert (package["appVersion"], package["isMandatory"], package["size"]) == (
        "^1.0.0",
        True,
        archive.stat().st_size,
    )
    assert identical["error"]["statusCode"] == 409
    assert (
        "identical to the contents of the specified deployment's current release"
        in identical["error"]["message"]
    )
    (ours,) = releases(api, app, "Production")
    assert (ours["target_version"], ours["mandatory"], ours["package_hash"]) == (
        "^1.0.0",
        True,
        package["packageHash"],
    )


def test_sdk_follows_the_reference_rules(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    """Rollback to another app version, rollout patches that do not raise the rollout, identical content
    and the default rollback target, as code-push-server decides them (codepush-protocol.md §5)."""
    app = unique("RulesApp")
    ok(sdk(server, tmp_path, {"call": "addApp", "args": [app]})[0])
    one, two, three = folder(tmp_path, "one"), folder(tmp_path, "two"), folder(tmp_path, "three")
    for deployment in ("Beta", "Gamma"):
        ok(sdk(server, tmp_path, {"call": "addDeployment", "args": [app, deployment]})[0])
    results = sdk(
        server,
        tmp_path,
        # Production: a release for a wider range cannot be rolled back to the one before it
        {"call": "release", "args": [app, "Production", str(one), "1.0.0", {}]},
        {"call": "release", "args": [app, "Production", str(two), "^1.0.0", {}]},
        {"call": "rollback", "args": [app, "Production"]},
        {"call": "rollback", "args": [app, "Production", "v1"]},
        # Staging: a rollout patch that does not raise the rollout is refused, with all of the patch
        {"call": "release", "args": [app, "Staging", str(one), "1.0.0", {"rollout": 50, "description": "d"}]},
        {"call": "patchRelease", "args": [app, "Staging", None, {"rollout": 50, "isMandatory": True}]},
        {"call": "patchRelease", "args": [app, "Staging", None, {"rollout": 40, "description": "new"}]},
        {"call": "patchRelease", "args": [app, "Staging", None, {"rollout": 60, "isMandatory": True}]},
        # Beta: identical content compares with the latest release for a range (only)
        {"call": "release", "args": [app, "Beta", str(one), "^1.0.0", {}]},
        {"call": "release", "args": [app, "Beta", str(two), "2.0.0", {}]},
        {"call": "release", "args": [app, "Beta", str(one), "^1.0.0", {}]},
        {"call": "release", "args": [app, "Beta", str(two), "2.0.0", {}]},
        # Gamma: the default rollback target is the release before the latest, even a disabled one
        {"call": "release", "args": [app, "Gamma", str(one), "1.0.0", {}]},
        {"call": "release", "args": [app, "Gamma", str(two), "1.0.0", {"isDisabled": True}]},
        {"call": "release", "args": [app, "Gamma", str(three), "1.0.0", {}]},
        {"call": "rollback", "args": [app, "Gamma"]},
    )
    across = {
        "message": "Cannot perform rollback to a different app version. Please perform a new release with "
        "the desired replacement package.",
        "statusCode": 409,
    }
    assert results[2]["error"] == across and results[3]["error"] == across
    assert [r["label"] for r in releases(api, app, "Production")] == ["v1", "v2"]

    same, lower, raised = results[5:8]
    assert same["error"] == {
        "message": 'Rollout value must be greater than "50", the existing value.',
        "statusCode": 409,
    }
    assert lower["error"] == {**same["error"]}
    assert ok(raised) is None  # patchRelease resolves with nothing
    staged = releases(api, app, "Staging")
    assert [(r["rollout"], r["mandatory"], r["description"]) for r in staged] == [(60, True, "d")]

    ok(results[8])
    ok(results[9])
    assert ok(results[10])["label"] == "v3"  # type: ignore[index]
    assert results[11]["error"] == {
        "message": "The uploaded package was not released because it is identical to the contents of the "
        "specified deployment's current release.",
        "statusCode": 409,
    }

    assert ok(results[15]) is None
    gamma = releases(api, app, "Gamma")
    assert [(r["label"], r["origin_label"], r["disabled"]) for r in gamma] == [
        ("v1", None, False),
        ("v2", None, True),
        ("v3", None, False),
        ("v4", "v2", True),
    ]
    assert gamma[3]["package_hash"] == gamma[1]["package_hash"]


# -- the code-push command of code-push-cli 3.0.0 (App Center dialect) --------------------------------


class CodePushCli:
    """`code-push` with its session file in a temporary HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, stdin: str = "", expect: int = 0) -> str:
        env = {**os.environ, "HOME": str(self.home), "NO_UPDATE_NOTIFIER": "1", "FORCE_COLOR": "0"}
        env.pop("LOCALAPPDATA", None)
        done = subprocess.run(
            ["node", str(CLI), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.home,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == expect, f"code-push {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr


def json_in(output: str) -> list[dict]:
    """The JSON array the CLI printed (around its deprecation notice, Node's warnings and, for
    `access-key ls`, a stray `console.log` of the raw answer left in code-push 4.0.2's adapter)."""
    start = output.find("[")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(output[start:])
        except ValueError:
            start = output.find("[", start + 1)
            continue
        if isinstance(value, list):
            return value
        start = output.find("[", start + 1)
    raise AssertionError(f"no JSON array in:\n{output}")


def test_code_push_cli_3(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    cli = CodePushCli(tmp_path / "home")
    app = unique("CliApp")
    assert "Invalid access key" in cli("login", server.url, "--accessKey", "oa_" + "y" * 43, expect=1)
    assert "Successfully logged-in" in cli("login", server.url + "/", "--accessKey", server.key)
    session = json.loads((cli.home / ".code-push.config").read_text())
    assert (session["accessKey"], session["customServerUrl"]) == (server.key, server.url)
    assert "admin" in cli("whoami")
    assert "Successfully added" in cli("app", "add", app, "android", "react-native")
    assert {d["name"] for d in api.get(f"/apps/{app}/deployments").json()} == {"Production", "Staging"}

    # a signed release: the CLI writes .codepushrelease (an RS256 JWT over its own package hash)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "private.pem"
    pem.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    one = folder(tmp_path, "cli one")
    out = cli("release", app, str(one), "1.0.0", "-d", "Staging", "--des", "first", "-k", str(pem))
    assert "Successfully released" in out
    (staged,) = releases(api, app, "Staging")
    assert (staged["target_version"], staged["description"], staged["method"]) == ("1.0.0", "first", "upload")
    token = (one / ".codepushrelease").read_text()
    header, claims, signature = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    private_key.public_key().verify(
        base64.urlsafe_b64decode(pad(signature)),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    # the hash the CLI signed is the package hash overair computed (the signature file is not part of it)
    assert json.loads(base64.urlsafe_b64decode(pad(claims)))["contentHash"] == staged["package_hash"]

    assert "Successfully promoted" in cli("promote", app, "Staging", "Production", "-r", "40%")
    (promoted,) = releases(api, app, "Production")
    assert (promoted["rollout"], promoted["method"], promoted["origin_label"]) == (40, "promote", "v1")

    two = folder(tmp_path, "cli two")
    refused = cli("release", app, str(two), "1.0.0", "-d", "Production", expect=1)
    assert "Please update the previous release to 100% rollout before releasing a new package." in refused
    assert "Successfully updated" in cli("patch", app, "Production", "-r", "100%", "-m", "true")
    assert "Successfully updated" in cli("patch", app, "Production", "-l", "v1", "--des", "patched")
    patched = releases(api, app, "Production")[0]
    assert (patched["rollout"], patched["mandatory"], patched["description"]) == (100, True, "patched")
    assert "Successfully released" in cli("release", app, str(two), "1.0.0", "-d", "Production", "-m")
    duplicate = cli("release", app, str(two), "1.0.0", "-d", "Production", "--noDuplicateReleaseError")
    assert "[Warning] The uploaded package was not released because it is identical" in duplicate
    assert "Successfully performed a rollback" in cli("rollback", app, "Production", stdin="y\n")

    history = json_in(cli("deployment", "history", app, "Production", "--format", "json"))
    ours = releases(api, app, "Production")
    assert [(p["label"], p["releaseMethod"], p["packageHash"]) for p in history] == [
        (r["label"], r["method"].title(), r["package_hash"]) for r in ours
    ]
    assert [p["label"] for p in history] == ["v1", "v2", "v3"]
    assert history[2]["originalLabel"] == "v1" and history[2]["packageHash"] == history[0]["packageHash"]
    assert history[0]["description"] == "patched" and history[0]["isMandatory"] is True
    listing = cli("deployment", "ls", app, "-k")
    assert {d["key"] for d in api.get(f"/apps/{app}/deployments").json()} <= set(listing.split())

    # the reference's rules: a finished rollout takes no rollout value, and nothing else of that patch applies
    completed = cli("patch", app, "Production", "-r", "100%", "--des", "not applied", expect=1)
    assert "Cannot update rollout value for a completed rollout release." in completed
    assert releases(api, app, "Production")[-1]["description"] == history[2]["description"]
    # a rollback never goes to another app version
    three = folder(tmp_path, "cli three")
    assert "Successfully released" in cli("release", app, str(three), "^1.0.0", "-d", "Production")
    across = cli("rollback", app, "Production", stdin="y\n", expect=1)
    assert (
        "Cannot perform rollback to a different app version. Please perform a new release with the desired "
        "replacement package." in across
    )
    assert [r["label"] for r in releases(api, app, "Production")] == ["v1", "v2", "v3", "v4"]


# -- errors at the HTTP level ---------------------------------------------------------------------------


def upload(http: httpx.Client, app: str, deployment: str, text: str, info: dict) -> httpx.Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("CodePush/index.js", text)
    return http.post(
        f"/apps/{app}/deployments/{deployment}/release",
        files={"package": ("update.zip", buffer.getvalue(), "application/zip")},
        data={"packageInfo": json.dumps(info)},
    )


def test_errors_as_the_reference_answers_them(server: LiveServer, http: httpx.Client) -> None:
    for headers in ({"Authorization": "Bearer oa_" + "z" * 43}, {"Authorization": "Bearer bad"}, {}):
        response = httpx.get(server.url + "/apps", headers=headers)
        assert (response.status_code, response.text) == (401, UNAUTHORIZED)
    assert httpx.get(server.url + "/user", headers={"x-api-token": "nope-nope-nope"}).json() == {
        "code": "Unauthorized",
        "message": UNAUTHORIZED,
    }

    missing = http.get("/apps/NoSuchApp/deployments")
    assert (missing.status_code, missing.text) == (404, 'App "NoSuchApp" does not exist.')
    assert missing.headers["content-type"].startswith("text/html")
    app = unique("ErrApp")
    created = http.post("/apps/", json={"name": app})
    assert created.status_code == 201 and created.headers["location"] == f"/apps/{app}"
    assert http.get(f"/apps/{app}/deployments/Nope/history").text == 'Deployment "Nope" does not exist.'

    invalid = http.post("/apps", json={"name": "bad/name"})
    assert (invalid.status_code, invalid.text) == (400, '[{"field":"name","message":"Field is invalid"}]')
    assert http.post("/apps", json={}).text == '[{"field":"name","message":"Field is required"}]'
    key_invalid = http.post("/accessKeys", json={"ttl": -1})
    assert key_invalid.status_code == 400 and key_invalid.json() == [
        {"field": "friendlyName", "message": "Field is required"},
        {"field": "ttl", "message": "Field is invalid"},
    ]
    no_file = http.post(f"/apps/{app}/deployments/Staging/release", data={"packageInfo": "{}"})
    assert (no_file.status_code, no_file.text) == (400, "A deployment package must include a file.")
    no_version = upload(http, app, "Staging", "x", {"rollout": 0})
    assert (no_version.status_code, no_version.json()) == (
        400,
        [
            {"field": "appVersion", "message": "Field is required"},
            {"field": "rollout", "message": "Field is invalid"},
        ],
    )

    first = upload(http, app, "Staging", "one", {"appVersion": "1.0.0", "rollout": 25})
    assert first.status_code == 201 and first.headers["location"] == f"/apps/{app}/deployments/Staging"
    unfinished = upload(http, app, "Staging", "two", {"appVersion": "1.0.0"})
    assert (unfinished.status_code, unfinished.text) == (
        409,
        "Please update the previous release to 100% rollout before releasing a new package.",
    )
    release = f"/apps/{app}/deployments/Staging/release"
    shrink = http.patch(release, json={"packageInfo": {"rollout": 10}})
    assert (shrink.status_code, shrink.text) == (
        409,
        'Rollout value must be greater than "25", the existing value.',
    )
    same = http.patch(release, json={"packageInfo": {"rollout": 25, "isMandatory": True, "description": "x"}})
    assert (same.status_code, same.text) == (
        409,
        'Rollout value must be greater than "25", the existing value.',
    )
    unchanged = http.get(f"/apps/{app}/deployments/Staging/history").json()["history"][-1]
    assert (unchanged["rollout"], unchanged["isMandatory"], unchanged.get("description")) == (25, False, "")
    assert http.patch(release, json={"packageInfo": {"label": "v7", "rollout": 30}}).text == (
        "Release not found for given label."
    )
    grown = http.patch(release, json={"packageInfo": {"rollout": 100, "description": "all"}})
    assert grown.status_code == 200 and grown.json()["package"]["rollout"] == 100
    completed = http.patch(release, json={"packageInfo": {"rollout": 50}})
    assert (completed.status_code, completed.text) == (
        409,
        "Cannot update rollout value for a completed rollout release.",
    )
    finished = http.patch(release, json={"packageInfo": {"rollout": 100, "isDisabled": True}})
    assert (finished.status_code, finished.text) == (completed.status_code, completed.text)
    assert http.get(f"/apps/{app}/deployments/Staging/history").json()["history"][-1]["isDisabled"] is False

    empty = http.patch(f"/apps/{app}/deployments/Production/release", json={"packageInfo": {"rollout": 50}})
    assert (empty.status_code, empty.text) == (404, "Deployment has no releases.")
    nothing = http.post(f"/apps/{app}/deployments/Production/promote/Staging", json={"packageInfo": {}})
    assert (nothing.status_code, nothing.text) == (
        404,
        "Cannot promote from a deployment with no enabled releases.",
    )
    promote = f"/apps/{app}/deployments/Staging/promote/Production"
    assert http.post(promote, json={"packageInfo": {"rollout": 10}}).status_code == 201
    again = http.post(f"/apps/{app}/deployments/Staging/promote/Production", json={"packageInfo": {}})
    assert (again.status_code, again.text) == (
        409,
        "Cannot promote to an unfinished rollout release unless it is already disabled.",
    )
    assert (
        http.patch(
            f"/apps/{app}/deployments/Production/release", json={"packageInfo": {"rollout": 100}}
        ).status_code
        == 200
    )
    identical = http.post(promote, json={"packageInfo": {}})
    assert (identical.status_code, identical.text) == (
        409,
        "The uploaded package was not promoted because it is identical to the contents of the targeted "
        "deployment's current release.",
    )

    rollback = f"/apps/{app}/deployments/Production/rollback"
    only_one = http.post(rollback)
    assert (only_one.status_code, only_one.text) == (
        404,
        "Cannot perform rollback because there are no prior releases to rollback to.",
    )
    assert http.post(rollback + "/v1").text == (
        "Cannot perform rollback because the target release (v1) is already the latest release."
    )
    assert http.post(rollback + "/v9").text == (
        "Cannot perform rollback because the target release (v9) could not be found in the deployment "
        "history."
    )
    assert http.post(f"/apps/{app}/deployments/Beta/rollback").text == 'Deployment "Beta" does not exist.'

    sessions = http.delete("/sessions/my-laptop")
    assert (sessions.status_code, sessions.text) == (
        404,
        'There are no sessions associated with "my-laptop."',
    )
    collaborator = http.post(f"/apps/{app}/collaborators/friend@example.com")
    assert (collaborator.status_code, collaborator.text) == (
        404,
        "The specified e-mail address doesn't represent a registered user",
    )
    assert http.get(f"/apps/{app}/collaborators").json() == {
        "collaborators": {"admin": {"isCurrentAccount": True, "permission": "Owner"}}
    }
    deployment = http.post(f"/apps/{app}/deployments", json={"name": "Production"})
    assert (deployment.status_code, deployment.text) == (
        409,
        "A deployment named 'Production' already exists.",
    )
    short_key = http.post(f"/apps/{app}/deployments", json={"name": "QA", "key": "short"})
    assert short_key.text == '[{"field":"key","message":"Field is invalid"}]'


def test_code_push_cli_3_management_commands(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    cli = CodePushCli(tmp_path / "home")
    app, renamed = unique("CliMgmt"), unique("CliMgmtRenamed")
    cli("login", server.url, "--accessKey", server.key)
    cli("app", "add", app, "ios", "cordova")
    listed = [a for a in json_in(cli("app", "ls", "--format", "json")) if a["name"] == app]
    assert listed == [
        {
            "name": app,
            "collaborators": {"admin": {"isCurrentAccount": True, "permission": "Owner"}},
            "deployments": ["Production", "Staging"],
            "os": "iOS",
            "platform": "React-Native",
        }
    ]
    assert "Successfully renamed" in cli("app", "rename", app, renamed)
    assert api.get(f"/apps/{app}").status_code == 404 and api.get(f"/apps/{renamed}").json()["platforms"] == [
        "ios"
    ]

    added = cli("deployment", "add", renamed, "QA")
    key = {d["name"]: d["key"] for d in api.get(f"/apps/{renamed}/deployments").json()}["QA"]
    assert f'with key "{key}"' in added
    cli("deployment", "rename", renamed, "QA", "Beta")
    cli("release", renamed, str(folder(tmp_path, "beta")), "1.0.0", "-d", "Beta")
    assert [r["label"] for r in releases(api, renamed, "Beta")] == ["v1"]
    assert "Successfully cleared" in cli("deployment", "clear", renamed, "Beta", stdin="y\n")
    assert releases(api, renamed, "Beta") == []
    assert "Successfully removed" in cli("deployment", "rm", renamed, "Beta", stdin="y\n")
    assert "Beta" not in {d["name"] for d in api.get(f"/apps/{renamed}/deployments").json()}

    name = unique("cli-key-")
    created = cli("access-key", "add", name)
    secret = created.split(f'Successfully created the "{name}" access key: ', 1)[1].split()[0]
    assert (
        httpx.get(server.url + "/authenticated", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    assert name in [k["name"] for k in json_in(cli("access-key", "ls", "--format", "json"))]
    assert "Successfully removed" in cli("access-key", "rm", name, stdin="y\n")
    assert name not in [k["name"] for k in api.get("/access-keys").json()]

    refused = cli("collaborator", "add", renamed, "friend@example.com", expect=1)
    assert "The specified e-mail address doesn't represent a registered user" in refused
    assert "Successfully removed" in cli("app", "rm", renamed, stdin="y\n")
    assert api.get(f"/apps/{renamed}").status_code == 404


def test_app_center_uploads_are_guarded_by_their_token(server: LiveServer, http: httpx.Client) -> None:
    app = unique("UploadApp")
    assert http.post("/apps", json={"name": app}).status_code == 201
    headers = {"x-api-token": server.key}
    start = httpx.post(f"{server.url}/apps/admin/{app}/deployments/Staging/uploads", headers=headers)
    assert start.status_code == 201
    upload = start.json()
    assert upload["upload_domain"] == server.url
    metadata = f"{server.url}/upload/set_metadata/{upload['id']}"
    wrong = httpx.post(metadata, params={"file_name": "a.zip", "file_Size": "10", "token": "guess"})
    assert wrong.status_code == 401 and wrong.json()["error"] is True
    unknown = httpx.post(
        f"{server.url}/upload/set_metadata/{'0' * 32}", params={"file_Size": "10", "token": "x"}
    )
    assert unknown.status_code == 404
    meta = httpx.post(metadata, params={"file_name": "a.zip", "file_Size": "10", "token": upload["token"]})
    assert meta.json() | {"chunk_list": [1], "error": False} == meta.json()
    unfinished = httpx.post(
        f"{server.url}/apps/admin/{app}/deployments/Staging/releases",
        headers=headers,
        json={"release_upload": upload, "target_binary_version": "1.0.0", "deployment_name": "Staging"},
    )
    assert unfinished.status_code == 400 and "not complete" in unfinished.json()["message"]
    missing = httpx.get(f"{server.url}/apps/admin/NoSuchApp/deployments", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"code": "NotFound", "message": 'App "NoSuchApp" does not exist.'}


def test_access_key_ttl_is_applied(server: LiveServer, http: httpx.Client) -> None:
    name = unique("ttl-")
    added = http.post("/accessKeys", json={"friendlyName": name, "ttl": 60_000}).json()["accessKey"]
    assert 59_000 <= added["expires"] - added["createdTime"] <= 61_000
    patched = http.patch(f"/accessKeys/{name}", json={"ttl": 3_600_000}).json()["accessKey"]
    assert patched["expires"] - added["expires"] >= 3_500_000
    assert httpx.get(
        server.url + "/authenticated", headers={"Authorization": f"Bearer {added['name']}"}
    ).json()
    short = http.post("/accessKeys", json={"friendlyName": unique("gone-"), "ttl": 1}).json()["accessKey"]
    time.sleep(1.1)
    refused = httpx.get(server.url + "/authenticated", headers={"Authorization": f"Bearer {short['name']}"})
    assert refused.status_code == 401
