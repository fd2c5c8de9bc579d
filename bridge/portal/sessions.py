"""Store functions for portal sessions: open one at login, find it per request, end it.

The cookie holds a random token; the table holds its SHA-256, so a copy of the database
opens no session. A session ends after `idle` without a request, after `lifetime` in
any case, at logout, and when its account is disabled or gets a new password; ended
sessions are deleted at the next login (of anyone).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from bridge.db.core import table
from bridge.portal.status import Role
from bridge.portal.tables import PortalAccount, PortalSession
from bridge.portal.viewer import Viewer
from bridge.tenants.tables import Customer

_account = table(PortalAccount)
_session = table(PortalSession)
_customer = table(Customer)

# A request moves last_seen_at forward at most this often (one write per minute, not per page).
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Opened:
    token: str  # for the cookie; never stored
    csrf_token: str


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, account_id: int, now: datetime, lifetime: timedelta) -> Opened:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        insert(_session).values(
            id=_key(token),
            account_id=account_id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return Opened(token, csrf)


def find_session(conn: Connection, token: str, now: datetime, idle: timedelta) -> Viewer | None:
    """The viewer of a live session (its account enabled); moves last_seen_at along."""
    row = conn.execute(
        select(
            _session.c.id,
            _session.c.csrf_token,
            _session.c.last_seen_at,
            _session.c.expires_at,
            _account.c.id.label("account_id"),
            _account.c.username,
            _account.c.role,
            _account.c.customer_id,
            _account.c.enabled,
            _customer.c.name.label("customer"),
        )
        .join(_account, _session.c.account_id == _account.c.id)
        .outerjoin(_customer, _account.c.customer_id == _customer.c.id)
        .where(_session.c.id == _key(token))
    ).first()
    if row is None:
        return None
    if not row.enabled or row.expires_at <= now or row.last_seen_at + idle <= now:
        conn.execute(delete(_session).where(_session.c.id == row.id))
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        conn.execute(update(_session).where(_session.c.id == row.id).values(last_seen_at=now))
    return Viewer(
        row.account_id, row.username, Role(row.role), row.customer_id, row.customer, row.csrf_token
    )


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(_session).where(_session.c.id == _key(token)))


def purge_sessions(conn: Connection, now: datetime, idle: timedelta) -> int:
    """Delete sessions past their lifetime or idle too long; how many."""
    result = conn.execute(
        delete(_session).where(
            (_session.c.expires_at <= now) | (_session.c.last_seen_at <= now - idle)
        )
    )
    return int(result.rowcount or 0)
