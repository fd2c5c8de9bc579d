"""A mail to a distribution list: personalised SMS to each member, STOP honoured, one report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosmtplib

from bridge.db.clock import utcnow
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.inbound.actions_store import add_stop
from bridge.lists.store import Member, create_list, put_members
from bridge.reports.store import customer_id
from bridge.sandbox.smsc import read_inbox
from bridge.tenants.admin import DEMO_CUSTOMER
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

MEMBERS = [
    Member("+491701111111", "Anna", "Berg", {"city": "Berlin"}),
    Member("+491702222222", "Ben", "Stopp", {"city": "Bonn"}),
    Member("+491703333333", "Cem", "Acar", {"city": "Köln"}),
]


def _seed_list(url: str) -> None:
    engine = open_engine(url)
    try:
        list_id = run_sync(engine, create_list, DEMO_CUSTOMER, "team", ["city"])
        run_sync(engine, put_members, list_id, MEMBERS)
        cid = run_sync(engine, customer_id, DEMO_CUSTOMER)
        assert cid is not None
        run_sync(engine, add_stop, cid, "+491702222222", "", utcnow(), "cli")
    finally:
        engine.dispose()


async def test_list_mail_fans_out_personalised_and_reports_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        _seed_list(settings.database_url)
        body = "Hallo {first_name}, wir sehen uns morgen in {city}."
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            errors, _ = await smtp.sendmail(
                "demo@example.com",
                ["team@eu.rsms.net"],
                make_mail(to="team@eu.rsms.net", body=body),
            )
            assert errors == {}
        inbox = await wait_for(
            lambda: (
                len(read_inbox(settings.sandbox.inbox)) == 2 and read_inbox(settings.sandbox.inbox)
            )
        )
        assert sorted((m.destination, m.text) for m in inbox) == [
            ("+491701111111", "Hallo Anna, wir sehen uns morgen in Berlin."),
            ("+491703333333", "Hallo Cem, wir sehen uns morgen in Köln."),
        ]
        maildir = settings.mailer.maildir
        [report] = await wait_for(lambda: maildir_messages(maildir))
        text = report.get_body(("plain",)).get_content()
        html = report.get_body(("html",)).get_content()
        assert "team" in report["Subject"] and "2 delivered" in report["Subject"]
        assert report["In-Reply-To"] == "<original-1@client.example>"
        for number in ("+491701111111", "+491702222222", "+491703333333"):
            assert number in text and number in html
        assert "opted out (STOP)" in text and "skipped" in html
        with sqlite3.connect(tmp_path / "bridge.db") as conn:
            statuses = [r[0] for r in conn.execute('SELECT status FROM "order"')]
            kinds = [r[0] for r in conn.execute("SELECT kind FROM notice")]
        assert statuses == ["delivered", "delivered"]
        assert kinds == ["list_report"]  # no per-order status mails for a list mail
