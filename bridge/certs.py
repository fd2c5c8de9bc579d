"""Reading a certificate file: who it names, until when it is valid, whether it changed.

The one reader of certificates in the bridge: the doors' certificate watcher
(`bridge/intake/tls.py`, for the SMTP, HTTPS and SMPP servers' certificates) and the
mailer's client certificate (`bridge/notices/client_tls.py`) both use `cert_info`.
The first certificate of a PEM file is the one described (in a chain file, the
server's or client's own; the CA certificates follow it). Decoding is CPython's own
(`_ssl._test_decode_cert`, what `ssl.SSLSocket.getpeercert` gives for a peer).
"""

from __future__ import annotations

import _ssl
import base64
import binascii
import enum
import hashlib
import os
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----")
EXPIRY_WARNING = timedelta(days=21)  # a certificate this close to its end is warned about


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the log says of a certificate."""

    subject: str  # "CN=mailsms.example.com, O=Example"
    issuer: str
    fingerprint: str  # SHA-256 of the DER form, AB:CD:…
    not_after: datetime | None
    serial: str = ""

    def __str__(self) -> str:
        until = f", valid until {self.not_after:%Y-%m-%d %H:%M} UTC" if self.not_after else ""
        return f"{self.subject} (issuer {self.issuer}; SHA-256 {self.fingerprint}{until})"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells that a file was replaced or rewritten: (mtime, size, inode)."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        """The file's stamp; None when it cannot be read (missing, ...)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


class Expiry(enum.Enum):
    """How close a certificate is to its end."""

    VALID = "valid"
    EXPIRES_SOON = "expires_soon"  # within EXPIRY_WARNING
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # no notAfter could be read


def expiry(
    not_after: datetime | None, now: datetime, warning: timedelta = EXPIRY_WARNING
) -> Expiry:
    """Where `not_after` stands at `now`."""
    if not_after is None:
        return Expiry.UNKNOWN
    if not_after <= now:
        return Expiry.EXPIRED
    if not_after - now <= warning:
        return Expiry.EXPIRES_SOON
    return Expiry.VALID


def cert_info(cert_file: Path) -> CertInfo:
    """Subject, issuer, fingerprint, serial and end of validity of the first certificate in
    `cert_file`; `OSError` when it cannot be read, `ValueError` when it holds none."""
    match = PEM_CERT.search(cert_file.read_bytes())
    if match is None:
        raise ValueError(f"{cert_file}: holds no PEM certificate")
    try:
        der = base64.b64decode(b"".join(match[1].split()), validate=True)
    except binascii.Error:
        raise ValueError(f"{cert_file}: the PEM certificate is not valid base64") from None
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
        serial=str(decoded.get("serialNumber", "")),
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
