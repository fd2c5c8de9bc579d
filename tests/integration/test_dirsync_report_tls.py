"""The dirsync report mail: the relay's certificate checked over STARTTLS, one copy per admin."""

from __future__ import annotations

import asyncio
import email
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from bridge.notices.headers import HeaderError
from bridge.notices.smtp_client import DeliveryError
from bridge.tenants.sync_status import SyncRunStatus
from dirsync.config import ReportConfig
from dirsync.report import Outcome, send_mail
from tests.peers.net import free_port
from tests.peers.smtp_relay import smtp_relay


class _Sink:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


@contextmanager
def _tls_relay(ca: trustme.CA, name: str) -> Iterator[tuple[_Sink, int]]:
    """An SMTP relay on 127.0.0.1 that requires STARTTLS, with a certificate for `name`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    sink, port = _Sink(), free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def _config(port: int, ca_file: Path | None) -> ReportConfig:
    return ReportConfig(
        mail_to=("admin@corp.example",),
        mail_from="dirsync@corp.example",
        smtp_host="localhost",
        smtp_port=port,
        smtp_starttls=True,
        smtp_ca_file=ca_file,
    )


def _outcome() -> Outcome:
    return Outcome(
        customer="acme", source="ldap", status=SyncRunStatus.FAILED, message="directory down"
    )


def _causes(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    return chain


def test_an_untrusted_relay_certificate_stops_the_report(tmp_path: Path) -> None:
    ca = trustme.CA()
    with _tls_relay(ca, "localhost") as (sink, port):
        with pytest.raises(DeliveryError, match="certificate not trusted") as caught:
            asyncio.run(send_mail(_config(port, None), _outcome()))
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(caught.value))
    assert sink.received == []


def test_a_certificate_for_another_name_stops_the_report(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with _tls_relay(ca, "other.example") as (sink, port):
        with pytest.raises(DeliveryError, match="certificate not trusted") as caught:
            asyncio.run(send_mail(_config(port, ca_file), _outcome()))
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(caught.value))
    assert sink.received == []


def test_the_report_goes_out_over_verified_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with _tls_relay(ca, "localhost") as (sink, port):
        asyncio.run(send_mail(_config(port, ca_file), _outcome()))
    assert len(sink.received) == 1 and b"dirsync acme: failed" in sink.received[0]


def test_the_ca_file_is_read_from_the_report_table() -> None:
    from dirsync.config import parse_config

    cfg = parse_config(
        {
            "customer": "acme",
            "report": {"smtp_starttls": True, "smtp_ca_file": "/etc/mailsms/corp-ca.pem"},
        }
    )
    assert cfg.report.smtp_ca_file == Path("/etc/mailsms/corp-ca.pem")


async def test_a_relay_without_starttls_gets_nothing_when_starttls_is_set() -> None:
    async with smtp_relay() as (relay, port):
        cfg = replace(_config(port, None), smtp_host="127.0.0.1")
        with pytest.raises(DeliveryError, match="offers no STARTTLS"):
            await send_mail(cfg, _outcome())
    assert relay.mails == [] and relay.accepted == []


async def test_every_admin_gets_the_report_with_all_of_them_in_to() -> None:
    async with smtp_relay() as (relay, port):
        cfg = replace(
            _config(port, None),
            smtp_host="127.0.0.1",
            smtp_starttls=False,
            mail_to=("admin@corp.example", "Ops@Corp.Example"),
        )
        await send_mail(cfg, _outcome())
    assert [e.rcpt_tos for e in relay.accepted] == [["admin@corp.example"], ["Ops@corp.example"]]
    assert {e.mail_from for e in relay.accepted} == {"dirsync@corp.example"}
    mail = email.message_from_bytes(relay.accepted[0].original_content or b"")
    assert mail["To"] == "admin@corp.example, Ops@corp.example"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].endswith("@corp.example>")


async def test_an_invalid_report_address_is_a_header_error_and_nothing_is_sent() -> None:
    async with smtp_relay() as (relay, port):
        cfg = replace(_config(port, None), smtp_host="127.0.0.1", smtp_starttls=False)
        with pytest.raises(HeaderError):
            await send_mail(
                replace(cfg, mail_to=("admin@corp.example>\r\nBcc: x@evil",)), _outcome()
            )
    assert relay.mails == []
