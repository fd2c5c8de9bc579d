"""The listener against the attack checklist (S1, S3, S5, S6, S8, S9, S11, S12, S18–S22, T1, A2,
A3, backpressure, graceful stop): real sockets, raw probes."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from bridge.db.store import run_sync
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.logins import add_credential
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.security.common import client_context, orders, tls_settings, with_smtp
from tests.smtp_probe import RawSmtp

SMUGGLING = [
    b"\n.\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
    b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\r\n.\r\r\n", b"\r\r\n.\r\r\n",
]  # fmt: skip


@pytest.mark.parametrize("sequence", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
async def test_s1_smuggling_never_creates_a_second_mail(tmp_path: Path, sequence: bytes) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250")
        assert (await c.command("DATA")).startswith("354")
        await c.send(
            b"Subject: A\r\n\r\nfirst" + sequence + b"MAIL FROM:<demo@example.com>\r\n"
            b"RCPT TO:<+491709999999@eu.rsms.net>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nx\r\n.\r\n"
        )
        first = await c.read_reply()
        rest = [await c.maybe_reply(timeout=0.3) for _ in range(3)]
        await c.close()
    assert first.startswith("550 5.5.2"), first  # bare CR/LF/NUL refused by default
    assert not any(r.startswith("250 2.0.0 Ok: queued") for r in rest)
    assert all(rcpt != "+491709999999" for rcpt, _ in orders(tmp_path))


async def test_bare_lf_is_repaired_for_trusted_networks(tmp_path: Path) -> None:
    settings = with_smtp(make_settings(tmp_path), normalize_networks=("127.0.0.1/32",))
    async with running_bridge(settings) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO legacy-sap")
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(b"Subject: x\n\nline one\nline two\r\n.\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        await c.close()
    assert len(orders(tmp_path)) == 1


async def test_s3_starttls_injection_is_refused(tmp_path: Path, ca: trustme.CA) -> None:
    """Commands sent behind STARTTLS are never run: the session ends before TLS starts."""
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        assert "STARTTLS" in await c.command("EHLO probe")
        await c.send("STARTTLS\r\nMAIL FROM:<demo@example.com>\r\n")
        refused = await c.read_reply()  # input before the reply to STARTTLS
        assert refused.startswith("554 5.5.0") and "reply to STARTTLS" in refused
        assert await c.read_reply(timeout=5) == ""  # closed; the injected MAIL never ran
        await c.close()


async def test_s4_state_after_starttls_is_reset(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp, local="127.0.0.2")
        await c.read_reply()
        await c.command("EHLO probe")
        assert (await c.command("STARTTLS")).startswith("220")
        await c.starttls(client_context(ca))
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("503")  # no EHLO
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("503")
        await c.close()
    assert orders(tmp_path) == []


async def test_s5_s6_tls_required_outside_plaintext_networks_and_auth_after_tls(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, add_credential, "sap-prod", "demo", "s3cret-pw")
        # From 127.0.0.2 (not in plaintext_networks): plaintext MAIL gets 530, AUTH gets 538.
        c = await RawSmtp.connect(*ep.smtp, local="127.0.0.2")
        await c.read_reply()
        ehlo = await c.command("EHLO sap.example")
        assert "AUTH" not in ehlo and "DSN" in ehlo and "STARTTLS" in ehlo
        assert (await c.command("AUTH PLAIN AHNhcC1wcm9kAHMzY3JldC1wdw==")).startswith("538 5.7.11")
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("530 5.7.0")
        await c.close()
        # With STARTTLS (TLS 1.2+ only) the same client may authenticate and send.
        smtp = aiosmtplib.SMTP(
            hostname=ep.smtp[0], port=ep.smtp[1], tls_context=client_context(ca),
            local_hostname="sap.example", source_address=("127.0.0.2", 0), start_tls=True,
        )  # fmt: skip
        await smtp.connect()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as bad:
            await smtp.login("sap-prod", "wrong")
        assert bad.value.code == 535
        await smtp.login("sap-prod", "s3cret-pw")
        await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
        await smtp.quit()
    assert len(orders(tmp_path)) == 1


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_t1_old_tls_versions_are_refused(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO old-client")
        await c.command("STARTTLS")
        old = client_context(ca)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await c.starttls(old)
        await c.close()


async def test_authenticated_login_only_covers_its_own_customer(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (bridge, ep):
        assert bridge.store is not None
        engine = bridge.store.engine
        run_sync(engine, add_customer, "other", {})
        run_sync(engine, add_user, "eve@other.example", "other")
        run_sync(engine, add_credential, "sap-prod", "demo", "s3cret-pw")
        smtp = aiosmtplib.SMTP(
            hostname=ep.smtp[0], port=ep.smtp[1], tls_context=client_context(ca), start_tls=True
        )
        await smtp.connect()
        await smtp.login("sap-prod", "s3cret-pw")
        with pytest.raises(aiosmtplib.SMTPResponseException) as err:
            await smtp.mail("eve@other.example")
        assert (err.value.code, err.value.message[:5]) == (550, "5.7.1")
        await smtp.quit()


@pytest.mark.parametrize(
    "rcpt",
    [
        "victim@gmail.com",
        '"x@ext.example"@eu.rsms.net',
        "x%ext.example@eu.rsms.net",
        "ext.example!x@eu.rsms.net",
        "@eu.rsms.net:x@ext.example",
        "491701234567@eu.rsms.net.evil",
        "+\u0664\u0669\u0661\u0667\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667@eu.rsms.net",
        "491701234567@eu.rsms.net.",
    ],
)
async def test_s8_open_relay_tricks_get_550_at_rcpt(tmp_path: Path, rcpt: str) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        answer = await c.command(f"RCPT TO:<{rcpt}>")
        await c.close()
    assert answer[:3] in ("550", "553", "501"), answer
    assert orders(tmp_path) == []


async def test_s9_customer_network_allowlist(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(
            bridge.store.engine, add_customer, "acme", {"access": {"networks": ["127.0.0.1/32"]}}
        )
        run_sync(bridge.store.engine, add_user, "ops@acme.example", "acme")
        for local, expected in (("127.0.0.3", "550 5.7.1"), ("127.0.0.1", "250")):
            c = await RawSmtp.connect(*ep.smtp, local=local)
            await c.read_reply()
            await c.command("EHLO acme")
            answer = await c.command("MAIL FROM:<ops@acme.example>")
            await c.close()
            assert answer.startswith(expected), (local, answer)


async def test_s11_size_at_mail_and_oversized_data(tmp_path: Path) -> None:
    settings = with_smtp(make_settings(tmp_path), data_size_limit=10_000)
    async with running_bridge(settings) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        assert "SIZE 10000" in await c.command("EHLO probe")
        assert (await c.command("MAIL FROM:<demo@example.com> SIZE=20000")).startswith("552 5.3.4")
        await c.command("MAIL FROM:<demo@example.com> SIZE=5000")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 300 + b".\r\n")
        assert (await c.read_reply()).startswith("552 5.3.4")
        await c.close()
    assert orders(tmp_path) == []


async def test_s12_over_long_line(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(b"Subject: long\r\n\r\n" + b"y" * 5000 + b"\r\n.\r\n")
        assert (await c.read_reply()).startswith("500 5.5.2")
        await c.close()
    assert orders(tmp_path) == []


async def test_s18_connection_cap_per_address_spares_others(tmp_path: Path) -> None:
    settings = with_smtp(make_settings(tmp_path), max_connections_per_ip=5)
    async with running_bridge(settings) as (_, ep):
        idle = [await RawSmtp.connect(*ep.smtp) for _ in range(5)]
        for c in idle:
            assert (await c.read_reply()).startswith("220")
        extra = await RawSmtp.connect(*ep.smtp)
        assert (await extra.read_reply()).startswith("421 4.7.0")
        other = await RawSmtp.connect(*ep.smtp, local="127.0.0.2")
        assert (await other.read_reply()).startswith("220")
        assert (await other.command("EHLO legit")).startswith("250")
        for c in [*idle, extra, other]:
            await c.close()


async def test_s19_s20_s21_timeouts_call_limits_and_junk(tmp_path: Path) -> None:
    limits = {"NOOP": 3, "*": 50}
    settings = with_smtp(make_settings(tmp_path), timeout=0.5, command_call_limit=limits)
    async with running_bridge(settings) as (_, ep):
        slow = await RawSmtp.connect(*ep.smtp)
        await slow.read_reply()
        await slow.send("EH")  # a trickle that never completes a command
        assert (await slow.read_reply(timeout=5)).startswith("421 4.4.2")  # the timeout
        assert await slow.read_reply(timeout=5) == ""  # and closed
        noop = await RawSmtp.connect(*ep.smtp)
        await noop.read_reply()
        await noop.command("EHLO probe")
        answers = [await noop.command("NOOP") for _ in range(4)]
        assert answers[-1].startswith("421 4.7.0"), answers
        junk = await RawSmtp.connect(*ep.smtp)
        await junk.read_reply()
        answers = [await junk.command(f"XYZZY{i}") for i in range(6)]
        assert all(a.startswith("500") or a.startswith("502") for a in answers if a)
        assert await junk.read_reply(timeout=2) == ""  # closed
        for c in (slow, noop, junk):
            await c.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Auto-Submitted: auto-replied\r\n", "550 5.7.1"),
        ("Precedence: bulk\r\n", "550 5.7.1"),
        ("Received: from x\r\n" * 30, "554 5.4.6"),
    ],
)
async def test_s22_mail_loops_never_become_sms(tmp_path: Path, headers: str, status: str) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        # a bounce (null sender): its RCPT answered as a callout probe, its DATA refused
        assert (await c.command("MAIL FROM:<>")).startswith("250 2.1.0")
        assert (await c.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("250")
        assert (await c.command("DATA")).startswith("550 5.7.1")
        await c.command("RSET")
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(f"{headers}Subject: out of office\r\n\r\nI am away.\r\n.\r\n".encode())
        assert (await c.read_reply()).startswith(status)
        await c.close()
    assert orders(tmp_path) == []


async def test_same_mail_twice_gives_one_set_of_orders(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        replies = []
        for _ in range(2):
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                _, message = await smtp.sendmail(
                    "demo@example.com", ["+491701234567@eu.rsms.net"], make_mail()
                )
                replies.append(message)
    assert replies[0] == replies[1] and "queued as" in replies[0]
    assert len(orders(tmp_path)) == 1


@pytest.mark.parametrize(
    ("rcpt", "status", "words"),
    [
        ("SMS=+491701234567@eu.rsms.net", "250", ""),
        ("FAX=+4962277455555@eu.rsms.net", "550 5.1.3", "FAX= addresses are not served"),
        ("+499001234567@eu.rsms.net", "550 5.7.1", "premium-rate"),
        ("11880@eu.rsms.net", "550 5.7.1", "short code"),
    ],
)
async def test_address_forms_and_destination_policy(
    tmp_path: Path, rcpt: str, status: str, words: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        answer = await c.command(f"RCPT TO:<{rcpt}>")
        await c.close()
    assert answer.startswith(status) and words in answer, answer


async def test_sequential_numbers_are_refused(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        numbers = [10, 11, 12, 13, 14, 20]
        answers = [await c.command(f"RCPT TO:<+4917012345{n}@eu.rsms.net>") for n in numbers]
        await c.close()
    assert [a[:3] for a in answers] == ["250"] * 4 + ["550", "250"]
    assert "consecutive numbers" in answers[4]


async def test_backpressure_answers_452_at_mail(tmp_path: Path) -> None:
    """With the SMSC unreachable the order stays queued; above the high-water mark MAIL gets 452."""
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"enabled": False}),
            "smtp": settings.smtp.model_copy(update={"queue_high_water": 1}),
            "smsc": (settings.smsc[0].model_copy(update={"port": 1}),),
        }
    )
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.handler is not None and bridge.handler.backpressure is not None
        backpressure = bridge.handler.backpressure
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
            await backpressure.refresh()
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await smtp.mail("demo@example.com")
            assert (err.value.code, err.value.message[:5]) == (452, "4.3.1")
            assert "1 orders queued" in err.value.message
            backpressure.high_water = 10  # as if the queue had drained below the mark
            await smtp.sendmail("demo@example.com", ["+491701234568@eu.rsms.net"], make_mail())


async def test_graceful_stop_answers_421_and_keeps_acknowledged_mail(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO probe")
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(make_mail() + b".\r\n")
        assert (await c.read_reply()).startswith("250 2.0.0")
        stopping = asyncio.create_task(bridge.stop(grace=2.0))
        await asyncio.sleep(0)
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("421 4.3.2")
        late = await RawSmtp.connect(*ep.smtp)
        assert (await late.read_reply()).startswith("421 4.3.2")
        await stopping
        for client in (c, late):
            await client.close()
    assert len(orders(tmp_path)) == 1


async def test_denied_countries_and_short_codes_with_a_country_list(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        settings = {
            "default_country": "DE",
            "denied_countries": ["GB"],
            "allowed_countries": ["DE", "GB"],
            "access": {"short_codes": True, "networks": ["127.0.0.0/8"]},
        }
        run_sync(bridge.store.engine, add_customer, "acme", settings)
        run_sync(bridge.store.engine, add_user, "ops@acme.example", "acme")
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO acme")
        await c.command("MAIL FROM:<ops@acme.example>")
        gb = await c.command("RCPT TO:<+447400123456@eu.rsms.net>")
        short = await c.command("RCPT TO:<11880@eu.rsms.net>")
        await c.close()
    assert gb.startswith("550 5.7.1") and "country GB" in gb
    assert short.startswith("250"), short
