"""Helpers of the attack suite: settings with TLS, a trusting client context, reading orders."""

from __future__ import annotations

import sqlite3
import ssl
from pathlib import Path
from typing import Any

import trustme

from bridge.settings import Settings
from tests.conftest import make_settings
from tests.smtp_probe import RawSmtp


def orders(tmp_path: Path) -> list[tuple[str, str]]:
    """(recipient, rcpt_address) of every order in the bridge's SQLite database."""
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute('SELECT recipient, rcpt_address FROM "order" ORDER BY id').fetchall()


def order_rows(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(recipient, status, error) of every order."""
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute('SELECT recipient, status, error FROM "order" ORDER BY id').fetchall()


def with_smtp(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update=changes)})


def tls_settings(tmp_path: Path, ca: trustme.CA, **changes: Any) -> Settings:
    """The test settings with STARTTLS (a trustme certificate); plaintext only from 127.0.0.1."""
    return _with_tls(tmp_path, ca, trustme.KeyType.ECDSA, changes)


def rsa_tls_settings(tmp_path: Path, ca: trustme.CA, **changes: Any) -> Settings:
    """`tls_settings` with a certificate whose key is RSA (for the *-RSA suites)."""
    return _with_tls(tmp_path, ca, trustme.KeyType.RSA, changes)


def _with_tls(
    tmp_path: Path, ca: trustme.CA, key_type: trustme.KeyType, changes: dict[str, Any]
) -> Settings:
    cert = ca.issue_cert("localhost", "127.0.0.1", key_type=key_type)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return with_smtp(
        make_settings(tmp_path),
        tls_cert=cert_file,
        tls_key=key_file,
        plaintext_networks=("127.0.0.1/32",),
        **changes,
    )


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def greeted(
    host: str, port: int, *, local: str | None = None, ehlo: str = "EHLO probe"
) -> RawSmtp:
    """A raw client that read the greeting and sent EHLO (or HELO)."""
    client = await RawSmtp.connect(host, port, local=local)
    await client.read_reply()
    await client.command(ehlo)
    return client
