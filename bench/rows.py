"""Rows the benchmarks write straight into a database: a mail with one SMS order.

Imported by the benchmarks that fill a queue without SMTP (`db_life.py`, `dispatch_bench.py`,
`sql_micro.py`); it builds the domain's own `NewMail`, from whichever `bridge` is on the
path (a baseline checkout's too).
"""

from __future__ import annotations

from datetime import timedelta

from bridge.db.clock import utcnow
from bridge.mt.mails import NewMail, NewOrder


def one_sms_mail(
    user_id: int,
    mail_id: str,
    recipient: str,
    *,
    notify: str = "failures",
    envelope_from: str = "alice@example.com",
    sender_id: str = "ACME",
    text: str = "Hello",
) -> NewMail:
    """A mail received now with one one-part order to `recipient` (E.164)."""
    now = utcnow()
    return NewMail(
        id=mail_id,
        received_at=now,
        envelope_from=envelope_from,
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id=f"<{mail_id}@client>",
        subject="Hi",
        raw=f"Subject: Hi\r\n\r\n{text}\r\n".encode(),
        orders=(
            NewOrder(
                id=f"{mail_id}.1",
                recipient=recipient,
                rcpt_address=f"{recipient}@eu.rsms.net",
                sender_id=sender_id,
                text=text,
                encoding="gsm7",
                parts=1,
                priority=0,
                expires_at=now + timedelta(days=2),
                policy={"notify": notify},
            ),
        ),
    )
