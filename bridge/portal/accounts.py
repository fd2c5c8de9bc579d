"""Store functions for portal accounts: add, list, enable/disable, set a password, log in.

Passwords are scrypt hashes (`bridge.tenants.logins`), verified off the event loop.
Failed logins lock the account for a growing delay (`status.lock_seconds`); while it
is locked the password is not even checked, so guessing gains nothing from waiting out
a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.portal.status import Role, lock_seconds
from bridge.portal.tables import PortalAccount, PortalSession
from bridge.tenants.admin import DEMO_CUSTOMER, AdminError
from bridge.tenants.logins import hash_password
from bridge.tenants.tables import Customer

_account = table(PortalAccount)
_session = table(PortalSession)
_customer = table(Customer)

MIN_PASSWORD = 10
# Verified against when the username is unknown, so that a wrong name takes as long as a
# wrong password (no telling which names exist).
DUMMY_HASH = hash_password("no such account, the same cost as a real check")


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    username: str
    role: Role
    customer_id: int | None
    customer: str | None
    password_hash: str
    enabled: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


def _select() -> Select[Any]:
    return select(_account, _customer.c.name.label("customer")).outerjoin(
        _customer, _account.c.customer_id == _customer.c.id
    )


def _row(r: Row[Any]) -> AccountRow:
    return AccountRow(
        r.id,
        r.username,
        Role(r.role),
        r.customer_id,
        r.customer,
        r.password_hash,
        r.enabled,
        r.failed_logins,
        r.locked_until,
        r.last_login_at,
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password must have at least {MIN_PASSWORD} characters")


def add_account(
    conn: Connection, username: str, role: Role, customer: str | None, password: str
) -> None:
    """Add an account; a customer admin needs its customer, an operator has none."""
    username = username.strip().lower()
    if not username or len(username) > 128 or any(c.isspace() for c in username):
        raise AdminError(f"username {username!r}: 1 to 128 characters without spaces")
    check_password(password)
    customer_id = None
    if role is Role.CUSTOMER_ADMIN:
        if not customer:
            raise AdminError("a customer admin needs --customer (the customer it administers)")
        customer_id = conn.execute(
            select(_customer.c.id).where(_customer.c.name == customer)
        ).scalar()
        if customer_id is None:
            raise AdminError(f"no customer {customer!r}; create it with `mailsms customer add`")
    elif customer:
        raise AdminError("an operator sees every customer; leave out --customer")
    if conn.execute(select(_account.c.id).where(_account.c.username == username)).first():
        raise AdminError(f"portal account {username!r} exists already")
    conn.execute(
        insert(_account).values(
            username=username,
            role=role.value,
            customer_id=customer_id,
            password_hash=hash_password(password),
            enabled=True,
            failed_logins=0,
            created_at=utcnow(),
        )
    )


def ensure_account(
    conn: Connection, username: str, role: Role, customer: str | None, password: str
) -> bool:
    """Add the account unless one of that name exists; whether it was added."""
    if conn.execute(select(_account.c.id).where(_account.c.username == username)).first():
        return False
    if (
        customer is not None
        and conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).first() is None
    ):
        return False
    add_account(conn, username, role, customer, password)
    return True


def find_account(conn: Connection, username: str) -> AccountRow | None:
    row = conn.execute(_select().where(_account.c.username == username.strip().lower())).first()
    return None if row is None else _row(row)


def list_accounts(conn: Connection, customer_id: int | None = None) -> list[AccountRow]:
    query = _select().order_by(_account.c.username)
    if customer_id is not None:
        query = query.where(_account.c.customer_id == customer_id)
    return [_row(r) for r in conn.execute(query)]


def _change(conn: Connection, username: str, **values: object) -> int:
    result = conn.execute(
        update(_account).where(_account.c.username == username.strip().lower()).values(**values)
    )
    if result.rowcount == 0:
        raise AdminError(f"no portal account {username!r}; see `mailsms portal-account list`")
    account_id = conn.execute(
        select(_account.c.id).where(_account.c.username == username.strip().lower())
    ).scalar_one()
    return int(account_id)


def set_enabled(conn: Connection, username: str, enabled: bool) -> None:
    """Enable or disable an account; disabling ends its sessions."""
    account_id = _change(conn, username, enabled=enabled, failed_logins=0, locked_until=None)
    if not enabled:
        conn.execute(delete(_session).where(_session.c.account_id == account_id))


def set_password(conn: Connection, username: str, password: str) -> None:
    """Set a new password, unlock the account and end its sessions."""
    check_password(password)
    account_id = _change(
        conn, username, password_hash=hash_password(password), failed_logins=0, locked_until=None
    )
    conn.execute(delete(_session).where(_session.c.account_id == account_id))


def locked_for(account: AccountRow, now: datetime) -> int:
    """Seconds the account stays locked (0: it may try)."""
    if account.locked_until is None or account.locked_until <= now:
        return 0
    return max(1, int((account.locked_until - now).total_seconds() + 0.999))


def record_failure(conn: Connection, account_id: int, now: datetime) -> int:
    """Count a failed login; the seconds the account is now locked for."""
    failures = conn.execute(
        select(_account.c.failed_logins).where(_account.c.id == account_id)
    ).scalar_one()
    failures = int(failures) + 1
    seconds = lock_seconds(failures)
    conn.execute(
        update(_account)
        .where(_account.c.id == account_id)
        .values(
            failed_logins=failures,
            locked_until=now + timedelta(seconds=seconds) if seconds else None,
        )
    )
    return seconds


def record_success(conn: Connection, account_id: int, now: datetime) -> None:
    conn.execute(
        update(_account)
        .where(_account.c.id == account_id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )


DEMO_ADMIN = "admin"


def ensure_demo_admin(conn: Connection, password: str) -> bool:
    """With the demo customer present and no account "admin" yet: add it (its administrator)."""
    return ensure_account(conn, DEMO_ADMIN, Role.CUSTOMER_ADMIN, DEMO_CUSTOMER, password)
