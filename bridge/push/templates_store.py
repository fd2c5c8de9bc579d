"""Store functions for customers' push templates: set, read, remove (one per customer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from bridge.db.core import table
from bridge.db.prepared import fetch
from bridge.push.tables import PushTemplateRow
from bridge.push.template import PushTemplate, parse_template
from bridge.tenants.admin import AdminError
from bridge.tenants.tables import Customer

_template = table(PushTemplateRow)
_customer = table(Customer)


def customer_id_of(conn: Connection, customer: str) -> int:
    """The id of the customer named `customer`, or AdminError."""
    found = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
    if found is None:
        raise AdminError(f"no customer {customer!r}; see `mailsms customer list`")
    return int(found)


# Built once: every push with a customer's fields reads it.
_TEMPLATE = select(_template.c.template).where(_template.c.customer_id == bindparam("customer_id"))


def get_template(conn: Connection, customer_id: int) -> PushTemplate | None:
    """The customer's push template, or None (today's bodies)."""
    found = fetch(conn, _TEMPLATE, {"customer_id": customer_id})
    return None if not found or found[0].template is None else parse_template(found[0].template)


def set_template(conn: Connection, customer_id: int, template: PushTemplate, now: datetime) -> None:
    """Store (or replace) the customer's template; pushes queued from now on use it."""
    values = {"template": template.as_data(), "updated_at": now}
    done = conn.execute(
        update(_template).where(_template.c.customer_id == customer_id).values(**values)
    )
    if not done.rowcount:
        conn.execute(insert(_template).values(customer_id=customer_id, **values))


def remove_template(conn: Connection, customer_id: int) -> bool:
    """Back to today's bodies; False when the customer had no template."""
    done = conn.execute(delete(_template).where(_template.c.customer_id == customer_id))
    return bool(done.rowcount)
