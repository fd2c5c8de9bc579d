"""PostgreSQL sessions of the bridge's role stalled in the middle of a statement batch,
waiting for their client: ended by another instance after `database_timeout`.

The server ends a transaction of ours whose client sends nothing for `database_timeout`
(`idle_in_transaction_session_timeout`, `bridge.db.engine`), but only once it has told
the client it is ready for the next query. A client frozen in the middle of psycopg's
pipeline (an `executemany`: the rows are sent before the server's answers are read, and
the end of the batch comes last) or in the middle of reading a result leaves the server
`active`, waiting on its client (`ClientRead`, `ClientWrite`), with no timer running: a
paused virtual machine, a SIGSTOP, a host stalled in swap keeps its TCP connection, its
kernel answers for it, and the transaction's row locks (claims other instances skip) and
advisory locks (a copy of a mail at another instance waits and gets 451) stay until it
wakes. PostgreSQL 17's `transaction_timeout` bounds that; before it, nothing does.

So each instance on PostgreSQL looks, every `STEP` seconds, for sessions of its own role
in its own database that are `active` but waiting on their client, and ends
(`pg_terminate_backend`) one that has been so for `database_timeout`: between two
messages of a batch of ours there is only a little Python, far below any
`database_timeout`, as between two statements of a transaction. "For that long" is the
server's time since the session's last statement began (`query_start`: a long statement
before a short wait does not count as waiting) and this process's time since it first
saw the session so (half of `database_timeout` at least: a statement that ran long and
then waits a moment is not ended). The same rule the server applies to an idle
transaction: the session is closed, its transaction rolled back, its locks released;
when the frozen instance wakes its next statement fails as a lost connection (451, a
transient status) and nothing of that transaction is stored.

Terminating a session of the same role needs no privilege beyond the role's own
(PostgreSQL lets a role signal its own backends). A role with other users (psql's
`COPY … FROM STDIN` typed slowly as that role) would see such a session ended too: give
people their own role.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from bridge.db.store import Store

log = logging.getLogger("bridge.db.stalled")

STEP = 1.0  # seconds between two looks at pg_stat_activity (at most)

_WAITING = text(
    "SELECT pid, backend_start, query_start, wait_event, application_name, "
    "host(client_addr), left(query, 80), extract(epoch FROM now() - query_start) "
    "FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename = current_user "
    "AND pid != pg_backend_pid() AND backend_type = 'client backend' "
    "AND state = 'active' AND wait_event_type = 'Client' "
    "AND wait_event IN ('ClientRead', 'ClientWrite')"
)
_END = text("SELECT pg_terminate_backend(:pid)")


@dataclass(frozen=True)
class Waiting:
    """A session of ours `active` and waiting on its client, as pg_stat_activity shows it."""

    key: tuple[Any, ...]  # pid, backend start, statement start, what it waits for
    pid: int
    wait_event: str
    application: str
    client: str
    query: str
    since_statement: float  # seconds since its last statement began (server's clock)


def waiting_sessions(conn: Connection) -> list[Waiting]:
    """The sessions of this role and database (not this one) active but waiting on their
    client."""
    return [
        Waiting(
            key=(pid, started, query_start, event),
            pid=pid,
            wait_event=event,
            application=app or "",
            client=client or "local",
            query=query or "",
            since_statement=float(since or 0.0),
        )
        for pid, started, query_start, event, app, client, query, since in conn.execute(_WAITING)
    ]


def end_session(conn: Connection, pid: int) -> bool:
    """`pg_terminate_backend(pid)`: whether the session was there to end."""
    return bool(conn.execute(_END, {"pid": pid}).scalar())


class StalledSessions:
    """The worker step that ends sessions stalled on their client (see the module)."""

    def __init__(self, store: Store, after: float) -> None:
        self.store = store
        self.after = after  # database_timeout
        self.step_every = min(STEP, after / 4)
        self._first_seen: dict[tuple[Any, ...], float] = {}
        self.ended = 0

    def due(self, session: Waiting, now: float) -> bool:
        """Waiting `after` seconds by the server's clock, and seen waiting for half of it
        by ours (pure: `now` is this process's monotonic time)."""
        seen = self._first_seen.setdefault(session.key, now)
        return session.since_statement >= self.after and now - seen >= self.after / 2

    async def step(self) -> int:
        """Look once; end the sessions due. Returns 0: the worker waits for its tick."""
        sessions = await self.store.call(waiting_sessions)
        now = time.monotonic()
        self._first_seen = {
            s.key: self._first_seen[s.key] for s in sessions if s.key in self._first_seen
        }
        for session in sessions:
            if not self.due(session, now):
                continue
            if await self.store.call(end_session, session.pid):
                self.ended += 1
                log.warning(
                    "ended database session %d (%s, from %s): it had waited %.0f s "
                    "(database_timeout %g s) for its client in the middle of a statement "
                    "(%s, last statement: %s); an instance frozen or cut off? Its "
                    "transaction is rolled back and its locks are released",
                    session.pid,
                    session.application or "no application_name",
                    session.client,
                    session.since_statement,
                    self.after,
                    session.wait_event,
                    session.query,
                )
            self._first_seen.pop(session.key, None)
        return 0
