"""PIPELINING (RFC 2920) at our SMTP listener, from a raw client: a group's replies come in
order, one per command, and together in one TCP segment (one send, as Postfix's smtpd
writes them); a refusal inside a group does not spoil the rest of the session; a command
still on its way does not hold back the reply before it. Real pipelining clients (swaks
`--pipeline`, msmtp, Postfix) are in their own tests; the refusals of input behind a
group's last command are in tests/security/test_session_rules.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.security.common import greeted, orders, with_smtp
from tests.smtp_probe import RawSmtp

GROUP = (
    b"MAIL FROM:<demo@example.com>\r\n"
    b"RCPT TO:<+491701234567@eu.rsms.net>\r\n"
    b"RCPT TO:<hello@eu.rsms.net>\r\n"
    b"RCPT TO:<+491707654321@eu.rsms.net>\r\n"
    b"DATA\r\n"
)


async def replies(client: RawSmtp, n: int) -> list[str]:
    return [(await client.read_reply()).split(" ", 2)[0] for _ in range(n)]


async def test_a_group_gets_its_replies_in_order_in_one_segment(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        assert "250-PIPELINING" in await c.command("EHLO probe")
        before = c.data_segments_in()
        await c.send(GROUP)
        assert await replies(c, 5) == ["250", "250", "550", "250", "354"]
        assert c.data_segments_in() - before == 1  # held back and sent with DATA's 354
        await c.send(make_mail() + b".\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        # The next transaction on the same connection, pipelined again, then QUIT.
        await c.send(GROUP.replace(b"1234567", b"1111111"))
        assert await replies(c, 5) == ["250", "250", "550", "250", "354"]
        await c.send(make_mail(message_id="<second@x>") + b".\r\nQUIT\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        assert (await c.read_reply()).startswith("221")
        await c.close()
    assert sorted(r for r, _ in orders(tmp_path)) == [
        "+491701111111",
        "+491701234567",
        "+491707654321",
        "+491707654321",
    ]


async def test_a_refused_sender_in_a_group_leaves_the_session_usable(tmp_path: Path) -> None:
    """MAIL refused: the RCPTs and DATA behind it get 503 (no transaction), in order; the
    client resets and sends its next mail."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(GROUP.replace(b"demo@example.com", b"nobody@nowhere.example"))
        got = [await c.read_reply() for _ in range(5)]
        assert got[0].startswith("5"), got  # the sender is refused with its reason
        assert [g[:3] for g in got[1:]] == ["503"] * 4, got
        assert (await c.command("RSET")).startswith("250")
        await c.send(GROUP)
        assert await replies(c, 5) == ["250", "250", "550", "250", "354"]
        await c.send(make_mail() + b".\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        await c.close()
    assert len(orders(tmp_path)) == 2


async def test_a_command_still_arriving_does_not_hold_back_the_reply_before_it(
    tmp_path: Path,
) -> None:
    """Only a whole command waiting holds a reply back: a client whose next command is
    still on its way (half a line) gets the reply at once, as it may be waiting for it."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(b"MAIL FROM:<demo@example.com>\r\nRCPT TO:<+4917012")
        assert (await c.read_reply()).startswith("250 2.1.0")
        await asyncio.sleep(0.05)
        await c.send(b"34567@eu.rsms.net>\r\n")
        assert (await c.read_reply()).startswith("250 2.1.5")
        assert (await c.command("DATA")).startswith("354")
        await c.send(make_mail() + b".\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        await c.close()
    assert len(orders(tmp_path)) == 1


async def test_held_replies_go_out_before_the_session_ends(tmp_path: Path) -> None:
    """A group whose last command ends the session (here the idle-command limit's 421):
    the replies held for it are written first, in order, then the connection closes."""
    settings = with_smtp(make_settings(tmp_path), idle_command_limit=3)
    async with running_bridge(settings) as (_, ep):
        c = await greeted(*ep.smtp)  # EHLO: the first idle command
        await c.send(b"RSET\r\n" * 3)
        got = [await c.read_reply() for _ in range(3)]
        assert [g[:3] for g in got] == ["250", "250", "421"], got
        assert await c.read_reply() == ""  # closed
        await c.close()
