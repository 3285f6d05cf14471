"""Run the real ``overair`` command as CI does: a child process with pipes for stdin, stdout and stderr,
no terminal anywhere, and an environment of the test's choosing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import overair
from conftest import LiveServer

SOURCE = str(Path(overair.__file__).resolve().parents[1])
"""The overair the tests import: the child process runs the same code, whatever its working folder."""


def overair(
    *args: str, config: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``overair ARGS`` in a child process without a terminal; ``COLUMNS`` and ``OVERAIR_*`` only if given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OVERAIR_") and k != "COLUMNS"}
    base["OVERAIR_CONFIG"] = str(config)
    base["PYTHONPATH"] = os.pathsep.join([SOURCE, *filter(None, [os.environ.get("PYTHONPATH")])])
    result = subprocess.run(
        [sys.executable, "-m", "overair.main", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def logged_in(config: Path, server: LiveServer) -> Path:
    """Write a saved login for ``server`` with its admin key into ``config``."""
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    return config


def document(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a ``--json`` command printed: stdout holds it and nothing else."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
