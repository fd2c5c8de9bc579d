"""Store functions for SMTP AUTH credentials: add, list, disable, and look up for verification.

Passwords are stored as scrypt hashes (`scrypt$n$r$p$salt$hash`, base64); verifying
one costs tens of milliseconds on purpose, so callers run `verify_password` in a
thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.tenants.admin import AdminError
from bridge.tenants.tables import Credential, Customer

_credential = table(Credential)
_customer = table(Customer)
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 10


def check_login_password(password: str) -> None:
    """A new login's password: long enough (AdminError says how long)."""
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password must have at least {MIN_PASSWORD} characters")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class CredentialRow:
    username: str
    customer_id: int
    customer: str
    password_hash: str
    enabled: bool


def add_credential(conn: Connection, username: str, customer: str, password: str) -> None:
    customer_id = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
    if customer_id is None:
        raise AdminError(f"no customer {customer!r}; create it with `mailsms customer add`")
    if conn.execute(select(_credential.c.id).where(_credential.c.username == username)).first():
        raise AdminError(f"login {username!r} exists already")
    conn.execute(
        insert(_credential).values(
            username=username,
            customer_id=customer_id,
            password_hash=hash_password(password),
            enabled=True,
            created_at=utcnow(),
        )
    )


def find_credential(conn: Connection, username: str) -> CredentialRow | None:
    row = conn.execute(
        select(_credential, _customer.c.name.label("customer"))
        .join(_customer, _credential.c.customer_id == _customer.c.id)
        .where(_credential.c.username == username)
    ).first()
    if row is None:
        return None
    return CredentialRow(
        row.username, row.customer_id, row.customer, row.password_hash, row.enabled
    )


def list_credentials(conn: Connection) -> list[CredentialRow]:
    rows = conn.execute(
        select(_credential, _customer.c.name.label("customer"))
        .join(_customer, _credential.c.customer_id == _customer.c.id)
        .order_by(_credential.c.username)
    )
    return [CredentialRow(r.username, r.customer_id, r.customer, "", r.enabled) for r in rows]


def set_credential_enabled(conn: Connection, username: str, enabled: bool) -> None:
    result = conn.execute(
        update(_credential).where(_credential.c.username == username).values(enabled=enabled)
    )
    if result.rowcount == 0:
        raise AdminError(f"no login {username!r}; see `mailsms login list`")
