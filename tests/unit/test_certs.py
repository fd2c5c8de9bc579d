"""bridge/certs.py: the one reader of certificate files, and where an expiry stands;
the watcher's gauge for a certificate it only watches (the mailer's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from bridge.certs import Expiry, FileStamp, cert_info, expiry
from bridge.intake.tls import CertWatcher
from bridge.metrics import Metrics

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("not_after", "state"),
    [
        (None, Expiry.UNKNOWN),
        (NOW + timedelta(days=60), Expiry.VALID),
        (NOW + timedelta(days=21, seconds=1), Expiry.VALID),
        (NOW + timedelta(days=21), Expiry.EXPIRES_SOON),
        (NOW + timedelta(seconds=1), Expiry.EXPIRES_SOON),
        (NOW, Expiry.EXPIRED),
        (NOW - timedelta(days=3), Expiry.EXPIRED),
    ],
)
def test_where_an_expiry_stands(not_after: datetime | None, state: Expiry) -> None:
    assert expiry(not_after, NOW) is state


def _cert_file(tmp_path: Path, days: int) -> tuple[Path, datetime]:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    leaf = trustme.CA().issue_cert("mail.example", not_after=end)
    path = tmp_path / "cert.pem"
    path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return path, end


def test_a_certificate_file_is_read_once_for_all(tmp_path: Path) -> None:
    path, end = _cert_file(tmp_path, 40)
    info = cert_info(path)
    assert info.not_after == end
    assert info.serial and info.subject != "(unknown)"
    assert len(info.fingerprint.split(":")) == 32
    assert f"valid until {end:%Y-%m-%d %H:%M} UTC" in str(info)


def test_a_file_without_a_certificate_says_so(tmp_path: Path) -> None:
    path = tmp_path / "key-only.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        cert_info(path)


def test_a_rewritten_file_has_another_stamp(tmp_path: Path) -> None:
    path, _ = _cert_file(tmp_path, 40)
    before = FileStamp.of(path)
    path.write_bytes(path.read_bytes() + b"\n")
    assert FileStamp.of(path) != before
    assert FileStamp.of(tmp_path / "missing.pem") is None


def test_the_mailers_certificate_expiry_is_a_gauge(tmp_path: Path) -> None:
    path, end = _cert_file(tmp_path, 40)
    metrics = Metrics.unregistered()
    CertWatcher(metrics).watch("mailer", path)
    value = metrics.registry.get_sample_value(
        "mailsms_tls_certificate_expiry_timestamp_seconds", {"use": "mailer"}
    )
    assert value == end.timestamp()
