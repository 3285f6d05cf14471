"""The CLI's saved login: a small JSON file in the user's config folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from overair.cli.errors import CliError
from overair.hosts import is_loopback

_NOT_THE_SERVER = ("/console", "/api/v1")
"""Paths of the server's parts (the console, the management API): the server's own address is what comes
before them."""


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
    key_source: str = ""
    """Where the key came from, for messages: ``OVERAIR_ACCESS_KEY``, ``--access-key`` or the config file."""


def server_url(text: str, option: str = "--server") -> tuple[str, str | None]:
    """The server's address from what a user typed, and a note saying why when it is not what they typed.

    A loopback address without a scheme (``127.0.0.1:3000``, ``localhost:3000``) means ``http://``; any
    other address without one is refused with the command to type, since guessing http could send the key
    in clear text. The address of the console or of the API (``…/console/``, ``…/api/v1``) becomes the
    server's own address (``…`` before it). Raises :class:`CliError` when nothing usable is left.
    """
    typed = text.strip()
    why = []
    example = "overair login --server https://ota.example.com --access-key KEY"
    if not typed:
        raise CliError(f"{option} is empty: give the server's URL, e.g. {example}")
    if "://" not in typed:
        host = urlsplit("//" + typed).hostname or ""
        if not host or not is_loopback(host):
            fix = (
                f"type overair login --server https://{typed} --access-key KEY"
                if option == "--server"
                else f"set it to https://{typed}"
            )
            raise CliError(
                f"{option} {typed} has no scheme: {fix} (or http://{typed} for a server without TLS)."
            )
        typed = "http://" + typed
        why.append("http:// for a loopback address")
    try:
        parts = urlsplit(typed)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise CliError(f"{option} {text.strip()} is not a URL: give it like {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{option} {text.strip()} is not an http:// or https:// URL: give it like {example}")
    path = parts.path.rstrip("/")
    for part in _NOT_THE_SERVER:
        at = (path + "/").find(part + "/")
        if at >= 0:
            path = path[:at]
            why.append(f"the server's address, without {part}")
            break
    url = f"{parts.scheme}://{parts.netloc}{path}"
    return url, f"{option} {text.strip()} was read as {url}: {' and '.join(why)}." if why else None


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
    option = "OVERAIR_SERVER" if os.environ.get("OVERAIR_SERVER") else f"The server in {path}"
    source = "OVERAIR_ACCESS_KEY" if os.environ.get("OVERAIR_ACCESS_KEY") else str(path)
    return Login(server=server_url(server, option)[0], access_key=key.strip(), key_source=source)


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
