"""Database plumbing: the declarative base, engine creation and migrations.

SQLite is the embedded default (WAL journal, a busy timeout and foreign keys switched on for every
connection); PostgreSQL (through psycopg 3) is the other supported database, for deployments of several
hosts. Migrations run under a lock every host takes (:func:`startup_lock`), so hosts starting together on an
empty database agree on one schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every table; constraint names are stable so migrations can name them."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone, so it is stored as naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


Clock = Callable[[], dt.datetime]
"""Where services read the time (injected, so tests move it instead of sleeping)."""


def utcnow() -> dt.datetime:
    """The current time, in UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def precise_now() -> dt.datetime:
    """The current time, in UTC, to the microsecond (expiry: a key of a few seconds lives no longer)."""
    return dt.datetime.now(dt.UTC)


class DatabaseUnavailable(Exception):
    """The configured database cannot be used: a malformed URL, an unsupported kind, or a server that does
    not answer. ``message`` is one line for the operator (serve, migrate and fsck print it as it is)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_SUPPORTED = "sqlite:///path/to/overair.db or postgresql+psycopg://user:password@host:5432/database"


def normalize_url(url: str) -> str:
    """``url`` with PostgreSQL's common spellings (``postgres://``, ``postgresql://``) bound to psycopg 3,
    the driver overair ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def shown(engine: Engine) -> str:
    """The engine's URL as it may be printed (no password)."""
    return engine.url.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; for SQLite also create the folder and set the connection pragmas.

    Raises :class:`DatabaseUnavailable` for a URL that is malformed or names a database overair cannot use.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    try:
        # a database host that does not answer fails a connection in 5 s, not after TCP's minutes
        timeout = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": 5}
        engine = create_engine(url, pool_pre_ping=True, connect_args=timeout)
        if engine.dialect.name != "postgresql":
            raise ArgumentError(f"a {engine.dialect.name} database")
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(
            f"OVERAIR_DATABASE_URL={_without_password(url)!r} is not a database overair can use "
            f"({_first_line(exc)}): overair runs on SQLite and PostgreSQL; write it like {_SUPPORTED}."
        ) from None
    return engine


def _without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def unreachable(engine: Engine, exc: BaseException) -> DatabaseUnavailable:
    """The error to raise when connecting to ``engine`` failed with ``exc``."""
    return DatabaseUnavailable(
        f"Cannot reach the database at {shown(engine)}: {_first_line(exc)}. Check OVERAIR_DATABASE_URL "
        "and that the database server is running and accepts connections from this host."
    )


def check_reachable(engine: Engine) -> None:
    """Connect once; raise :class:`DatabaseUnavailable` (one line, no traceback) if that fails."""
    try:
        with engine.connect():
            pass
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(engine, exc) from None


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


_ADVISORY_KEY = int.from_bytes(
    hashlib.sha256(b"overair: schema and first start").digest()[:8], "big", signed=True
)
"""The PostgreSQL advisory lock every overair host takes to migrate (a constant, so hosts agree on it)."""
_MEMORY_LOCK = threading.Lock()


@contextlib.contextmanager
def startup_lock(engine: Engine, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the deployment-wide lock that serializes migrations and first-start setup across hosts.

    PostgreSQL: a session advisory lock on a connection of its own. SQLite: an exclusive ``flock`` on
    ``<database>.lock`` next to the database file (an in-memory database: a lock in this process).
    ``on_wait`` is called once if another host holds the lock, before waiting for it.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, on_wait):
            yield
        return
    database = engine.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        with _MEMORY_LOCK:
            yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(engine: Engine, on_wait: Callable[[], None] | None) -> Iterator[None]:
    try:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(engine, exc) from None
    with connection:
        key = {"key": _ADVISORY_KEY}
        if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
            if on_wait is not None:
                on_wait()
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            except DBAPIError:
                connection.invalidate()  # the server ended the session, and the lock with it


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` did: the schema revision before (None: an empty database) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether any migration ran."""
        return self.before != self.after


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def _upgrade(engine: Engine) -> Migration:
    from alembic import command
    from alembic.migration import MigrationContext

    config = _alembic_config()
    try:
        connection = engine.connect()
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(engine, exc) from None
    with connection, connection.begin():
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    assert after is not None
    return Migration(before, after)


@contextlib.contextmanager
def migrated(engine: Engine, on_wait: Callable[[], None] | None = None) -> Iterator[Migration]:
    """Bring the schema up to the newest revision under :func:`startup_lock`, and keep holding the lock
    for the block (first-start setup, like the first admin key, that no two hosts may both do)."""
    with startup_lock(engine, on_wait):
        yield _upgrade(engine)


def migrate(engine: Engine, on_wait: Callable[[], None] | None = None) -> Migration:
    """Bring the schema up to the newest Alembic revision (idempotent; safe for many hosts at once)."""
    with migrated(engine, on_wait) as done:
        return done


def head_revision() -> str:
    """The newest schema revision this version of overair knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def dialect_insert(connection: Connection | Session) -> Any:
    """The database's own ``insert`` (SQLite's or PostgreSQL's), which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update``: rows several hosts may insert at once are inserted idempotently."""
    name = (connection.get_bind() if isinstance(connection, Session) else connection).dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
