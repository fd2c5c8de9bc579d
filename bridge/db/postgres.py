"""The PostgreSQL dialect of the bridge's engines: SQLAlchemy's psycopg 3 dialect, with
`database_url`'s `pool_mode` kept out of libpq's parameters and, through a transaction
pooler (PgBouncer's `pool_mode = transaction`), each transaction begun with its lock wait.

Registered by `bridge.db.engine.open_engine` as `postgresql+mailsms` (loaded only for a
PostgreSQL URL: psycopg is an optional dependency).
"""

from __future__ import annotations

from typing import Any

from psycopg import errors as psycopg_errors
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import PoolProxiedConnection
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL

from bridge.db.engine import POOL_MODE


class Postgres(PGDialect_psycopg):
    """psycopg 3, without `database_url`'s `pool_mode` among libpq's parameters; through
    a transaction pooler (`mailsms_begin`: `engine.begin_with_waits`) each transaction's
    BEGIN sets its waits (`SET LOCAL`), in the same message: no round trip more than a
    BEGIN."""

    supports_statement_cache = True

    def __init__(self, mailsms_begin: bytes | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.mailsms_begin = mailsms_begin

    def create_connect_args(self, url: URL) -> Any:
        without = url.difference_update_query([POOL_MODE])
        return super().create_connect_args(without)  # type: ignore[no-untyped-call]

    def do_begin(self, dbapi_connection: PoolProxiedConnection) -> None:
        if self.mailsms_begin is None:
            return  # psycopg begins the transaction with its first statement
        raw: Any = dbapi_connection.dbapi_connection
        if raw.autocommit or raw.pgconn.transaction_status != TransactionStatus.IDLE:
            return  # no transaction (an autocommit read), or one begun already
        # libpq's own call: psycopg, finding the transaction begun, sends no BEGIN of its
        # own (its BEGIN takes one statement only)
        result = raw.pgconn.exec_(self.mailsms_begin)
        if result.status != ExecStatus.COMMAND_OK:
            raise psycopg_errors.error_from_result(result, encoding=raw.info.encoding)
