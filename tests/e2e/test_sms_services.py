"""`SERVICE=<number>@domain`: the services taken as SMS are a setting (SAP: the pager
services of transaction SA14, `SMS` by default, a customer's own such as `SMS2`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.intake.settings import SmtpSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import with_smtp
from tests.smtp_probe import RawSmtp


async def _rcpt(port: int, address: str) -> str:
    c = await RawSmtp.connect("127.0.0.1", port)
    await c.read_reply()
    await c.command("EHLO sap.example")
    assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
    reply = await c.command(f"RCPT TO:<{address}>")
    await c.close()
    return reply


@pytest.mark.parametrize(
    ("services", "address", "expected"),
    [
        (None, "SMS=+491701234567@eu.rsms.net", "250"),
        (None, "pager=+491701234567@eu.rsms.net", "250"),
        (None, "SMS2=+491701234567@eu.rsms.net", "550 5.1.3"),
        (("SMS", "SMS2"), "sms2=+491701234567@eu.rsms.net", "250"),
        (("SMS", "SMS2"), "PAGER=+491701234567@eu.rsms.net", "550 5.1.3"),
        (("SMS", "SMS2"), "FAX=+4930123456@eu.rsms.net", "550 5.1.3"),
    ],
)
async def test_the_services_taken_as_sms_are_a_setting(
    tmp_path: Path, services: tuple[str, ...] | None, address: str, expected: str
) -> None:
    settings = make_settings(tmp_path)
    if services is not None:
        settings = with_smtp(settings, sms_services=services)
    async with running_bridge(settings) as (_, ep):
        reply = await _rcpt(ep.smtp[1], address)
    assert reply.startswith(expected), reply
    if expected.startswith("550"):
        assert "addresses are not served here" in reply


def test_a_service_name_is_checked_and_upper_cased() -> None:
    assert SmtpSettings(sms_services=["sms", " Sms2 "]).sms_services == ("SMS", "SMS2")
    with pytest.raises(ValidationError, match="sms_services: 'SMS=' is no service name"):
        SmtpSettings(sms_services=["SMS="])
