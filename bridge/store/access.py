"""Store functions for a customer's access rules (the `access` table of its settings)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from bridge.intake.access import CustomerAccess
from bridge.store.admin import AdminError
from bridge.store.models import Customer

_customer = Customer.__table__  # type: ignore[attr-defined]


def get_access(conn: Connection, customer: str) -> dict[str, Any]:
    settings = conn.execute(
        select(_customer.c.settings).where(_customer.c.name == customer)
    ).scalar()
    if settings is None:
        raise AdminError(f"no customer {customer!r}; see `mailsms customer list`")
    return dict(settings.get("access") or {})


def set_access(conn: Connection, customer: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge `changes` into the customer's access rules (validated); return the result."""
    row = conn.execute(
        select(_customer.c.id, _customer.c.settings).where(_customer.c.name == customer)
    ).first()
    if row is None:
        raise AdminError(f"no customer {customer!r}; see `mailsms customer list`")
    settings = dict(row.settings or {})
    access = {**dict(settings.get("access") or {}), **changes}
    try:
        CustomerAccess.from_settings({"access": access})
    except (ValueError, TypeError) as exc:
        raise AdminError(str(exc)) from None
    settings["access"] = access
    conn.execute(update(_customer).where(_customer.c.id == row.id).values(settings=settings))
    return access
