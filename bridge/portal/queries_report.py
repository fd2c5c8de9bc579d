"""What the outbound report and held-order pages read beyond the domains' queries: the
service (profile) names the report's filter offers."""

from __future__ import annotations

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.tenants.tables import Profile

_profile = table(Profile)


def profile_names(conn: Connection, customer_id: int | None) -> list[str]:
    """The customer's services (profiles) by name; every customer's for None."""
    query = select(_profile.c.name).distinct().order_by(_profile.c.name)
    if customer_id is not None:
        query = query.where(_profile.c.customer_id == customer_id)
    return [str(name) for name in conn.execute(query).scalars()]
