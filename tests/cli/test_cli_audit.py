"""``overair audit``: the changes a team makes with the CLI, listed with the CLI, as a table and as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from no_terminal import document, logged_in, overair

from conftest import LiveServer

pytestmark = pytest.mark.slow


def test_the_cli_lists_what_the_cli_changed(live_server: LiveServer, tmp_path: Path) -> None:
    config = logged_in(tmp_path / "config.json", live_server)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.js").write_text("render('v1');\n")
    push = ["release", "push-update", "--project-name", "CoolApp", "--deployment", "Staging"]
    for command in (
        ["app", "create", "CoolApp"],
        ["deployment", "add", "--project-name", "CoolApp", "QA"],
        [*push, "--target-version", "1.0.0", "--bundle", str(dist)],
        ["release", "patch-update", "--project-name", "CoolApp", "--deployment", "Staging", "--mandatory"],
        ["release", "promote", "--project-name", "CoolApp", "--from", "Staging", "--to", "Production"],
        ["access-key", "create", "ci"],
    ):
        assert overair(*command, config=config).returncode == 0, command

    listed = document(overair("audit", "--json", config=config))
    newest_first = [(e["action"], e["app"], e["deployment"], e["label"], e["item"]) for e in listed["events"]]
    assert newest_first == [
        ("access-key.create", None, None, None, "ci"),
        ("release.promote", "CoolApp", "Production", "v1", None),
        ("release.patch", "CoolApp", "Staging", "v1", None),
        ("release.publish", "CoolApp", "Staging", "v1", None),
        ("deployment.create", "CoolApp", "QA", None, None),
        ("app.create", "CoolApp", None, None, None),
        ("access-key.create", None, None, None, "admin"),
    ]
    by_cli = listed["events"][:-1]
    assert {(e["actor"], e["surface"], e["client_address"]) for e in by_cli} == {
        ("admin", "cli", "127.0.0.1")
    }
    assert all(e["user_agent"].startswith("overair-cli/") for e in by_cli)
    assert listed["next_cursor"] is None

    table = overair(
        "audit", "--project-name", "CoolApp", "--action", "release", config=config, env={"COLUMNS": "250"}
    )
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "release." in line]
    assert len(rows) == 3
    assert (
        "release.patch" in rows[1]
        and "CoolApp/Staging v1" in rows[1]
        and "mandatory: false → true" in rows[1]
    )
    assert all(" cli " in row and " admin " in row for row in rows)

    first = document(overair("audit", "--limit", "2", "--json", config=config))
    rest = document(overair("audit", "--cursor", str(first["next_cursor"]), "--json", config=config))
    assert [e["id"] for e in first["events"] + rest["events"]] == [e["id"] for e in listed["events"]]
    recent = document(overair("audit", "--since", "1h", "--actor", "admin", "--json", config=config))
    assert len(recent["events"]) == 6
    assert document(overair("audit", "--until", "2020-01-01", "--json", config=config))["events"] == []


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--since", "last week"],
            1,
            "--since 'last week' is not a time: give a date or time like 2026-12-01",
        ),
        (["--deployment", "Staging"], 1, "--deployment needs --project-name"),
        (["--action", "release.delete"], 2, 'There is no audit action "release.delete"'),
        (["--limit", "0"], 1, "'--limit': Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_filter_says_what_to_give(
    live_server: LiveServer, tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    result = overair(
        "audit", *args, config=logged_in(tmp_path / "config.json", live_server), env={"COLUMNS": "250"}
    )
    assert result.returncode == status, result.stderr
    assert message in " ".join(result.stderr.split())
