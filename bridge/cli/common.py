"""What every `mailsms` command shares: the `-c` option, reading the settings, opening the
database (named when it depends on the current directory, never created or migrated by
accident) and stopping with one line.

Only `mailsms serve` and `mailsms db upgrade` create or migrate a database. Every other
command run where no database is (another directory, a typo in `-c`) stops with one
sentence naming the file it looked for and how to point at the right one, instead of
quietly creating an empty database and answering "no users"; on a database whose schema
is not the newest it stops with one sentence saying to run `mailsms db upgrade`. A SQLite
path in `database_url` that is relative is resolved against the current directory, so
such a command names the file it opened on stderr.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.db import engine as db
from bridge.db.store import run_sync
from bridge.errors import ConfigError
from bridge.files import UnreadableFile, read_bytes, read_text
from bridge.settings import Settings, load_settings
from bridge.tenants.admin import AdminError

T = TypeVar("T")

CONFIG_ENV = "MAILSMS_CONFIG"
DATABASE_ENV = "MAILSMS_DATABASE_URL"
POINT_AT_IT = (
    "run the command in the directory the bridge runs in, give its settings with "
    f"-c FILE (or {CONFIG_ENV}=FILE), or set {DATABASE_ENV}; "
    "`mailsms db upgrade` creates a new database"
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: the embedded default (SQLite, sandbox SMSC).",
        envvar=CONFIG_ENV,
        exists=True,
        dir_okay=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with `mailsms: message` on stderr."""
    typer.echo(f"mailsms: {message}", err=True)
    raise typer.Exit(code)


PasswordEnv = Annotated[
    str | None, typer.Option(help="Read the password from this environment variable.")
]
PasswordFile = Annotated[
    Path | None, typer.Option(help="Read the password from this file.", exists=True)
]


def read_password(
    password_env: str | None, password_file: Path | None, prompt: str = "Password"
) -> str:
    """The password from --password-env, --password-file, or else asked for twice."""
    if password_env:
        if password_env not in os.environ:
            fail(f"environment variable {password_env} is not set")
        return os.environ[password_env]
    if password_file:
        return read_file(password_file).strip()
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def read_file(path: Path) -> str:
    """The text of a file the command was given (UTF-8), or one sentence saying why it
    cannot be read (missing, a directory, not UTF-8) and exit status 1."""
    try:
        return read_text(path)
    except UnreadableFile as exc:
        fail(str(exc))


def read_file_bytes(path: Path) -> bytes:
    """The bytes of a file the command was given, or one sentence and exit status 1."""
    try:
        return read_bytes(path)
    except UnreadableFile as exc:
        fail(str(exc))


def read_settings(config: Path | None) -> Settings:
    """The settings of `-c FILE` (or the embedded default), or one line and exit status 2."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc), 2)


def open_database(config: Path | None, *, read_only: bool = False) -> Engine:
    """The database of these settings at the newest schema, or one line and an exit.

    `read_only`: for a command that only reads. On SQLite its transactions then begin
    DEFERRED and take no lock, so a long read (a report) never holds back the running
    bridge's writes; a write in them fails."""
    return admin_engine(read_settings(config), config, read_only=read_only)


def administer(config: Path | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(conn, *args, **kwargs)` in one transaction on the database of these settings; a
    request that cannot be carried out (`AdminError`: an unknown user, a name taken, ...)
    stops the command with its sentence and exit status 1, nothing written."""
    try:
        return run_sync(open_database(config), fn, *args, **kwargs)
    except AdminError as exc:
        fail(str(exc))


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


def outdated_schema(engine: Engine) -> str | None:
    """The sentence to stop with when the database's schema is not the newest, else None."""
    current, head = db.current_revision(engine), db.head_revision()
    if current == head:
        return None
    where = db.location(engine.url.render_as_string(hide_password=False))
    if current is None:
        return f"the database {where} has no schema yet; run `mailsms db upgrade`"
    return (
        f"the database {where} is at schema revision {current}, this version of mailsms "
        f"needs {head}; run `mailsms db upgrade`"
    )


def admin_engine(
    settings: Settings, config: Path | None, *, create: bool = False, read_only: bool = False
) -> Engine:
    """The database of `settings` for an admin command, or one line and an exit.

    With `create` (only `mailsms db upgrade`) a missing database is created and migrated.
    Otherwise exit status 1 when the database is missing, unreachable or not at the newest
    schema; 2 for a database_url that is not valid.
    """
    url = settings.database_url
    problem = None if create else missing_database(url, origin(config))
    if problem is not None:
        fail(problem)
    file = db.sqlite_file(url)
    if file is not None and not file.is_absolute():
        typer.echo(f"mailsms: database {db.location(url)}", err=True)
    try:
        engine = db.open_engine(url, deferred=read_only)
        if create:
            db.upgrade(engine, default_country=settings.defaults.default_country)
        else:
            problem = outdated_schema(engine)
    except ConfigError as exc:
        fail(str(exc), 2)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if db.sqlite_file(url) is not None and "locked" in reason:
            fail(
                f"the database is busy ({reason}): another process has held its write lock "
                f"for {db.LOCK_WAIT:.0f} s; try again"
            )
        fail(f"cannot open the database ({reason}); check database_url")
    if problem is not None:
        engine.dispose()
        fail(problem)
    return engine
