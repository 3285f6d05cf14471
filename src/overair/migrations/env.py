"""Alembic environment: runs on the connection ``overair.db.migrate`` hands over (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import overair.audit.models
import overair.auth.models
import overair.jobs.models
import overair.metrics.models
import overair.releases.launch_patches
import overair.releases.models
import overair.serverkey
import overair.staging
import overair.webhooks.models  # noqa: F401  (registers the tables on the metadata)
from overair.db import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    """Run the migrations online, on a given connection or a fresh engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
