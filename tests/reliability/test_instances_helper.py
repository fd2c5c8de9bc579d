"""Two `mailsms serve` processes on one throwaway PostgreSQL, as `running_instances` starts them.

Each takes a mail over SMTP on its own port; both are bound to the same SMSC process,
which receives each SMS once; the shared database holds both mails and one order each.
This proves the helper (and today's settings it writes) for the tests of several
instances on one database.
"""

from __future__ import annotations

import email.policy
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.peers.postgres import DURABLE, throwaway_postgres
from tests.reliability.processes import DOMAIN, HOST, running_instances, start_smsc, until

pytestmark = pytest.mark.postgres


def _send(port: int, number: str, body: str) -> str:
    """One mail through a real SMTP client; the bridge's queued id from its 250 reply."""
    msg = EmailMessage()
    msg["From"] = "demo@example.com"
    msg["To"] = f"{number}@{DOMAIN}"
    msg["Subject"] = "two instances"
    msg.set_content(body)
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.ehlo("client.example")
        smtp.mail("demo@example.com")
        smtp.rcpt(f"{number}@{DOMAIN}")
        code, reply = smtp.data(msg.as_bytes(policy=email.policy.SMTP))
    assert code == 250, reply
    return reply.decode().split()[-1]


def _phones(inbox: Path) -> list[dict[str, object]]:
    if not inbox.exists():
        return []
    return [json.loads(line) for line in inbox.read_text(encoding="utf-8").splitlines()]


def test_two_instances_on_one_postgresql_take_mail_and_submit_once(tmp_path: Path) -> None:
    inbox = tmp_path / "phones.jsonl"
    smsc, smsc_port = start_smsc(inbox, tmp_path / "smsc.log")
    try:
        with (
            throwaway_postgres(DURABLE) as url,
            running_instances(tmp_path, url, f"external:{smsc_port}") as bridges,
        ):
            assert len({b.smtp_port for b in bridges}) == 2
            numbers = {"+491701000001": bridges[0], "+491701000002": bridges[1]}
            queued = {n: _send(b.smtp_port, n, f"via {b.name}") for n, b in numbers.items()}
            procs = [smsc, *(b.proc for b in bridges)]
            until(
                lambda: {p["destination"] for p in _phones(inbox)} == set(numbers),
                60,
                "both SMS at the SMSC",
                *procs,
            )
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    mails = {str(r[0]) for r in conn.execute(text("SELECT id FROM mail"))}
                    orders = list(conn.execute(text('SELECT mail_id, recipient FROM "order"')))
            finally:
                engine.dispose()
            assert all(p.alive() for p in procs)
        assert set(queued.values()) <= mails
        assert sorted((str(o[0]), str(o[1])) for o in orders) == sorted(
            (queued[n], n) for n in numbers
        )
        sent = [(p["destination"], p["text"]) for p in _phones(inbox)]
        assert sorted(sent) == [
            ("+491701000001", "via bridge-1"),
            ("+491701000002", "via bridge-2"),
        ]
        for bridge in bridges:
            assert bridge.proc.popen.returncode == 0, bridge.proc.log_text()[-3000:]
    finally:
        smsc.stop(5)
