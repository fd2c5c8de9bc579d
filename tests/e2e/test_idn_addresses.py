"""A mail address with an internationalized domain, in either spelling, end to end.

The bridge stores addresses in the form an MTA uses (the domain as its A-label,
`anna@xn--bro-hoa.example`); it offers SMTPUTF8, so a mail client may write the same
address with the U-label (`anna@büro.example`). Both spellings are the same user: the
mail is accepted (it was `550 unknown sender` in the U-label spelling), and its status
mail goes to the address the relay can take.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from bridge.db.store import run_sync
from bridge.notices.settings import MailerSettings
from bridge.tenants.admin import add_user
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge, wait_for
from tests.peers.smtp_relay import smtp_relay

PHONE = "+491701234567"


async def _status_mail(
    tmp_path: Path, user: str, sender: str, body: str, options: list[str]
) -> tuple[list[list[str]], EmailMessage]:
    """`user` added to the demo customer (notify all); a mail from `sender` over SMTP
    (MAIL parameters `options`): the relay's envelope recipients and the status mail."""
    async with smtp_relay() as (relay, relay_port):
        mailer = MailerSettings(mode="smtp", relay_port=relay_port, tls="none")
        settings = make_settings(tmp_path, mailer=mailer)
        async with running_bridge(settings) as (bridge, ep):
            assert bridge.store is not None
            run_sync(
                bridge.store.engine,
                lambda c: add_user(c, user, "demo", settings={"notify": "all"}),
            )
            mail = make_mail(sender=sender, to=f"{PHONE}@eu.rsms.net", body=body)
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                errors, reply = await smtp.sendmail(
                    sender, [f"{PHONE}@eu.rsms.net"], mail, mail_options=options
                )
            assert not errors and reply.startswith("2."), reply
            [status] = await wait_for(lambda: relay.messages(), within=15)
    return [e.rcpt_tos for e in relay.accepted], status


@pytest.mark.parametrize("spelling", ["anna@büro.example", "anna@xn--bro-hoa.example"])
async def test_a_user_writes_in_either_spelling_and_gets_the_status_mail(
    tmp_path: Path, spelling: str
) -> None:
    rcpts, status = await _status_mail(
        tmp_path, "Anna@Büro.example", spelling, "Grüße", ["SMTPUTF8"]
    )
    assert rcpts == [["anna@xn--bro-hoa.example"]]
    assert status["To"].addresses[0].addr_spec == "anna@xn--bro-hoa.example"


async def test_a_sender_under_an_intranet_domain_is_a_user_who_sends_and_hears_back(
    tmp_path: Path,
) -> None:
    # SAP sends from <user>@<its default domain>, often an Active Directory name under
    # .local: such a sender could not be added (email-validator calls it special-use), so
    # every mail from it got 550 at MAIL.
    sender = "JDOE@sap-prd.corp.local"
    rcpts, status = await _status_mail(tmp_path, sender, sender, "Pump P-101", [])
    assert rcpts == [[sender]]  # as it wrote itself
    assert status["To"].addresses[0].addr_spec == sender
