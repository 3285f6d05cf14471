"""A throwaway PostgreSQL server for the test run: Debian's binaries, ``initdb`` into a temporary folder,
listening on 127.0.0.1 on a free port, with databases copied from a migrated template.

Used by ``conftest.py`` when ``OVERAIR_TEST_DATABASE=postgresql``. PostgreSQL refuses to run as root, so
when the tests run as root (CI does) the server runs as the unprivileged ``nobody``; otherwise as the user
running the tests. Durability is switched off (``fsync``, full page writes): the data lives for one run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

TEMPLATE = "overair_template"
UNPRIVILEGED = "nobody"


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: the newest /usr/lib/postgresql/*/bin, else ``pg_config``'s, else
    the PATH's."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if versions:
        return Path(versions[-1]).parent
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(found.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresMissing(
        "PostgreSQL is not installed (no initdb): run `make system-deps` (apt-get install postgresql)."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; ``stop()`` ends it and removes the folder."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="overair-postgres-"))
        self.port = _free_port()
        self._as_user: dict[str, Any] = {"cwd": self.root}
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        self._counter = 0
        self._started = False
        self._admin: psycopg.Connection[Any] | None = None

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, check=False, **self._as_user)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{tail}")

    def start(self) -> None:
        """initdb, start on 127.0.0.1 (the socket in the temporary folder) and create the template."""
        data = self.root / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=300 -c shared_buffers=64MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "-o", options, "start",
        )  # fmt: skip
        self._started = True
        self._admin = psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (as an operator writes it)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create(self, template: str | None = TEMPLATE) -> str:
        """A new database (a copy of the migrated template by default); its URL."""
        assert self._admin is not None
        self._counter += 1
        name = f"test_{self._counter}"
        # FILE_COPY copies the template's few files: several times faster than WAL_LOG for small databases
        copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self._admin.execute(f"CREATE DATABASE {name}{copy}")
        return self.url(name)

    def create_template(self, migrate: Any) -> None:
        """The template every test database copies: an empty database with ``migrate(url)`` applied."""
        assert self._admin is not None
        self._admin.execute(f"CREATE DATABASE {TEMPLATE}")
        migrate(self.url(TEMPLATE))

    def drop(self, url: str) -> None:
        """Drop the database at ``url``, ending the connections a test left open."""
        assert self._admin is not None
        self._admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server at once (nothing needs to survive) and remove its folder."""
        if self._admin is not None:
            self._admin.close()
        if self._started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
