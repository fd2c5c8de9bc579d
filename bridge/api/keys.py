"""API keys: create (the token is shown once), list, revoke, and check a presented token.

A token reads `msk_<key id>_<secret>`: the key id (public, 12 characters) finds the row,
the secret (43 characters, 256 random bits) proves it. Only an HMAC-SHA256 of the whole
token under a per-key random salt is stored. A slow password hash (scrypt, as logins
use) protects guessable passwords; a 256-bit random secret cannot be guessed, so a
keyed fast hash is as safe here and costs microseconds on every request instead of
tens of milliseconds. A key sends as one user of its customer: that user's policy
applies, its orders show in that user's reports.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, bindparam, insert, select, update

from bridge.api.tables import ApiKey
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.prepared import fetch
from bridge.intake.access import networks_of
from bridge.tenants.admin import AdminError, check_networks
from bridge.tenants.tables import Customer, User

_key = table(ApiKey)
_user = table(User)
_customer = table(Customer)

PREFIX: Final = "msk_"


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key as listed and as a request sees it (never the token)."""

    key_id: str
    name: str
    customer_id: int
    customer: str
    user_id: int
    user: str
    networks: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, ip: str) -> bool:
        """No networks: any client; else the client's address must be inside one."""
        return not self.networks or ip in networks_of(tuple(self.networks))


def _digest(token: str, salt: str) -> str:
    return hmac.new(bytes.fromhex(salt), token.encode(), hashlib.sha256).hexdigest()


def add_key(
    conn: Connection,
    customer: str,
    name: str,
    user: str | None = None,
    networks: Sequence[str] = (),
) -> str:
    """Create a key for `user` of `customer` (omitted: the customer's only user); returns
    the token, which is shown once and never stored."""
    if not name or len(name) > 100:
        raise AdminError("name: 1 to 100 characters, e.g. 'erp-prod'")
    query = (
        select(_user.c.id, _user.c.address, _customer.c.id.label("customer_id"))
        .join(_customer, _customer.c.id == _user.c.customer_id)
        .where(_customer.c.name == customer)
    )
    if user is not None:
        query = query.where(_user.c.address == user.lower())
    users = conn.execute(query.limit(2)).all()
    if not users:
        raise AdminError(
            f"no user {user!r} of customer {customer!r}; see `mailsms user list`"
            if user
            else f"customer {customer!r} does not exist or has no users; see `mailsms user list`"
        )
    if len(users) > 1:
        raise AdminError(f"customer {customer!r} has several users: name one with --user")
    found = users[0]
    if conn.execute(
        select(_key.c.id).where(_key.c.customer_id == found.customer_id, _key.c.name == name)
    ).first():
        raise AdminError(f"customer {customer!r} has an API key named {name!r} already")
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    conn.execute(
        insert(_key).values(
            key_id=key_id,
            customer_id=found.customer_id,
            user_id=found.id,
            name=name,
            salt=salt,
            key_hash=_digest(token, salt),
            networks=list(check_networks(networks)),
            created_at=utcnow(),
        )
    )
    return token


def _rows(conn: Connection, *where: object) -> list[KeyRow]:
    query = (
        select(_key, _customer.c.name.label("customer"), _user.c.address.label("user"))
        .join(_customer, _customer.c.id == _key.c.customer_id)
        .join(_user, _user.c.id == _key.c.user_id)
        .where(*where)  # type: ignore[arg-type]
        .order_by(_customer.c.name, _key.c.name)
    )
    return [
        KeyRow(
            r.key_id,
            r.name,
            r.customer_id,
            r.customer,
            r.user_id,
            r.user,
            tuple(r.networks or ()),
            r.created_at,
            r.revoked_at,
        )
        for r in conn.execute(query)
    ]


def list_keys(conn: Connection, customer: str | None = None) -> list[KeyRow]:
    return _rows(conn, *([_customer.c.name == customer] if customer else []))


def revoke_key(conn: Connection, customer: str, name: str) -> None:
    """Revoke a key now (requests with it are refused from the next one on)."""
    customer_id = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
    done = conn.execute(
        update(_key)
        .where(_key.c.customer_id == customer_id, _key.c.name == name, _key.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if not done.rowcount:
        raise AdminError(f"no active API key {name!r} of customer {customer!r}; see api-key list")


# Built once: every request is checked with it (one statement, run on the driver).
_ACTIVE_KEY = (
    select(
        _key.c.salt,
        _key.c.key_hash,
        _key.c.name,
        _key.c.customer_id,
        _customer.c.name.label("customer"),
        _key.c.user_id,
        _user.c.address.label("user"),
        _key.c.networks,
        _key.c.created_at,
    )
    .join_from(_key, _customer, _customer.c.id == _key.c.customer_id)
    .join(_user, _user.c.id == _key.c.user_id)
    .where(_key.c.key_id == bindparam("key_id"), _key.c.revoked_at.is_(None))
)


def check_token(conn: Connection, token: str) -> KeyRow | None:
    """The key a presented token belongs to, if it is valid and not revoked."""
    if not token.startswith(PREFIX):
        return None
    key_id, _, secret = token[len(PREFIX) :].partition("_")
    if not key_id or not secret:
        return None
    found = fetch(conn, _ACTIVE_KEY, {"key_id": key_id})
    if not found:
        return None
    r = found[0]
    if not hmac.compare_digest(_digest(token, r.salt), r.key_hash):
        return None
    networks = tuple(r.networks or ())
    return KeyRow(
        key_id, r.name, r.customer_id, r.customer, r.user_id, r.user, networks, r.created_at, None
    )
