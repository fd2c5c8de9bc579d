"""The company MTA as production has it: Postfix relays to our listener with STARTTLS
(verifying our certificate) and SMTP AUTH with a customer's login, and takes the
bridge's status mails only over STARTTLS (and, as a relay that wants it, only after
AUTH). A wrong password gets our 535 into Postfix's log, deferred (not retried at
once); a Postfix that does not STARTTLS gets our 530 at MAIL and bounces the mail. No
client network lets 127.0.0.1 in without AUTH, and loopback is not a plaintext network
here: what passes, passes because of TLS and the login."""

from __future__ import annotations

import logging
import os
import re
import smtplib
import sqlite3
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from bridge.app import Bridge
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.notices.mailer import Mailer
from bridge.notices.queue import queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from bridge.notices.transport_table import TlsLevel
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.logins import add_credential
from tests.conftest import make_settings
from tests.helpers import STATUS_CONTEXT, make_mail, running_bridge, smtp_sink, wait_for
from tests.peers.net import free_port
from tests.peers.postfix import (
    NOT_ROOT,
    ClientTls,
    SaslLogin,
    ServerTls,
    throwaway_postfix,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)
DOMAIN = "eu.rsms.net"
BRIDGE_NAME = "mailsms.test"  # our listener's name, in its certificate
SENDER = "ops@acme.example"  # a user of "acme": no client networks, so AUTH only
LOGIN = SaslLogin("acme-mta", "long-secret-1")
# Postfix's TLS summary line, as its smtp client logs it for a verified server
VERIFIED = re.compile(
    r"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:(\d+): "
    r"(TLSv[\d.]+) with cipher (\S+)(.*)"
)


def _certificate(ca: trustme.CA, directory: Path, *names: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*names)
    cert_file, key_file = directory / f"{names[0]}.pem", directory / f"{names[0]}.key"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return cert_file, key_file


def _ca_file(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _tls_listener(tmp_path: Path, ca: trustme.CA) -> Settings:
    """The test settings with STARTTLS required of every client, loopback included."""
    cert_file, key_file = _certificate(ca, tmp_path, BRIDGE_NAME)  # Postfix checks the name
    settings = make_settings(tmp_path)
    smtp = settings.smtp.model_copy(
        update={
            "hostname": BRIDGE_NAME,
            "tls_cert": cert_file,
            "tls_key": key_file,
            "require_tls": True,
            "plaintext_networks": (),
        }
    )
    return settings.model_copy(update={"smtp": smtp})


def _add_acme(bridge: Bridge) -> None:
    """A customer as `mailsms customer add acme` + `mailsms login add` make it: no
    client networks, one login."""
    assert bridge.store is not None
    engine = bridge.store.engine
    run_sync(engine, add_customer, "acme", {})
    run_sync(engine, add_user, SENDER, "acme")
    run_sync(engine, add_credential, LOGIN.username, "acme", LOGIN.password)


def _texts(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute('SELECT recipient, text FROM "order"').fetchall())


def _mails(db: Path) -> list[tuple[str, str, str, str]]:
    """(client_addr, helo, envelope sender, customer) of every accepted mail."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT m.client_addr, m.helo, m.envelope_from, c.name FROM mail m "
            'JOIN "user" u ON u.id = m.user_id JOIN customer c ON c.id = u.customer_id'
        ).fetchall()


def _send(port: int, rcpt: str, raw: bytes) -> None:
    """To Postfix (another process: a blocking client will do)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(SENDER, [rcpt], raw)


def _outcome(log: str, rcpt: str) -> re.Match[str] | None:
    """Postfix's delivery line for `rcpt`: status and the reason in parentheses."""
    return re.search(rf"to=<{re.escape(rcpt)}>, relay=(\S+), .*status=(\w+) \((.*)\)", log)


def _auth_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("AUTH as ")]


@pytest.mark.parametrize(
    "protocols", ["", ">=TLSv1.2, <=TLSv1.2"], ids=["postfix-default", "tls1.2-only"]
)
async def test_postfix_relays_with_starttls_and_auth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocols: str
) -> None:
    """Postfix verifies our certificate (its CA, our name) and logs in; with its default
    protocols that is TLS 1.3, and limited to TLS 1.2 it must find one of our TLS 1.2
    ciphers (ECDHE/DHE with AES-GCM or ChaCha20) in its own list."""
    ca = trustme.CA()
    client_tls = ClientTls(
        "verify", _ca_file(ca, tmp_path), match=(BRIDGE_NAME,), protocols=protocols
    )
    with (
        caplog.at_level(logging.INFO, logger="bridge.intake"),
        caplog.at_level(logging.INFO, logger="mail.log"),
    ):
        async with running_bridge(_tls_listener(tmp_path, ca)) as (bridge, ep):
            _add_acme(bridge)
            routes = {DOMAIN: ep.smtp[1]}
            with throwaway_postfix(routes, client_tls=client_tls, client_login=LOGIN) as postfix:
                rcpt = f"+491701230005@{DOMAIN}"
                _send(postfix.port, rcpt, make_mail(to=rcpt, sender=SENDER, body="Valve V-7 open"))
                texts = await wait_for(lambda: _texts(tmp_path / "bridge.db"), 30)
                assert texts == {"+491701230005": "Valve V-7 open"}
                sent = await wait_for(lambda: _outcome(postfix.log(), rcpt), 30)
                log = postfix.log()
    assert sent[1] == f"127.0.0.1[127.0.0.1]:{ep.smtp[1]}", log[-2000:]
    assert sent[2] == "sent" and re.fullmatch(r"250 2\.0\.0 Ok: queued as \w+", sent[3]), sent[0]
    verified = VERIFIED.search(log)
    assert verified is not None, log[-2000:]
    assert int(verified[1]) == ep.smtp[1]
    assert verified[2] == ("TLSv1.2" if protocols else "TLSv1.3"), verified[0]
    # what we allow: AEAD with forward secrecy (TLS 1.3 suites, or ECDHE/DHE with GCM/ChaCha20)
    assert re.search(r"GCM|CHACHA20", verified[3]), verified[0]
    # the mail is the customer's, from Postfix, as the login proved
    assert _mails(tmp_path / "bridge.db") == [("127.0.0.1", "mta.test", SENDER, "acme")]
    assert _auth_lines(caplog) == [f"AUTH as {LOGIN.username!r} from 127.0.0.1 succeeded"]
    mechanisms = [
        m[1]
        for r in caplog.records
        if (m := re.search(r">> b'AUTH (PLAIN|LOGIN)\b", r.getMessage())) is not None
    ]
    assert mechanisms == ["PLAIN"], mechanisms  # Cyrus SASL's first choice of our two


async def test_a_wrong_password_gets_our_535_and_postfix_defers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    client_tls = ClientTls("verify", _ca_file(ca, tmp_path), match=(BRIDGE_NAME,))
    wrong = SaslLogin(LOGIN.username, "not-the-password")
    with caplog.at_level(logging.INFO, logger="bridge.intake"):
        async with running_bridge(_tls_listener(tmp_path, ca)) as (bridge, ep):
            _add_acme(bridge)
            routes = {DOMAIN: ep.smtp[1]}
            with throwaway_postfix(routes, client_tls=client_tls, client_login=wrong) as postfix:
                rcpt = f"+491701230006@{DOMAIN}"
                _send(postfix.port, rcpt, make_mail(to=rcpt, sender=SENDER))
                outcome = await wait_for(lambda: _outcome(postfix.log(), rcpt), 30)
                log = postfix.log()
    # a refused login is soft-bounced by Postfix (smtp_sasl_auth_soft_bounce = yes): kept
    # in its queue for the next queue run, not retried at once and not bounced
    assert outcome[2] == "deferred", outcome[0]
    assert "SASL authentication failed" in outcome[3], outcome[0]
    assert "535 5.7.8 Authentication credentials invalid" in outcome[3], outcome[0]
    assert VERIFIED.search(log) is not None, log[-2000:]  # the password went inside TLS
    assert _auth_lines(caplog) == [f"AUTH as {LOGIN.username!r} from 127.0.0.1 failed"]
    assert _texts(tmp_path / "bridge.db") == {}
    assert _mails(tmp_path / "bridge.db") == []


async def test_postfix_without_starttls_gets_our_530_and_bounces(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    with caplog.at_level(logging.INFO, logger="bridge.intake"):
        async with running_bridge(_tls_listener(tmp_path, ca)) as (bridge, ep):
            _add_acme(bridge)
            # smtp_tls_security_level = none, with the right login: we offer AUTH only
            # inside TLS, so Postfix goes on to MAIL without it
            with throwaway_postfix({DOMAIN: ep.smtp[1]}, client_login=LOGIN) as postfix:
                rcpt = f"+491701230007@{DOMAIN}"
                _send(postfix.port, rcpt, make_mail(to=rcpt, sender=SENDER))
                outcome = await wait_for(lambda: _outcome(postfix.log(), rcpt), 30)
                log = postfix.log()
    assert outcome[2] == "bounced", outcome[0]  # a 5xx at MAIL: returned at once
    assert "530 5.7.0 Must issue a STARTTLS command first" in outcome[3], outcome[0]
    assert "in reply to MAIL FROM command" in outcome[3], outcome[0]
    assert "TLS connection established" not in log
    assert _auth_lines(caplog) == []  # the password never crossed in plaintext
    assert _texts(tmp_path / "bridge.db") == {}
    assert _mails(tmp_path / "bridge.db") == []


def _mailer_through(
    settings: Settings, ca: trustme.CA, tmp_path: Path, port: int, **login: str
) -> Settings:
    mailer = settings.mailer.model_copy(
        update={
            "mode": "smtp",
            "relay_host": "127.0.0.1",
            "relay_port": port,
            "tls": TlsLevel.VERIFY,  # STARTTLS required, our CA, the name 127.0.0.1
            "tls_ca_file": _ca_file(ca, tmp_path),
            **login,
        }
    )
    return settings.model_copy(update={"mailer": mailer})


@pytest.mark.parametrize("with_auth", [False, True], ids=["starttls", "starttls+auth"])
async def test_the_mailer_sends_the_status_mail_to_postfix_over_starttls(
    tmp_path: Path, with_auth: bool
) -> None:
    ca = trustme.CA()
    cert_file, key_file = _certificate(ca, tmp_path, "127.0.0.1", "localhost")
    relay_login = SaslLogin("mailsms", "relay-secret-1") if with_auth else None
    login = {"username": "mailsms", "password": "relay-secret-1"} if with_auth else {}
    postfix_port = free_port()  # the mailer's relay, known before the bridge starts
    async with smtp_sink() as (sink, sink_port):
        settings = _mailer_through(make_settings(tmp_path), ca, tmp_path, postfix_port, **login)
        async with running_bridge(settings) as (_, ep):
            with throwaway_postfix(
                {"example.com": sink_port},
                port=postfix_port,
                server_tls=ServerTls(cert_file, key_file),  # encrypt: STARTTLS before MAIL
                server_login=relay_login,  # then: only logged-in clients may relay
            ) as postfix:
                rcpt = f"+491701230008@{DOMAIN}"
                # straight to the listener (the demo customer, from loopback, plaintext)
                raw = make_mail(to=rcpt, message_id="<tls@client.example>")
                await aiosmtplib.send(
                    raw, sender="demo@example.com", recipients=[rcpt], hostname=ep.smtp[0],
                    port=ep.smtp[1], start_tls=False,
                )  # fmt: skip
                await wait_for(lambda: sink.envelopes, 30)
                sent = await wait_for(lambda: _outcome(postfix.log(), "demo@example.com"), 30)
                log = postfix.log()
    [envelope] = sink.envelopes
    assert envelope.rcpt_tos == ["demo@example.com"]
    [status] = sink.messages()
    assert status["In-Reply-To"] == "<tls@client.example>"
    assert "delivered" in status["Subject"], status["Subject"]
    assert sent[2] == "sent", sent[0]
    # Postfix's smtpd: the bridge came in over TLS (no client certificate: "Anonymous")
    tls = re.search(
        r"(\w+) TLS connection established from (\S+)\[127\.0\.0\.1\]: (TLSv[\d.]+) "
        r"with cipher (\S+)",
        log,
    )
    assert tls is not None, log[-2000:]
    assert tls[1] == "Anonymous" and tls[3] in ("TLSv1.2", "TLSv1.3"), tls[0]
    # ... and its Received: line says so (smtpd_tls_received_header)
    received = " ".join(str(r) for r in status.get_all("Received", []))
    assert f"(using {tls[3]} with cipher {tls[4]}" in received, received
    if with_auth:
        authed = re.search(
            r"client=\S+\[127\.0\.0\.1\], sasl_method=(\w+), sasl_username=(\S+)", log
        )
        assert authed is not None, log[-2000:]
        assert authed[1] in ("PLAIN", "LOGIN") and authed[2].startswith("mailsms"), authed[0]
        assert "with ESMTPSA" in received, received
    else:
        assert "sasl_method=" not in log and "with ESMTPS " in received, received


async def test_the_mailer_keeps_its_sessions_to_postfix_for_the_next_status_mails(
    tmp_path: Path,
) -> None:
    """Six status mails, two at a time, to a Postfix that takes them only over STARTTLS
    and after AUTH: two sessions (two TLS handshakes, two logins) carry all six, each
    relayed once, and both end with QUIT when the mailer stops."""
    ca = trustme.CA()
    cert_file, key_file = _certificate(ca, tmp_path, "127.0.0.1", "localhost")
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    store = Store(engine)
    recipients = [f"user{i}@example.com" for i in range(6)]
    for rcpt in recipients:
        run_sync(engine, queue_notice, "status", rcpt, STATUS_CONTEXT, utcnow(), customer="")
    async with smtp_sink() as (sink, sink_port):
        with throwaway_postfix(
            {"example.com": sink_port},
            server_tls=ServerTls(cert_file, key_file),
            server_login=SaslLogin("mailsms", "relay-secret-1"),
        ) as postfix:
            settings = MailerSettings.model_validate(
                {
                    "mode": "smtp",
                    "relay_host": "127.0.0.1",
                    "relay_port": postfix.port,
                    "tls": "verify",
                    "tls_ca_file": _ca_file(ca, tmp_path),
                    "username": "mailsms",
                    "password": "relay-secret-1",
                    "from_address": "bridge@example.com",
                    "ehlo_name": "mailsms.example.com",
                    "concurrency": 2,
                }
            )
            renderer = Renderer(
                DEFAULT_TEMPLATES,
                from_address="bridge@example.com",
                from_name="SMS Bridge",
                hostname="mailsms.example.com",
            )
            mailer = Mailer(settings, store, renderer)
            sent = 0
            while n := await mailer.step():
                sent += n
            await mailer.close()
            await wait_for(lambda: len(sink.envelopes) == 6, 30)
            log = await wait_for(lambda: (lg := postfix.log()).count(" quit=1 ") == 2 and lg, 30)
    await store.close()
    engine.dispose()
    assert sent == 6
    assert sorted(e.rcpt_tos[0] for e in sink.envelopes) == recipients
    # Postfix's smtpd counts each session's commands when it ends (its readiness probe's
    # empty session aside): one TLS handshake and one login for three mails, then QUIT
    sessions = re.findall(r"smtpd\[\d+\]: disconnect from \S+ (ehlo=.*)", log)
    assert sessions == ["ehlo=2 starttls=1 auth=1 mail=3 rcpt=3 data=3 quit=1 commands=14"] * 2
    assert log.count("TLS connection established from") == 2, log[-3000:]
