"""A recipient probe at our listener: `MAIL FROM:<>`, RCPTs, then RSET or QUIT, never
DATA: the callout verification of Exim (`verify = recipient/callout`) and the address
verification of Postfix (`reject_unverified_recipient`). Refusing the null sender at MAIL
made every probe fail, so an MTA that verifies refused every recipient of the bridge;
now each RCPT gets the answer every sender would get (pure rule: tests/unit/
test_addresses.py), a null sender's DATA is refused, and nothing is stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.intake.handler import PROBE_NETWORKS_TTL
from tests.conftest import make_settings
from tests.helpers import our_faults, running_bridge
from tests.security.common import greeted, orders, with_smtp


def _notices(tmp_path: Path) -> list[object]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute("SELECT id FROM notice").fetchall()


async def test_a_null_sender_probe_gets_each_recipients_answer_and_stores_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        assert (await c.command("MAIL FROM:<>")).startswith("250 2.1.0")
        assert (await c.command("MAIL FROM:<>")).startswith("503")  # nested, as any MAIL
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250 2.1.5")
        landline = await c.command("RCPT TO:<+4930123456@eu.rsms.net>")
        assert landline.startswith("550 5.1.3") and "landline" in landline, landline
        elsewhere = await c.command("RCPT TO:<+491701234567@elsewhere.example>")
        assert elsewhere.startswith("5"), elsewhere
        assert (await c.command("RCPT TO:<bad>")).startswith("5")
        refused = await c.command("DATA")
        assert refused.startswith("550 5.7.1") and "null sender" in refused, refused
        # the session goes on: RSET, a real mail's transaction is its own
        assert (await c.command("RSET")).startswith("250")
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
        assert (await c.command("RSET")).startswith("250")
        # a probe after RSET again, ended by QUIT (Exim's way)
        assert (await c.command("MAIL FROM:<>")).startswith("250")
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250")
        assert (await c.command("QUIT")).startswith("221")
        await c.close()
    assert orders(tmp_path) == []
    assert _notices(tmp_path) == []
    assert not list(our_faults(caplog))


async def test_a_pipelined_probe_gets_its_replies_in_order(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(
            b"MAIL FROM:<>\r\nRCPT TO:<+491701234567@eu.rsms.net>\r\n"
            b"RCPT TO:<+4930123456@eu.rsms.net>\r\nRSET\r\n"
        )
        got = [(await c.read_reply())[:3] for _ in range(4)]
        assert got == ["250", "250", "550", "250"], got
        await c.close()
    assert orders(tmp_path) == []


async def test_probes_count_as_commands_without_a_mail(tmp_path: Path) -> None:
    """A probe's RCPT leads to no mail: a session of nothing but probes is closed at
    `idle_command_limit`, as one of NOOPs is (else a client could ask about numbers
    without end on one connection)."""
    async with running_bridge(with_smtp(make_settings(tmp_path), idle_command_limit=10)) as (
        _,
        ep,
    ):
        c = await greeted(*ep.smtp)
        answers = [await c.command("MAIL FROM:<>")]  # EHLO, MAIL: 2 of 10 without a mail
        answers += [await c.command("RCPT TO:<+491701234567@eu.rsms.net>") for _ in range(9)]
        assert all(a.startswith("250") for a in answers[:-1]), answers
        assert answers[-1].startswith("421 4.7.0"), answers[-1]
        await c.close()
    assert orders(tmp_path) == []


@pytest.mark.parametrize("greeting", ["EHLO probe", "HELO probe"])
async def test_a_probe_is_answered_only_for_a_client_that_could_send(
    tmp_path: Path, greeting: str
) -> None:
    """Access rules hold for probes too, after HELO as after EHLO: a client on no
    enabled customer's network (and not authenticated) gets `550 5.7.1` at `MAIL
    FROM:<>`, so the internet cannot ask the bridge which numbers it would take; the
    customers' networks are read anew within 5 seconds of a change."""
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, set_access, "demo", {"networks": ["127.0.0.1/32"]})
        await asyncio.sleep(PROBE_NETWORKS_TTL + 0.5)  # what the listener read at start
        outside = await greeted(*ep.smtp, local="127.0.0.3", ehlo=greeting)
        refused = await outside.command("MAIL FROM:<>")
        assert refused.startswith("550 5.7.1") and "127.0.0.3" in refused, refused
        assert (await outside.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("503")
        await outside.close()
        inside = await greeted(*ep.smtp, local="127.0.0.1", ehlo=greeting)
        assert (await inside.command("MAIL FROM:<>")).startswith("250")
        assert (await inside.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250")
        await inside.close()
    assert orders(tmp_path) == []
