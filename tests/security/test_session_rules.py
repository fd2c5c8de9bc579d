"""Session rules: STARTTLS once, no pipelining beyond RFC 2920's, no endless keep-alive, and a
backpressure limit that holds under a burst (R5, S20 and the smaller holes)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from bridge.db.store import run_sync
from bridge.settings import Settings
from bridge.tenants.logins import add_credential
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.security.common import client_context, greeted, orders, tls_settings, with_smtp
from tests.smtp_probe import RawSmtp


async def test_starttls_inside_tls_is_503_and_the_session_goes_on(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
            c = await greeted(*ep.smtp, local="127.0.0.2")
            assert (await c.command("STARTTLS")).startswith("220")
            await c.starttls(client_context(ca))
            assert "STARTTLS" not in await c.command("EHLO probe")
            assert (await c.command("STARTTLS")).startswith("503 5.5.1")
            assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
            await c.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_second_transaction_pipelined_behind_the_data_is_refused(
    tmp_path: Path,
) -> None:
    """PIPELINING lets a client send commands ahead, but the data's end may be followed only
    by QUIT: a second transaction behind it is the shape SMTP smuggling takes."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        assert "250-PIPELINING" in await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(
            make_mail(body="first")
            + b".\r\nMAIL FROM:<demo@example.com>\r\nRCPT TO:<+491709999999@eu.rsms.net>\r\n"
            b"DATA\r\n" + make_mail(body="second", message_id="<2@x>") + b".\r\n"
        )
        refused = await c.read_reply()
        assert refused.startswith("554 5.5.0") and "second transaction" in refused, refused
        assert await c.read_reply() == ""  # closed: nothing of it was accepted
        await c.close()
    assert orders(tmp_path) == []


@pytest.mark.parametrize(("greeting", "pipelining"), [("HELO probe", True), ("EHLO probe", False)])
async def test_pipelined_commands_without_pipelining_end_the_session(
    tmp_path: Path, greeting: str, pipelining: bool
) -> None:
    """PIPELINING is offered after EHLO only, and not at all with `pipelining = false`."""
    settings = with_smtp(make_settings(tmp_path), pipelining=pipelining)
    async with running_bridge(settings) as (_, ep):
        c = await greeted(*ep.smtp, ehlo=greeting)
        assert "PIPELINING" not in await c.command(greeting)
        await c.send(b"MAIL FROM:<demo@example.com>\r\nRCPT TO:<+491701234567@eu.rsms.net>\r\n")
        refused = await c.read_reply()
        assert refused.startswith("554 5.5.0") and "PIPELINING is not offered" in refused
        assert await c.read_reply() == ""
        await c.close()
    assert orders(tmp_path) == []


@pytest.mark.parametrize(
    "ahead",
    [
        b"DATA\r\nSubject: x\r\n",  # the data before the 354
        b"NOOP\r\nRSET\r\n",
        b"EHLO again\r\nMAIL FROM:<demo@example.com>\r\n",
        b"VRFY <x@y>\r\nRSET\r\n",
    ],
)
async def test_commands_behind_one_that_ends_a_group_end_the_session(
    tmp_path: Path, ahead: bytes
) -> None:
    """RFC 2920: EHLO, DATA, VRFY, EXPN, NOOP (and here STARTTLS and AUTH: tests/security/
    test_smtp_ingress.py) must be the last command of a group; input behind them is refused
    as without PIPELINING, and nothing of the transaction is accepted."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.send(ahead)
        refused = await c.read_reply()
        assert refused.startswith("554 5.5.0") and "ends a pipelined group" in refused
        assert await c.read_reply() == ""
        await c.close()
    assert orders(tmp_path) == []


@pytest.mark.parametrize(
    ("auth", "accepted"),
    [("AUTH PLAIN {token}", True), ("AUTH LOGIN", False), ("AUTH PLAIN", False)],
)
async def test_only_auth_plain_with_its_initial_response_may_have_commands_behind_it(
    tmp_path: Path, ca: trustme.CA, auth: str, accepted: bool
) -> None:
    """RFC 4954 4: a client may pipeline behind AUTH only when the mechanism completes in
    one round trip (PLAIN with its initial response); behind LOGIN, or PLAIN waiting for
    its 334, the input is refused and nothing of the transaction is accepted."""
    async with running_bridge(tls_settings(tmp_path, ca)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, add_credential, "sap-prod", "demo", "s3cret-pw")
        c = await greeted(*ep.smtp, local="127.0.0.2")
        assert (await c.command("STARTTLS")).startswith("220")
        await c.starttls(client_context(ca))
        ehlo = await c.command("EHLO sap.example")
        assert "250-PIPELINING" in ehlo and "AUTH" in ehlo
        token = base64.b64encode(b"\0sap-prod\0s3cret-pw").decode()
        await c.send(
            auth.format(token=token) + "\r\nMAIL FROM:<demo@example.com>\r\n"
            "RCPT TO:<+491701234567@eu.rsms.net>\r\nDATA\r\n"
        )
        if accepted:
            got = [(await c.read_reply(timeout=30))[:3] for _ in range(4)]
            assert got == ["235", "250", "250", "354"]
            await c.send(make_mail() + b".\r\n")
            assert (await c.read_reply()).startswith("250 2.0.0")
        else:
            refused = await c.read_reply(timeout=30)
            assert refused.startswith("554 5.5.0") and "ends a pipelined group" in refused
            assert await c.read_reply() == ""
        await c.close()
    assert len(orders(tmp_path)) == (1 if accepted else 0)


async def test_quit_right_after_the_data_is_tolerated(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(make_mail() + b".\r\nQUIT\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        assert (await c.read_reply()).startswith("221")
        await c.close()
    assert len(orders(tmp_path)) == 1


@pytest.mark.parametrize("idle", ["RSET", "NOOP", "HELP", "EHLO probe", "VRFY <x@y>"])
async def test_keep_alive_without_mail_ends_at_the_command_limit(tmp_path: Path, idle: str) -> None:
    limits = {"NOOP": 1000, "RSET": 1000, "VRFY": 1000, "HELP": 1000, "*": 1000}
    settings = with_smtp(make_settings(tmp_path), idle_command_limit=10, command_call_limit=limits)
    async with running_bridge(settings) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        answers = [await c.command(idle) for _ in range(11)]
        assert answers[-1].startswith("421 4.7.0"), answers
        assert all(a[:1] in "25" for a in answers[:-1]), answers
        assert await c.read_reply() == ""  # closed
        await c.close()


async def test_a_busy_mta_session_is_not_cut_off(tmp_path: Path) -> None:
    settings = with_smtp(make_settings(tmp_path), idle_command_limit=10)
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            for i in range(15):  # RSET + MAIL each: 30 idle commands, a mail every 2
                await smtp.rset()
                await smtp.sendmail(
                    "demo@example.com",
                    [f"+4917012{i:05d}@eu.rsms.net"],
                    make_mail(message_id=f"<busy-{i}@x>"),
                )
    assert len(orders(tmp_path)) == 15


async def test_a_mail_sent_steadily_is_not_cut_off_however_long_its_data_takes(
    tmp_path: Path,
) -> None:
    """`timeout` (2 s here) bounds how long a whole line may take to arrive, not the
    whole DATA: a mail whose lines come every 0.5 s for 5 s (a large mail over a slow
    link) is accepted. Before, the DATA command started the only clock and a mail that
    took longer than `timeout` in all was cut off, retried by its client and cut again.
    (With 0.5 s and lines every 0.2 s, a loaded machine once stalled this client longer
    than the timeout between two commands.)"""
    async with running_bridge(with_smtp(make_settings(tmp_path), timeout=2.0)) as (_, ep):
        c = await greeted(*ep.smtp)
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250")
        assert (await c.command("DATA")).startswith("354")
        head, _, body = make_mail(body="steady\r\n" * 10).partition(b"\r\n\r\n")
        await c.send(head + b"\r\n\r\n")
        for line in body.split(b"\r\n")[:-1]:
            await asyncio.sleep(0.5)
            await c.send(line + b"\r\n")
        await c.send(b".\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        await c.close()
    assert len(orders(tmp_path)) == 1


@pytest.mark.parametrize("stage", ["command", "data"])
async def test_a_line_trickled_past_the_timeout_ends_the_session_with_421(
    tmp_path: Path, stage: str
) -> None:
    """A command or a line of the data that arrives a byte every 0.2 s does not complete
    within `timeout` (0.5 s): the session ends with a 421 that says why (Postfix: "421
    4.4.2 Error: timeout exceeded"), not with the connection simply gone, and nothing of
    the mail is kept."""
    async with running_bridge(with_smtp(make_settings(tmp_path), timeout=0.5)) as (_, ep):
        c = await greeted(*ep.smtp)
        if stage == "data":
            await c.command("MAIL FROM:<demo@example.com>")
            await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
            assert (await c.command("DATA")).startswith("354")
        reply = ""
        for byte in b"Subject: a line that never ends":  # 6 s at a byte per 0.2 s
            with contextlib.suppress(ConnectionError):
                await c.send(bytes([byte]))
            if reply := await c.maybe_reply(0.2):
                break
        assert reply.startswith("421 4.4.2"), reply
        assert "0.5 s" in reply
        assert await c.read_reply(timeout=2) == ""  # closed
        await c.close()
    assert orders(tmp_path) == []


def _unreachable_smsc(tmp_path: Path, high_water: int) -> Settings:
    settings = make_settings(tmp_path)
    return settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"enabled": False}),
            "smtp": settings.smtp.model_copy(update={"queue_high_water": high_water}),
            "smsc": (settings.smsc[0].model_copy(update={"port": 1}),),
        }
    )


async def _send(port: int, sender_ids: range) -> list[int]:
    codes = []
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        for i in sender_ids:
            try:
                await smtp.sendmail(
                    "demo@example.com",
                    [f"+4915{i:09d}@eu.rsms.net"],
                    make_mail(message_id=f"<burst-{i}@x>"),
                )
                codes.append(250)
            except aiosmtplib.SMTPResponseException as exc:  # at MAIL (or DATA)
                codes.append(exc.code)
                await smtp.rset()
            except aiosmtplib.SMTPRecipientsRefused as exc:  # at RCPT: the mark was reached
                codes.append(exc.recipients[0].code)  # between this session's MAIL and RCPT
                await smtp.rset()
    return codes


async def test_backpressure_admits_no_more_than_its_limit_under_a_burst(tmp_path: Path) -> None:
    async with running_bridge(_unreachable_smsc(tmp_path, 50)) as (_, ep):
        results = await asyncio.gather(
            *(_send(ep.smtp[1], range(k * 3, k * 3 + 3)) for k in range(25))
        )
    codes = [c for r in results for c in r]
    assert len(codes) == 75
    assert codes.count(250) == 50, codes  # exactly up to the mark, not beyond
    assert set(codes) == {250, 452}
    assert len(orders(tmp_path)) == 50


async def test_backpressure_answers_a_recipient_past_the_mark_at_rcpt(tmp_path: Path) -> None:
    async with running_bridge(_unreachable_smsc(tmp_path, 3)) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.mail("demo@example.com")
            for n in range(3):
                await smtp.rcpt(f"+49170123456{n}@eu.rsms.net")
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.rcpt("+491701234569@eu.rsms.net")
            assert (err.value.code, err.value.message[:5]) == (452, "4.3.1")
            assert (await smtp.data(make_mail()))[0] == 250
            with pytest.raises(aiosmtplib.SMTPResponseException) as full:
                await smtp.mail("demo@example.com")
            assert (full.value.code, full.value.message[:5]) == (452, "4.3.1")
    assert len(orders(tmp_path)) == 3
