"""Each order stores its mail's policy: a sender's values are shared by its mails, never changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiosmtplib
import pytest

from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge

RCPT = "+491701234567@eu.rsms.net"


def _policies(tmp_path: Path) -> list[dict[str, object]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        rows = conn.execute('SELECT policy FROM "order" ORDER BY id').fetchall()
    return [json.loads(policy) for (policy,) in rows]


async def test_mails_of_one_sender_store_the_same_policy_and_overrides_stay_their_own(
    tmp_path: Path,
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            subjects = ("Tor 4 zu", "[express] Tor 5 zu", "Tor 6 zu", "[cc:4711] Tor 7")
            for n, subject in enumerate(subjects):
                mail = make_mail(subject=subject, body=subject, message_id=f"<{n}@client.example>")
                code, _ = await smtp.sendmail("demo@example.com", [RCPT], mail)
                assert code == {}
    first, express, third, costed = _policies(tmp_path)
    assert first == third
    assert (first["priority"], express["priority"]) == ("normal", "express")
    assert {k: v for k, v in express.items() if k != "priority"} == {
        k: v for k, v in first.items() if k != "priority"
    }
    assert (costed["cost_centre"], first["cost_centre"]) == ("4711", "")
    assert {k: v for k, v in costed.items() if k != "cost_centre"} == {
        k: v for k, v in first.items() if k != "cost_centre"
    }


def _texts(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        rows = conn.execute('SELECT text, parts FROM "order" ORDER BY id').fetchall()
    return [(text, parts) for text, parts in rows]


async def test_a_mail_that_overrides_the_parts_is_planned_with_its_own_text_rules(
    tmp_path: Path,
) -> None:
    """The sender's text rules are made once; a mail with an override gets its own."""
    body = "Tor 4 ist offen, bitte schliessen. " * 9  # 315 characters: 3 parts
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            for n, subject in enumerate(("Tor", "[parts:2] Tor", "[parts:3] Tor", "Tor")):
                await smtp.mail("demo@example.com")
                await smtp.rcpt(RCPT)
                mail = make_mail(subject=subject, body=body, message_id=f"<{n}@client.example>")
                if n == 1:  # 3 parts, at most 2 asked for
                    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                        await smtp.data(mail)
                    assert (refused.value.code, refused.value.message[:5]) == (552, "5.3.4")
                else:
                    code, message = await smtp.data(mail)
                    assert (code, message[:5]) == (250, "2.0.0")
    assert _texts(tmp_path) == [(body.strip(), 3)] * 3
