"""A list mail's orders finishing together cost work in proportion to their number: the
cumulative report is looked at once per batch of final orders, not once per order (while
some of its orders are still open, each look read the mail's orders, so once per order
was quadratic in the list's size). Work is counted in SQLite's VM steps, not timed; the
report is queued once, when the last order is final."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.lists.store import insert_list_mails
from bridge.mt.mails import insert_mails
from bridge.mt.tables import Order
from bridge.notices.tables import Notice
from bridge.outcomes.steps import final_notices
from tests.integration.test_conversation_lookup import _sqlite_steps
from tests.integration.test_store import _mail, _seed

_order = table(Order)
_notice = table(Notice)


def _finish_list_mail(engine: Engine, user_id: int, mail_id: str, members: int) -> int:
    """A list mail to `members` numbers whose orders finish in two batches: the steps of
    the first batch's final_notices (half of the orders; the others still open)."""
    run_sync(engine, insert_mails, [_mail(user_id, mail_id, recipients=members)])
    rows = [{"mail_id": mail_id, "lists": ["staff"], "members": members, "skipped": []}]
    run_sync(engine, insert_list_mails, rows)
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(_order.c.id).where(_order.c.mail_id == mail_id))]
    steps = 0
    before = _reports(engine)
    for batch in (ids[: members // 2], ids[members // 2 :]):
        assert _reports(engine) == before  # not while an order is open
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(
                update(_order)
                .where(_order.c.id.in_(batch))
                .values(status="delivered", final_at=now)
            )
            if engine.dialect.name != "sqlite":
                final_notices(conn, batch, now)
            elif not steps:
                steps = _sqlite_steps(conn, lambda b=batch, t=now: final_notices(conn, b, t))  # type: ignore[misc]
            else:
                final_notices(conn, batch, now)
    assert _reports(engine) == before + 1  # once the last order is final
    return steps


def _reports(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(_notice).where(_notice.c.kind == "list_report")
        return int(conn.execute(query).scalar_one())


def test_a_list_mails_final_orders_cost_linear_work_and_report_once(engine: Engine) -> None:
    user_id = _seed(engine)
    small = _finish_list_mail(engine, user_id, "L1", 40)
    large = _finish_list_mail(engine, user_id, "L2", 400)
    # ten times the orders: ten times the work (the per-order steps), with room for
    # bigger B-trees; once per order the report's look alone made it about a hundred
    # (SQLite's steps; PostgreSQL runs the same statements)
    assert large <= 15 * small, (small, large)
    assert _reports(engine) == 2  # one per list mail
