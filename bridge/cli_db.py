"""Which database an admin command opens: named when it depends on the current directory,
and never created by accident.

Only `mailsms serve` and `mailsms db upgrade` create a new database. Every other command
run where no database is (another directory, a typo in `-c`) stops with one sentence
naming the file it looked for and how to point at the right one, instead of quietly
creating an empty database and answering "no users". A SQLite path in `database_url`
that is relative is resolved against the current directory, so such a command names the
file it opened on stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.db import engine as db
from bridge.errors import ConfigError
from bridge.settings import Settings

CONFIG_ENV = "MAILSMS_CONFIG"
DATABASE_ENV = "MAILSMS_DATABASE_URL"
POINT_AT_IT = (
    "run the command in the directory the bridge runs in, give its settings with "
    f"-c FILE (or {CONFIG_ENV}=FILE), or set {DATABASE_ENV}; "
    "`mailsms db upgrade` creates a new database"
)


def origin(config: Path | None) -> str:
    """Where the database_url in force comes from, in words."""
    if DATABASE_ENV in os.environ:
        return DATABASE_ENV
    return f"settings file {config}" if config is not None else "the embedded default"


def missing_database(url: str, where: str, how: str = POINT_AT_IT) -> str | None:
    """The sentence to stop with when `url` is a SQLite file that does not exist, else None;
    `how` says how to point at the right database."""
    file = db.sqlite_file(url)
    if file is None or file.exists():
        return None
    relative = "" if file.is_absolute() else f", relative to the current directory {Path.cwd()}"
    return f"no database at {db.location(url)} (database_url {url} from {where}{relative}); {how}"


def admin_engine(settings: Settings, config: Path | None, *, create: bool = False) -> Engine:
    """The migrated database of `settings` for an admin command, or one line and an exit.

    Exit status 1 when the database is missing (unless `create`) or unreachable, 2 for a
    database_url that is not valid.
    """
    url = settings.database_url
    problem = None if create else missing_database(url, origin(config))
    if problem is not None:
        typer.echo(f"mailsms: {problem}", err=True)
        raise typer.Exit(1)
    file = db.sqlite_file(url)
    if file is not None and not file.is_absolute():
        typer.echo(f"mailsms: database {db.location(url)}", err=True)
    try:
        engine = db.open_engine(url)
        db.upgrade(engine, default_country=settings.defaults.default_country)
    except ConfigError as exc:
        typer.echo(f"mailsms: {exc}", err=True)
        raise typer.Exit(2) from None
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"mailsms: cannot open the database ({reason}); check database_url", err=True)
        raise typer.Exit(1) from None
    return engine
