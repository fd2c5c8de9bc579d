"""A renewed certificate is served without a restart, at each TLS door (SMTP STARTTLS,
HTTPS, the SMPP server's TLS port); a half-replaced pair keeps the old one; the expiry is
exported as `mailsms_tls_certificate_expiry_timestamp_seconds`."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme

from bridge.settings import Settings
from tests.helpers import running_bridge
from tests.security.common import client_context, greeted
from tests.smtp_probe import RawSmtp

CHECK = 0.05  # [server] tls_check_interval in these tests (seconds)


def _write(cert: trustme.LeafCert, cert_file: Path, key_file: Path | None) -> None:
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    if key_file is not None:
        key_file.write_bytes(cert.private_key_pem.bytes())


def _issue(ca: trustme.CA, days: int) -> trustme.LeafCert:
    return ca.issue_cert(
        "localhost", "127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=days)
    )


def _settings(tmp_path: Path, ca: trustme.CA, door: str) -> tuple[Settings, Path, Path]:
    from tests.conftest import make_settings

    cert_file, key_file = tmp_path / f"{door}-cert.pem", tmp_path / f"{door}-key.pem"
    _write(_issue(ca, 80), cert_file, key_file)
    s = make_settings(tmp_path)
    tls = {"tls_cert": cert_file, "tls_key": key_file}
    update: dict[str, object] = {
        "server": s.server.model_copy(update={"tls_check_interval": CHECK}),
        "http": s.http.model_copy(update={"enabled": True, "listen": "127.0.0.1:0"}),
    }
    if door == "smtp":
        update["smtp"] = s.smtp.model_copy(update={**tls, "plaintext_networks": ("127.0.0.1/32",)})
    elif door == "https":
        update["http"] = s.http.model_copy(update={**tls, "enabled": True, "listen": "127.0.0.1:0"})
    else:
        update["smpp_server"] = s.smpp_server.model_copy(update={**tls, "enabled": True, "port": 0})
    return s.model_copy(update=update), cert_file, key_file


Served = Callable[[], Awaitable[bytes]]


def _served(door: str, port: int, ca: trustme.CA) -> Served:
    """A new handshake with the door: the certificate it shows (DER)."""

    async def smtp() -> bytes:
        client = await greeted("127.0.0.1", port)
        try:
            await client.command("STARTTLS")
            await client.starttls(client_context(ca))
            return _peer(client.writer.get_extra_info("ssl_object"))
        finally:
            await client.close()

    async def direct() -> bytes:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca), server_hostname="localhost"
        )
        try:
            return _peer(writer.get_extra_info("ssl_object"))
        finally:
            writer.close()

    return smtp if door == "smtp" else direct


def _peer(ssl_object: ssl.SSLObject | None) -> bytes:
    assert ssl_object is not None
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode("ascii"))


async def _until(served: Served, expected: bytes, seconds: float = 10.0) -> bytes:
    deadline = asyncio.get_running_loop().time() + seconds
    seen = await served()
    while seen != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(CHECK)
        seen = await served()
    return seen


def _port(door: str, ep: object) -> int:
    where = {"smtp": "smtp", "https": "http", "smpp": "smpp"}[door]
    address = getattr(ep, where)
    assert address is not None
    return int(address[1])


async def _expiry(http: tuple[str, int], door: str, *, https: bool, ca: trustme.CA) -> float:
    """The gauge's value for `door`, read from /metrics."""
    scheme = "https" if https else "http"
    verify: ssl.SSLContext | bool = client_context(ca) if https else True
    async with httpx.AsyncClient(verify=verify, timeout=10) as client:
        text = (await client.get(f"{scheme}://localhost:{http[1]}/metrics")).text
    name = f'mailsms_tls_certificate_expiry_timestamp_seconds{{use="{door}"}} '
    lines = [line for line in text.splitlines() if line.startswith(name)]
    assert len(lines) == 1, text[-2000:]
    return float(lines[0].split()[-1])


@pytest.mark.parametrize("door", ["smtp", "https", "smpp"])
async def test_a_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, ca: trustme.CA, door: str
) -> None:
    settings, cert_file, key_file = _settings(tmp_path, ca, door)
    async with running_bridge(settings) as (_, ep):
        served = _served(door, _port(door, ep), ca)
        old = await served()
        before: RawSmtp | None = None
        if door == "smtp":  # a session in TLS before the renewal keeps working after it
            before = await greeted("127.0.0.1", _port(door, ep))
            await before.command("STARTTLS")
            await before.starttls(client_context(ca))
        renewed = _issue(ca, 85)
        _write(renewed, cert_file, key_file)
        assert old != _der(renewed)
        assert await _until(served, _der(renewed)) == _der(renewed)
        if before is not None:
            assert (await before.command("EHLO again")).startswith("250")
            await before.close()
        assert ep.http is not None
        expected = (datetime.now(UTC) + timedelta(days=85)).timestamp()
        value = await _expiry(ep.http, door, https=door == "https", ca=ca)
        assert abs(value - expected) < 120, (value, expected)


@pytest.mark.parametrize("door", ["smtp", "https"])
async def test_a_half_replaced_pair_keeps_the_old_certificate_until_the_key_follows(
    tmp_path: Path, ca: trustme.CA, door: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings, cert_file, key_file = _settings(tmp_path, ca, door)
    caplog.set_level(logging.INFO, "bridge.intake")
    async with running_bridge(settings) as (_, ep):
        served = _served(door, _port(door, ep), ca)
        old = await served()
        renewed = _issue(ca, 85)
        _write(renewed, cert_file, None)  # the certificate first, its key still the old one
        for _ in range(10):
            await asyncio.sleep(CHECK)
            assert await served() == old  # every new handshake still succeeds, as before
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "cannot be used" in r.getMessage()
        ]
        assert len(warnings) == 1, warnings  # once for this pair, not at every check
        assert str(cert_file) in warnings[0] and str(key_file) in warnings[0]
        _write(renewed, cert_file, key_file)  # the key follows
        assert await _until(served, _der(renewed)) == _der(renewed)
        taken = [r.getMessage() for r in caplog.records if "renewed" in r.getMessage()]
        assert taken and str(cert_file) in taken[-1]


async def test_the_expiry_is_exported_and_warned_of(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    settings, cert_file, key_file = _settings(tmp_path, ca, "smtp")
    soon = _issue(ca, 10)
    _write(soon, cert_file, key_file)
    caplog.set_level(logging.INFO, "bridge.intake")
    async with running_bridge(settings) as (_, ep):
        assert ep.http is not None
        value = await _expiry(ep.http, "smtp", https=False, ca=ca)
        assert abs(value - (datetime.now(UTC) + timedelta(days=10)).timestamp()) < 120
        await asyncio.sleep(5 * CHECK)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "expires soon" in r.getMessage()
    ]
    assert len(warnings) == 1, warnings  # at start, and not again before a day has passed
    assert str(cert_file) in warnings[0]
