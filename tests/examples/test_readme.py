"""The README as a newcomer reads it: its setup block, its links, and its quick start run as written.

The quick start's commands are taken from the README's fenced ``sh`` block and run with bash, unchanged but
for the two values a reader types in from ``make run``'s output: the access key (``oa_...``) and the
server's URL (the test's server listens on a free port, chosen the way the README says).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, LiveServer, admin_api, free_port

README = ROOT / "README.md"
QUICK_START = "## First update"
KEY_PLACEHOLDER = "oa_..."
DEFAULT_URL = "http://127.0.0.1:3000"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def sections(text: str) -> dict[str, str]:
    """Level-2 heading line → the text under it (the part before the first heading under "")."""
    found: dict[str, str] = {}
    heading = ""
    for part in re.split(r"^(## .*)$", text, flags=re.MULTILINE):
        if part.startswith("## "):
            heading = part.strip()
        else:
            found[heading] = found.get(heading, "") + part
    return found


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced ``sh`` blocks of ``text``, in order."""
    return [body for lang, body in _FENCE.findall(text) if lang in ("sh", "bash", "shell")]


def commands(block: str) -> list[str]:
    """One string per command of a shell block: continuation lines joined, blank lines dropped."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def without_comment(command: str) -> str:
    """The command as the shell reads it, without its ``#`` comment."""
    return " ".join(shlex.split(command, comments=True))


def quick_start() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = [body for heading, body in sections(text).items() if heading.startswith(QUICK_START)]
    assert len(found) == 1, f"the README has no single section starting with {QUICK_START!r}"
    blocks = shell_blocks(found[0])
    assert blocks, "the quick start has no fenced sh block"
    return [c for block in blocks for c in commands(block)]


def test_the_readme_starts_with_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first = shell_blocks(text)[0]
    assert text.index("```sh") < text.index("\n## "), "the setup block comes before any section"
    assert [without_comment(c) for c in commands(first)] == ["make run", "make test"]


def test_the_readme_links_resolve_inside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    relative = [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert relative
    for target in relative:
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT.resolve()), f"{target} is outside the repository: a clone lacks it"
        assert path.exists(), f"{target} does not exist"


def test_the_readme_says_how_to_choose_the_port() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r'make run ARGS="--port (\d+)"', text)
    assert found, "the README shows how to start the server on another port"
    assert f"http://127.0.0.1:{found.group(1)}" in text
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "overair serve $(ARGS)" in recipe


def test_make_run_installs_only_what_the_server_needs() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipes = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^(\S+):[^\n]*\n((?:\t[^\n]*\n)*)", makefile, flags=re.MULTILINE)
    }
    run_stamp = re.search(r"^run: (\$\(\w+\))", makefile, flags=re.MULTILINE)
    pytest_stamp = re.search(r"^pytest: (\$\(\w+\))", makefile, flags=re.MULTILINE)
    assert run_stamp and pytest_stamp
    assert "pip install --quiet -e .\n" in recipes[run_stamp.group(1)]
    assert "'.[test]'" not in recipes[run_stamp.group(1)]
    assert "pip install --quiet -e '.[test]'" in recipes[pytest_stamp.group(1)]


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    port_args = re.search(r'make run ARGS="(--port (\d+))"', text)
    assert port_args
    port = free_port()
    args = shlex.split(port_args.group(1).replace(port_args.group(2), str(port)))
    typed = quick_start()
    assert len(typed) >= 5 and all(c.startswith(".venv/bin/overair ") for c in typed), typed
    assert sum(KEY_PLACEHOLDER in c for c in typed) == 1 and sum(DEFAULT_URL in c for c in typed) == 1

    # the reader's checkout: .venv/bin/overair is this checkout's overair, examples/ its examples
    home = tmp_path / "checkout"
    (home / ".venv" / "bin").mkdir(parents=True)
    overair = home / ".venv" / "bin" / "overair"
    overair.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m overair.main "$@"\n')
    overair.chmod(0o755)
    (home / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "OVERAIR_CONFIG": str(tmp_path / "config.json"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("OVERAIR_SERVER", None)
    env.pop("OVERAIR_ACCESS_KEY", None)

    server = LiveServer(tmp_path / "server-data", port, *args)
    try:
        assert server.url == f"http://127.0.0.1:{port}" and f"serving at {server.url}" in server.output
        outputs = []
        for command in typed:
            line = command.replace(KEY_PLACEHOLDER, server.key).replace(DEFAULT_URL, server.url)
            done = subprocess.run(
                ["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
        with admin_api(server) as api:
            history = api.get("/apps/CoolApp/deployments/Production/releases").json()
    finally:
        server.stop()

    # the story the README tells: v1 the fix, v2 the broken bundle, v3 v1's content again
    labels = {r["label"]: r for r in history}
    assert list(labels) == ["v1", "v2", "v3"], history
    assert labels["v1"]["mandatory"] and not labels["v2"]["mandatory"]
    assert labels["v3"]["package_hash"] == labels["v1"]["package_hash"] != labels["v2"]["package_hash"]
    assert "v3" in outputs[-1]


def test_the_quick_start_names_a_bundle_of_the_repository() -> None:
    for command in quick_start():
        bundle = re.search(r"--bundle (\S+)", command)
        if bundle:
            assert (ROOT / bundle.group(1)).is_dir(), bundle.group(1)
