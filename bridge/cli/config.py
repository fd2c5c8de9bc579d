"""`mailsms config example|check`: the commented example settings file, and checking one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bridge import packaged
from bridge.cli.common import ConfigOpt, fail, outdated_schema, read_settings
from bridge.db import engine as db
from bridge.db.store import run_sync
from bridge.errors import ConfigError
from bridge.intake.access_store import exposures
from bridge.notices.smtp_client import SmtpClient
from bridge.settings import Settings
from dirsync.config import from_settings

app = typer.Typer(help="Show configuration.", no_args_is_help=True)


@app.command("example")
def config_example() -> None:
    """Print a fully commented example settings file (also in examples/bridge.toml)."""
    typer.echo(packaged.EXAMPLE_CONFIG.read_text(encoding="utf-8"), nl=False)


@app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate a settings file (its [dirsync] table too) and print the effective settings
    as JSON (passwords, secrets and tokens shown as "********").

    With `[mailer] mode = "smtp"`, the mailer's CA files and client certificates are
    loaded as `mailsms serve` loads them. If the database exists, also warn (on stderr)
    about customers open to the world.
    """
    settings = read_settings(config)
    try:
        if settings.dirsync is not None:
            from_settings(settings, str(config))
        if settings.mailer.mode == "smtp":
            mailer = settings.mailer
            SmtpClient(mailer.transport_table(), ehlo_name="check", timeout=1.0).prepare()
    except ConfigError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(redacted(settings.model_dump(mode="json")), indent=2))
    for name, warning in _exposures(settings):
        typer.echo(f"mailsms: warning: customer {name} {warning}", err=True)


SECRET_WORDS = ("password", "secret", "token")
HIDDEN = "********"


def redacted(value: Any, key: str = "") -> Any:
    """The settings as JSON data with every secret hidden: values of keys naming a password,
    secret or token, and the password inside a database URL."""
    if isinstance(value, dict):
        return {k: redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if isinstance(value, str) and value and any(w in key.lower() for w in SECRET_WORDS):
        return HIDDEN
    if isinstance(value, str) and key.lower().endswith("url") and "://" in value:
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return value
    return value


def _exposures(settings: Settings) -> list[tuple[str, str]]:
    """Customers whose access rules need attention, if the database can be read as it is."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or ":memory:").is_file():
        return []  # no database yet: nothing to check (and nothing to create here)
    try:
        engine = db.open_engine(settings.database_url)
        try:
            if db.current_revision(engine) is None:
                return []
            outdated = outdated_schema(engine)
            if outdated is not None:
                typer.echo(f"mailsms: customers not checked: {outdated}", err=True)
                return []
            return run_sync(engine, exposures)
        finally:
            engine.dispose()
    except (ConfigError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"mailsms: customers not checked, database not readable ({reason})", err=True)
        return []
