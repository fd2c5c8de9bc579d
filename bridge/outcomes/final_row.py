"""What the steps of a final order read: the order with its mail, user, customer, list mail and
status push target, in one query built once (one read for every step, not one each; and one
for all the orders that became final in one transaction: FINAL_ROWS)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY

from bridge.db.core import table
from bridge.inbound.tables import InboundCustomer
from bridge.lists.tables import ListMail
from bridge.mt.tables import Mail, Order, Part
from bridge.tenants.tables import Customer, User

_order = table(Order)
_part = table(Part)
_mail = table(Mail)
_user = table(User)
_customer = table(Customer)
_list_mail = table(ListMail)
_icust = table(InboundCustomer)

_FINAL = select(
    _order,
    _mail.c.message_id.label("mail_message_id"),
    _mail.c.subject.label("mail_subject"),
    _mail.c.envelope_from,
    _mail.c.received_at,
    _mail.c.dsn_ret,
    _mail.c.dsn_envid,
    _user.c.display_name,
    _user.c.customer_id,
    _customer.c.name.label("customer_name"),
    _list_mail.c.mail_id.label("list_mail_id"),
    _icust.c.status_push,
    # when its first part went out (None: never submitted), for the submit→final time
    select(func.min(_part.c.submitted_at))
    .where(_part.c.order_id == _order.c.id)
    .scalar_subquery()
    .label("first_submitted_at"),
).select_from(
    _order.join(_mail)
    .join(_user, _order.c.user_id == _user.c.id)
    .join(_customer, _customer.c.id == _user.c.customer_id)
    .outerjoin(_list_mail, _list_mail.c.mail_id == _order.c.mail_id)
    .outerjoin(_icust, _icust.c.customer_id == _user.c.customer_id)
)

# One order: {"order_id": ...}.
FINAL_ROW: Select[Any] = _FINAL.where(_order.c.id == bindparam("order_id"))
# Several orders: {"order_ids": [...]} (rows in no particular order).
FINAL_ROWS: Select[Any] = _FINAL.where(_order.c.id.in_(bindparam("order_ids", expanding=True)))

# PostgreSQL: the same rows, each id joined LATERAL to its order (LIMIT 1: one row per
# id, and a subquery the planner cannot flatten into the join). Written as `IN`, the
# planner hashed the whole mail table for a round's 200 orders among 20,000 mails (every
# mail read at each such round until the table outgrew the hash); here each id is a few
# index seeks whatever the plan (tests/integration/test_hot_read_plans.py). An id given
# twice gives its row twice.
_WANTED = (
    func.unnest(bindparam("order_ids", type_=ARRAY(String)))
    .table_valued("id")
    .render_derived()
    .alias("wanted")
)
_EACH_FINAL = _FINAL.where(_order.c.id == _WANTED.c.id).limit(1).lateral("f")
_FINAL_ROWS_POSTGRES: Select[Any] = select(*_EACH_FINAL.c).select_from(
    _WANTED.join(_EACH_FINAL, true())
)
# FINAL_ROWS as each database plans it best: {dialect name: statement}.
FINAL_ROWS_BY_DIALECT: dict[str, Select[Any]] = {
    "sqlite": FINAL_ROWS,
    "postgresql": _FINAL_ROWS_POSTGRES,
}
