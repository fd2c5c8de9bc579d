"""Migrations: they build exactly the schema the models describe, run twice harmlessly, and
several instances starting together on PostgreSQL migrate one after the other."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import CursorResult, Engine, create_engine, text

from bridge.db.core import table
from bridge.db.engine import alembic_config, current_revision, head_revision, open_engine, upgrade


def test_migrations_match_the_models(engine: Engine) -> None:
    upgrade(engine)  # a second upgrade of a migrated database is a no-op
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.check(cfg)  # raises when the models and the migrated schema differ


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == "0023"


def _pk(result: CursorResult[Any]) -> Any:
    """The primary key of the one row an INSERT added."""
    key = result.inserted_primary_key
    assert key is not None
    return key[0]


def test_numbers_stored_before_e164_reading_are_rewritten(engine: Engine) -> None:
    """0008: stop list, assignments, list members, inbound rows and numbers in one spelling."""
    from sqlalchemy import insert, select

    from bridge.inbound.mo_tables import MoPartRow
    from bridge.inbound.tables import (
        AutoReplyLog,
        Inbound,
        InboundNumber,
        ReplyAssignment,
        StopEntry,
    )
    from bridge.keyword_lists.tables import InboundList, ListMember
    from bridge.tenants.tables import Customer, User

    def t(model: type) -> Any:
        return table(model)

    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        acme = _pk(
            conn.execute(
                insert(t(Customer)).values(name="acme", enabled=True, settings={}, created_at=now)
            )
        )
        vienna = _pk(
            conn.execute(
                insert(t(Customer)).values(
                    name="vienna", enabled=True, settings={"default_country": "AT"}, created_at=now
                )
            )
        )
        user = _pk(
            conn.execute(
                insert(t(User)).values(
                    customer_id=acme,
                    address="a@acme.example",
                    display_name="A",
                    enabled=True,
                    origin="cli",
                    settings={},
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        stop = {"origin": "sms", "created_at": now}
        conn.execute(
            insert(t(StopEntry)),
            [
                {"customer_id": acme, "msisdn": "491701234567", "service": "", **stop},
                {"customer_id": acme, "msisdn": "+491701234567", "service": "", **stop},
                {"customer_id": vienna, "msisdn": "06641234567", "service": "", **stop},
                {"customer_id": 0, "msisdn": "00447700900123", "service": "4915550000001", **stop},
                {"customer_id": acme, "msisdn": "80888", "service": "", **stop},
            ],
        )
        conn.execute(
            insert(t(ReplyAssignment)).values(
                msisdn="491701234567",
                sender_id="4915550000001",
                customer_id=acme,
                user_id=user,
                address="a@acme.example",
                origin="sms2mail",
                created_at=now,
                expires_at=now,
            )
        )
        list_id = _pk(
            conn.execute(
                insert(t(InboundList)).values(
                    customer_id=acme, name="news", export_to=[], export_at="06:00"
                )
            )
        )
        conn.execute(
            insert(t(ListMember)),
            [
                {"list_id": list_id, "msisdn": "+491701234567", "status": "member",
                 "joined_at": now, "changed_at": now},
                {"list_id": list_id, "msisdn": "491701234567", "status": "left",
                 "joined_at": now, "changed_at": now + timedelta(days=1)},
            ],
        )  # fmt: skip
        conn.execute(
            insert(t(Inbound)),
            [
                {"transport": "s", "source": s, "destination": "4915550000001", "text": "x",
                 "encoding": "gsm7", "received_at": now, "status": "notified",
                 "next_attempt_at": now, "error": ""}
                for s in ("491701234567", "ACME")
            ],
        )  # fmt: skip
        conn.execute(
            insert(t(InboundNumber)).values(
                number="015550000009", customer_id=acme, fallback=[], config={}, updated_at=now
            )
        )
        conn.execute(
            insert(t(AutoReplyLog)).values(
                number="4915550000001", msisdn="491701234567", last_at=now
            )
        )
        conn.execute(
            insert(t(MoPartRow)).values(
                transport="s", source="491701234567", destination="12345", ref=1, total=2, seq=1,
                data_coding=0, udh=b"", payload=b"x", received_at=now,
            )
        )  # fmt: skip

    upgrade(engine, default_country="DE")

    def rows(model: type, *cols: str) -> list[tuple[Any, ...]]:
        table = t(model)
        with engine.connect() as conn:
            query = select(*(table.c[c] for c in cols)).order_by(*(table.c[c] for c in cols))
            return [tuple(r) for r in conn.execute(query)]

    assert rows(StopEntry, "customer_id", "msisdn", "service") == sorted(
        [
            (0, "+447700900123", "+4915550000001"),
            (acme, "+491701234567", ""),
            (acme, "80888", ""),  # a short code stays
            (vienna, "+436641234567", ""),  # national, read with the customer's country
        ]
    )
    assert rows(ReplyAssignment, "msisdn", "sender_id") == [("+491701234567", "+4915550000001")]
    assert rows(ListMember, "msisdn", "status") == [("+491701234567", "left")]  # the newer
    assert rows(Inbound, "source", "destination") == [
        ("+491701234567", "+4915550000001"),
        ("ACME", "+4915550000001"),
    ]
    assert rows(InboundNumber, "number") == [("+4915550000009",)]
    assert rows(AutoReplyLog, "number", "msisdn") == [("+4915550000001", "+491701234567")]
    assert rows(MoPartRow, "source", "destination") == [("+491701234567", "12345")]


def test_0007_keeps_parts_and_gives_waiting_orders_a_receipt_deadline(engine: Engine) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    t = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customer (name, enabled, settings, created_at) "
                "VALUES ('c', :y, '{}', :t)"
            ),
            {"y": True, "t": t},
        )
        conn.execute(
            text(
                'INSERT INTO "user" (customer_id, address, display_name, enabled, origin, '
                "settings, created_at, updated_at) VALUES (1, 'a@b.example', '', :y, 'manual', "
                "'{}', :t, :t)"
            ),
            {"y": True, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO mail (id, received_at, envelope_from, user_id, client_addr, helo, "
                "message_id, subject, size, raw) VALUES ('M', :t, 'a@b.example', 1, '', '', '', "
                "'', 0, :raw)"
            ),
            {"t": t, "raw": b""},
        )
        for n, status, expires in (
            ("1", "submitted", t + timedelta(days=2)),
            ("2", "queued", None),
        ):
            conn.execute(
                text(
                    'INSERT INTO "order" (id, mail_id, user_id, recipient, rcpt_address, '
                    "sender_id, text, encoding, parts, status, priority, attempts, "
                    "next_attempt_at, created_at, updated_at, expires_at, error, policy, "
                    "delay_notified) VALUES (:id, 'M', 1, '+491701234567', 'x', 'ACME', 'hi', "
                    "'gsm7', 1, :status, 0, 1, :t, :t, :t, :exp, '', '{}', :no)"
                ),
                {"id": f"M.{n}", "status": status, "t": t, "exp": expires, "no": False},
            )
        conn.execute(
            text(
                "INSERT INTO part (order_id, seq, transport, smsc_id, state, error_code, "
                "updated_at) VALUES ('M.1', 1, 'smsc', '5001', 'submitted', '', :t)"
            ),
            {"t": t},
        )
    upgrade(engine)
    with engine.begin() as conn:
        part = conn.execute(text("SELECT smsc_id, matchable, submitted_at FROM part")).one()
        assert part.smsc_id == "5001" and part.matchable
        assert _aware(part.submitted_at) == t
        due: dict[str, datetime] = dict(
            conn.execute(text('SELECT id, next_attempt_at FROM "order"')).all()
        )
        assert _aware(due["M.1"]) == t + timedelta(days=2, hours=1)  # validity + grace
        assert _aware(due["M.2"]) == t  # a queued order keeps its place
        # The same id may now be stored twice (an SMSC restarted its counter).
        conn.execute(
            text(
                "INSERT INTO part (order_id, seq, transport, smsc_id, state, error_code, "
                "updated_at, submitted_at, matchable) VALUES ('M.1', 1, 'smsc', '5001', "
                "'submitted', '', :t, :t, :y)"
            ),
            {"t": t, "y": True},
        )


def _aware(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.postgres
def test_instances_starting_together_migrate_one_after_the_other(postgres_server: str) -> None:
    """Four bridges start at once on a new PostgreSQL database: the advisory lock lets one
    migrate while the others wait, then they find the schema at head and change nothing."""
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE together"))
    admin.dispose()
    url = postgres_server.rsplit("/", 1)[0] + "/together"
    engines = [open_engine(url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def migrate(engine: Engine) -> None:
        start.wait()
        try:
            upgrade(engine)
        except Exception as exc:  # collected: each instance must succeed
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    with engines[0].connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [head_revision()]
    for engine in engines:
        engine.dispose()
