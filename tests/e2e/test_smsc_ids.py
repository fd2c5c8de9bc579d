"""The whole bridge against SMSCs whose message ids are not unique: each SMS is sent once.

The fault peer restarts its id counter, answers "", or gives every part of a long SMS
the same id. Whatever id it gives, an SMS it accepted is submitted exactly once (counted
at the peer), every order reaches a final state, and no receipt is applied to another
order: each receipt's `text:` (the first 20 characters of its message) must be the
beginning of the text of the order it was applied to.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import cast

import aiosmtplib
import pytest

from tests.e2e.test_smpp_faults import rows, settings_for, statuses
from tests.helpers import make_mail, running_bridge, wait_for
from tests.peers.smpp_fault import Faults, running_fault_smsc

FIRST = ["+491701234561", "+491701234562", "+491701234563"]
SECOND = ["+491701234571", "+491701234572", "+491701234573"]
_mail_ids = itertools.count(1)


async def send_each(smtp_at: tuple[str, int], phones: list[str], body: str) -> None:
    """One mail per phone, each text different ("<body> <n>")."""
    async with aiosmtplib.SMTP(hostname=smtp_at[0], port=smtp_at[1]) as smtp:
        for n, phone in enumerate(phones):
            mail = make_mail(phone, f"{body} {n}", message_id=f"<ids-{next(_mail_ids)}@client>")
            await smtp.sendmail("demo@example.com", [f"{phone}@eu.rsms.net"], mail)


def no_receipt_on_another_order(tmp_path: Path) -> None:
    applied = rows(
        tmp_path,
        "SELECT r.raw, o.text FROM receipt r JOIN part p ON p.id = r.part_id "
        "JOIN \"order\" o ON o.id = p.order_id WHERE r.status = 'applied'",
    )
    assert applied
    for raw, text in applied:
        about = str(raw).rsplit("text:", 1)[1]
        assert str(text).startswith(about), f"receipt {raw!r} applied to the order with {text!r}"


async def test_a_restarted_id_counter_sends_each_sms_once_and_matches_its_own_receipts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_fault_smsc() as peer:
        s = settings_for(tmp_path, {"a": peer.port}, dispatch={"lease": 15.0})
        async with running_bridge(s) as (_, ep):
            await send_each(ep.smtp, FIRST, "before the restart")
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["delivered"] * 3, 20)
            peer.restart_ids()  # the SMSC gives the same ids again
            await send_each(ep.smtp, SECOND, "after the restart")
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["delivered"] * 6, 20)
    assert len(peer.submits) == 6  # each accepted SMS exactly once
    assert sorted(peer.given_ids[:3]) == sorted(peer.given_ids[3:])  # ids were reused
    no_receipt_on_another_order(tmp_path)
    assert "storage unavailable" not in caplog.text


async def test_empty_message_ids_each_sms_once_then_unconfirmed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_fault_smsc(Faults(empty_ids=True)) as peer:
        s = settings_for(tmp_path, {"a": peer.port}, dispatch={"lease": 15.0}, receipt_timeout=1.5)
        with caplog.at_level(logging.INFO):
            async with running_bridge(s) as (_, ep):
                await send_each(ep.smtp, FIRST, "no id")
                done = ["unconfirmed"] * 3
                await wait_for(lambda: list(statuses(tmp_path).values()) == done, 20)
    assert len(peer.submits) == 3
    assert rows(tmp_path, "SELECT DISTINCT smsc_id, matchable FROM part") == [("", 0)]
    assert rows(tmp_path, "SELECT count(*) FROM receipt WHERE status = 'applied'") == [(0,)]
    errors = [str(e) for (e,) in rows(tmp_path, 'SELECT error FROM "order"')]
    assert all("no delivery report" in e for e in errors)
    assert "the SMSC gave an empty message id; receipts cannot be matched" in caplog.text
    assert "storage unavailable" not in caplog.text


async def test_one_id_for_every_part_each_sms_once_and_no_receipt_guessed(
    tmp_path: Path,
) -> None:
    async with running_fault_smsc(Faults(one_id_per_message=True)) as peer:
        s = settings_for(tmp_path, {"a": peer.port}, dispatch={"lease": 15.0}, receipt_timeout=1.5)
        async with running_bridge(s) as (_, ep):
            await send_each(ep.smtp, FIRST[:1], "Three parts. " * 32)
            await send_each(ep.smtp, FIRST[1:2], "One part")
            await wait_for(
                lambda: sorted(statuses(tmp_path).values()) == ["delivered", "unconfirmed"], 20
            )
            await wait_for(
                lambda: (
                    rows(tmp_path, "SELECT count(*) FROM receipt WHERE status != 'new'") == [(4,)]
                )
            )
    assert len(peer.submits) == 4  # three parts and one single SMS, once each
    assert len(set(peer.given_ids[:3])) == 1  # the long SMS's parts share one id
    receipts = rows(tmp_path, "SELECT status, count(*) FROM receipt GROUP BY status")
    assert dict(cast("list[tuple[str, int]]", receipts)) == {
        "applied": 1,
        "unmatched": 3,
    }  # the three are not guessed
    no_receipt_on_another_order(tmp_path)
