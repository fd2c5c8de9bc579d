"""The mailer's client certificate: loaded into its TLS contexts once, at start.

A relay that authenticates its clients by certificate (Postfix's `smtpd_tls_req_ccert`,
SAP's inbound SMTP with client authentication) gets the certificate of `tls_cert_file`
(and `tls_key_file`), as Postfix's SMTP client shows `smtp_tls_cert_file`. Whatever
stands in the way of using it is found when the mailer starts, and said in a sentence
that names the setting and what to do: a file that cannot be read, one that holds no
certificate or no key, a key that does not belong to the certificate, a key encrypted
with a passphrase (the bridge, like Postfix, cannot type one).
"""

from __future__ import annotations

import _ssl
import base64
import hashlib
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError
from bridge.notices.transport_table import ClientCert

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----")


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the log says of a client certificate."""

    subject: str  # "CN=mailsms.example.com, O=Example"
    issuer: str
    fingerprint: str  # SHA-256 of the DER form, AB:CD:…
    not_after: datetime | None

    def __str__(self) -> str:
        until = f", valid until {self.not_after:%Y-%m-%d %H:%M} UTC" if self.not_after else ""
        return f"{self.subject} (issuer {self.issuer}; SHA-256 {self.fingerprint}{until})"


def load_client_cert(context: ssl.SSLContext, cert: ClientCert, where: str) -> None:
    """Put `cert` into `context` (ssl.SSLContext.load_cert_chain); a ConfigError saying
    what to fix when it cannot be used. `where`: the setting's place ("[mailer]")."""
    cert_key = f"{where} tls_cert_file {str(cert.cert_file)!r}"
    key_key = f"{where} tls_key_file {str(cert.key_file)!r}" if cert.key_file else cert_key
    cert_pem = _read(cert.cert_file, cert_key, "the client certificate")
    if not _PEM_CERT.search(cert_pem):
        raise ConfigError(
            f"{cert_key}: holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the "
            "client certificate (and its chain) in PEM form"
        )
    key_pem = cert_pem if cert.key_file is None else _read(cert.key_file, key_key, "the key")
    if not _PEM_KEY.search(key_pem):
        hint = (
            "set tls_key_file to the file of its private key, or append the key to this file"
            if cert.key_file is None
            else "give the certificate's private key in PEM form"
        )
        raise ConfigError(f"{key_key}: holds no PEM private key; {hint}")
    asked: list[bool] = []

    def no_passphrase() -> str:  # else OpenSSL would prompt on the terminal
        asked.append(True)
        return ""

    try:
        context.load_cert_chain(
            str(cert.cert_file),
            str(cert.key_file) if cert.key_file else None,
            password=no_passphrase,
        )
    except ssl.SSLError as exc:
        if asked:
            raise ConfigError(
                f"{key_key}: the private key is encrypted with a passphrase, which the bridge "
                "cannot enter; store it unencrypted (openssl pkey -in KEY -out KEY.plain), "
                "readable only by the bridge's user"
            ) from None
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise ConfigError(
                f"{key_key}: the private key does not belong to the certificate in "
                f"{str(cert.cert_file)!r} (key values mismatch); give the key the "
                "certificate was issued for"
            ) from None
        raise ConfigError(
            f"{cert_key}: the certificate and key cannot be used ({exc.reason or exc}); "
            "give a PEM certificate chain, the client certificate first, and its unencrypted "
            "private key"
        ) from None
    except OSError as exc:  # removed or made unreadable between the read and the load
        raise ConfigError(f"{cert_key}: cannot be read ({exc.strerror or exc})") from None


def _read(path: Path, key: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{key}: {what} cannot be read ({exc.strerror or exc}); give a PEM file the "
            "bridge's user may read"
        ) from None


def cert_info(cert_file: Path) -> CertInfo:
    """Subject, issuer, fingerprint and end of validity of the first certificate in
    `cert_file` (after `load_client_cert` accepted it)."""
    match = _PEM_CERT.search(cert_file.read_bytes())
    assert match is not None  # load_client_cert checked it
    der = base64.b64decode(b"".join(match[1].split()))
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    decode = getattr(_ssl, "_test_decode_cert", None)  # CPython's own decoder of a PEM file
    decoded: dict[str, Any] = {}
    if decode is not None:
        try:
            decoded = decode(str(cert_file))
        except (ssl.SSLError, OSError, ValueError):
            decoded = {}
    not_after = decoded.get("notAfter")
    return CertInfo(
        subject=_name(decoded.get("subject", ())),
        issuer=_name(decoded.get("issuer", ())),
        fingerprint=fingerprint,
        not_after=(
            datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
            if isinstance(not_after, str)
            else None
        ),
    )


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


def _name(rdns: Any) -> str:
    parts = [f"{_SHORT.get(k, k)}={v}" for rdn in rdns for k, v in rdn]
    return ", ".join(parts) or "(unknown)"
