"""A seeded database for the report tests: two services, three users, orders in every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from bridge.db.store import run_sync
from bridge.mt.mails import NewMail, NewOrder, insert_mails
from bridge.provision.apply import apply_file
from bridge.provision.file import load_tenants

TENANTS = """
[[customers]]
name = "acme"
settings = { sender_id = "ACME", report_recipients = ["acme-boss@acme.example"] }
[[customers.profiles]]
name = "sales"
settings = { cost_centre = "4711" }
[[customers.profiles]]
name = "sap"
settings = { priority = "express" }
[[customers.users]]
address = "anna@acme.example"
profile = "sales"
[[customers.users]]
address = "bob@acme.example"
profile = "sap"
settings = { cost_centre = "9000" }
[[customers.users]]
address = "carl@acme.example"
"""

# (user, status, parts, cost centre, created)
OCT = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
ORDERS = [
    ("anna@acme.example", "delivered", 1, "4711", OCT),
    ("anna@acme.example", "failed", 1, "4711", OCT + timedelta(days=1)),
    ("anna@acme.example", "delivered", 3, "4711", OCT + timedelta(days=2)),
    ("bob@acme.example", "undeliverable", 2, "9000", OCT),
    ("bob@acme.example", "failed", 1, "9000", OCT + timedelta(days=3)),
    ("carl@acme.example", "expired", 1, "", OCT),
    ("carl@acme.example", "failed", 1, "", datetime(2026, 11, 2, tzinfo=UTC)),  # next month
    ("carl@acme.example", "queued", 1, "", OCT),
]


def seed(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS, encoding="utf-8")
    spec, members = load_tenants(path, default_country="DE")
    apply_file(engine, spec, members, dry_run=False)
    with engine.connect() as conn:
        users: dict[str, int] = dict(conn.execute(text('SELECT address, id FROM "user"')).all())
    mails = []
    for n, (user, _status, parts, cc, created) in enumerate(ORDERS, start=1):
        order = NewOrder(
            id=f"M{n}.1",
            recipient=f"+4917011111{n:02d}",
            rcpt_address=f"+4917011111{n:02d}@eu.rsms.net",
            sender_id="ACME",
            text=f"text {n}",
            encoding="gsm7",
            parts=parts,
            priority=0,
            expires_at=created + timedelta(days=2),
            policy={"cost_centre": cc, "notify": "none"},
        )
        mails.append(
            NewMail(
                id=f"M{n}",
                received_at=created,
                envelope_from=user,
                user_id=users[user],
                client_addr="127.0.0.1",
                helo="test",
                message_id=f"<m{n}@test>",
                subject="s",
                raw=b"raw",
                orders=(order,),
            )
        )
    run_sync(engine, insert_mails, mails)
    with engine.begin() as conn:
        for n, (_, status, *_rest) in enumerate(ORDERS, start=1):
            conn.execute(
                text('UPDATE "order" SET status = :s WHERE id = :i'), {"s": status, "i": f"M{n}.1"}
            )
        conn.execute(
            text(
                "INSERT INTO inbound (transport, source, destination, text, encoding, parts,"
                " received_at, status, next_attempt_at, order_id, error) VALUES"
                " ('sandbox', '+491701111101', 'ACME', 'ok', 'gsm7', 1, :at, 'notified', :at,"
                " 'M1.1', '')"
            ),
            {"at": OCT + timedelta(hours=1)},
        )
