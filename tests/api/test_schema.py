"""The Alembic migrations build exactly the schema the models describe, on a fresh database of the run's
backend (SQLite, or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import ON_POSTGRES
from overair.db import Base, make_engine, migrate


def test_migrations_match_models(another_database: Callable[..., str]) -> None:
    engine = make_engine(another_database(empty=True))
    assert migrate(engine).before is None
    assert not migrate(engine).changed  # idempotent: a second start changes nothing
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == [], diff


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own connection settings")
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
