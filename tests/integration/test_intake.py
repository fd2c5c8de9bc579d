"""Our SMTP listener against a real SMTP client (aiosmtplib): replies, and commit before 250."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import aiosmtplib
import pytest

from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge


def _orders(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(
            'SELECT id, recipient, text, status FROM "order" ORDER BY id'
        ).fetchall()


async def test_accepted_mail_is_committed_before_250(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        smtp = aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1])
        await smtp.connect()
        await smtp.mail("demo@example.com")
        await smtp.rcpt("+491701234567@eu.rsms.net")
        await smtp.rcpt("0170 765 4321@eu.rsms.net".replace(" ", "-"))
        code, message = await smtp.data(make_mail())
        # The reply names the mail id, and the rows exist the moment we hold the 250.
        match = re.fullmatch(r"2\.0\.0 Ok: queued as (\w+)", message)
        assert code == 250 and match
        rows = _orders(tmp_path)
        assert [r[0] for r in rows] == [f"{match[1]}.1", f"{match[1]}.2"]
        assert {r[1] for r in rows} == {"+491701234567", "+491707654321"}
        assert all(r[2] == "Hello from the bridge" for r in rows)
        await smtp.quit()


@pytest.mark.parametrize(
    ("sender", "rcpt", "stage", "code", "status"),
    [
        ("nobody@example.com", None, "mail", 550, "5.7.1"),
        ("demo@example.com", "hello@eu.rsms.net", "rcpt", 550, "5.1.3"),
        ("demo@example.com", "+4930123456@eu.rsms.net", "rcpt", 550, "5.1.3"),
        ("demo@example.com", "+491701234567@other.example", "rcpt", 550, "5.1.2"),
    ],
)
async def test_refusals_inside_the_dialogue(
    tmp_path: Path, sender: str, rcpt: str | None, stage: str, code: int, status: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.mail(sender)
                assert stage == "rcpt"
                await smtp.rcpt(rcpt or "")
            assert err.value.code == code
            assert err.value.message.startswith(status)
            assert len(err.value.message) > 30  # a sentence saying how to fix it
    assert _orders(tmp_path) == []


async def test_the_null_sender_is_refused_at_data(tmp_path: Path) -> None:
    """MAIL FROM:<> is taken as a recipient probe (an MTA's callout): its RCPT answered,
    its data refused with a sentence (tests/integration/test_smtp_callout_probe.py)."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.mail("")
            await smtp.rcpt("+491701234567@eu.rsms.net")
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.data(make_mail())
            assert err.value.code == 550
            assert err.value.message.startswith("5.7.1") and "null sender" in err.value.message
    assert _orders(tmp_path) == []


async def test_disabled_user_is_refused(tmp_path: Path) -> None:
    from bridge.db.store import run_sync
    from bridge.tenants.admin import set_user_enabled

    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, set_user_enabled, "demo@example.com", False)
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.mail("demo@example.com")
            assert (err.value.code, err.value.message[:5]) == (550, "5.7.1")
            assert "disabled" in err.value.message


async def test_too_many_recipients_get_452(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"smtp": settings.smtp.model_copy(update={"max_recipients": 2})}
    )
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.mail("demo@example.com")
            await smtp.rcpt("+491701234561@eu.rsms.net")
            await smtp.rcpt("+491701234562@eu.rsms.net")
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.rcpt("+491701234563@eu.rsms.net")
            assert (err.value.code, err.value.message[:5]) == (452, "4.5.3")
            code, _ = await smtp.data(make_mail())
            assert code == 250
    assert len(_orders(tmp_path)) == 2


async def test_mail_without_text_and_too_long_text_are_refused(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        for body, subject, code, status in [
            ("", "", 550, "5.6.0"),
            ("x" * 2000, "s", 552, "5.3.4"),  # 14 parts, at most 10 allowed by default
        ]:
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                await smtp.mail("demo@example.com")
                await smtp.rcpt("+491701234567@eu.rsms.net")
                with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                    await smtp.data(make_mail(body=body, subject=subject))
                assert (err.value.code, err.value.message[:5]) == (code, status)
    assert _orders(tmp_path) == []


async def test_storage_failure_answers_451_not_5xx(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the busy timeout: the client gets 4xx."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        blocker = sqlite3.connect(tmp_path / "bridge.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=30) as smtp:
                await smtp.mail("demo@example.com")  # sender lookup reads: WAL lets it through
                await smtp.rcpt("+491701234567@eu.rsms.net")
                with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                    await smtp.data(make_mail())
                assert (err.value.code, err.value.message[:5]) == (451, "4.3.0")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # The same mail goes through once the database is writable again.
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
    assert len(_orders(tmp_path)) == 1
