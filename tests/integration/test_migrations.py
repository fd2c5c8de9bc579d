"""Migrations: they build exactly the schema the models describe, and run twice harmlessly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, text

from bridge.store.db import alembic_config, current_revision, upgrade


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
    assert current_revision(engine) == "0007"


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
        due = dict(conn.execute(text('SELECT id, next_attempt_at FROM "order"')).all())
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
