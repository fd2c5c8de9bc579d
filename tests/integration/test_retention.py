"""The retention rules (`bridge.jobs.purge_all`), on SQLite and PostgreSQL.

Every table is either traffic (it grows with each mail, SMS or request: it has a rule
here) or configuration (customers, numbers, accounts ...: kept until someone removes
it). A table added later fails `test_every_table_is_traffic_with_a_rule_or_configuration`
until it is put in one of the two lists. Before, inbound SMS with their texts, receipts,
notices, pushes, SMPP deliver_sm, reply assignments (with the text) and the auto-reply
log were kept for ever, whatever `retention_days` and `text_retention_days` said.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

import bridge.schema  # noqa: F401  (every table in SQLModel.metadata)
from bridge.db.store import run_sync
from bridge.inbound.tables import AutoReplyLog, ConfirmationLog, Inbound, ReplyAssignment
from bridge.jobs import describe, purge_all
from bridge.mt.tables import Receipt
from bridge.notices.tables import Notice
from bridge.push.tables import PushDelivery
from bridge.smpp_outbox.tables import SmppOutbox

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=100)  # past retention_days = 92
MIDDLE = NOW - timedelta(days=40)  # past text_retention_days = 30, within 92
NEW = NOW - timedelta(days=1)

# Tables that grow with traffic, and the rule that bounds each (see bridge/jobs.py).
TRAFFIC = {
    "mail": "deleted with its orders",
    "order": "final orders past retention_days",
    "order_event": "with its order",
    "part": "with its order",
    "receipt": "applied/orphan/unmatched past retention_days",
    "list_mail": "with its mail",
    "inbound": "routed past retention_days; text blanked past text_retention_days",
    "reply_assignment": "run out past text_retention_days",
    "autoreply_log": "past retention_days",
    "confirmation_log": "past retention_days",
    "notice": "sent or failed past text_retention_days",
    "push_delivery": "sent or failed past text_retention_days",
    "smpp_outbox": "sent or refused past text_retention_days",
    "velocity_number": "after a day",
    "velocity_alert": "after a day",
    "api_idempotency": "after a day",
    "monthly_report": "monthly_archive_months",
    "portal_session": "when idle",
    "mo_part": "delivered with a gap marker after mo_reassembly_timeout",
    "smpp_part": "a failed order after part_wait",
    "sync_run": "one row per dirsync run (a few a day): kept as the audit trail",
    "bind_stat": "one row per bind, updated in place",
    "dirsync_lock": "one row per customer",
}
CONFIGURATION = {
    "customer",
    "profile",
    "user",
    "alias",
    "api_key",
    "smpp_account",
    "inbound_customer",
    "inbound_number",
    "inbound_list",
    "list_member",
    "stop_entry",  # an opt-out is kept until the texter opts in again
    "distribution_list",
    "distribution_member",
    "push_template",
    "portal_account",
    "credential",
    "alembic_version",
}


def test_every_table_is_traffic_with_a_rule_or_configuration() -> None:
    tables = set(SQLModel.metadata.tables) | {"alembic_version"}
    unknown = tables - set(TRAFFIC) - CONFIGURATION
    assert not unknown, f"new tables: give each a retention rule (bridge/jobs.py) or {unknown}"
    assert not (set(TRAFFIC) | CONFIGURATION) - tables, "a listed table no longer exists"


def _rows(engine: Engine) -> None:
    """For each purged table: an old final row, a middle-aged one, a new one, and an old
    one that is still open (never purged)."""
    rows: list[SQLModel] = []
    for i, at in enumerate((OLD, MIDDLE, NEW)):
        rows += [
            Inbound(transport="t", source=f"+4917012345{i}", destination="+4915550000001",
                    text=f"hello {i}", encoding="gsm7", received_at=at, status="notified"),
            Receipt(transport="t", smsc_id=str(i), state="DELIVRD", received_at=at,
                    status="applied"),
            ReplyAssignment(msisdn=f"+4917012345{i}", sender_id="x", customer_id=1, user_id=1,
                            address="a@example.com", text="secret", created_at=at,
                            expires_at=at + timedelta(days=7)),
            AutoReplyLog(number="+4915550000001", msisdn=f"+4917012345{i}", last_at=at),
            ConfirmationLog(number="+4915550000001", msisdn=f"+4917012345{i}", last_at=at),
            Notice(kind="status", recipient="a@example.com", context={"text": "secret"},
                   status="sent", created_at=at),
            PushDelivery(customer_id=1, body="secret", status="failed", created_at=at),
            SmppOutbox(system_id="s", kind="mo", message_key=f"mo:{i}", pdu={}, status="sent",
                       created_at=at),
        ]  # fmt: skip
    rows += [  # old, but still work to do
        Inbound(transport="t", source="+491709", destination="+4915550000001", text="open",
                encoding="gsm7", received_at=OLD, status="received"),
        Receipt(transport="t", smsc_id="9", state="DELIVRD", received_at=OLD, status="new"),
        Notice(kind="status", recipient="a@example.com", status="held", created_at=OLD),
        PushDelivery(customer_id=1, status="deferred", created_at=OLD),
        SmppOutbox(system_id="s", kind="mo", message_key="mo:9", pdu={}, status="queued",
                   created_at=OLD),
    ]  # fmt: skip
    with Session(engine) as s, s.begin():
        s.add_all(rows)


def _count(engine: Engine, table: str, where: str = "1 = 1") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE {where}')).scalar_one())


def test_purge_all_bounds_every_traffic_table(engine: Engine) -> None:
    _rows(engine)
    dry = run_sync(engine, purge_all, NOW, 92, 30, True)
    assert _count(engine, "inbound") == 4 and _count(engine, "notice") == 4  # nothing changed
    done = run_sync(engine, purge_all, NOW, 92, 30)
    assert {k: done[k] for k in dry} == dry  # the dry run counted what the run did
    expected = {
        "inbound": 1,  # routed, past 92 days (the open one stays)
        "inbound_texts": 1,  # the 40-day-old one's text
        "receipts": 1,
        "assignments": 2,  # ran out past 30 days
        "autoreply_log": 1,
        "confirmation_log": 1,
        "notices": 2,  # sent, past 30 days (the held one stays)
        "pushes": 2,
        "smpp_deliver_sm": 2,
    }
    assert {k: done[k] for k in expected} == expected, done
    assert _count(engine, "inbound") == 3 and _count(engine, "inbound", "text = ''") == 1
    assert _count(engine, "inbound", "status = 'received'") == 1
    assert _count(engine, "receipt", "status = 'new'") == 1
    assert _count(engine, "notice", "status = 'held'") == 1
    assert _count(engine, "push_delivery", "status = 'deferred'") == 1
    assert _count(engine, "smpp_outbox", "status = 'queued'") == 1
    assert _count(engine, "reply_assignment") == 1
    assert describe(done) == (
        "1 receipts, 1 inbound SMS, 2 reply assignments, 1 inbound SMS texts blanked, "
        "1 auto-reply log entries, 1 STOP/START confirmation log entries, 2 notices, "
        "2 pushes, 2 SMPP deliver_sm"
    )  # what `mailsms report purge` and the daily log line say
    again: dict[str, Any] = run_sync(engine, purge_all, NOW, 92, 30)
    assert not any(again.values()), again  # a second run finds nothing


def test_without_text_retention_everything_waits_for_retention_days(engine: Engine) -> None:
    _rows(engine)
    done = run_sync(engine, purge_all, NOW, 92)
    assert (done["inbound_texts"], done["notices"], done["assignments"]) == (0, 1, 1)
    assert _count(engine, "inbound", "text = ''") == 0
