"""Read queries of the settings, users and access pages, each scoped to one customer.

Every function that finds an object by id takes the viewer's customer (None: an
operator's "all customers") and returns None for an object of another customer, so
the page answers 404 exactly as for a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from bridge.db.core import table
from bridge.tenants.admin import list_aliases
from bridge.tenants.tables import Alias, Credential, Customer, Profile, User

_customer = table(Customer)
_profile = table(Profile)
_user = table(User)
_alias = table(Alias)
_credential = table(Credential)


@dataclass(frozen=True, slots=True)
class ProfileItem:
    id: int
    name: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserItem:
    """A user as the users list shows it."""

    id: int
    address: str
    display_name: str
    customer: str
    profile: str | None
    enabled: bool
    origin: str
    aliases: int


@dataclass(frozen=True, slots=True)
class UserDetail:
    """One user with the settings of every level above it (the cascade of `settings show`)."""

    id: int
    address: str
    display_name: str
    customer_id: int
    customer: str
    profile: str | None
    enabled: bool
    origin: str
    aliases: tuple[str, ...]
    customer_settings: dict[str, Any]
    profile_settings: dict[str, Any]
    user_settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoginItem:
    id: int
    username: str
    customer_id: int
    customer: str
    enabled: bool


def customer_settings(conn: Connection, customer_id: int) -> dict[str, Any]:
    value = conn.execute(select(_customer.c.settings).where(_customer.c.id == customer_id)).scalar()
    return dict(value or {})


def profiles(conn: Connection, customer_id: int) -> list[ProfileItem]:
    rows = conn.execute(
        select(_profile.c.id, _profile.c.name, _profile.c.settings)
        .where(_profile.c.customer_id == customer_id)
        .order_by(_profile.c.name)
    )
    return [ProfileItem(r.id, r.name, dict(r.settings or {})) for r in rows]


def find_users(
    conn: Connection, customer_id: int | None, search: str, offset: int, limit: int
) -> list[UserItem]:
    """Users of the customer (None: all) whose address, alias or name contains `search`."""
    aliases = (
        select(_alias.c.user_id, func.count().label("n")).group_by(_alias.c.user_id).subquery()
    )
    query = (
        select(
            _user.c.id,
            _user.c.address,
            _user.c.display_name,
            _user.c.enabled,
            _user.c.origin,
            _customer.c.name.label("customer"),
            _profile.c.name.label("profile"),
            func.coalesce(aliases.c.n, 0).label("aliases"),
        )
        .join(_customer, _customer.c.id == _user.c.customer_id)
        .outerjoin(_profile, _profile.c.id == _user.c.profile_id)
        .outerjoin(aliases, aliases.c.user_id == _user.c.id)
        .order_by(_customer.c.name, _user.c.address)
        .offset(offset)
        .limit(limit)
    )
    if customer_id is not None:
        query = query.where(_user.c.customer_id == customer_id)
    if search:
        text = search.lower()  # addresses are stored lower-cased; % and _ match themselves
        query = query.where(
            or_(
                _user.c.address.contains(text, autoescape=True),
                func.lower(_user.c.display_name).contains(text, autoescape=True),
                _user.c.id.in_(
                    select(_alias.c.user_id).where(_alias.c.address.contains(text, autoescape=True))
                ),
            )
        )
    return [
        UserItem(
            r.id, r.address, r.display_name, r.customer, r.profile, r.enabled, r.origin, r.aliases
        )
        for r in conn.execute(query)
    ]


def find_user(conn: Connection, user_id: int, customer_id: int | None) -> UserDetail | None:
    """The user `user_id` if the viewer's customer (None: any) owns it."""
    query = (
        select(
            _user,
            _customer.c.name.label("customer"),
            _customer.c.settings.label("customer_settings"),
            _profile.c.name.label("profile"),
            _profile.c.settings.label("profile_settings"),
        )
        .join(_customer, _customer.c.id == _user.c.customer_id)
        .outerjoin(_profile, _profile.c.id == _user.c.profile_id)
        .where(_user.c.id == user_id)
    )
    if customer_id is not None:
        query = query.where(_user.c.customer_id == customer_id)
    r = conn.execute(query).first()
    if r is None:
        return None
    return UserDetail(
        r.id,
        r.address,
        r.display_name,
        r.customer_id,
        r.customer,
        r.profile,
        r.enabled,
        r.origin,
        tuple(list_aliases(conn, r.id)),
        dict(r.customer_settings or {}),
        dict(r.profile_settings or {}),
        dict(r.settings or {}),
    )


def logins(conn: Connection, customer_id: int | None) -> list[LoginItem]:
    """SMTP AUTH logins of the customer (None: all)."""
    query = (
        select(
            _credential.c.id,
            _credential.c.username,
            _credential.c.customer_id,
            _credential.c.enabled,
            _customer.c.name.label("customer"),
        )
        .join(_customer, _customer.c.id == _credential.c.customer_id)
        .order_by(_customer.c.name, _credential.c.username)
    )
    if customer_id is not None:
        query = query.where(_credential.c.customer_id == customer_id)
    return [
        LoginItem(r.id, r.username, r.customer_id, r.customer, r.enabled)
        for r in conn.execute(query)
    ]


def find_login(conn: Connection, login_id: int, customer_id: int | None) -> LoginItem | None:
    for item in logins(conn, customer_id):
        if item.id == login_id:
            return item
    return None
