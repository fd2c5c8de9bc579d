"""The rest of the ingress checklist: S2 dependency floors, S10 no backscatter, S14 no segment
amplification. (S13: tests/integration/test_intake.py; S15: tests/e2e/test_heavy_mail.py;
S17: tests/integration/test_intake.py, storage failure → 451.)"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from bridge.db.store import run_sync
from bridge.inbound.actions_store import add_stop
from bridge.tenants.admin import add_customer, add_user
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.security.common import greeted


@pytest.mark.parametrize(
    ("package", "floor"),
    [("aiosmtpd", "1.4.6"), ("aiosmtplib", "5.1.2"), ("jinja2", "3.1.6")],
)
def test_s2_dependencies_are_at_least_the_fixed_versions(package: str, floor: str) -> None:
    assert Version(version(package)) >= Version(floor)


async def test_s10_refusals_happen_at_rcpt_and_queue_no_bounce(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        engine = bridge.store.engine
        access = {"networks": ["127.0.0.0/8"]}
        settings = {"allowed_countries": ["DE"], "access": access}
        customer_id = run_sync(engine, add_customer, "dach", settings)
        run_sync(engine, add_user, "ops@dach.example", "dach")
        run_sync(engine, add_stop, customer_id, "+491701234999", "", datetime.now(UTC), "test")
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<ops@dach.example>")
        answers = [
            await c.command(f"RCPT TO:<{rcpt}@eu.rsms.net>")
            for rcpt in ("+4930", "+447400123456", "+491701234999")
        ]
        assert (await c.command("DATA")).startswith("503")  # no recipient was accepted
        await c.close()
    assert [a[:1] for a in answers] == ["5", "5", "5"], answers
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        assert conn.execute("SELECT count(*) FROM notice").fetchone() == (0,)
        assert conn.execute('SELECT count(*) FROM "order"').fetchone() == (0,)


@pytest.mark.parametrize(
    "body", ["x" * 1_000_000, "\U0001f600" * 2000], ids=["1 MB of text", "2000 emoji"]
)
async def test_s14_one_mail_cannot_become_thousands_of_segments(tmp_path: Path, body: str) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        mail = make_mail(body=body)
        await c.send(mail + b".\r\n")
        answer = await c.read_reply(timeout=30)
        await c.close()
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        parts = [p for (p,) in conn.execute('SELECT parts FROM "order"')]
    assert answer.startswith("552"), answer
    assert parts == []
