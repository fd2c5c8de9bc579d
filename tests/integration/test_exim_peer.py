"""Exim, Debian's default MTA, as a company's: in front of the bridge (relaying its
domain to our listener) and behind it (the mailer's relay for status mails and DSNs).

A throwaway Exim (tests/peers/exim.py) with the router and transport docs/mail.md gives
a company admin. In front: a mail for two numbers and a landline, which Exim pipelines
to us in one transaction, becomes two SMS and Exim's own bounce to the sender carries
our 550, enhanced code and sentence; a 452 (the bridge's backpressure) keeps the mail in
Exim's queue until the fault clears; Exim's callout verification (MAIL FROM:<> or the
sender, RCPT, no DATA) gets our answer per recipient and leaves no order and no notice;
a mail over our size limit is refused at MAIL by its SIZE= and bounced with our reply;
with `hosts_require_tls` Exim sends over verified STARTTLS, or keeps the mail queued.
Behind: status mails and DSNs reach Exim's Maildir 7-bit with their headers intact,
though Exim offers no DSN extension; Exim's 550 fails a notice, its 452 defers it."""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from bridge.sandbox.phone import read_inbox
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge, wait_for
from tests.peers.exim import NOT_ROOT, Exim, throwaway_exim
from tests.peers.net import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)
DOMAIN = "eu.rsms.net"
SENDER = "demo@example.com"


def _rows(db: Path, sql: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def _orders(db: Path) -> dict[str, str]:
    return dict(_rows(db, 'SELECT recipient, text FROM "order"'))  # type: ignore[arg-type]


def _send(exim: Exim, rcpts: list[str], raw: bytes, sender: str = SENDER) -> dict[str, object]:
    with smtplib.SMTP("127.0.0.1", exim.port, timeout=20) as smtp:
        return dict(smtp.sendmail(sender, rcpts, raw))


def _probe(exim: Exim) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """A client's RCPTs to Exim for a good number and a landline, then RSET: no DATA."""
    with smtplib.SMTP("127.0.0.1", exim.port, timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        good = smtp.rcpt(f"+491701230006@{DOMAIN}")
        bad = smtp.rcpt(f"+4930123456@{DOMAIN}")
        smtp.rset()
    return good, bad


def _delivered(exim: Exim, count: int) -> list[tuple[str, str]]:
    """(address, our reply) of the deliveries to the bridge, once there are `count`."""
    found = re.findall(r"[=-]> (\S+) R=route0 T=remote_smtp .*C=\"(250 [^\"]*)\"", exim.log())
    return found if len(found) >= count else []


def _bounces(exim: Exim) -> list[EmailMessage]:
    return [m for m in exim.mailbox(SENDER) if "Mail delivery failed" in str(m["Subject"])]


def _with_mailer(settings: Settings, relay_port: int, **defaults: object) -> Settings:
    mailer = settings.mailer.model_copy(update={"mode": "smtp", "relay_port": relay_port})
    update: dict[str, object] = {"mailer": mailer}
    if defaults:
        update["defaults"] = settings.defaults.model_copy(update=defaults)
    return settings.model_copy(update=update)


async def test_exim_pipelines_three_recipients_two_become_sms_the_landline_bounces(
    tmp_path: Path,
) -> None:
    """Exim offers and uses PIPELINING and SIZE=: one transaction to us for all three;
    each recipient's fate is its own, and Exim's bounce quotes our reply as we gave it."""
    settings = make_settings(tmp_path)
    db = tmp_path / "bridge.db"
    async with running_bridge(settings) as (_, ep):
        with throwaway_exim({DOMAIN: ep.smtp[1]}) as exim:
            good = [f"+491701230003@{DOMAIN}", f"+491701230004@{DOMAIN}"]
            landline = f"+4930123456@{DOMAIN}"
            raw = make_mail(to=good[0], body="Pump P-101 pressure high")
            sent = await asyncio.to_thread(_send, exim, [good[0], landline, good[1]], raw)
            assert sent == {}  # Exim took all three
            await wait_for(lambda: len(_orders(db)) == 2, 30)
            await wait_for(lambda: len(read_inbox(settings.sandbox.inbox)) == 2, 30)
            [bounce] = await wait_for(lambda: _bounces(exim), 30)
            # one connection, one transaction for the three: the two accepted ones logged
            # with the same confirmation (our queue id), the landline refused in it
            # "=>" the first address of a delivery, "->" the others sent with it
            delivered = await wait_for(lambda: _delivered(exim, 2), 30)
    log = exim.log()
    assert sorted(r for r, _ in delivered) == sorted(good), log
    # at the first attempt: none deferred (our reply to the data lost) and sent again
    assert not re.search(r"== \S+ R=route0", log), log
    assert len({c for _, c in delivered}) == 1, log  # one DATA for both
    body = bounce.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert landline in text and "550 5.1.3" in text, text
    assert "landline" in text, text  # our sentence reaches the sender
    for number in good:
        assert number not in text, text
    assert bounce["To"] == SENDER
    assert set(_orders(db)) == {"+491701230003", "+491701230004"}


async def test_a_452_stays_in_exims_queue_until_the_fault_clears(tmp_path: Path) -> None:
    """The bridge's backpressure (452 4.3.1 at MAIL: the disk too full) defers the mail in
    Exim, which tries again by its retry rule; once the bridge takes mail again (here: the
    same port, restarted with room) the mail is delivered, once."""
    port = free_port()
    settings = make_settings(tmp_path)
    db = tmp_path / "bridge.db"
    full = settings.smtp.model_copy(update={"port": port, "min_free_disk_mb": 10**9})
    with throwaway_exim({DOMAIN: port}) as exim:
        async with running_bridge(settings.model_copy(update={"smtp": full})):
            rcpt = f"+491701230005@{DOMAIN}"
            raw = make_mail(to=rcpt, body="after the fault")
            assert await asyncio.to_thread(_send, exim, [rcpt], raw) == {}
            deferred = await wait_for(
                lambda: re.search(rf"== {re.escape(rcpt)} R=route0 .*defer.*: (.*)", exim.log()),
                30,
            )
            assert "452 4.3.1" in deferred[1], deferred[0]
            assert rcpt in exim.queue()  # kept, not bounced
            assert not _bounces(exim) and _orders(db) == {}
        room = settings.smtp.model_copy(update={"port": port})
        async with running_bridge(settings.model_copy(update={"smtp": room})):
            await wait_for(lambda: _delivered(exim, 1), 30)
            assert set(_orders(db)) == {"+491701230005"}
            await wait_for(lambda: rcpt not in exim.queue(), 10)
    assert not _bounces(exim)


@pytest.mark.parametrize(
    ("callout", "good_code"),
    [("callout=10s", 250), ("callout=10s,use_sender", 250), ("callout=10s,use_postmaster", 550)],
)
async def test_exims_callout_gets_our_answer_and_leaves_no_order(
    tmp_path: Path, callout: str, good_code: int
) -> None:
    """`verify = recipient/callout`: Exim asks us (MAIL FROM:<> by default, the real sender
    with use_sender; RCPT; then RSET or QUIT, no DATA) before it answers its client. A
    good number is accepted, a landline refused with our reason; nothing is queued.
    With use_postmaster (postmaster@ Exim's host: no user of ours) every recipient
    fails, as docs/mail.md says."""
    db = tmp_path / "bridge.db"
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        with throwaway_exim({DOMAIN: ep.smtp[1]}, verify=callout) as exim:
            # in a thread: the bridge answers the callout in this test's event loop
            good, bad = await asyncio.to_thread(_probe, exim)
            log = exim.log()
            assert good[0] == good_code, (good, log)
            assert bad[0] == 550, (bad, log)
            if good_code == 250:
                assert b"5.1.3" in bad[1] and b"landline" in bad[1], bad
            await asyncio.sleep(1)  # anything the probe might have started
    assert _orders(db) == {}
    assert _rows(db, "SELECT id FROM notice") == []


@pytest.mark.parametrize("kind", ["status", "dsn"])
async def test_notices_go_out_through_exim_seven_bit_with_their_headers(
    tmp_path: Path, kind: str
) -> None:
    """Exim as the mailer's relay: it offers no DSN extension (dsn_advertise_hosts unset)
    and our mailer sends no NOTIFY/RET/ENVID (a DSN is a mail of its own, from the null
    sender), so Exim takes both kinds at once; they arrive 7-bit with our headers."""
    exim_port = free_port()
    settings = make_settings(tmp_path)
    if kind == "dsn":
        settings = _with_mailer(settings, exim_port, notify_channel=("dsn",), notify="all")
    else:
        settings = _with_mailer(settings, exim_port)
    rcpt = f"+491701230007@{DOMAIN}"
    raw = make_mail(
        to=rcpt, subject="Grüße aus Köln", body="", message_id="<via-exim@client.example>"
    )
    async with running_bridge(settings) as (_, ep):
        with throwaway_exim({DOMAIN: ep.smtp[1]}, port=exim_port) as exim:
            assert await asyncio.to_thread(_send, exim, [rcpt], raw) == {}
            [notice] = await wait_for(lambda: exim.mailbox(SENDER), 30)
            [data] = exim.raw_mails()
            log = exim.log()
    assert _rows(tmp_path / "bridge.db", "SELECT kind, status FROM notice") == [(kind, "sent")]
    # Exim's log of the notice it took from us: the null sender for a DSN
    took = re.findall(r"<= (\S+) H=\S+ \[127\.0\.0\.1\]:?\d* P=esmtp .* for demo@example\.com", log)
    assert took == (["<>"] if kind == "dsn" else took) and len(took) == 1, log
    assert all(byte < 0x80 for byte in data), "a notice is 7-bit"
    encodings = {str(part["Content-Transfer-Encoding"]).lower() for part in notice.walk()}
    assert not encodings & {"8bit", "binary"}, encodings
    assert notice["In-Reply-To"] == "<via-exim@client.example>"
    assert notice["Message-ID"] and notice["Date"] and notice["From"]
    if kind == "dsn":
        assert notice.get_content_type() == "multipart/report"
        assert "Grüße" not in data.decode("ascii")
    else:
        assert "delivered" in str(notice["Subject"]), notice["Subject"]
        body = notice.get_body(("plain",))
        assert body is not None and "Grüße aus Köln" in body.get_content()


@pytest.mark.parametrize(
    ("refusal", "status"),
    [("550 5.1.1 mailbox unavailable", "failed"), ("452 4.2.2 mailbox full", "deferred")],
)
async def test_exims_refusal_of_a_notice_fails_or_defers_it(
    tmp_path: Path, refusal: str, status: str
) -> None:
    """docs/mail.md, "Refusals": Exim's 5xx to the notice's RCPT fails it at once with
    Exim's reply in its error; a 4xx defers it for a later attempt."""
    exim_port = free_port()
    settings = _with_mailer(make_settings(tmp_path), exim_port)
    db = tmp_path / "bridge.db"
    rcpt = f"+491701230008@{DOMAIN}"
    async with running_bridge(settings) as (_, ep):
        routes = {DOMAIN: ep.smtp[1]}
        with throwaway_exim(routes, port=exim_port, refuse={SENDER: refusal}) as exim:
            assert await asyncio.to_thread(_send, exim, [rcpt], make_mail(to=rcpt)) == {}
            [(got, error)] = await wait_for(
                lambda: _rows(db, "SELECT status, error FROM notice WHERE status != 'queued'"), 30
            )
            assert exim.mailbox(SENDER) == []
    assert got == status, error
    assert refusal in error and "refused the recipient" in error, error


@pytest.mark.parametrize("bridge_tls", [True, False], ids=["starttls", "plaintext-bridge"])
async def test_exims_hosts_require_tls_towards_the_bridge(tmp_path: Path, bridge_tls: bool) -> None:
    """`hosts_require_tls = *` on Exim's transport: with the bridge's certificate (from a
    CA Exim trusts; the bridge requiring STARTTLS of every client) the mail goes over
    TLS, verified; with a bridge that offers no STARTTLS it stays in Exim's queue
    (deferred, not bounced)."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings = make_settings(tmp_path)
    if bridge_tls:
        cert = ca.issue_cert("sms-bridge.test")
        cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.private_key_pem.write_to_path(str(key_file))
        cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        smtp = settings.smtp.model_copy(
            update={
                "tls_cert": cert_file,
                "tls_key": key_file,
                "require_tls": True,
                "plaintext_networks": (),
            }
        )
        settings = settings.model_copy(update={"smtp": smtp})
    rcpt = f"+491701230009@{DOMAIN}"
    async with running_bridge(settings) as (_, ep):
        with throwaway_exim(
            {DOMAIN: ep.smtp[1]}, client_options=["hosts_require_tls = *"], client_ca=ca_file
        ) as exim:
            assert await asyncio.to_thread(_send, exim, [rcpt], make_mail(to=rcpt)) == {}
            if bridge_tls:
                await wait_for(lambda: _delivered(exim, 1), 30)
                line = re.search(rf"=> {re.escape(rcpt)} .*", exim.log())
                assert line and " X=TLS" in line[0] and " CV=yes" in line[0], exim.log()
                assert set(_orders(tmp_path / "bridge.db")) == {"+491701230009"}
            else:
                deferred = await wait_for(
                    lambda: re.search(rf"== {re.escape(rcpt)} R=route0 .*defer.*", exim.log()),
                    30,
                )
                assert "TLS" in deferred[0], deferred[0]
                assert rcpt in exim.queue() and not _bounces(exim)
                assert _orders(tmp_path / "bridge.db") == {}


async def test_a_mail_over_our_size_limit_bounces_from_exim_with_our_reply(
    tmp_path: Path,
) -> None:
    """Exim takes up to its own `message_size_limit` (50 MB here) and sends `SIZE=` on
    MAIL: a mail over the bridge's limit is refused at MAIL (552 5.3.4), before its data
    crosses, and Exim's bounce carries our limit and sentence."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        with throwaway_exim({DOMAIN: ep.smtp[1]}) as exim:
            rcpt = f"+491701230010@{DOMAIN}"
            big = make_mail(to=rcpt, body="Pump P-101") + (b"y" * 998 + b"\r\n") * 1100
            assert await asyncio.to_thread(_send, exim, [rcpt], big) == {}
            [bounce] = await wait_for(lambda: _bounces(exim), 30)
    body = bounce.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "MAIL FROM:<demo@example.com> SIZE=" in text, text  # refused before the data
    assert "552 5.3.4 Message too big for this bridge (limit 1048576 bytes)" in text, text
    assert _orders(tmp_path / "bridge.db") == {}
