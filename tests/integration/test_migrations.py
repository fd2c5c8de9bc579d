"""Migrations: they build exactly the schema the models describe, and run twice harmlessly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from bridge.store.db import alembic_config, current_revision, upgrade


def test_migrations_match_the_models(engine: Engine) -> None:
    upgrade(engine)  # a second upgrade of a migrated database is a no-op
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.check(cfg)  # raises when the models and the migrated schema differ


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == "0009"
