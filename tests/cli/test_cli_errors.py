"""Every CLI error says what is wrong and what to do, with exit status 1 and no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveServer, free_port, running_server
from conftest import run_cli as overair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("cli-server")) as live:
        yield live


def logged_in(config: Path, server: LiveServer) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))


def test_not_logged_in(config: Path, capsys) -> None:
    code, _, err = overair(capsys, "app", "list")
    assert code == 1 and "Not logged in" in err and "overair login" in err


def test_broken_config_file_is_named_with_the_json_error(config: Path, capsys) -> None:
    config.write_text('{"server": "http://x", ')
    code, _, err = overair(capsys, "app", "list")
    assert code == 1
    assert str(config) in err.replace("\n", "") and "not valid JSON" in err and "line 1" in err


def test_config_file_of_the_wrong_shape(config: Path, capsys) -> None:
    config.write_text("[1, 2]")
    code, _, err = overair(capsys, "app", "list")
    assert code == 1 and "JSON object" in err


def test_server_unreachable(config: Path, capsys) -> None:
    config.write_text(json.dumps({"server": f"http://127.0.0.1:{free_port()}", "access_key": "oa_x"}))
    code, _, err = overair(capsys, "app", "list")
    assert code == 3 and "Cannot reach the overair server" in err and "make run" in err


def test_login_with_a_rejected_key_saves_nothing(config: Path, server: LiveServer, capsys) -> None:
    code, _, err = overair(capsys, "login", "--server", server.url, "--access-key", "oa_wrong")
    assert code == 2 and "rejected the access key" in err
    assert not config.exists()


def test_login_saves_a_private_config(config: Path, server: LiveServer, capsys) -> None:
    code, out, _ = overair(capsys, "login", "--server", server.url + "/", "--access-key", server.key)
    assert code == 0 and "Logged in" in out
    assert json.loads(config.read_text()) == {"server": server.url, "access_key": server.key}
    assert config.stat().st_mode & 0o077 == 0


def test_unknown_app_and_label(config: Path, server: LiveServer, capsys) -> None:
    logged_in(config, server)
    code, _, err = overair(capsys, "release", "list", "--project-name", "Ghost")
    assert code == 2 and 'No app named "Ghost"' in err and "overair app create" in err
    assert overair(capsys, "app", "create", "ErrApp")[0] == 0
    code, _, err = overair(capsys, "release", "rollback-update", "--project-name", "ErrApp", "--label", "v9")
    assert code == 2 and "no release to roll back" in err
    code, _, err = overair(
        capsys, "release", "patch-update", "--project-name", "ErrApp", "--label", "v3", "--mandatory"
    )
    assert code == 2 and 'no release "v3"' in err


def test_a_refusal_names_the_commands_that_fix_it(
    config: Path, server: LiveServer, capsys, tmp_path: Path
) -> None:
    """The server sends fixes as actions; the CLI words them with its own commands and flags."""
    logged_in(config, server)
    assert overair(capsys, "app", "create", "FixApp")[0] == 0
    push = ["release", "push-update", "--project-name", "FixApp", "--target-version", "1.0.0", "--bundle"]
    for content, rollout in (("one", "20"), ("two", "100")):
        (tmp_path / content).mkdir()
        (tmp_path / content / "index.js").write_text(content)
        code, _, err = overair(capsys, *push, str(tmp_path / content), "--rollout-percentage", rollout)
    assert code == 2 and "rollout in progress" in err
    flat = " ".join(err.split())
    assert "overair release patch-update --label v1 --deployment Production --rollout-percentage 100" in flat
    assert "overair release patch-update --label v1 --deployment Production --disabled true" in flat


def test_a_rollback_across_versions_says_how_to_reach_every_device(
    config: Path, server: LiveServer, capsys, tmp_path: Path
) -> None:
    logged_in(config, server)
    assert overair(capsys, "app", "create", "AcrossApp")[0] == 0
    push = ["release", "push-update", "--project-name", "AcrossApp", "--bundle"]
    for content, target in (("good", "1.0.0"), ("bad", "^1.0.0")):
        (tmp_path / content).mkdir()
        (tmp_path / content / "index.js").write_text(content)
        assert overair(capsys, *push, str(tmp_path / content), "--target-version", target)[0] == 0
    code, _, err = overair(capsys, "release", "rollback-update", "--project-name", "AcrossApp")
    flat = " ".join(err.split())
    assert code == 2 and "would leave devices on v2" in flat
    again = 'overair release rollback-update --label v1 --target-version "^1.0.0" --deployment Production'
    assert again in flat
    assert 'overair release push-update --target-version "^1.0.0" --deployment Production' in flat
    rollback = ["release", "rollback-update", "--project-name", "AcrossApp", "--label", "v1"]
    code, out, _ = overair(capsys, *rollback, "--target-version", "^1.0.0")
    assert code == 0 and "v3 now serves the content of v1 for ^1.0.0" in " ".join(out.split())


def test_a_disabled_release_comes_back_only_with_its_label_confirmed(
    config: Path, server: LiveServer, capsys, tmp_path: Path
) -> None:
    logged_in(config, server)
    assert overair(capsys, "app", "create", "ConfirmApp")[0] == 0
    push = ["release", "push-update", "--project-name", "ConfirmApp", "--target-version", "1.0.0", "--bundle"]
    for content in ("one", "two", "three"):
        (tmp_path / content).mkdir()
        (tmp_path / content / "index.js").write_text(content)
        assert overair(capsys, *push, str(tmp_path / content))[0] == 0
    patch = ["release", "patch-update", "--project-name", "ConfirmApp", "--label", "v2"]
    assert overair(capsys, *patch, "--disabled", "true")[0] == 0
    rollback = ["release", "rollback-update", "--project-name", "ConfirmApp", "--label", "v2"]
    code, _, err = overair(capsys, *rollback)
    flat = " ".join(err.split())
    assert code == 2 and "v2 is disabled" in flat and "run the same command again with --confirm v2" in flat
    assert overair(capsys, *rollback, "--confirm", "v1")[0] == 2  # the label of another release is no answer
    code, out, _ = overair(capsys, *rollback, "--confirm", "v2")
    assert code == 0 and "v4 now serves the content of v2" in " ".join(out.split())


def test_rollout_outside_1_to_100(config: Path, server: LiveServer, capsys, tmp_path: Path) -> None:
    logged_in(config, server)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.js").write_text("x")
    for value in ("0", "101"):
        code, _, err = overair(
            capsys,
            "release",
            "push-update",
            "--project-name",
            "ErrApp",
            "--target-version",
            "1.0.0",
            "--bundle",
            str(tmp_path / "b"),
            "--rollout-percentage",
            value,
        )
        assert code == 1 and "--rollout-percentage" in err and "outside 1-100" in err


def test_bad_mandatory_value_and_missing_bundle(
    config: Path, server: LiveServer, capsys, tmp_path: Path
) -> None:
    logged_in(config, server)
    overair(capsys, "app", "create", "BundleApp")
    code, _, err = overair(
        capsys,
        "release",
        "push-update",
        "--project-name",
        "BundleApp",
        "--target-version",
        "1.0.0",
        "--bundle",
        str(tmp_path / "b"),
        "--mandatory",
        "maybe",
    )
    assert code == 1 and "true or false" in err
    code, _, err = overair(
        capsys,
        "release",
        "push-update",
        "--project-name",
        "BundleApp",
        "--target-version",
        "1.0.0",
        "--bundle",
        str(tmp_path / "missing"),
    )
    assert code == 1 and "does not exist" in err


def test_invalid_target_version(config: Path, server: LiveServer, capsys, tmp_path: Path) -> None:
    logged_in(config, server)
    overair(capsys, "app", "create", "TargetApp")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.js").write_text("x")
    code, _, err = overair(
        capsys,
        "release",
        "push-update",
        "--project-name",
        "TargetApp",
        "--target-version",
        "latest",
        "--bundle",
        str(tmp_path / "b"),
    )
    assert code == 1 and "not a valid target version" in err


def test_access_keys_and_deployments(config: Path, server: LiveServer, capsys) -> None:
    logged_in(config, server)
    code, out, _ = overair(capsys, "access-key", "create", "ci-bot")
    assert code == 0 and "shown only this once" in out and "oa_" in out
    code, out, _ = overair(capsys, "access-key", "create", "temp-bot", "--expires-in-days", "2")
    assert code == 0 and "It expires on" in out
    code, out, _ = overair(capsys, "access-key", "list")
    assert "ci-bot" in out and "oa_" not in out
    assert "Expires" in out and "never" in out
    assert overair(capsys, "access-key", "revoke", "ci-bot")[0] == 0
    code, _, err = overair(capsys, "access-key", "revoke", "ci-bot")
    assert code == 2 and 'No access key named "ci-bot"' in err
    overair(capsys, "app", "create", "DeployApp")
    assert (
        overair(capsys, "deployment", "add", "--project-name", "DeployApp", "QA", "--key", "kept-key-1234")[0]
        == 0
    )
    assert overair(capsys, "deployment", "rename", "--project-name", "DeployApp", "QA", "Beta")[0] == 0
    code, out, _ = overair(capsys, "deployment", "list", "--project-name", "DeployApp")
    assert "Beta" in out and "kept-key-1234" in out
    assert overair(capsys, "deployment", "remove", "--project-name", "DeployApp", "Beta", "--yes")[0] == 0
    code, _, err = overair(capsys, "deployment", "remove", "--project-name", "DeployApp", "Beta", "--yes")
    assert code == 2 and 'no deployment "Beta"' in err
    assert overair(capsys, "app", "remove", "DeployApp", "--yes")[0] == 0


def test_bad_private_key(config: Path, server: LiveServer, capsys, tmp_path: Path) -> None:
    logged_in(config, server)
    overair(capsys, "app", "create", "SignApp")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.js").write_text("x")
    (tmp_path / "key.pem").write_text("not a key")
    args = ["release", "push-update", "--project-name", "SignApp", "--target-version", "1.0.0", "--bundle"]
    code, _, err = overair(capsys, *args, str(tmp_path / "b"), "--private-key", str(tmp_path / "key.pem"))
    assert code == 1 and "not an unencrypted PEM private key" in err and "openssl genrsa" in err
    code, _, err = overair(capsys, *args, str(tmp_path / "b"), "--private-key", str(tmp_path / "missing.pem"))
    assert code == 1 and "Cannot read the private key" in err


def test_distribution_mode_is_shown_and_changed(config: Path, server: LiveServer, capsys) -> None:
    logged_in(config, server)
    overair(capsys, "app", "create", "ModeApp")
    code, out, _ = overair(capsys, "app", "set-distribution", "ModeApp", "store-only")
    assert code == 0 and "ModeApp is now store-only" in out
    code, out, _ = overair(capsys, "app", "list")
    assert "store-only" in out
    code, _, err = overair(capsys, "app", "set-distribution", "ModeApp", "sometimes")
    assert code == 2 and "distribution" in err


def test_push_update_runs_the_build_first(config: Path, server: LiveServer, capsys, tmp_path: Path) -> None:
    logged_in(config, server)
    overair(capsys, "app", "create", "BuildApp")
    dist = tmp_path / "dist"
    base = ["release", "push-update", "--project-name", "BuildApp", "--target-version", "1.0.0", "--bundle"]
    code, _, err = overair(capsys, *base, str(dist), "--build", "echo compiling; exit 3")
    assert code == 3 and "failed with exit status 3" in err and "nothing was pushed" in err
    build = f"mkdir -p {dist} && echo 'render()' > {dist}/index.js && echo bundled"
    code, out, _ = overair(capsys, *base, str(dist), "--build", build)
    assert code == 0 and "Building:" in out and "Released v1" in out
