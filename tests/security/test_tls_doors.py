"""T1 for the other TLS doors: the HTTPS listener (`[http] tls_cert`, API keys and portal
passwords) and the SMPP server's TLS port (`[smpp_server] tls_cert`) offer what the SMTP
listener offers (`bridge.intake.tls.server_context`, tests/security/test_tls.py): TLS 1.2+,
AEAD ciphers with forward secrecy, key exchange on X25519, P-256 or P-384 only.

Python's defaults, which both doors used before, also accept the CBC suites
ECDHE-RSA-AES*-SHA256/SHA384 (an sslyze "Mozilla intermediate" failure) and P-521. The
client is Python's `ssl`; the certificate has an RSA key, so that an ECDHE-RSA suite is one
the server could choose if its cipher list allowed it. A TLS 1.2 client that knows no
ECDHE (older SAP crypto libraries) gets a DHE suite on RFC 7919's 2048-bit group.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from bridge.http.settings import HttpSettings
from bridge.settings import Settings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


def _rsa_certificate(tmp_path: Path, ca: trustme.CA) -> tuple[Path, Path]:
    issued = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA)
    cert, key = tmp_path / "door.crt", tmp_path / "door.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def _https(tmp_path: Path, cert: Path, key: Path) -> Settings:
    door = HttpSettings(enabled=True, listen="127.0.0.1:0", tls_cert=cert, tls_key=key)
    return make_settings(tmp_path, http=door)


def _smpps(tmp_path: Path, cert: Path, key: Path) -> Settings:
    door = SmppServerSettings(enabled=True, host="127.0.0.1", port=0, tls_cert=cert, tls_key=key)
    return make_settings(tmp_path, smpp_server=door)


def _default(context: ssl.SSLContext) -> None:
    pass


def _tls12_gcm(context: ssl.SSLContext) -> None:
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")


def _tls12_dhe(context: ssl.SSLContext) -> None:  # a TLS 1.2 client without ECDHE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("DHE-RSA-AES128-GCM-SHA256")


def _tls12_cbc(context: ssl.SSLContext) -> None:
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-SHA256")


def _tls12_cbc_sha384(context: ssl.SSLContext) -> None:
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES256-SHA384")


def _tls11(context: ssl.SSLContext) -> None:
    with warnings.catch_warnings():  # TLSVersion.TLSv1_1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 offers no TLS 1.1 suite above security level 0: without this the client
    # would give up before it sent anything, and the refusal would prove nothing
    context.set_ciphers("DEFAULT:@SECLEVEL=0")


def _p521(context: ssl.SSLContext) -> None:
    context.set_ecdh_curve("secp521r1")


OFFERS: list[tuple[str, Callable[[ssl.SSLContext], None], str]] = [
    ("the client's defaults", _default, "ok TLSv1.3"),
    ("TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256", _tls12_gcm, "ok TLSv1.2"),
    ("TLS 1.2, DHE-RSA-AES128-GCM-SHA256 (finite-field DHE)", _tls12_dhe, "ok TLSv1.2"),
    ("TLS 1.2, ECDHE-RSA-AES128-SHA256 (CBC)", _tls12_cbc, "refused"),
    ("TLS 1.2, ECDHE-RSA-AES256-SHA384 (CBC)", _tls12_cbc_sha384, "refused"),
    ("TLS 1.1", _tls11, "refused"),
    ("key exchange on P-521 only", _p521, "refused"),
]


async def _handshake(port: int, context: ssl.SSLContext) -> str:
    """'ok <protocol>' when the handshake completes, 'refused' when the server ends it,
    otherwise what went wrong (e.g. the client could not even offer what it was given)."""
    try:
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
            )
    except ConnectionError:  # asyncio's server drops a failed handshake without an alert
        return "refused"
    except ssl.SSLEOFError:
        return "refused"
    except ssl.SSLError as exc:
        if str(exc.reason).startswith(("SSLV3_ALERT_", "TLSV1_ALERT_")):  # the server's alert
            return "refused"
        return f"client error: {exc}"
    protocol = writer.get_extra_info("ssl_object").version()
    writer.close()
    return f"ok {protocol}"


@pytest.mark.parametrize("door", ["http", "smpp"])
async def test_t1_https_and_smpps_offer_only_modern_parameters(
    tmp_path: Path, ca: trustme.CA, door: str
) -> None:
    cert, key = _rsa_certificate(tmp_path, ca)
    settings = (_https if door == "http" else _smpps)(tmp_path, cert, key)
    wrong = []
    async with running_bridge(settings) as (_, ep):
        address = ep.http if door == "http" else ep.smpp
        assert address is not None
        for name, limit, expected in OFFERS:
            context = ssl.create_default_context()
            ca.configure_trust(context)
            limit(context)
            outcome = await _handshake(address[1], context)
            if outcome != expected:
                wrong.append((name, outcome))
    assert wrong == []
