"""Store functions for SMPP accounts: add, list, enable/disable, new password, look up for a bind.

Passwords are scrypt hashes (`bridge.tenants.logins`); verifying one costs tens of
milliseconds on purpose, so the server verifies in a thread. An account sends as one
user of its customer: that user's policy (sender id, countries, rate limits, validity)
applies to its SMS, and its orders show in that user's reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.intake.access import networks_of
from bridge.smpp_server.tables import SmppAccount
from bridge.tenants.admin import DEMO_USER, AdminError, check_networks
from bridge.tenants.logins import hash_password
from bridge.tenants.tables import Customer, User

_account = table(SmppAccount)
_user = table(User)
_customer = table(Customer)

BIND_TYPES: Final = ("transmitter", "receiver", "transceiver")
DEMO_SYSTEM_ID: Final = "demo"
LOOPBACK: Final = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True, slots=True)
class Account:
    """An SMPP account with what a bind and a submit need."""

    id: int
    system_id: str
    customer_id: int
    customer: str
    user_id: int
    user: str
    password_hash: str
    networks: tuple[str, ...]
    bind_types: tuple[str, ...]
    senders: tuple[str, ...]
    max_binds: int
    window: int
    throughput: float
    enabled: bool

    def allows_network(self, ip: str) -> bool:
        """Is a client at `ip` inside the account's networks (none listed: nobody is)?"""
        return ip in networks_of(tuple(self.networks))


def _select() -> object:
    return select(
        _account,
        _customer.c.name.label("customer"),
        _user.c.address.label("user"),
    ).select_from(
        _account.join(_user, _user.c.id == _account.c.user_id).join(
            _customer, _customer.c.id == _account.c.customer_id
        )
    )


def _row(r: object) -> Account:
    return Account(
        id=r.id,  # type: ignore[attr-defined]
        system_id=r.system_id,  # type: ignore[attr-defined]
        customer_id=r.customer_id,  # type: ignore[attr-defined]
        customer=r.customer,  # type: ignore[attr-defined]
        user_id=r.user_id,  # type: ignore[attr-defined]
        user=r.user,  # type: ignore[attr-defined]
        password_hash=r.password_hash,  # type: ignore[attr-defined]
        networks=tuple(r.networks or ()),  # type: ignore[attr-defined]
        bind_types=tuple(r.bind_types or ()),  # type: ignore[attr-defined]
        senders=tuple(r.senders or ()),  # type: ignore[attr-defined]
        max_binds=r.max_binds,  # type: ignore[attr-defined]
        window=r.window,  # type: ignore[attr-defined]
        throughput=r.throughput,  # type: ignore[attr-defined]
        enabled=r.enabled,  # type: ignore[attr-defined]
    )


def add_account(
    conn: Connection,
    system_id: str,
    user: str,
    password: str,
    *,
    networks: Sequence[str],
    bind_types: Sequence[str] = BIND_TYPES,
    senders: Sequence[str] = (),
    max_binds: int = 2,
    window: int = 10,
    throughput: float = 0.0,
) -> None:
    """Add an account that sends as `user` (a mail address of an existing user)."""
    if not system_id or len(system_id) > 15:
        raise AdminError("system_id: 1 to 15 characters (SMPP 3.4 allows no more)")
    if not password or len(password) > 8:
        raise AdminError("password: 1 to 8 characters (SMPP 3.4 allows no more)")
    unknown = [b for b in bind_types if b not in BIND_TYPES]
    if unknown or not bind_types:
        raise AdminError(
            f"bind types {unknown or '(none)'}: expected some of {', '.join(BIND_TYPES)}"
        )
    _check_limits(max_binds, window, throughput)
    found = conn.execute(
        select(_user.c.id, _user.c.customer_id).where(_user.c.address == user.lower())
    ).first()
    if found is None:
        raise AdminError(f"no user {user!r}; create it with `mailsms user add`")
    if conn.execute(select(_account.c.id).where(_account.c.system_id == system_id)).first():
        raise AdminError(f"SMPP account {system_id!r} exists already")
    conn.execute(
        insert(_account).values(
            system_id=system_id,
            customer_id=found.customer_id,
            user_id=found.id,
            password_hash=hash_password(password),
            networks=list(check_networks(networks)),
            bind_types=list(bind_types),
            senders=_senders(senders),
            max_binds=max_binds,
            window=window,
            throughput=throughput,
            enabled=True,
            created_at=utcnow(),
        )
    )


def find_account(conn: Connection, system_id: str) -> Account | None:
    r = conn.execute(_select().where(_account.c.system_id == system_id)).first()  # type: ignore[attr-defined]
    return _row(r) if r is not None else None


def list_accounts(conn: Connection) -> list[Account]:
    return [_row(r) for r in conn.execute(_select().order_by(_account.c.system_id))]  # type: ignore[attr-defined]


def _change(conn: Connection, system_id: str, **values: object) -> None:
    done = conn.execute(
        update(_account).where(_account.c.system_id == system_id).values(**values)
    ).rowcount
    if not done:
        raise AdminError(f"no SMPP account {system_id!r}; see `mailsms smpp-account list`")


def set_enabled(conn: Connection, system_id: str, enabled: bool) -> None:
    _change(conn, system_id, enabled=enabled)


def set_password(conn: Connection, system_id: str, password: str) -> None:
    if not password or len(password) > 8:
        raise AdminError("password: 1 to 8 characters (SMPP 3.4 allows no more)")
    _change(conn, system_id, password_hash=hash_password(password))


def set_limits(
    conn: Connection,
    system_id: str,
    *,
    networks: Sequence[str] | None = None,
    max_binds: int | None = None,
    window: int | None = None,
    throughput: float | None = None,
    senders: Sequence[str] | None = None,
) -> None:
    """Change what is given (the same checks as `add_account`); AdminError when nothing is."""
    _check_limits(
        1 if max_binds is None else max_binds,
        1 if window is None else window,
        0.0 if throughput is None else throughput,
    )
    values: dict[str, object] = {}
    if networks is not None:
        values["networks"] = list(check_networks(networks))
    if max_binds is not None:
        values["max_binds"] = max_binds
    if window is not None:
        values["window"] = window
    if throughput is not None:
        values["throughput"] = throughput
    if senders is not None:
        values["senders"] = _senders(senders)
    if not values:
        raise AdminError(
            "nothing to change: give --network, --max-binds, --window, --throughput or --sender"
        )
    _change(conn, system_id, **values)


def _check_limits(max_binds: int, window: int, throughput: float) -> None:
    if max_binds < 1 or window < 1 or throughput < 0:
        raise AdminError("max binds and window: at least 1; throughput: 0 (no limit) or more")


def _senders(senders: Sequence[str]) -> list[str]:
    return [s.strip() for s in senders if s.strip()]


def ensure_demo_account(conn: Connection, password: str) -> bool:
    """With the demo user present and no account "demo" yet: add it (loopback only)."""
    if conn.execute(select(_account.c.id).where(_account.c.system_id == DEMO_SYSTEM_ID)).first():
        return False
    if conn.execute(select(_user.c.id).where(_user.c.address == DEMO_USER)).first() is None:
        return False
    add_account(conn, DEMO_SYSTEM_ID, DEMO_USER, password, networks=LOOPBACK, senders=("*",))
    return True
