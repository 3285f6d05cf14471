"""The CLI in scripts and CI (issue 14, items 4, 6-8): run as a child process with pipes and no terminal.

Version and shell completion, the exit statuses of docs/cli.md, tables and messages in a CI log (every
value in full, no sentence broken across lines, ``COLUMNS`` respected when set), and the release history
newest first with the console's columns.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from no_terminal import SOURCE, logged_in, overair

from conftest import LiveServer, free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_HISTORY = ROOT / "src" / "overair" / "console" / "templates" / "deployment.html"
BOX = re.compile("[┏┓┗┛┃━┡┩╇┳┻┣┫╋│─┌┐└┘├┤┬┴┼╭╮╰╯]")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("scripts-server")) as live:
        yield live


def bundle(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({text!r});\n")
    return folder


# -- version and completion (item 7) -----------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = overair("--version", config=tmp_path / "none.json")
    assert result.returncode == 0 and result.stdout.startswith("overair 0.1.0 ")
    assert "JSON output schema 1" in result.stdout


def _completer(folder: Path) -> Path:
    """A folder with an ``overair`` that runs this checkout, as an installed one would."""
    folder.mkdir(parents=True)
    program = folder / "overair"
    program.write_text(f'#!/bin/sh\nPYTHONPATH={SOURCE} exec {sys.executable} -m overair.main "$@"\n')
    program.chmod(0o755)
    return folder


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is the shell whose completion is exercised")
def test_show_completion_bash_completes_commands_and_options(tmp_path: Path) -> None:
    shown = overair("--show-completion", "bash", config=tmp_path / "none.json")
    assert shown.returncode == 0
    assert "complete -o default -F _overair_completion overair" in shown.stdout
    script = tmp_path / "overair-completion.bash"
    script.write_text(shown.stdout)
    # the printed script, loaded into bash, asks the real command for completions
    words = {
        "overair rel": "release",
        "overair release push-update --proj": "--project-name",
        "overair release li": "list",
    }
    for line, expected in words.items():
        completed = subprocess.run(
            [
                "bash",
                "-c",
                f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(line.split()) - 1}; "
                '_overair_completion overair; printf "%s\\n" "${COMPREPLY[@]}"',
            ],
            env={
                "PATH": f"{_completer(tmp_path / line.replace(' ', '_'))}:/usr/bin:/bin",
                "HOME": str(tmp_path),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert expected in completed.stdout.split(), (line, completed.stdout, completed.stderr)


def test_completion_takes_the_shell_by_name_whatever_shell_runs_it(tmp_path: Path) -> None:
    """From ``sh`` (a Makefile, a Dockerfile ``RUN``) the named shell is the one printed, never a guess."""
    markers = {"bash": "complete -o default -F", "zsh": "#compdef overair", "fish": "complete --command"}
    for shell, marker in markers.items():
        command = f"PYTHONPATH={SOURCE} {sys.executable} -m overair.main --show-completion {shell}; exit $?"
        shown = subprocess.run(
            ["sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0 and marker in shown.stdout, (shell, shown.stderr)
    refused = overair("--show-completion", "tcsh", config=tmp_path / "none.json")
    assert refused.returncode != 0
    assert "'tcsh' has no completion; name one of bash, zsh, fish, powershell" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_install_completion_writes_the_script_for_the_shell(tmp_path: Path) -> None:
    result = overair(
        "--install-completion", "bash", config=tmp_path / "none.json", env={"HOME": str(tmp_path)}
    )
    assert result.returncode == 0 and "bash completion installed" in result.stdout
    installed = tmp_path / ".bash_completions" / "overair.sh"
    assert "_overair_completion" in installed.read_text()
    assert str(installed) in (tmp_path / ".bashrc").read_text()


# -- exit statuses (item 6) --------------------------------------------------------------------------


class _NotOverair(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def not_overair(tmp_path: Path) -> Iterator[str]:
    """Some other web server: it answers, but not as overair."""
    handler = lambda *a: _NotOverair(*a, directory=str(tmp_path))  # noqa: E731
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{other.server_address[1]}"
        other.shutdown()


def test_exit_statuses_are_the_documented_ones(server: LiveServer, tmp_path: Path, not_overair: str) -> None:
    config = logged_in(tmp_path / "config.json", server)
    dist = str(bundle(tmp_path / "dist", "x"))
    push = ["release", "push-update", "--project-name", "StatusApp", "--bundle", dist]
    assert overair("app", "create", "StatusApp", config=config).returncode == 0
    nowhere = {"OVERAIR_SERVER": f"http://127.0.0.1:{free_port()}", "OVERAIR_ACCESS_KEY": "oa_x"}
    cases = [
        (1, ["release", "list", "--project-name", "StatusApp", "--no-such-flag"], {}, "No such option"),
        (1, [*push, "--target-version", "banana"], {}, "not a valid target version"),
        (1, [*push, "--target-version", "1.0.0", "--rollout-percentage", "0"], {}, "outside 1-100"),
        (1, ["app", "list"], {"OVERAIR_CONFIG": str(tmp_path / "nobody.json")}, "Not logged in"),
        (2, ["release", "list", "--project-name", "Ghost"], {}, 'No app named "Ghost"'),
        (2, ["app", "list"], {"OVERAIR_ACCESS_KEY": "oa_wrong"}, "rejected the access key"),
        (3, ["app", "list"], nowhere, "Cannot reach the overair server"),
        (
            3,
            ["app", "list"],
            {"OVERAIR_SERVER": not_overair, "OVERAIR_ACCESS_KEY": "oa_x"},
            "not with overair's JSON",
        ),
        (0, [*push, "--target-version", "1.0.0"], {}, ""),
    ]
    for status, args, env, said in cases:
        result = overair(*args, config=config, env=env)
        assert result.returncode == status, (args, result.stderr)
        assert said in " ".join(result.stderr.split()), (args, result.stderr)
        assert result.stderr.count("Error:") == (0 if status == 0 else 1), result.stderr


# -- output without a terminal (item 8) -------------------------------------------------------------

LONG_APP = "Lab" + "oratory-Tracker-" * 6  # 99 characters: the longest names end up in every table
LONG_TARGET = ">=1.0.0 <1.9.0 || >=2.0.0-beta.1 <2.0.0 || 3.x"


def columns(table: str) -> list[str]:
    """Each column of a table's body, its cells' characters in order (a cell wrapped over several lines
    joined again), without spaces."""
    rows = [line.split("│")[1:-1] for line in table.splitlines() if line.startswith("│")]
    return ["".join("".join(row[i].split()) for row in rows) for i in range(len(rows[0]))]


def test_tables_show_every_value_in_full_and_messages_stay_on_one_line(
    server: LiveServer, tmp_path: Path
) -> None:
    config = logged_in(tmp_path / "config.json", server)
    assert overair("app", "create", LONG_APP, config=config).returncode == 0
    push = ["release", "push-update", "--project-name", LONG_APP, "--target-version", LONG_TARGET, "--bundle"]
    warning = (
        f"Warning: {LONG_APP} has no registered store binary, so this bundle was not checked against one: "
        "register the store binaries to catch updates that need a store release."
    )
    for n, env in enumerate(({}, {"COLUMNS": "60"})):  # no terminal, and no COLUMNS or a narrow one
        pushed = overair(*push, str(bundle(tmp_path / f"b{n}", f"v{n}")), config=config, env=env)
        assert pushed.returncode == 0, pushed.stderr
        assert warning in pushed.stdout.splitlines(), pushed.stdout  # one line, whatever COLUMNS says

    wide = overair("release", "list", "--project-name", LONG_APP, config=config)
    assert wide.returncode == 0 and "…" not in wide.stdout
    rows = [line for line in wide.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and all(LONG_TARGET in row for row in rows)  # one line per release, in full
    assert LONG_APP in wide.stdout
    apps = overair("app", "list", config=config).stdout
    assert "…" not in apps and any(LONG_APP in line for line in apps.splitlines())
    keys = json.loads(
        overair("deployment", "list", "--project-name", LONG_APP, "--json", config=config).stdout
    )
    shown = overair("deployment", "list", "--project-name", LONG_APP, config=config).stdout
    assert all(d["key"] in shown for d in keys["deployments"])

    narrow = overair("release", "list", "--project-name", LONG_APP, config=config, env={"COLUMNS": "60"})
    assert narrow.returncode == 0 and "…" not in narrow.stdout
    table = [line for line in narrow.stdout.splitlines() if BOX.match(line)]  # the title is a message
    assert len(table) > 4 and max(len(line) for line in table) <= 60
    target = columns(narrow.stdout)[1]  # wrapped inside its cells, every character still there
    assert target == "".join(LONG_TARGET.split()) * 2


# -- release history (item 4) ------------------------------------------------------------------------


def console_columns() -> list[str]:
    """The column headings of the console's release history table, in order."""
    text = CONSOLE_HISTORY.read_text(encoding="utf-8")
    head = text[text.index('<table class="history">') : text.index("</thead>")]
    return [
        re.sub(r"<[^>]+>|\{[%{].*?[%}]\}", "", h).strip()
        for h in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head)
    ]


def test_release_list_is_newest_first_with_the_consoles_columns(server: LiveServer, tmp_path: Path) -> None:
    config = logged_in(tmp_path / "config.json", server)
    assert overair("app", "create", "History", config=config).returncode == 0
    push = ["release", "push-update", "--project-name", "History", "--target-version", "1.0.0", "--bundle"]
    for n in (1, 2):
        assert overair(*push, str(bundle(tmp_path / f"v{n}", f"v{n}")), config=config).returncode == 0
    assert overair("release", "rollback-update", "--project-name", "History", config=config).returncode == 0

    listing = overair("release", "list", "--project-name", "History", config=config).stdout
    header = next(line for line in listing.splitlines() if "Label" in line)
    shown = [h.strip() for h in BOX.split(header) if h.strip()]
    consoles = console_columns()
    assert [h for h in shown if h in consoles] == consoles, (shown, consoles)  # each, in the console's order
    order = [line.split()[1] for line in listing.splitlines() if re.match(r"│ v\d", line)]
    assert order == ["v3", "v2", "v1"]
    assert "v3 (rollback of v1)" in listing
    oldest = overair("release", "list", "--project-name", "History", "--oldest-first", config=config).stdout
    assert [line.split()[1] for line in oldest.splitlines() if re.match(r"│ v\d", line)] == ["v1", "v2", "v3"]
    as_json = json.loads(
        overair("release", "list", "--project-name", "History", "--json", config=config).stdout
    )
    assert [r["label"] for r in as_json["releases"]] == ["v3", "v2", "v1"]
