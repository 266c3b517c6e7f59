"""Alembic environment: uses a connection handed in by opsledger, or the configured URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from opsledger.records.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("OPSLEDGER_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url or "sqlite:///opsledger.db")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
