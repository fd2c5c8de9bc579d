"""Database connections: the engine, SQLite's durability pragmas, and migrations.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL` on every
connection, so a commit is on disk when it returns; `check_durability` verifies it
at start. The engine, not the sqlite3 driver, begins SQLite's transactions: with
`BEGIN IMMEDIATE`, which takes the one write lock at once, so a transaction that reads
and then writes sees no other process's commit in between (nor fails on its first write
because of one), and the wait for the lock is ours: `BEGIN IMMEDIATE` tried again every
0.2 to 1 ms for up to `LOCK_WAIT` seconds (SQLite's own busy handler sleeps 1, 2, 5, 10,
... 100 ms between tries). The engine `deferred_engine` returns, for read-only work, begins
`BEGIN` (DEFERRED) instead: no lock, and in WAL mode a reader never waits for the writer.
The BEGIN is the dialect's (`_SQLite.do_begin`), not a "begin" event: an engine with
events pays for them on every statement.

PostgreSQL must run with its own defaults `synchronous_commit=on`, `fsync=on` and
`full_page_writes=on` (without the last two a crash of the database server can lose
or tear committed data); `check_durability` refuses to start otherwise. Its sessions
wait at most `LOCK_WAIT` for a lock, as SQLite's writers do (`_postgres_session`), and
libpq gets connection and TCP limits (`_PG_CONNECTION`), so neither a lock held
elsewhere nor a server gone without a word holds a commit, and a client's answer,
without end; and the server ends a transaction of ours that waits for its next statement
longer than `database_timeout` (an instance frozen inside it), so its locks are not held
by an instance that does not run. Through a transaction pooler (PgBouncer's `pool_mode =
transaction`, declared by `?pool_mode=transaction` in `database_url`), whose server
connections are shared between transactions, no statement is prepared on the server and
each transaction's BEGIN sets both waits (`bridge.db.postgres`); an undeclared one is
refused at start (`check_pooling`).
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    PoolProxiedConnection,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine import make_url as _make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError

from bridge.errors import ConfigError

log = logging.getLogger("bridge.store")
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock held while migrating: instances starting together migrate in turn.
MIGRATION_LOCK = 0x6D61696C736D73  # "mailsms"

# SQLite: how long a transaction waits for the write lock before it fails ("database is
# locked": StorageUnavailable, so a 4xx or a transient SMPP status), and how long a statement
# inside a transaction may wait (SQLite's busy handler; rare once the lock is held).
# PostgreSQL: its sessions' lock_timeout.
LOCK_WAIT = 5.0
_BUSY_TIMEOUT_MS = 5000
# Pauses between tries of BEGIN IMMEDIATE: 0.2 ms, growing by a quarter up to 1 ms.
_FIRST_PAUSE = 0.0002
_MAX_PAUSE = 0.001
# A wait for the lock that begins this soon after the last try of another found it taken
# continues that one (see `_SQLite._begin_immediate`).
_WAITS_APART = 0.1
# The dialect below, by its name in SQLAlchemy's registry: sqlite+mailsms:///path.
_DRIVER = "mailsms"


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
    parsed = parse_url(url)
    if parsed.drivername == f"postgresql+{_DRIVER}":  # an engine's: as users write it
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def open_engine(
    url: str, *, pool_size: int = 5, deferred: bool = False, timeout: float | None = None
) -> Engine:
    """An engine for `url`; SQLite gets its directory created, its pragmas set and its
    transactions begun IMMEDIATE (`deferred`: DEFERRED, for an engine that only reads).
    PostgreSQL: `timeout` (the running bridge's `database_timeout`), when shorter than
    libpq's connect_timeout below, bounds a connection's start as well (libpq counts whole
    seconds, at least 2)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        registry.register(f"sqlite.{_DRIVER}", __name__, "_SQLite")
        engine = create_engine(
            parsed.set(drivername=f"sqlite+{_DRIVER}"),
            connect_args={"check_same_thread": False, "timeout": 5.0},
            pool_size=pool_size,
            max_overflow=0,
            mailsms_deferred=deferred,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        pooled = pool_mode(parsed) is PoolMode.TRANSACTION
        if parsed.drivername in ("postgresql", "postgresql+psycopg"):
            registry.register(f"postgresql.{_DRIVER}", "bridge.db.postgres", "Postgres")
            parsed = parsed.set(drivername=f"postgresql+{_DRIVER}")
        elif parsed.drivername != f"postgresql+{_DRIVER}":
            raise ConfigError(
                f"database_url: the driver {parsed.drivername!r} is not supported; write "
                "postgresql://… (the bridge uses psycopg 3)"
            )
        # libpq's connection and TCP limits, unless the URL sets them: a server that has
        # gone without a word (a failover, a cut link) fails a call in seconds, not after
        # the kernel's retransmissions (~15 minutes).
        limits: dict[str, int | None] = {
            k: v for k, v in _PG_CONNECTION.items() if k not in parsed.query
        }
        connect_timeout = limits.get("connect_timeout")
        if timeout is not None and connect_timeout is not None:
            limits["connect_timeout"] = max(2, min(connect_timeout, math.ceil(timeout)))
        if pooled:  # no statement prepared on a server connection the next one lacks
            limits["prepare_threshold"] = None
        # a transaction of ours waiting this long for its next statement is ended by the server
        idle = _IDLE_IN_TRANSACTION if timeout is None else timeout
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=2,
            connect_args=limits,
            **({"mailsms_begin": begin_with_waits(idle)} if pooled else {}),
        )
        if pooled:
            event.listen(engine, "connect", _connected)
        else:
            event.listen(engine, "connect", functools.partial(_postgres_session, idle=idle))
        event.listen(engine, "checkin", _returned)
        event.listen(engine, "checkout", _ping_when_idle)
        return engine
    raise ConfigError(
        f"database_url: expected sqlite:///path or postgresql://…, got {parsed.drivername!r}"
    )


class PoolMode(enum.StrEnum):
    """How a connection pooler in front of PostgreSQL hands out its server connections
    (`database_url`'s `pool_mode` query parameter, PgBouncer's term)."""

    SESSION = "session"  # one server connection per client connection (or no pooler)
    TRANSACTION = "transaction"  # a server connection per transaction, shared


# The `database_url` query parameter that names the pooler's mode (not a libpq parameter).
POOL_MODE = "pool_mode"


def pool_mode(url: URL) -> PoolMode:
    """The pool mode `url` declares (`?pool_mode=transaction`); session when it declares
    none. A mode the bridge cannot run under, or a misspelt one, is a ConfigError."""
    given = url.query.get(POOL_MODE)
    if given is None:
        return PoolMode.SESSION
    value = given if isinstance(given, str) else ",".join(given)
    try:
        return PoolMode(value.strip().lower())
    except ValueError:
        pass
    if value.strip().lower() == "statement":
        raise ConfigError(
            "database_url: pool_mode=statement cannot work: the bridge's transactions have "
            "several statements; set PgBouncer's pool_mode to transaction (and write "
            "?pool_mode=transaction) or session"
        )
    raise ConfigError(
        f"database_url: pool_mode={value!r} is not a pool mode; write ?pool_mode=transaction "
        "when a pooler such as PgBouncer hands out server connections per transaction, "
        "else leave it out (session pooling and PostgreSQL itself need nothing)"
    )


# Seconds a transaction may wait for its client's next statement before the server ends it,
# for engines not given the running bridge's `database_timeout` (commands, start-up).
_IDLE_IN_TRANSACTION = 60.0

# libpq parameters every PostgreSQL connection gets (the URL's own win).
_PG_CONNECTION: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data unacknowledged this long fails the connection
}


# A pooled PostgreSQL connection unused for longer is pinged before it is handed out.
PING_IDLE = 1.0


def _returned(_dbapi_connection: Any, record: Any) -> None:
    """A connection back in the pool: when, for `_ping_when_idle`."""
    record.info["returned"] = time.monotonic()


def _ping_when_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection taken from the pool that has lain there over `PING_IDLE` seconds
    (`SELECT 1`); a dead one is replaced (`DisconnectionError`: the pool connects anew).

    What the pool's `pre_ping` does at every checkout, a round trip per transaction
    (~95 µs of the bridge's CPU each, four transactions per SMS). A connection idle in
    the pool is what a failover, a restarted server or a proxy's idle timeout leaves dead;
    one returned a moment ago has just answered. If it died since, its transaction fails
    as any statement cut off by a failover does (the caller's storage fault, 4xx), and the
    disconnect makes the pool drop every connection older than it."""
    returned = record.info.get("returned")
    if returned is not None and time.monotonic() - returned < PING_IDLE:
        return
    ping(dbapi_connection)


def ping(dbapi_connection: Any) -> None:
    """`SELECT 1` on a PostgreSQL driver connection outside a transaction; a connection
    that does not answer raises `DisconnectionError`."""
    try:
        _outside_transactions(dbapi_connection, "SELECT 1")
    except Exception as exc:  # whatever the driver raises: the connection is unusable
        raise DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc


def _lock_waits(idle: float, *, local: bool = False) -> str:
    """The SQL that sets a session's (or, `local`, a transaction's) waits: `LOCK_WAIT`
    for a lock, `idle` seconds for our next statement inside a transaction."""
    scope = "SET LOCAL" if local else "SET"
    return (
        f"{scope} lock_timeout = {int(LOCK_WAIT * 1000)}; "
        f"{scope} idle_in_transaction_session_timeout = {max(1, int(idle * 1000))}"
    )


def begin_with_waits(idle: float) -> bytes:
    """Through a transaction pooler: a transaction's BEGIN with its waits, one message
    (`bridge.db.postgres.Postgres.do_begin`)."""
    return f"BEGIN; {_lock_waits(idle, local=True)}".encode()


def _postgres_session(dbapi_connection: Any, record: Any, *, idle: float) -> None:
    """Each PostgreSQL session waits at most `LOCK_WAIT` seconds for a lock, as SQLite's
    writers do: a statement behind a lock held elsewhere (`LOCK TABLE`, a migration, a
    forgotten transaction) fails with `LockNotAvailable`, the caller's storage fault
    (the SMTP client gets 451 and sends again), instead of holding the commit, and the
    client's answer, without end. Set after connecting (not as a startup option, which
    PgBouncer refuses); start-up under the migration lock waits as long as it takes.

    And a transaction of ours left without a statement for `idle` seconds (the running
    bridge's `database_timeout`) is ended by the server
    (`idle_in_transaction_session_timeout`, which closes the session): an instance frozen
    inside a transaction (a paused virtual machine, a SIGSTOP, a host stalled in swap)
    keeps its TCP connection alive, and without it would hold the transaction's row
    locks (claims other instances skip) and the duplicate check's advisory locks (a
    copy of the mail at another instance waits and gets 451) until it wakes. Between two
    statements of one of our transactions there is only a little Python on a database
    thread, far below any `idle`; when the frozen instance wakes, its next statement
    fails as a lost connection (451, a transient status) and nothing of the transaction
    is stored. Through a transaction pooler a session's SET would land on one shared
    server connection: each transaction sets both instead
    (`bridge.db.postgres.Postgres.do_begin`)."""
    _outside_transactions(dbapi_connection, _lock_waits(idle))
    _connected(dbapi_connection, record)


def _connected(_dbapi_connection: Any, record: Any) -> None:
    """Just connected: no ping at its first checkout. (Through a transaction pooler, the
    only session set-up: see `_postgres_session`.)"""
    record.info["returned"] = time.monotonic()


def _outside_transactions(dbapi_connection: Any, sql: str) -> Any:
    """Run `sql` in autocommit (psycopg would begin a transaction, and leave it open); the
    first column of its first row, if any."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone() if cursor.description is not None else None
            return None if row is None else row[0]
    finally:
        if not dbapi_connection.closed:
            dbapi_connection.autocommit = autocommit


def deferred_engine(engine: Engine) -> Engine:
    """A second engine on `engine`'s SQLite database, with a pool of one connection, whose
    transactions begin DEFERRED: for read-only work, which then takes no lock and, in WAL
    mode, never waits for the writer. A write in such a transaction fails at once when
    another connection holds the write lock."""
    return open_engine(engine.url.render_as_string(hide_password=False), pool_size=1, deferred=True)


class _SQLite(SQLiteDialect_pysqlite):
    """The sqlite3 driver with transactions begun by the engine: `BEGIN IMMEDIATE` (waiting
    for the write lock in short steps), or `BEGIN` on an engine opened `deferred`."""

    supports_statement_cache = True

    def __init__(self, mailsms_deferred: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mailsms_deferred = mailsms_deferred
        # When this engine's waits for the write lock began (none has got it since), and when
        # one of them last found it taken.
        self.locked_since: float | None = None
        self.last_busy = 0.0

    def do_begin(self, dbapi_connection: PoolProxiedConnection) -> None:
        raw: Any = dbapi_connection.dbapi_connection
        if self.mailsms_deferred:
            raw.execute("BEGIN")
        else:
            self._begin_immediate(raw)

    def _begin_immediate(self, raw: sqlite3.Connection) -> None:
        """`BEGIN IMMEDIATE` on `raw`, tried again after a short pause while another
        connection holds the write lock; then the last "database is locked".

        The bound is `LOCK_WAIT` seconds from the first of this engine's waits that have
        followed each other without a transaction getting the lock, not from this one's
        start: transactions queued behind each other on the database thread fail once the
        lock has been taken for that long, not each after a wait of its own (an SMTP commit
        behind eight workers' steps would wait 45 s for its 451). SQLite's
        busy handler is off for the tries (it would sleep up to 100 ms between its own) and
        back on for the statements of the transaction."""
        raw.execute("PRAGMA busy_timeout=0")
        try:
            pause = _FIRST_PAUSE
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    self.locked_since = None
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                    now = time.monotonic()
                    if self.locked_since is None or now - self.last_busy > _WAITS_APART:
                        self.locked_since = now  # a new wait, not the one before continued
                    self.last_busy = now
                    if now >= self.locked_since + LOCK_WAIT:
                        raise
                time.sleep(pause)
                pause = min(pause * 1.25, _MAX_PAUSE)
        finally:
            raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.close()
    # The driver begins no transaction of its own (it would begin DEFERRED, and only at the
    # first INSERT/UPDATE/DELETE, leaving the reads before it outside the transaction):
    # the dialect's `do_begin` does, for every transaction SQLAlchemy begins. (Python 3.12+:
    # `isolation_level` counts only under the legacy transaction control, kept explicitly
    # should a later Python make another the default.)
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", None)
    if legacy is not None:
        dbapi_connection.autocommit = legacy
    dbapi_connection.isolation_level = None


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
    check_pooling(engine)
    return "postgresql " + " ".join(f"{n}={v}" for n, v in found.items())


def check_pooling(engine: Engine) -> None:
    """Refuse a transaction pooler (PgBouncer's `pool_mode = transaction`) that
    `database_url` does not declare (`?pool_mode=transaction`): its server connections
    are shared between transactions, so psycopg's prepared statements would fail on the
    next one ("prepared statement "_pg3_0" does not exist") and the session's
    lock_timeout would be lost.

    Found by what it does: a setting one client connection makes for its session
    (a name of the bridge's own, a random value) is seen by another one's next
    statement, which the pooler runs on the server connection just released."""
    if engine.dialect.name != "postgresql" or pool_mode(engine.url) is PoolMode.TRANSACTION:
        return
    marker = secrets.token_hex(8)
    with engine.connect() as first, engine.connect() as second:
        one: Any = first.connection.dbapi_connection
        other: Any = second.connection.dbapi_connection
        _outside_transactions(one, f"SET mailsms.pool_probe = '{marker}'")
        try:
            seen = _outside_transactions(
                other, "SELECT current_setting('mailsms.pool_probe', true)"
            )
        finally:
            _outside_transactions(one, "RESET mailsms.pool_probe")
    if seen == marker:
        raise ConfigError(
            f"database_url: {location(engine.url.render_as_string(hide_password=False))} "
            "shares its server connections between transactions (PgBouncer's "
            "pool_mode = transaction, or another transaction pooler); add "
            "?pool_mode=transaction to database_url (…/dbname?pool_mode=transaction), "
            "or use session pooling"
        )


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
        # the lock, and the migration's own locks, are waited for as long as it takes
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def head_revision() -> str | None:
    """The newest revision this version of the bridge knows."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None when it has none yet. Any other fault
    (a lock held too long, a lost server) is raised, not taken for a missing schema."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None
