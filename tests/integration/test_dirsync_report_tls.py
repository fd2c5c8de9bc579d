"""The dirsync report mail checks the relay's certificate over STARTTLS (a real aiosmtpd relay)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from dirsync.config import ReportConfig
from dirsync.report import Outcome, send_mail


class _Sink:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _tls_relay(ca: trustme.CA, name: str) -> Iterator[tuple[_Sink, int]]:
    """An SMTP relay on 127.0.0.1 that requires STARTTLS, with a certificate for `name`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    sink, port = _Sink(), _free_port()
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
    return Outcome(customer="acme", source="ldap", status="failed", message="directory down")


def test_an_untrusted_relay_certificate_stops_the_report(tmp_path: Path) -> None:
    ca = trustme.CA()
    with _tls_relay(ca, "localhost") as (sink, port):
        with pytest.raises(ssl.SSLCertVerificationError):
            send_mail(_config(port, None), _outcome())
    assert sink.received == []


def test_a_certificate_for_another_name_stops_the_report(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with _tls_relay(ca, "other.example") as (sink, port):
        with pytest.raises(ssl.SSLCertVerificationError):
            send_mail(_config(port, ca_file), _outcome())
    assert sink.received == []


def test_the_report_goes_out_over_verified_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with _tls_relay(ca, "localhost") as (sink, port):
        send_mail(_config(port, ca_file), _outcome())
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
