"""Friendlier edges (issue 14, item 11): the server's address as people type it, a wrong key named where it
came from, one message per error, and "did you mean" for a name that differs only in case."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from no_terminal import logged_in, overair

from conftest import LiveServer, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("login-server")) as live:
        yield live


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.:?])\s+", " ".join(text.split())) if s]


def one_message(stderr: str) -> str:
    """The error's text; asserts it is one message and says nothing twice."""
    assert stderr.count("Error:") == 1, stderr
    said = sentences(stderr.replace("Error:", ""))
    assert len(said) == len(set(said)), f"a sentence twice: {stderr}"
    return " ".join(stderr.split())


@pytest.mark.parametrize(
    ("typed", "note"),
    [
        ("127.0.0.1:{port}", "http:// for a loopback address"),
        ("localhost:{port}", "http:// for a loopback address"),
        ("http://127.0.0.1:{port}/console/", "without /console"),
        ("http://127.0.0.1:{port}/console/apps/CoolApp/deployments/Production", "without /console"),
        ("http://127.0.0.1:{port}/", None),
    ],
)
def test_login_takes_the_server_as_people_type_it(
    server: LiveServer, tmp_path: Path, typed: str, note: str | None
) -> None:
    port = server.url.rsplit(":", 1)[1]
    config = tmp_path / "config.json"
    result = overair("login", "--server", typed.format(port=port), "--access-key", server.key, config=config)
    assert result.returncode == 0, result.stderr
    host = "localhost" if typed.startswith("localhost") else "127.0.0.1"
    assert json.loads(config.read_text())["server"] == f"http://{host}:{port}"
    assert (note in result.stdout) if note else "Note:" not in result.stdout
    assert overair("app", "list", config=config).returncode == 0


def test_a_server_without_scheme_gets_the_exact_command_to_type(tmp_path: Path) -> None:
    result = overair(
        "login", "--server", "ota.example.com:3000", "--access-key", "oa_x", config=tmp_path / "c"
    )
    assert result.returncode == 1
    said = one_message(result.stderr)
    assert "overair login --server https://ota.example.com:3000 --access-key KEY" in said
    assert "http://ota.example.com:3000" in said  # for a server without TLS
    assert not (tmp_path / "c").exists()
    from_env = overair(
        "app",
        "list",
        config=tmp_path / "c",
        env={"OVERAIR_SERVER": "ota.example.com", "OVERAIR_ACCESS_KEY": "oa_x"},
    )
    assert (
        from_env.returncode == 1
        and "OVERAIR_SERVER ota.example.com has no scheme: set it to https://ota.example.com"
        in one_message(from_env.stderr)
    )


def test_a_rejected_key_says_where_it_came_from(server: LiveServer, tmp_path: Path) -> None:
    config = logged_in(tmp_path / "config.json", server)
    from_env = overair("app", "list", config=config, env={"OVERAIR_ACCESS_KEY": "oa_not_a_key"})
    said = one_message(from_env.stderr)
    assert (
        from_env.returncode == 2
        and "OVERAIR_ACCESS_KEY" in said
        and "unset it to use the saved login" in said
    )
    assert "log in again" not in said
    assert (
        said.replace(str(tmp_path), "").count("rejected") == 1
    )  # not "rejected the access key: The access key was rejected"

    config.write_text(json.dumps({"server": server.url, "access_key": "oa_revoked_or_unknown"}))
    saved = one_message(overair("app", "list", config=config).stderr)
    assert f"saved in {config}" in saved and "log in again" in saved
    assert saved.replace(str(config), "").count("rejected") == 1

    given = overair("login", "--server", server.url, "--access-key", "oa_wrong", config=tmp_path / "new.json")
    said = one_message(given.stderr)
    assert given.returncode == 2 and "given with --access-key" in said and "Nothing was saved" in said
    assert not (tmp_path / "new.json").exists()


def test_a_name_that_differs_only_in_case_gets_did_you_mean(server: LiveServer, tmp_path: Path) -> None:
    config = logged_in(tmp_path / "config.json", server)
    assert overair("app", "create", "CoolApp", config=config).returncode == 0
    result = overair("release", "list", "--project-name", "coolapp", config=config)
    said = one_message(result.stderr)
    assert result.returncode == 2 and "Did you mean CoolApp?" in said
    assert "overair app create" not in said  # creating "coolapp" is not the fix
    other = one_message(overair("release", "list", "--project-name", "Elsewhere", config=config).stderr)
    assert "Did you mean" not in other and 'overair app create "Elsewhere"' in other


def test_refusals_with_fixes_say_each_thing_once(server: LiveServer, tmp_path: Path) -> None:
    config = logged_in(tmp_path / "config.json", server)
    assert overair("app", "create", "Once", config=config).returncode == 0
    push = ["release", "push-update", "--project-name", "Once", "--target-version", "1.0.0", "--bundle"]
    for n, rollout in ((1, "20"), (2, "100")):
        (tmp_path / f"b{n}").mkdir()
        (tmp_path / f"b{n}" / "index.js").write_text(f"v{n}")
        result = overair(*push, str(tmp_path / f"b{n}"), "--rollout-percentage", rollout, config=config)
    said = one_message(result.stderr)
    assert result.returncode == 2 and "rollout in progress" in said and said.count("patch-update") == 2
