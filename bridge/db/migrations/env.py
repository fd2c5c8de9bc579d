"""Alembic environment: runs migrations on the connection the bridge hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

# The schema module imports every domain's tables onto SQLModel.metadata (autogenerate).
from bridge.schema import METADATA

config = context.config
target_metadata = METADATA


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
