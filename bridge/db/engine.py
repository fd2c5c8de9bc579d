"""Database connections: the engine, SQLite's durability pragmas, and migrations.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL` on every
connection, so a commit is on disk when it returns; `check_durability` verifies it
at start. PostgreSQL must run with its own defaults `synchronous_commit=on`, `fsync=on`
and `full_page_writes=on` (without the last two a crash of the database server can lose
or tear committed data); `check_durability` refuses to start otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.engine import make_url as _make_url
from sqlalchemy.exc import ArgumentError

from bridge.errors import ConfigError

log = logging.getLogger("bridge.store")
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock held while migrating: instances starting together migrate in turn.
MIGRATION_LOCK = 0x6D61696C736D73  # "mailsms"


def parse_url(url: str) -> URL:
    """`database_url` read, or a ConfigError that says how to write it."""
    try:
        return _make_url(url)
    except (ValueError, ArgumentError) as exc:
        raise ConfigError(
            f"database_url: cannot read it ({exc}); write sqlite:///path or "
            "postgresql://user:password@host:port/dbname — several PostgreSQL hosts go in the "
            "query: postgresql://user:password@/dbname?host=h1:5432&host=h2:5432"
        ) from None


def sqlite_directory(url: str) -> Path | None:
    """The directory of a SQLite database file (for free-space checks), else None."""
    parsed = parse_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database).resolve().parent


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database as given (maybe relative), else None."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def location(url: str) -> str:
    """Where `url` points, for messages: a SQLite file's absolute path, else the URL without
    its password."""
    file = sqlite_file(url)
    if file is not None:
        return str(file.resolve())
    return parse_url(url).render_as_string(hide_password=True)


def open_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for `url`; SQLite gets its directory created and its pragmas set."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 5.0},
            pool_size=pool_size,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)
    raise ConfigError(
        f"database_url: expected sqlite:///path or postgresql://…, got {parsed.drivername!r}"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# PostgreSQL settings the bridge's "250 only after commit" rests on, and their safe values.
_PG_SAFE = {
    "synchronous_commit": ("on", "remote_write", "remote_apply"),
    "fsync": ("on",),
    "full_page_writes": ("on",),
}


def check_durability(engine: Engine) -> str:
    """Verify the commit guarantees the bridge relies on; return a one-line summary."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
            sync = conn.execute(text("PRAGMA synchronous")).scalar()
            if str(mode).lower() != "wal" or int(sync or 0) < 2:
                raise ConfigError(
                    f"database_url: SQLite must run with journal_mode=WAL and synchronous=FULL, "
                    f"found journal_mode={mode} synchronous={sync}"
                )
            return "sqlite journal_mode=wal synchronous=full"
        found = {name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in _PG_SAFE}
        wrong = [f"{n}={v}" for n, v in found.items() if v.lower() not in _PG_SAFE[n]]
        if wrong:
            raise ConfigError(
                "database_url: PostgreSQL must run with synchronous_commit=on, fsync=on and "
                f"full_page_writes=on (a crash could lose acknowledged mail), found "
                f"{', '.join(wrong)}; fix postgresql.conf (or ALTER SYSTEM / ALTER DATABASE)"
            )
        return "postgresql " + " ".join(f"{n}={v}" for n, v in found.items())


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, *, default_country: str = "DE") -> None:
    """Apply every pending migration (idempotent); on PostgreSQL under an advisory lock, so
    several instances starting together migrate one after the other.

    `default_country` ([defaults] default_country) reads national numbers in data
    migrations whose customer has no country of its own.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        _lock_start_up(conn)
        cfg.attributes["connection"] = conn
        cfg.attributes["default_country"] = default_country
        command.upgrade(cfg, "head")


def run_at_start_up(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run `fn(conn)` in one transaction under the migration lock (on PostgreSQL), so a
    start-up step that reads, then writes (create the demo customer on an empty database)
    runs once when several instances start together."""
    with engine.begin() as conn:
        _lock_start_up(conn)
        return fn(conn)


def _lock_start_up(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":  # released when the transaction ends
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def head_revision() -> str | None:
    """The newest revision this version of the bridge knows."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except Exception:
            return None
        return str(row[0]) if row else None
