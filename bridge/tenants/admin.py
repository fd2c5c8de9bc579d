"""Store functions for administration: customers, users and the demo tenant.

Used by the CLI and by start-up; everything here is a small, explicit query.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.errors import InputError
from bridge.mail_address import MailAddressError, check_mail_address
from bridge.tenants.tables import Alias, Customer, User

_customer = table(Customer)
_user = table(User)
_alias = table(Alias)

DEMO_CUSTOMER = "demo"
DEMO_USER = "demo@example.com"
DEMO_NUMBER = "+4915550000001"
LOOPBACK = ("127.0.0.0/8", "::1/128")


class AdminError(InputError, ValueError):
    """An administrative request that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    name: str
    enabled: bool
    users: int
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    address: str
    customer: str
    display_name: str
    enabled: bool
    origin: str
    settings: dict[str, Any]


def add_customer(conn: Connection, name: str, settings: dict[str, Any]) -> int:
    if conn.execute(select(_customer.c.id).where(_customer.c.name == name)).first():
        raise AdminError(f"customer {name!r} exists already")
    result = conn.execute(
        insert(_customer).values(name=name, enabled=True, settings=settings, created_at=utcnow())
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def list_customers(conn: Connection) -> list[CustomerRow]:
    users = (
        select(_user.c.customer_id, func.count().label("n"))
        .group_by(_user.c.customer_id)
        .subquery()
    )
    rows = conn.execute(
        select(_customer, func.coalesce(users.c.n, 0).label("users"))
        .outerjoin(users, users.c.customer_id == _customer.c.id)
        .order_by(_customer.c.name)
    ).all()
    return [CustomerRow(r.id, r.name, r.enabled, r.users, r.settings or {}) for r in rows]


def add_user(
    conn: Connection,
    address: str,
    customer: str,
    *,
    display_name: str = "",
    settings: dict[str, Any] | None = None,
    origin: str = "manual",
) -> int:
    try:
        address = check_mail_address(address)
    except MailAddressError as exc:
        raise AdminError(str(exc)) from None
    customer_id = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
    if customer_id is None:
        raise AdminError(
            f"no customer {customer!r}; create it with `mailsms customer add {customer}`"
        )
    if conn.execute(select(_user.c.id).where(_user.c.address == address)).first():
        raise AdminError(f"user {address} exists already")
    now = utcnow()
    result = conn.execute(
        insert(_user).values(
            customer_id=customer_id,
            address=address,
            display_name=display_name,
            enabled=True,
            origin=origin,
            settings=settings or {},
            created_at=now,
            updated_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_user_enabled(conn: Connection, address: str, enabled: bool) -> None:
    now = utcnow()
    result = conn.execute(
        update(_user)
        .where(_user.c.address == address.lower())
        .values(enabled=enabled, updated_at=now, disabled_at=None if enabled else now)
    )
    if result.rowcount == 0:
        raise AdminError(f"no user {address}; see `mailsms user list`")


def list_users(conn: Connection, customer: str | None = None) -> list[UserRow]:
    query = (
        select(_user, _customer.c.name.label("customer"))
        .join(_customer, _user.c.customer_id == _customer.c.id)
        .order_by(_user.c.address)
    )
    if customer:
        query = query.where(_customer.c.name == customer)
    return [
        UserRow(r.id, r.address, r.customer, r.display_name, r.enabled, r.origin, r.settings or {})
        for r in conn.execute(query)
    ]


def ensure_demo(conn: Connection) -> bool:
    """On a database without customers, create the demo customer and demo@example.com.

    A demo customer created before customers needed client networks or AUTH gets this
    machine's networks, so the demo stays usable on loopback (and only there).
    """
    if conn.execute(select(func.count()).select_from(_customer)).scalar():
        _demo_on_loopback(conn)
        return False
    # The demo's sender is a (sandbox) long number, so phones can answer it (SMS2Mail).
    # Its users may send from this machine only (a customer needs client networks or AUTH).
    settings = {
        "default_country": "DE",
        "sender_id": DEMO_NUMBER,
        "access": {"networks": list(LOOPBACK)},
    }
    add_customer(conn, DEMO_CUSTOMER, settings)
    add_user(
        conn,
        DEMO_USER,
        DEMO_CUSTOMER,
        display_name="Demo User",
        settings={"notify": "all"},
        origin="demo",
    )
    return True


def _demo_on_loopback(conn: Connection) -> None:
    row = conn.execute(
        select(_customer.c.id, _customer.c.settings)
        .join(_user, _user.c.customer_id == _customer.c.id)
        .where(
            _customer.c.name == DEMO_CUSTOMER,
            _user.c.address == DEMO_USER,
            _user.c.origin == "demo",
        )
    ).first()
    if row is None:
        return
    settings = dict(row.settings or {})
    access = dict(settings.get("access") or {})
    if "networks" in access:  # set on purpose (even to none): leave it
        return
    settings["access"] = {**access, "networks": list(LOOPBACK)}
    conn.execute(update(_customer).where(_customer.c.id == row.id).values(settings=settings))


def check_networks(networks: Sequence[str]) -> tuple[str, ...]:
    """Client networks given by an administrator, normalised (AdminError names a bad one)."""
    out = []
    for n in networks:
        try:
            out.append(str(ipaddress.ip_network(n.strip(), strict=False)))
        except ValueError:
            raise AdminError(
                f"network {n!r}: expected an address or CIDR, e.g. 192.0.2.0/24"
            ) from None
    return tuple(out)


def list_aliases(conn: Connection, user_id: int) -> list[str]:
    """The other envelope addresses a user may send from, sorted."""
    rows = conn.execute(
        select(_alias.c.address).where(_alias.c.user_id == user_id).order_by(_alias.c.address)
    )
    return [str(r[0]) for r in rows]


def add_alias(conn: Connection, user_id: int, address: str) -> str:
    """Let the user send from `address` too; the address normalised (AdminError says why not)."""
    try:
        address = check_mail_address(address)
    except MailAddressError as exc:
        raise AdminError(str(exc)) from None
    if conn.execute(select(_user.c.id).where(_user.c.address == address)).first():
        raise AdminError(f"{address} is a user's own address; an alias must be another address")
    if conn.execute(select(_alias.c.user_id).where(_alias.c.address == address)).first():
        raise AdminError(f"{address} is an alias already (of this or another user)")
    conn.execute(insert(_alias).values(address=address, user_id=user_id))
    return address


def remove_alias(conn: Connection, user_id: int, address: str) -> None:
    result = conn.execute(
        delete(_alias).where(_alias.c.user_id == user_id, _alias.c.address == address.lower())
    )
    if result.rowcount == 0:
        raise AdminError(f"{address} is not an alias of this user")
