"""Deployment keys follow one rule everywhere (issue 14, item 11): 10-100 letters, digits, ``_`` or ``-``.

The management API used to take 8 or 9 characters, which CodePush clients and overair's own CodePush
endpoint then refuse: a migrated app's key was accepted by ``deployment add`` and dead on every device.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from no_terminal import logged_in, overair

from conftest import LiveServer, refusal_code, running_server
from overair.releases.rules import check_deployment_key


@pytest.mark.parametrize(
    ("key", "verdict"),
    [
        ("123456789", "invalid-release"),  # 9: what CodePush clients never send
        ("1234567890", "ok"),
        ("a" * 100, "ok"),
        ("a" * 101, "invalid-release"),
        ("Abc_def-123", "ok"),
        ("with space1", "invalid-release"),
        ("dots.are.not.ok", "invalid-release"),
        ("", "invalid-release"),
    ],
)
def test_the_deployment_key_rule(key: str, verdict: str) -> None:
    assert refusal_code(lambda: check_deployment_key(key)) == verdict


@pytest.mark.slow
def test_a_key_the_cli_adds_is_one_codepush_clients_can_use(tmp_path: Path) -> None:
    with running_server(tmp_path / "server") as server:
        config = logged_in(tmp_path / "config.json", server)
        assert overair("app", "create", "Moved", config=config).returncode == 0
        add = ["deployment", "add", "--project-name", "Moved"]
        short = overair(*add, "Old", "--key", "123456789", config=config)
        assert short.returncode == 2 and "10-100 letters, digits" in short.stderr
        assert "String should match pattern" not in short.stderr
        assert overair(*add, "Old", "--key", "1234567890", config=config).returncode == 0
        answer = _codepush_check(server, "1234567890")
    assert answer.status_code == 200, answer.text


def _codepush_check(server: LiveServer, key: str) -> httpx.Response:
    query = {"deploymentKey": key, "appVersion": "1.0.0", "packageHash": "x", "isCompanion": "false"}
    return httpx.get(f"{server.url}/v0.1/public/codepush/update_check", params=query, timeout=30)
