"""What the CLI sends, and sends again (issue 14, items 9 and 10), seen by a proxy in front of a real server.

Nothing is built or uploaded before everything that can be checked was checked; a change that collided
with another one (409, fix ``retry``) and a reset connection are tried again, a bounded number of times
and with a line on stderr; a write whose connection broke after it was sent is never repeated.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from faulty_proxy import Fault, Proxy, response, running_proxy
from no_terminal import overair
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from conftest import LiveServer, running_server
from overair.errors import DatabaseDown, OverairError
from overair.problems import describe
from overair.releases.unit import Changes

pytestmark = pytest.mark.slow


def collision() -> bytes:
    """The answer overair gives when two changes to the same object meet in the database: made by the
    real unit of work and the real problem renderer, from a real IntegrityError."""
    changes = Changes(sessionmaker(create_engine("sqlite://")))
    try:
        with changes.transaction():
            raise IntegrityError("INSERT INTO releases ...", {}, Exception("UNIQUE constraint failed"))
    except OverairError as exc:
        problem = describe(exc)
    return response(problem.status, problem.title, json.dumps(problem.to_json()).encode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("retry-server")) as live:
        yield live


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[Proxy]:
    with running_proxy(server) as running:
        yield running


@pytest.fixture
def via(proxy: Proxy, server: LiveServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a CI job whose server is the proxy."""
    return {
        "OVERAIR_SERVER": proxy.url,
        "OVERAIR_ACCESS_KEY": server.key,
        "OVERAIR_CONFIG": str(tmp_path / "none"),
    }


def bundle(folder: Path, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({text!r});\n// {secrets.token_hex(20_000)}\n")
    return str(folder)


def cli(*args: str, env: dict[str, str], cwd: Path | None = None):
    return overair(*args, config=Path(env["OVERAIR_CONFIG"]), env=env, cwd=cwd)


# -- item 9: checked before anything is built or uploaded --------------------------------------------


def test_what_the_cli_can_check_it_checks_before_sending_anything(
    proxy: Proxy, via: dict[str, str], tmp_path: Path
) -> None:
    dist = bundle(tmp_path / "dist", "x")
    push = ["release", "push-update", "--project-name", "CoolApp", "--bundle", dist]
    local = [
        ([*push, "--target-version", "banana"], "not a valid target version"),
        ([*push, "--target-version", "1.0.0", "--react-native", "ios"], "not both"),
        (
            ["release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0"],
            "Nothing to push",
        ),
        ([*push[:-1], str(tmp_path / "missing"), "--target-version", "1.0.0"], "does not exist"),
        ([*push, "--target-version", "1.0.0", "--mandatory", "maybe"], "true or false"),
        (
            [*push, "--target-version", "1.0.0", "--signing-key", str(tmp_path / "no.key")],
            "Cannot read the signing key",
        ),
        ([*push, "--target-version", "1.0.0", "--description", "x" * 10_001], "too long"),
        (
            ["release", "promote", "--project-name", "CoolApp", "--from", "Staging", "--to", "Staging"],
            "two different",
        ),
        (["release", "patch-update", "--project-name", "CoolApp", "--label", "v1"], "Nothing to change"),
        (
            ["release", "patch-update", "--project-name", "CoolApp", "--target-version", "one.two"],
            "not a valid target",
        ),
    ]
    for args, said in local:
        result = cli(*args, env=via)
        assert result.returncode == 1 and said in " ".join(result.stderr.split()), (args, result.stderr)
    assert proxy.seen == []  # not one request


def test_an_unknown_app_is_found_before_the_build_runs_or_anything_is_uploaded(
    proxy: Proxy, via: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "built"
    result = cli(
        "release", "push-update", "--project-name", "Ghost", "--target-version", "1.0.0",
        "--bundle", bundle(tmp_path / "dist", "x"), "--build", f"touch {marker}", env=via,
    )  # fmt: skip
    assert result.returncode == 2 and 'No app named "Ghost"' in result.stderr
    assert not marker.exists() and proxy.requests("POST") == []


def test_an_app_with_signing_keys_refuses_an_unsigned_push_before_the_upload(
    proxy: Proxy, via: dict[str, str], tmp_path: Path
) -> None:
    assert cli("app", "create", "SignedApp", env=via).returncode == 0
    assert cli("keys", "generate", "--out", str(tmp_path / "k.key"), env=via).returncode == 0
    assert cli("keys", "add", "--project-name", "SignedApp", str(tmp_path / "k.key"), env=via).returncode == 0
    before = len(proxy.requests("POST"))
    push = ["release", "push-update", "--project-name", "SignedApp", "--target-version", "1.0.0"]
    result = cli(*push, "--bundle", bundle(tmp_path / "dist", "x"), env=via)
    assert result.returncode == 1 and "accepts signed releases only" in result.stderr
    assert len(proxy.requests("POST")) == before  # nothing uploaded


# -- item 10: polite retries -------------------------------------------------------------------------


def test_a_collision_is_tried_again_with_the_whole_upload(
    proxy: Proxy, via: dict[str, str], tmp_path: Path
) -> None:
    assert cli("app", "create", "Busy", env=via).returncode == 0
    proxy.faults.append(Fault("POST", "/deployments/Production/releases", collision()))
    push = ["release", "push-update", "--project-name", "Busy", "--target-version", "1.0.0", "--json"]
    result = cli(*push, "--bundle", bundle(tmp_path / "dist", "x"), env=via)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["release"]["label"] == "v1"
    assert (
        "another change to the same object at the same moment; trying again in 0.5 s (try 2 of 4)"
        in result.stderr
    )
    uploads = [s for s in proxy.seen if s.method == "POST" and s.path.endswith("/releases")]
    assert len(uploads) == 2 and uploads[0].body_size == uploads[1].body_size > 20_000  # sent whole, twice
    listed = json.loads(cli("release", "list", "--project-name", "Busy", "--json", env=via).stdout)
    assert [r["label"] for r in listed["releases"]] == ["v1"]


def test_collisions_are_tried_a_bounded_number_of_times(proxy: Proxy, via: dict[str, str]) -> None:
    proxy.faults.extend(Fault("POST", "/apps", collision()) for _ in range(5))
    result = cli("app", "create", "Unlucky", env=via)
    assert result.returncode == 2 and "at the same moment" in result.stderr
    assert result.stderr.count("trying again") == 3 and len(proxy.requests("POST")) == 4


def test_a_refusal_without_the_retry_fix_is_not_repeated(proxy: Proxy, via: dict[str, str]) -> None:
    assert cli("app", "create", "Twice", env=via).returncode == 0
    result = cli("app", "create", "Twice", env=via)
    assert result.returncode == 2 and "trying again" not in result.stderr
    assert len(proxy.requests("POST")) == 2


def test_reset_connections_are_tried_again(proxy: Proxy, via: dict[str, str]) -> None:
    proxy.faults.extend([Fault("GET", "/apps"), Fault("GET", "/apps")])
    result = cli("app", "list", "--json", env=via)
    assert result.returncode == 0 and "apps" in json.loads(result.stdout)
    assert result.stderr.count("broke") == 2 and "trying again in 1 s (try 3 of 4)" in result.stderr
    assert proxy.requests() == ["GET /api/v1/apps"] * 3


def test_a_write_whose_connection_broke_after_it_was_sent_is_not_repeated(
    proxy: Proxy, via: dict[str, str], tmp_path: Path
) -> None:
    assert cli("app", "create", "Fragile", env=via).returncode == 0
    push = ["release", "push-update", "--project-name", "Fragile", "--target-version", "1.0.0", "--bundle"]
    assert cli(*push, bundle(tmp_path / "one", "1"), env=via).returncode == 0
    assert cli(*push, bundle(tmp_path / "two", "2"), env=via).returncode == 0
    proxy.faults.append(Fault("POST", "/rollback"))
    result = cli("release", "rollback-update", "--project-name", "Fragile", env=via)
    assert result.returncode == 3 and "may or may not have taken effect" in result.stderr
    assert "trying again" not in result.stderr
    assert sum(1 for r in proxy.requests("POST") if r.endswith("/rollback")) == 1


def database_down() -> bytes:
    """overair's answer while its database does not answer, made by the real problem renderer."""
    problem = describe(DatabaseDown())
    return response(problem.status, problem.title, json.dumps(problem.to_json()).encode())


def test_a_read_meeting_a_database_outage_is_tried_again_a_write_is_not(
    proxy: Proxy, via: dict[str, str]
) -> None:
    proxy.faults.extend([Fault("GET", "/apps", database_down()), Fault("GET", "/apps", database_down())])
    result = cli("app", "list", "--json", env=via)
    assert result.returncode == 0 and "apps" in json.loads(result.stdout)
    assert result.stderr.count("The database does not answer") == 2, result.stderr
    assert proxy.requests() == ["GET /api/v1/apps"] * 3
    proxy.faults.append(Fault("POST", "/apps", database_down()))
    refused = cli("app", "create", "Outage", env=via)
    assert refused.returncode != 0 and "trying again" not in refused.stderr
    assert "The database does not answer" in " ".join(refused.stderr.split())
    assert len(proxy.requests("POST")) == 1
