"""Store functions for a customer's access rules (the `access` table of its settings).

`exposures` lists the enabled customers whose rules leave them open to the world (or
unable to send); start-up and `mailsms config check` warn about each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from bridge.db.core import table
from bridge.intake.access import CustomerAccess, exposure
from bridge.tenants.admin import AdminError
from bridge.tenants.tables import Credential, Customer

_customer = table(Customer)
_credential = table(Credential)


def exposures(conn: Connection) -> list[tuple[str, str]]:
    """(customer name, warning) for each enabled customer whose access rules need attention."""
    logins: dict[int, int] = {
        int(r[0]): int(r[1])
        for r in conn.execute(
            select(_credential.c.customer_id, func.count())
            .where(_credential.c.enabled.is_(True))
            .group_by(_credential.c.customer_id)
        )
    }
    found = []
    rows = conn.execute(
        select(_customer.c.id, _customer.c.name, _customer.c.settings)
        .where(_customer.c.enabled.is_(True))
        .order_by(_customer.c.name)
    )
    for row in rows:
        try:
            access = CustomerAccess.from_settings(row.settings or {})
        except (ValueError, TypeError) as exc:
            found.append((row.name, f"has invalid access settings ({exc}); its users cannot send"))
            continue
        warning = exposure(access, logins.get(row.id, 0))
        if warning is not None:
            found.append((row.name, warning))
    return found


def known_networks(conn: Connection) -> tuple[str, ...]:
    """Every enabled customer's client networks (CIDRs), each once: where a recipient
    probe may come from without AUTH."""
    found: dict[str, None] = {}
    rows = conn.execute(select(_customer.c.settings).where(_customer.c.enabled.is_(True)))
    for (settings,) in rows:
        try:
            access = CustomerAccess.from_settings(settings or {})
        except (ValueError, TypeError):  # its users cannot send either (`exposures`)
            continue
        found.update(dict.fromkeys(access.networks))
    return tuple(sorted(found))


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
