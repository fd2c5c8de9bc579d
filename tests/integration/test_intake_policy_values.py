"""Each order stores its mail's policy: a sender's values are shared by its mails, never changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiosmtplib

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
