"""Our listener with a real client: list recipients, overrides and limits in the SMTP dialogue."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest

from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.lists.store import Member, create_list, put_members
from bridge.provision.apply import change_setting
from bridge.settings import Settings
from bridge.tenants.admin import DEMO_CUSTOMER, DEMO_USER
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge


def _db(settings: Settings, fn: object, *args: object) -> object:
    engine = open_engine(settings.database_url)
    try:
        return run_sync(engine, fn, *args)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def _rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(sql).fetchall()


async def _send(ep: object, rcpt: str, mail: bytes) -> tuple[int, str]:
    host, port = ep.smtp  # type: ignore[attr-defined]
    async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
        await smtp.mail(DEMO_USER)
        code, message = await smtp.rcpt(rcpt)
        if code != 250:
            return code, message
        code, message = await smtp.data(mail)
        return code, message


async def _expect(ep: object, rcpt: str, mail: bytes, code: int, status: str) -> str:
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await _send(ep, rcpt, mail)
    assert (err.value.code, err.value.message[:5]) == (code, status), err.value.message
    return err.value.message


async def test_unknown_placeholder_and_empty_list_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        list_id = _db(settings, create_list, DEMO_CUSTOMER, "crew", ["shift"])
        _db(settings, create_list, DEMO_CUSTOMER, "nobody")
        _db(settings, put_members, list_id, [Member("+491701111111", "Anna")])
        text = await _expect(ep, "crew@eu.rsms.net", make_mail(body="Hi {nick}"), 550, "5.6.0")
        assert "{nick}" in text and "shift" in text
        await _expect(ep, "nobody@eu.rsms.net", make_mail(), 550, "5.1.1")
        code, _ = await _send(ep, "crew@eu.rsms.net", make_mail(body="Hi {first_name}, {shift}"))
        assert code == 250
        assert _rows(tmp_path, 'SELECT recipient, text FROM "order"') == [
            ("+491701111111", "Hi Anna, ")
        ]


async def test_overrides_allowed_and_refused_in_the_dialogue(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        rcpt = "+491701234567@eu.rsms.net"
        spoof = b"X-SMS-Sender: Spoofed\r\n" + make_mail()
        text = await _expect(ep, rcpt, spoof, 550, "5.7.1")
        assert "X-SMS-Sender" in text and "sender_id" in text
        bad = b"X-SMS-Priority: urgent\r\n" + make_mail()
        await _expect(ep, rcpt, bad, 550, "5.6.0")
        good = b"X-SMS-Cost-Centre: 4711\r\n" + make_mail(subject="[express] hi")
        code, _ = await _send(ep, rcpt, good)
        assert code == 250
        [(priority, policy)] = _rows(tmp_path, 'SELECT priority, policy FROM "order"')
        assert priority == 1 and '"cost_centre": "4711"' in str(policy)


async def test_rate_limit_answers_452_at_rcpt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        _db(settings, change_setting, "user", DEMO_USER, "rate_per_minute", 2)
        host, port = ep.smtp
        async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
            await smtp.mail(DEMO_USER)
            await smtp.rcpt("+491701111111@eu.rsms.net")
            await smtp.rcpt("+491702222222@eu.rsms.net")
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.rcpt("+491703333333@eu.rsms.net")
            assert (err.value.code, err.value.message[:5]) == (452, "4.7.1")
            code, _ = await smtp.data(make_mail())
            assert code == 250
        await _expect(ep, "+491704444444@eu.rsms.net", make_mail(), 452, "4.7.1")


async def test_allowed_countries_and_quiet_hours(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        # (both set before the first MAIL: the intake may cache a sender's settings briefly)
        _db(settings, change_setting, "customer", DEMO_CUSTOMER, "allowed_countries", ["DE"])
        # a quiet window around "now" in Berlin: the order waits for its end
        berlin = datetime.now(ZoneInfo("Europe/Berlin"))
        window = f"{berlin - timedelta(hours=1):%H:%M}-{berlin + timedelta(hours=2):%H:%M}"
        _db(settings, change_setting, "user", DEMO_USER, "quiet_hours", window)
        text = await _expect(ep, "+436641234567@eu.rsms.net", make_mail(), 550, "5.7.1")
        assert "AT" in text
        code, _ = await _send(ep, "+491701234567@eu.rsms.net", make_mail())
        assert code == 250
        [(created, due)] = _rows(tmp_path, 'SELECT created_at, next_attempt_at FROM "order"')
        delay = datetime.fromisoformat(str(due)) - datetime.fromisoformat(str(created))
        assert timedelta(hours=1, minutes=58) < delay <= timedelta(hours=2)
