"""`overair keys …` and `--signing-key` through the real CLI against `overair serve`, then a real device."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import LiveServer, running_server
from conftest import run_cli as overair
from overair.client import CheckStatus, InstallMode, UpdateEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("signing-server")) as live:
        yield live


def bundle(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({text!r});\n")
    return folder


def ok(capsys, *args: str) -> str:
    code, out, err = overair(capsys, *args)
    assert code == 0, f"overair {' '.join(args)}:\n{out}\n{err}"
    return out


def test_keys_sign_push_promote_and_rollback_end_to_end(
    config: Path, server: LiveServer, tmp_path: Path, capsys
) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    key = tmp_path / "release.key"
    out = ok(capsys, "keys", "generate", "--out", str(key))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and "ed25519:" in out
    public = (tmp_path / "release.key.pub").read_text().strip()
    code, _, err = overair(capsys, "keys", "generate", "--out", str(key))
    assert code == 1 and "exists already" in err

    ok(capsys, "app", "create", "SignedApp")
    out = ok(capsys, "keys", "add", "--project-name", "SignedApp", str(key), "--name", "laptop")
    assert "Added signing key" in out
    listed = ok(capsys, "keys", "list", "--project-name", "SignedApp")
    assert "laptop" in listed and "active" in listed and public in listed

    push = ["release", "push-update", "--project-name", "SignedApp", "--target-version", "1.0.0"]
    code, _, err = overair(capsys, *push, "--bundle", str(bundle(tmp_path / "b1", "One")))
    assert code == 1 and "signed releases only" in err and "--signing-key" in err
    out = ok(capsys, *push, "--bundle", str(bundle(tmp_path / "b1", "One")), "--signing-key", str(key))
    assert "Signed v1 (sequence 1)" in out and "Released v1" in out
    page = f"{server.url}/console/apps/SignedApp/deployments/Production/releases/v1"
    assert f"Watch it in the console: {page}" in out
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser:
        assert browser.post("/console/sign-in", data={"access_key": server.key}).status_code in (200, 303)
        shown = browser.get(page)
        assert shown.status_code == 200 and "v1" in shown.text and "signed" in shown.text.lower()
    ok(capsys, *push, "--bundle", str(bundle(tmp_path / "b2", "Two")), "--signing-key", str(key))
    out = ok(
        capsys,
        *push,
        "--deployment",
        "Staging",
        "--bundle",
        str(bundle(tmp_path / "s1", "Tested")),
        "--signing-key",
        str(key),
    )
    assert "sequence 3" in out

    code, _, err = overair(capsys, "release", "promote", "--project-name", "SignedApp")
    assert code == 2 and "signed releases only" in err
    out = ok(capsys, "release", "promote", "--project-name", "SignedApp", "--signing-key", str(key))
    assert "Signed v3 (sequence 4, content of v1)" in out and "Promoted v1 of Staging" in out
    out = ok(capsys, "release", "rollback-update", "--project-name", "SignedApp", "--signing-key", str(key))
    assert "Signed v4 (sequence 5, content of v2)" in out and "Rolled back" in out

    # a device that trusts the key installs the newest (the rollback) and verifies it on the way
    deployments = httpx.get(
        f"{server.url}/api/v1/apps/SignedApp/deployments", headers={"Authorization": f"Bearer {server.key}"}
    ).json()
    production = next(d["key"] for d in deployments if d["name"] == "Production")
    embedded = bundle(tmp_path / "embedded", "Embedded")
    server_key = ok(capsys, "keys", "server").strip()
    with UpdateEngine(
        server.url,
        production,
        "1.0.0",
        embedded_bundle=embedded,
        data_dir=tmp_path / "device",
        public_keys=[public],
        app_name="SignedApp",
        deployment_name="Production",
        server_key=server_key,
    ) as engine:
        result = engine.check_for_update()
        assert result.status is CheckStatus.UPDATE and result.update is not None
        assert result.update.label == "v4" and result.update.sequence == 5
        path = engine.install(engine.download(result.update), InstallMode.IMMEDIATE)
        assert path is not None and "Two" in (path / "index.js").read_text()

    kid = next(line.split()[1] for line in listed.splitlines() if "laptop" in line)
    out = ok(capsys, "keys", "retire", "--project-name", "SignedApp", kid)
    assert "Retired" in out
    code, _, err = overair(
        capsys, *push, "--bundle", str(bundle(tmp_path / "b3", "Three")), "--signing-key", str(key)
    )
    assert code == 1 and "no active signing key" in err


def test_unusable_signing_keys_are_named(config: Path, server: LiveServer, tmp_path: Path, capsys) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    ok(capsys, "app", "create", "KeyErrors")
    folder = str(bundle(tmp_path / "b", "x"))
    push = ["release", "push-update", "--project-name", "KeyErrors", "--target-version", "1.0.0"]
    code, _, err = overair(capsys, *push, "--bundle", folder, "--signing-key", str(tmp_path / "missing.key"))
    assert code == 1 and "Cannot read the signing key" in err
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    code, _, err = overair(capsys, *push, "--bundle", folder, "--signing-key", str(rsa_key))
    assert code == 1 and "not Ed25519" in err
    code, _, err = overair(capsys, "keys", "add", "--project-name", "KeyErrors", "ed25519:nope")
    assert code == 1 and "Not a usable public key" in err
    code, _, err = overair(capsys, "keys", "retire", "--project-name", "KeyErrors", "0123456789abcdef")
    assert code == 2 and "no signing key" in err


def test_promote_never_re_signs_content_the_publisher_did_not_sign(
    config: Path, server: LiveServer, tmp_path: Path, capsys
) -> None:
    """Someone with only an access key adds their own key and pushes to Staging: promoting it is refused."""
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    key, evil = tmp_path / "release.key", tmp_path / "evil.key"
    ok(capsys, "keys", "generate", "--out", str(key))
    ok(capsys, "keys", "generate", "--out", str(evil))
    ok(capsys, "app", "create", "Guarded")
    ok(capsys, "keys", "add", "--project-name", "Guarded", str(key))
    push = ["release", "push-update", "--project-name", "Guarded", "--target-version", "1.0.0"]
    ok(capsys, *push, "--bundle", str(bundle(tmp_path / "good", "Good")), "--signing-key", str(key))
    ok(capsys, "keys", "add", "--project-name", "Guarded", str(evil))  # the stolen access key at work
    staging = ["--deployment", "Staging", "--bundle", str(bundle(tmp_path / "evil", "EVIL"))]
    ok(capsys, *push, *staging, "--signing-key", str(evil))

    promote = ["release", "promote", "--project-name", "Guarded", "--signing-key", str(key)]
    code, _, err = overair(capsys, *promote)
    assert code == 1 and "not signed with your key" in err and "--trusted-key" in err
    # a rotated-out key of the publisher's own can be vouched for explicitly
    out = ok(capsys, *promote, "--trusted-key", str(tmp_path / "evil.key.pub"))
    assert "Promoted v1 of Staging" in out


def test_rollback_to_an_unsigned_release_needs_an_explicit_flag(
    config: Path, server: LiveServer, tmp_path: Path, capsys
) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    key = tmp_path / "release.key"
    ok(capsys, "keys", "generate", "--out", str(key))
    ok(capsys, "app", "create", "Legacy")
    push = ["release", "push-update", "--project-name", "Legacy", "--target-version", "1.0.0"]
    ok(capsys, *push, "--bundle", str(bundle(tmp_path / "old", "Unsigned")))  # before the app had keys
    ok(capsys, "keys", "add", "--project-name", "Legacy", str(key))
    ok(capsys, *push, "--bundle", str(bundle(tmp_path / "new", "Signed")), "--signing-key", str(key))
    rollback = ["release", "rollback-update", "--project-name", "Legacy", "--signing-key", str(key)]
    code, _, err = overair(capsys, *rollback)
    assert code == 1 and "not signed" in err and "--allow-unsigned-origin" in err
    out = ok(capsys, *rollback, "--allow-unsigned-origin")
    assert "Rolled back" in out
