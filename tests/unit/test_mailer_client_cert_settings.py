"""The mailer's client certificate in the settings and the transport table (pure parts):
which certificate each domain's delivery shows, and settings refused before any file
is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.errors import ConfigError
from bridge.notices.settings import MailerSettings
from bridge.notices.transport_table import ClientCert, TlsLevel, TlsRule
from bridge.settings import load_settings

MAILER_CERT = ClientCert(Path("/etc/mailsms/client.pem"), Path("/etc/mailsms/client.key"))
PARTNER_CERT = ClientCert(Path("/etc/mailsms/partner.pem"))


def _mailer(**values: Any) -> MailerSettings:
    return MailerSettings.model_validate({"mode": "smtp", **values})


def test_an_entry_s_certificate_replaces_the_mailer_s_for_its_domains() -> None:
    settings = _mailer(
        tls="verify",
        tls_cert_file="/etc/mailsms/client.pem",
        tls_key_file="/etc/mailsms/client.key",
        delivery=[
            {"domains": ["partner.example"], "tls_cert_file": "/etc/mailsms/partner.pem"},
            {"domains": ["bank.example"], "next_hop": "mx", "tls": "secure"},
        ],
    )
    table = settings.transport_table()
    assert table.lookup("a@partner.example").client_cert == PARTNER_CERT  # key in the file
    assert table.lookup("a@bank.example").client_cert == MAILER_CERT
    assert table.lookup("a@elsewhere.example").client_cert == MAILER_CERT
    assert table.tls_rules() == {
        TlsRule(TlsLevel.VERIFY, None, MAILER_CERT): ["[mailer]"],
        TlsRule(TlsLevel.VERIFY, None, PARTNER_CERT): ["delivery for partner.example"],
        TlsRule(TlsLevel.SECURE, None, MAILER_CERT): ["delivery for bank.example"],
    }


def test_without_a_certificate_none_is_shown() -> None:
    table = _mailer(tls="encrypt").transport_table()
    assert table.lookup("a@example.com").client_cert is None
    assert table.tls_rules() == {TlsRule(TlsLevel.ENCRYPT, None, None): ["[mailer]"]}


def test_a_certificate_used_only_by_an_entry_at_a_tls_level_is_accepted() -> None:
    """[mailer] tls = none, but the entry that inherits the certificate does TLS."""
    settings = _mailer(
        tls="none",
        tls_cert_file="/etc/mailsms/client.pem",
        delivery=[{"domains": ["sap.example"], "tls": "encrypt"}],
    )
    assert settings.transport_table().lookup("x@sap.example").client_cert == ClientCert(
        Path("/etc/mailsms/client.pem")
    )


@pytest.mark.parametrize(
    ("mailer", "says"),
    [
        (
            'tls_key_file = "/etc/mailsms/client.key"\n',
            "mailer: tls_key_file is set without tls_cert_file: set tls_cert_file to the "
            "client certificate the key belongs to, or remove tls_key_file",
        ),
        (
            'tls = "none"\ntls_cert_file = "/etc/mailsms/client.pem"\n',
            "mailer: tls_cert_file is set but tls = none, so the certificate would never be "
            "shown (it is offered only inside TLS); set tls = may or higher, or remove "
            "tls_cert_file",
        ),
        (  # the entries inheriting it do no TLS either
            'tls = "none"\ntls_cert_file = "/etc/mailsms/client.pem"\n'
            '[[mailer.delivery]]\ndomains = ["a.example"]\n'
            '[[mailer.delivery]]\ndomains = ["b.example"]\ntls = "verify"\n'
            'tls_cert_file = "/etc/mailsms/b.pem"\n',
            "mailer: tls_cert_file is set but tls = none",
        ),
        (
            'tls = "verify"\n[[mailer.delivery]]\ndomains = ["a.example"]\ntls = "none"\n'
            'tls_cert_file = "/etc/mailsms/a.pem"\n',
            "mailer: delivery for a.example: tls_cert_file is set but tls = none",
        ),
        (
            '[[mailer.delivery]]\ndomains = ["a.example"]\ntls_key_file = "/etc/a.key"\n',
            "mailer.delivery.0: tls_key_file is set without tls_cert_file",
        ),
    ],
    ids=["key-without-cert", "tls-none", "tls-none-everywhere", "entry-tls-none", "entry-key"],
)
def test_certificate_settings_that_cannot_work_are_refused(
    tmp_path: Path, mailer: str, says: str
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'[mailer]\nmode = "smtp"\n{mailer}', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert says in str(caught.value), str(caught.value)
