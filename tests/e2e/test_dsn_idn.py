"""DSNs about an address an SMTPUTF8 client wrote with non-ASCII characters, end to end.

A client writes the bridge's internationalized domain (`sms.xn--bro-hoa.example`) as it
reads, `sms.büro.example`, in the ORCPT of an SMTPUTF8 mail: as an `rfc822` address in
UTF-8, or of RFC 6533's `utf-8` type (7-bit, `\\x{FC}`, or in UTF-8). The DSN's
Original-Recipient is ASCII a DSN reader understands (RFC 6533 section 3): the `rfc822`
address with the domain's A-label (the same address), a `utf-8` one in its 7-bit form.
It was xtext of the UTF-8 octets (`rfc822;+2B4917…@sms.b+C3+BCro.example`) or the
client's text with a raw `+`, which the `utf-8` type does not allow.

(A RCPT TO address written with the U-label is the Final-Recipient with the A-label:
tests/e2e/test_idn_domains.py; tests/unit/test_notice_7bit.py covers the forms.)
"""

from __future__ import annotations

import email
import re
from email import policy
from email.message import Message
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge, wait_for
from tests.smtp_probe import transaction

A_LABEL = "sms.xn--bro-hoa.example"
RCPT = f"+491701234567@{A_LABEL}"


def _dsns(maildir: Path) -> list[bytes]:
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return [d for d in (p.read_bytes() for p in files) if b"multipart/report" in d]


def _status_fields(data: bytes) -> dict[str, str]:
    """The delivery-status fields as a DSN reader reads them (unfolded, not decoded)."""
    parsed = email.message_from_bytes(data, policy=policy.compat32)
    [status] = [p for p in parsed.walk() if p.get_content_type() == "message/delivery-status"]
    fields: dict[str, str] = {}
    for block in cast("list[Message]", status.get_payload()):
        fields.update((name, re.sub(r"\r?\n(?=[ \t])", "", str(v))) for name, v in block.items())
    return fields


@pytest.mark.parametrize(
    ("orcpt", "field"),
    [
        ("rfc822;+491701234567@sms.büro.example", f"rfc822;{RCPT}"),
        (
            "utf-8;+491701234567@sms.b\\x{FC}ro.example",
            "utf-8;\\x{2B}491701234567@sms.b\\x{FC}ro.example",
        ),
        (
            "utf-8;+491701234567@sms.büro.example",
            "utf-8;\\x{2B}491701234567@sms.b\\x{FC}ro.example",
        ),
    ],
)
async def test_a_dsn_names_an_internationalized_orcpt_in_ascii(
    tmp_path: Path, orcpt: str, field: str
) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"smtp": settings.smtp.model_copy(update={"domains": (A_LABEL,)})}
    )
    async with running_bridge(settings) as (_, ep):
        reply = await transaction(
            *ep.smtp,
            "MAIL FROM:<demo@example.com> SMTPUTF8 RET=HDRS ENVID=E1",
            f"RCPT TO:<{RCPT}> NOTIFY=SUCCESS ORCPT={orcpt}",
            make_mail(to=RCPT, subject="Pumpe P-101"),
        )
        assert reply.startswith("250"), reply
        [data] = await wait_for(lambda: _dsns(settings.mailer.maildir), within=15)
    assert data.isascii()
    fields = _status_fields(data)
    assert (fields["Action"], fields["Status"]) == ("delivered", "2.0.0")
    assert fields["Final-Recipient"] == f"rfc822; {RCPT}"
    assert fields["Original-Recipient"] == field
    assert not [v for v in fields.values() if "=?" in v]
