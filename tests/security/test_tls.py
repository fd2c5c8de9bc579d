"""T1: the STARTTLS offer, probed with `openssl s_client`: TLS 1.2+, AEAD ciphers with forward
secrecy, and only the key-exchange groups X25519, P-256 and P-384."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import trustme

from tests.helpers import running_bridge
from tests.security.common import rsa_tls_settings, tls_settings

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


async def _handshake(port: int, *args: str) -> tuple[bool, str]:
    """Does `openssl s_client -starttls smtp ARGS` complete a handshake with the listener?"""
    process = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}", "-brief",
        *args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(b"QUIT\r\n"), 30)
    text = out.decode("utf-8", "replace")
    return process.returncode == 0 and "CONNECTION ESTABLISHED" in text, text


OFFERS = [
    (("-groups", "X25519"), True),
    (("-groups", "P-256"), True),
    (("-groups", "P-384"), True),
    (("-tls1_2", "-groups", "P-256"), True),
    (("-groups", "X448"), False),
    (("-groups", "P-521"), False),
    (("-groups", "ffdhe2048"), False),
    (("-tls1_2", "-groups", "X448:P-521"), False),
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"), False),  # CBC
    (("-tls1_2", "-cipher", "AES128-GCM-SHA256"), False),  # no forward secrecy
    (("-tls1_1",), False),
]


async def test_t1_inbound_tls_offers_only_modern_parameters(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        results = [(args, *await _handshake(ep.smtp[1], *args)) for args, _ in OFFERS]
    wrong = [
        (args, ok, text[-300:])
        for (args, ok, text), (_, expected) in zip(results, OFFERS, strict=True)
        if ok != expected
    ]
    assert wrong == []


async def test_t1_a_tls12_client_without_ecdhe_gets_dhe_on_the_rfc7919_group(
    tmp_path: Path, ca: trustme.CA
) -> None:
    # Older SAP crypto libraries speak TLS 1.2 without ECDHE: the DHE suites of the list
    # need a group, which OpenSSL does not pick by itself (without one: no shared cipher).
    settings = rsa_tls_settings(tmp_path, ca)
    async with running_bridge(settings) as (_, ep):
        ok, text = await _handshake(ep.smtp[1], "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")
        assert ok, text[-300:]
        assert "Ciphersuite: DHE-RSA-AES128-GCM-SHA256" in text, text
        assert "Server Temp Key: DH, 2048 bits" in text, text
        ok, text = await _handshake(ep.smtp[1], "-tls1_2", "-cipher", "DHE-RSA-AES128-SHA256")
        assert not ok  # and still no CBC


def test_t1_the_group_list_is_set_on_the_context() -> None:
    import ssl

    from bridge.intake.tls import GROUPS, limit_groups

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert limit_groups(context, GROUPS)
    assert not limit_groups(context, "no-such-group")


@pytest.fixture(autouse=True)
def _openssl_installed() -> None:
    # scripts/test-deps.sh installs openssl; without it this module cannot probe anything.
    assert subprocess.run(["openssl", "version"], capture_output=True).returncode == 0
