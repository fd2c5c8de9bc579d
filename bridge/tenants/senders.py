"""Who an envelope sender is: the user by address or alias, with the settings of each level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from bridge.db.core import table
from bridge.mail_address import match_key
from bridge.tenants.tables import Alias, Customer, Profile, User

_user = table(User)
_alias = table(Alias)
_customer = table(Customer)
_profile = table(Profile)


@dataclass(frozen=True, slots=True)
class Sender:
    """An envelope sender as the intake needs it: identity plus its settings levels."""

    user_id: int
    customer_id: int
    customer_name: str
    address: str
    display_name: str
    enabled: bool
    customer_enabled: bool
    customer_settings: dict[str, Any]
    profile_settings: dict[str, Any]
    user_settings: dict[str, Any]


# One query, built once: the user by address, else by alias, with its settings levels.
_SENDER = (
    select(
        _user.c.id,
        _user.c.customer_id,
        _user.c.address,
        _user.c.display_name,
        _user.c.enabled,
        _user.c.settings,
        _customer.c.enabled.label("customer_enabled"),
        _customer.c.name.label("customer_name"),
        _customer.c.settings.label("customer_settings"),
        _profile.c.settings.label("profile_settings"),
    )
    .select_from(_user.join(_customer).outerjoin(_profile, _user.c.profile_id == _profile.c.id))
    .where(
        _user.c.id
        == func.coalesce(
            select(_user.c.id).where(_user.c.address == bindparam("address")).scalar_subquery(),
            select(_alias.c.user_id)
            .where(_alias.c.address == bindparam("address"))
            .limit(1)
            .scalar_subquery(),
        )
    )
)


def find_sender(conn: Connection, address: str) -> Sender | None:
    """The user whose address or alias is `address` (case-insensitive, an internationalized
    domain in either spelling: `match_key`), or None."""
    row = conn.execute(_SENDER, {"address": match_key(address)}).first()
    if row is None:
        return None
    return Sender(
        user_id=row.id,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        address=row.address,
        display_name=row.display_name,
        enabled=row.enabled,
        customer_enabled=row.customer_enabled,
        customer_settings=row.customer_settings or {},
        profile_settings=row.profile_settings or {},
        user_settings=row.settings or {},
    )
