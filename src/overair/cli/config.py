"""The CLI's saved login: a small JSON file in the user's config folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from overair.cli.errors import CliError


def config_path() -> Path:
    """``$OVERAIR_CONFIG``, else ``$XDG_CONFIG_HOME/overair/config.json`` (``~/.config`` by default)."""
    explicit = os.environ.get("OVERAIR_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "overair" / "config.json"


@dataclass(frozen=True)
class Login:
    """Where the server is and which key to use."""

    server: str
    access_key: str


def load_login() -> Login:
    """The saved login, overridden by ``OVERAIR_SERVER`` / ``OVERAIR_ACCESS_KEY``."""
    path = config_path()
    data: dict[str, object] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CliError(
                f"The config file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                f"{exc.colno}). Fix it, or delete it and run: overair login --server URL --access-key KEY"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"Cannot read the config file {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CliError(
                f"The config file {path} should hold a JSON object with server and access_key. "
                "Run: overair login --server URL --access-key KEY"
            )
        data = loaded
    server = os.environ.get("OVERAIR_SERVER") or data.get("server")
    key = os.environ.get("OVERAIR_ACCESS_KEY") or data.get("access_key")
    if not isinstance(server, str) or not isinstance(key, str) or not server or not key:
        raise CliError(
            "Not logged in: run `overair login --server URL --access-key KEY` "
            "(or set OVERAIR_SERVER and OVERAIR_ACCESS_KEY)."
        )
    return Login(server=server.rstrip("/"), access_key=key)


def save_login(login: Login) -> Path:
    """Write the login atomically, readable by the user only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"server": login.server, "access_key": login.access_key}, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
    return path
