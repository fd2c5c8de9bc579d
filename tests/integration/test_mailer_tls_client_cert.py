"""The mailer shows a TLS client certificate to a relay that asks for one.

The relay is a real Postfix whose smtpd takes mail only over STARTTLS and only from a
client with a certificate of its client CA (`smtpd_tls_req_ccert = yes`), as a
company's relay (or SAP's inbound SMTP) that authenticates the bridge by certificate.
With `tls_cert_file`/`tls_key_file` the status mail goes through at every TLS level and
Postfix names the certificate it saw in its Received line; without one (or with one of
another CA) the relay refuses and the notice waits for its next attempt, saying why in
its log line. A certificate that cannot be used stops the start with a sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import ssl
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from bridge.cli import app
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.intake.tls import CertWatcher
from bridge.metrics import Metrics
from bridge.notices.mailer import Mailer
from bridge.notices.queue import queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from tests.helpers import STATUS_CONTEXT, SinkHandler, smtp_sink, wait_for
from tests.peers.postfix import NOT_ROOT, ServerTls, throwaway_postfix

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)
CLIENT_NAME = "mailsms-client.example.com"  # the subject of the mailer's certificate
RCPT = "anna@example.com"


def _issue(ca: trustme.CA, directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate of `ca` for `name` (chain file, key file)."""
    cert = ca.issue_cert(name, common_name=name)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def _ca_file(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path


class Relay:
    """A Postfix that relays example.com to a sink and wants a client certificate of
    `client_ca` (certificates and CA files in `directory`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server_ca = trustme.CA()  # the relay's own certificate: the mailer checks it
        self.client_ca = trustme.CA()  # the CA whose client certificates the relay takes
        self.server_ca_file = _ca_file(self.server_ca, directory / "relay-ca.pem")
        self.cert_file, self.key_file = _issue(self.server_ca, directory, "127.0.0.1")

    def tls(self) -> ServerTls:
        client_ca = _ca_file(self.client_ca, self.directory / "client-ca.pem")
        return ServerTls(self.cert_file, self.key_file, client_ca=client_ca)


def _store(tmp_path: Path) -> Store:
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    run_sync(engine, queue_notice, "status", RCPT, STATUS_CONTEXT, utcnow(), customer="")
    return Store(engine)


def _mailer(store: Store, port: int, relay: Relay, **changes: Any) -> Mailer:
    settings = MailerSettings.model_validate(
        {
            "mode": "smtp",
            "relay_host": "127.0.0.1",
            "relay_port": port,
            "tls": "verify",
            "tls_ca_file": relay.server_ca_file,
            "from_address": "bridge@example.com",
            "ehlo_name": "mailsms.example.com",
            "retry_min": 60.0,
            **changes,
        }
    )
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="bridge@example.com",
        from_name="SMS Bridge",
        hostname="mailsms.example.com",
    )
    return Mailer(settings, store, renderer)


def _notice(tmp_path: Path) -> tuple[str, int, str, str | None]:
    """(status, attempts, error, next_attempt_at) of the one notice."""
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        row = conn.execute("SELECT status, attempts, error, next_attempt_at FROM notice").fetchone()
    assert row is not None
    return row  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "setting",
    [
        {"tls": "may"},
        {"tls": "encrypt"},
        {"tls": "verify"},
        {"tls": "secure", "tls_match": ["127.0.0.1"]},
        "entry",
    ],
    ids=["may", "encrypt", "verify", "secure", "per-domain"],
)
async def test_the_relay_sees_the_mailers_client_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, setting: dict[str, Any] | str
) -> None:
    relay = Relay(tmp_path)
    cert_file, key_file = _issue(relay.client_ca, tmp_path, CLIENT_NAME)
    if setting == "entry":  # [mailer] has none; the entry for example.com brings its own
        changes: dict[str, Any] = {
            "delivery": [
                {"domains": ["example.com"], "tls_cert_file": cert_file, "tls_key_file": key_file}
            ]
        }
    else:
        assert isinstance(setting, dict)
        changes = {"tls_cert_file": cert_file, "tls_key_file": key_file, **setting}
    store = _store(tmp_path)
    async with smtp_sink() as (sink, sink_port):
        with throwaway_postfix({"example.com": sink_port}, server_tls=relay.tls()) as postfix:
            with caplog.at_level(logging.INFO, logger="bridge.notices"):
                mailer = _mailer(store, postfix.port, relay, **changes)
                assert await mailer.step() == 1
                await mailer.close()
            await wait_for(lambda: sink.envelopes, 30)
            log = await wait_for(
                lambda: "TLS connection established from" in (lg := postfix.log()) and lg,
                30,
            )
    await store.close()
    status, attempts, error, _ = _notice(tmp_path)
    assert (status, attempts, error) == ("sent", 1, "")
    [message] = sink.messages()
    assert message["To"].addresses[0].addr_spec == RCPT
    # Postfix checked the certificate and says whose it was, in its log and Received line
    assert re.search(r"Trusted TLS connection established from \S+\[127\.0\.0\.1\]", log), log
    received = " ".join(" ".join(str(r).split()) for r in message.get_all("Received", []))
    assert f'(Client CN "{CLIENT_NAME}", Issuer ' in received, received
    assert "(verified OK)" in received, received
    # the start says which certificate the mailer shows
    [shown] = [r.getMessage() for r in caplog.records if "client certificate for" in r.getMessage()]
    assert f"CN={CLIENT_NAME}" in shown and "SHA-256 " in shown, shown
    assert ("delivery for example.com" if setting == "entry" else "[mailer]") in shown, shown


@pytest.mark.parametrize("shown", ["none", "other-ca"])
async def test_a_relay_that_wants_a_certificate_refuses_and_the_notice_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, shown: str
) -> None:
    """No certificate, or one of a CA the relay does not trust: Postfix refuses the TLS
    session (421); the notice is deferred by the retry rules, with a log line that says
    it was about the certificate — neither failed nor lost."""
    relay = Relay(tmp_path)
    changes: dict[str, Any] = {}
    if shown == "other-ca":
        cert_file, key_file = _issue(trustme.CA(), tmp_path, CLIENT_NAME)
        changes = {"tls_cert_file": cert_file, "tls_key_file": key_file}
    store = _store(tmp_path)
    async with smtp_sink() as (sink, sink_port):
        with throwaway_postfix({"example.com": sink_port}, server_tls=relay.tls()) as postfix:
            with caplog.at_level(logging.WARNING, logger="bridge.notices"):
                mailer = _mailer(store, postfix.port, relay, **changes)
                before = utcnow()
                assert await mailer.step() == 1
                await mailer.close()
                assert await mailer.step() == 0  # not due again before retry_min
    await store.close()
    status, attempts, error, next_at = _notice(tmp_path)
    assert (status, attempts) == ("deferred", 1)
    assert sink.envelopes == []
    assert next_at is not None, "no next attempt"
    wait = datetime.fromisoformat(next_at).replace(tzinfo=None) - before.replace(tzinfo=None)
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=120), (next_at, before)
    assert error is not None and "TLS session refused after the handshake" in error, error
    says = (
        "the mailer has no client certificate for it (tls_cert_file)"
        if shown == "none"
        else f"we showed the client certificate of {str(tmp_path / (CLIENT_NAME + '.pem'))!r}"
    )
    assert says in error, error
    [line] = [r.getMessage() for r in caplog.records if "deferred until" in r.getMessage()]
    assert says in line and f"<{RCPT}>" in line, line


def _encrypted(key_file: Path, target: Path) -> Path:
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    target.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    return target


@pytest.mark.parametrize(
    "case",
    ["missing", "key-mismatch", "encrypted-key", "no-key", "not-pem", "ca-missing"],
)
def test_a_client_certificate_that_cannot_be_used_stops_the_start(
    tmp_path: Path, case: str
) -> None:
    """`mailsms serve` stops at once with one line saying what to fix, no traceback, and
    `mailsms config check` says the same."""
    ca = trustme.CA()
    cert_file, key_file = _issue(ca, tmp_path, CLIENT_NAME)
    other_cert, other_key = _issue(ca, tmp_path, "other.example.com")
    ca_file = _ca_file(ca, tmp_path / "ca.pem")
    cert, key, says = {
        "missing": (
            tmp_path / "nosuch.pem",
            key_file,
            f"[mailer] tls_cert_file {str(tmp_path / 'nosuch.pem')!r}: the client "
            "certificate cannot be read (No such file or directory)",
        ),
        "key-mismatch": (
            cert_file,
            other_key,
            f"[mailer] tls_key_file {str(other_key)!r}: the private key does not belong to "
            f"the certificate in {str(cert_file)!r} (key values mismatch)",
        ),
        "encrypted-key": (
            cert_file,
            _encrypted(key_file, tmp_path / "encrypted.key"),
            "the private key is encrypted with a passphrase, which the bridge cannot enter; "
            "store it unencrypted",
        ),
        "no-key": (
            other_cert,
            None,
            f"[mailer] tls_cert_file {str(other_cert)!r}: holds no PEM private key; set "
            "tls_key_file",
        ),
        "not-pem": (key_file, key_file, "holds no PEM certificate"),
        "ca-missing": (cert_file, key_file, "tls_ca_file"),
    }[case]
    config = tmp_path / "bridge.toml"
    ca_line = tmp_path / "nosuch-ca.pem" if case == "ca-missing" else ca_file
    key_line = f'tls_key_file = "{key}"\n' if key is not None else ""
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n'
        "[smtp]\nport = 0\n[sandbox]\nenabled = true\nport = 0\n"
        f'[mailer]\nmode = "smtp"\ntls = "verify"\ntls_ca_file = "{ca_line}"\n'
        f'tls_cert_file = "{cert}"\n{key_line}',
        encoding="utf-8",
    )
    # `config check` finds it too, before a restart would (exit 2: a settings error)
    for command, code in (["serve"], 1), (["config", "check"], 2):
        result = CliRunner().invoke(app, [*command, "-c", str(config)])
        assert result.exit_code == code, (command, result.output)
        assert "Traceback" not in result.output, result.output
        [line] = [x for x in result.output.splitlines() if x.startswith("mailsms: ")]
        assert says in line, (command, line)


@contextlib.asynccontextmanager
async def _certificate_required(
    relay: Relay, directory: Path, handler: SinkHandler, *, tls13: bool = False
) -> AsyncIterator[int]:
    """An aiosmtpd relay (STARTTLS required) that wants a client certificate of
    `relay.client_ca` (`verify_mode = CERT_REQUIRED`; only TLS 1.3 with `tls13`): its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls13:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(relay.cert_file, relay.key_file)
    context.load_verify_locations(_ca_file(relay.client_ca, directory / "client-ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="relay.test", tls_context=context, require_starttls=True),
        host="127.0.0.1",
        port=0,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_tls13_certificate_required_alert_defers_the_notice(tmp_path: Path) -> None:
    """A server (aiosmtpd, STARTTLS, `verify_mode = CERT_REQUIRED`, TLS 1.3) that gets no
    client certificate fails the handshake on its side; the mailer learns it from the
    alert `certificate required` on its first read inside TLS (or only from the end of
    the connection, when the alert is lost with it). Deferred, saying so; with
    the certificate the same server takes the mail."""
    relay = Relay(tmp_path)
    handler = SinkHandler()
    store = _store(tmp_path)
    try:
        async with _certificate_required(relay, tmp_path, handler, tls13=True) as port:
            mailer = _mailer(store, port, relay, tls="encrypt")
            assert await mailer.step() == 1
            status, attempts, error, next_at = _notice(tmp_path)
            assert (status, attempts) == ("deferred", 1) and next_at is not None
            assert "TLS session refused after the handshake" in error, error
            # the alert `certificate required`, or the end of the connection that carried it
            assert (
                "certificate required" in error
                or "Unexpected EOF received (as a relay does that wants a client certificate"
                in error
            ), error
            assert "the mailer has no client certificate for it (tls_cert_file)" in error, error
            assert handler.envelopes == []
            cert_file, key_file = _issue(relay.client_ca, tmp_path, CLIENT_NAME)
            with sqlite3.connect(tmp_path / "bridge.db") as conn:  # due again now
                conn.execute("UPDATE notice SET next_attempt_at = created_at")
            mailer = _mailer(
                store, port, relay, tls="encrypt", tls_cert_file=cert_file, tls_key_file=key_file
            )
            assert await mailer.step() == 1
            await mailer.close()
            assert _notice(tmp_path)[:2] == ("sent", 2)
            assert len(handler.envelopes) == 1
    finally:
        await store.close()


class _PeerNames(SinkHandler):
    """A sink that records the common name of each mail's client certificate."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        peer = session.ssl["ssl_object"].getpeercert()
        self.names += [v for rdn in peer["subject"] for k, v in rdn if k == "commonName"]
        return str(await super().handle_DATA(server, session, envelope))


async def test_a_renewed_client_certificate_is_shown_without_a_restart(tmp_path: Path) -> None:
    """The mailer's client certificate is renewed as the doors' are: the certificate
    watcher finds the replaced files and loads them into the contexts the mailer's SMTP
    client holds, so the next session shows the new certificate (a session kept from
    before keeps the old one; here the kept sessions are closed first)."""
    relay = Relay(tmp_path)
    handler = _PeerNames()
    issued, issued_key = _issue(relay.client_ca, tmp_path, CLIENT_NAME)
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(issued.read_bytes())
    key_file.write_bytes(issued_key.read_bytes())
    store = _store(tmp_path)
    watcher = CertWatcher(Metrics.unregistered(), interval=0.05)
    try:
        async with _certificate_required(relay, tmp_path, handler) as port:
            mailer = _mailer(
                store, port, relay, tls="encrypt", tls_cert_file=cert_file, tls_key_file=key_file
            )
            for cert, contexts in mailer.client.client_certificates().items():
                assert contexts, "prepare() built the contexts that hold the certificate"
                watcher.watch("mailer", cert.cert_file, cert.key_file, contexts)
            assert await mailer.step() == 1
            assert handler.names == [CLIENT_NAME]
            renewed, renewed_key = _issue(relay.client_ca, tmp_path, "renewed.mailsms.example")
            cert_file.write_bytes(renewed.read_bytes())
            key_file.write_bytes(renewed_key.read_bytes())
            watcher.check()
            await mailer.client.close()  # sessions kept from before keep their certificate
            run_sync(
                store.engine, queue_notice, "status", RCPT, STATUS_CONTEXT, utcnow(), customer=""
            )
            assert await mailer.step() == 1
            await mailer.close()
            assert handler.names == [CLIENT_NAME, "renewed.mailsms.example"]
    finally:
        await store.close()
