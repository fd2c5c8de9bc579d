"""The steps that follow an order's submit and its final status, written out as lists.

When an order becomes final (delivered, failed, expired, unconfirmed ...), in the same
transaction as its status, once (the orders that became final together: from one read):

1. the status mail to the sender, or, for a mail to distribution lists, the one
   cumulative list report once all its orders are final;
2. the DSN the client asked for (RFC 3461 NOTIFY) or its policy wants;
3. the status push to the customer's status URL, when its policy asks for one;
4. the SMPP receipt (deliver_sm) to the client's bind, for an order that came in over
   SMPP with registered_delivery set (kept in the SMPP outbox until a bind takes it).

When orders are submitted: their reply assignments (replies from the recipients come
back to the sender of the order: dynamic SMS2Mail).

`steps(metrics)` is the same list, with each final order also counted by status and
timed from its first submit (from the same read; a transaction that rolls back after
it has counted the order once too often).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bridge.db import prepared
from bridge.inbound.store import record_order_assignments
from bridge.lists.store import queue_list_report
from bridge.metrics import Metrics, elapsed
from bridge.mt.steps import Steps
from bridge.notices.queue import queue_status_notices, status_notice_row
from bridge.outcomes.dsn_queue import final_dsn_wanted, queue_final_dsn_for
from bridge.outcomes.final_row import FINAL_ROWS_BY_DIALECT
from bridge.outcomes.status_push import queue_status_push_for
from bridge.smpp_outbox.queue import queue_receipt_for


def final_notices(
    conn: Connection, order_ids: Sequence[str], now: datetime, metrics: Metrics | None = None
) -> int:
    """Steps 1-4 for each order, in the given order, from one read of the orders and what
    belongs to them; returns how many notices (status mails, list reports, DSNs) it queued."""
    rows = {
        r.id: r
        for r in prepared.fetch(
            conn,
            FINAL_ROWS_BY_DIALECT[conn.dialect.name],
            {"order_ids": list(dict.fromkeys(order_ids))},
        )
    }
    # Status mails wait here and go in with one insert; the other notices (list report,
    # DSN) insert on their own, so whatever comes before them is written first: the
    # notices keep the order in which they were queued one by one.
    status_mails: list[dict[str, Any]] = []

    def status_mails_now() -> int:
        """The status mails waiting so far, inserted; how many."""
        count = len(status_mails)
        queue_status_notices(conn, status_mails)
        status_mails.clear()
        return count

    queued = 0
    # A list mail's report is looked at once per call, at its first order here: the
    # statuses are written before these steps, so its other orders here would find the
    # same (each look reads the mail's orders for an unfinished one: once per order was
    # quadratic in the list's size).
    looked: set[str] = set()
    for order_id in order_ids:
        row = rows[order_id]
        if metrics is not None:
            metrics.orders_final.labels(row.status).inc()
            if row.first_submitted_at is not None:
                metrics.final_seconds.observe(elapsed(row.first_submitted_at, row.final_at or now))
        if row.list_mail_id is not None:
            # one cumulative report, not one per order (counted once reported: a report
            # with notify = none queues nothing, and waking the mailer for it is harmless)
            if row.mail_id not in looked:
                looked.add(row.mail_id)
                queued += status_mails_now() + queue_list_report(conn, row.mail_id, now)
        elif (notice := status_notice_row(row, now)) is not None:
            status_mails.append(notice)
        if final_dsn_wanted(row):
            queued += status_mails_now() + (queue_final_dsn_for(conn, row, now) is not None)
        queue_status_push_for(conn, row, now)
        queue_receipt_for(conn, row, now)
    return queued + status_mails_now()


STEPS = Steps(final=(final_notices,), submitted=(record_order_assignments,))


def steps(metrics: Metrics) -> Steps:
    """STEPS, counting each final order on `metrics`."""

    def counted_final_notices(conn: Connection, order_ids: Sequence[str], now: datetime) -> int:
        return final_notices(conn, order_ids, now, metrics)

    return Steps(final=(counted_final_notices,), submitted=STEPS.submitted)
