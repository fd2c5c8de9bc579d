"""PostgreSQL sessions of the bridge's role stalled waiting for their client with no
server timer running: ended by another instance after `database_timeout`.

The server ends a transaction of ours whose client sends nothing for `database_timeout`
(`idle_in_transaction_session_timeout`, `bridge.db.engine`), but it runs that timer
only from the moment it tells the client it is ready for the next query until the next
message comes, whatever that message is. psycopg's pipeline (an `executemany`: the rows
are sent before the server's answers are read) leaves two states without it: the middle
of the batch (`active`, waiting for the rest) and the moment after its end, when a flush
request follows the batch's sync (`idle in transaction` again, the timer stopped by
the flush and not started again). A client frozen there — a paused virtual machine, a
SIGSTOP, a host stalled in swap; its kernel keeps the TCP connection and answers for it
— keeps its transaction's row locks (claims other instances skip) and advisory locks (a
copy of a mail at another instance waits and gets 451) until it wakes. So does one
frozen while the server writes a result it does not read (`ClientWrite`). PostgreSQL
17's `transaction_timeout` bounds that; before it, nothing does.

So each instance on PostgreSQL looks, every `STEP` seconds, for sessions of its own role
in its own database inside a transaction and waiting on their client, and ends
(`pg_terminate_backend`) one that has waited `database_timeout` (an idle one
`IDLE_GRACE` more: the server's own timer, when it runs, ends those first). Between two
messages of a transaction of ours there is only a little Python, far below any
`database_timeout`. "Waited" is the server's time since the session last changed state
or began a statement (`state_change`, `query_start`: a long statement before a short
wait does not count as waiting), and this process's time since it first saw the session
so must be half of `database_timeout` at least (a statement that ran long and then waits
a moment is not ended). What follows is what the server's own rule does: the session is
closed, its transaction rolled back, its locks released; when the frozen instance wakes
its next statement fails as a lost connection (451, a transient status) and nothing of
that transaction is stored.

Terminating a session of the same role needs no privilege beyond the role's own
(PostgreSQL lets a role signal its own backends). Sessions of that role that are not the
bridge's would be ended too when they wait that long inside a transaction (psql left
open in a `BEGIN`): give people their own role.
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
IDLE_GRACE = 1.0  # seconds more for an idle session: the server's timer, if it runs, first

_WAITING = text(
    "SELECT pid, backend_start, query_start, state_change, state, wait_event, "
    "application_name, host(client_addr), left(query, 80), "
    "extract(epoch FROM now() - greatest(query_start, state_change)) "
    "FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename = current_user "
    "AND pid != pg_backend_pid() AND backend_type = 'client backend' "
    "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)') "
    "AND wait_event_type = 'Client' AND wait_event IN ('ClientRead', 'ClientWrite')"
)
_END = text("SELECT pg_terminate_backend(:pid)")


@dataclass(frozen=True)
class Waiting:
    """A session of ours inside a transaction and waiting on its client, as
    pg_stat_activity shows it."""

    key: tuple[Any, ...]  # pid, backend start, statement start, state change, state, wait
    pid: int
    state: str
    wait_event: str
    application: str
    client: str
    query: str
    waited: float  # seconds since its last statement began or its state changed (server's)

    @property
    def idle(self) -> bool:
        return self.state != "active"


def waiting_sessions(conn: Connection) -> list[Waiting]:
    """The sessions of this role and database (not this one) inside a transaction and
    waiting on their client."""
    found = []
    for (
        pid,
        started,
        query_start,
        changed,
        state,
        event,
        app,
        client,
        query,
        waited,
    ) in conn.execute(_WAITING):
        found.append(
            Waiting(
                key=(pid, started, query_start, changed, state, event),
                pid=pid,
                state=state,
                wait_event=event,
                application=app or "",
                client=client or "local",
                query=query or "",
                waited=float(waited or 0.0),
            )
        )
    return found


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
        """Waiting `after` seconds (an idle session `IDLE_GRACE` more) by the server's
        clock, and seen waiting for half of `after` by ours (`now`: this process's
        monotonic time)."""
        seen = self._first_seen.setdefault(session.key, now)
        limit = self.after + (IDLE_GRACE if session.idle else 0.0)
        return session.waited >= limit and now - seen >= self.after / 2

    async def step(self) -> int:
        """Look once; end the sessions due. Returns 0: the worker waits for its tick."""
        sessions = await self.store.read(waiting_sessions)
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
                    "ended database session %d (%s, from %s): inside a transaction, it "
                    "had waited %.0f s (database_timeout %g s) for its client (%s, %s, "
                    "last statement: %s); an instance frozen or cut off? Its transaction "
                    "is rolled back and its locks are released",
                    session.pid,
                    session.application or "no application_name",
                    session.client,
                    session.waited,
                    self.after,
                    session.state,
                    session.wait_event,
                    session.query,
                )
            self._first_seen.pop(session.key, None)
        return 0
