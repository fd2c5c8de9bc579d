"""The bridge's SMS domain written either way, through the listener with an SMTPUTF8 client.

A company's SMS domain may be internationalized: `sms.büro.example`, whose ASCII form (the
A-label) is `sms.xn--bro-hoa.example`. An SMTPUTF8 client (Outlook/Exchange, a mail app)
writes it as it reads, an MTA in ASCII; the settings may name it either way, in any case.
Every spelling is the same domain: the number, the SAP service address, a preview and a
list at it are taken (before, a U-label RCPT got `550 5.1.3 … is not a mobile number`
whichever way the domain was configured). A domain the bridge does not serve is told so
(`550 5.1.2`), one that is no domain name at all is told what is wrong with it and how to
write it (`550 5.1.3`). An ASCII domain takes the fast path: no IDNA conversion at RCPT.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.domains import _idna_form
from bridge.intake.settings import SmtpSettings
from bridge.lists.store import Member, create_list, put_members
from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings
from bridge.tenants.admin import DEMO_CUSTOMER
from tests.conftest import make_settings
from tests.e2e.test_dsn_idn import _dsns, _status_fields
from tests.helpers import running_bridge, wait_for
from tests.smtp_probe import transaction

PHONE = "+491701234567"
A_LABEL = "sms.xn--bro-hoa.example"
U_LABEL = "sms.büro.example"
SENDER = "demo@example.com"


def _served(tmp_path: Path, *domains: str, **smtp: Any) -> Settings:
    """The test settings serving `domains`, read as the settings file is (validated)."""
    settings = make_settings(tmp_path)
    changed = {**settings.smtp.model_dump(), "domains": list(domains), **smtp}
    return settings.model_copy(update={"smtp": SmtpSettings.model_validate(changed)})


async def _rcpts(port: int, *addresses: str) -> list[str]:
    """The listener's reply to each RCPT of one SMTPUTF8 transaction (nothing sent)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        assert smtp.supports_extension("smtputf8")
        await smtp.mail(SENDER, options=["SMTPUTF8"], encoding="utf-8")
        replies = []
        for address in addresses:
            try:
                answer = await smtp.rcpt(address, encoding="utf-8")
            except aiosmtplib.SMTPRecipientRefused as exc:
                replies.append(f"{exc.code} {exc.message}")
            else:
                replies.append(f"{answer.code} {answer.message}")
        await smtp.rset()
    return replies


def _utf8_mail(to: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = "Pumpe P-101"
    msg["Message-ID"] = "<idn-1@client.example>"
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTPUTF8)


@pytest.mark.parametrize(
    ("configured", "written"),
    [
        (A_LABEL, U_LABEL),  # the Exchange user's company SMS domain, configured in ASCII
        (U_LABEL, A_LABEL),  # an MTA writes the A-label, the settings the U-label
        ("SMS.Büro.Example", "Sms.BÜRO.example"),  # any case, either side
        ("SMS.XN--BRO-HOA.EXAMPLE", "sms.büro.example"),
    ],
)
async def test_a_number_at_the_domain_in_either_spelling_becomes_an_sms(
    tmp_path: Path, configured: str, written: str
) -> None:
    settings = _served(tmp_path, configured)
    rcpt = f"{PHONE}@{written}"
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            errors, reply = await smtp.sendmail(
                SENDER, [rcpt], _utf8_mail(rcpt, "Druck zu hoch"), mail_options=["SMTPUTF8"]
            )
        assert errors == {} and reply.startswith("2.0.0"), reply
        [sms] = await wait_for(lambda: read_inbox(settings.sandbox.inbox, PHONE), within=15)
    assert "Druck zu hoch" in sms.text


async def test_the_service_preview_and_list_addresses_at_the_u_label_are_taken(
    tmp_path: Path,
) -> None:
    settings = _served(tmp_path, "eu.rsms.net", A_LABEL)
    async with running_bridge(settings) as (_, ep):
        engine = open_engine(settings.database_url)
        try:
            list_id = run_sync(engine, create_list, DEMO_CUSTOMER, "team", [])
            run_sync(engine, put_members, list_id, [Member(PHONE, "Anna", "Berg", {})])
        finally:
            engine.dispose()
        replies = await _rcpts(
            ep.smtp[1],
            f"SMS={PHONE}@{U_LABEL}",  # SAPconnect's service address
            f"preview+{PHONE}@SMS.Büro.example",
            f"team@{U_LABEL}",
        )
    assert replies == ["250 2.1.5 Recipient ok"] * 3, replies


async def test_a_reserved_domain_is_matched_in_either_spelling(tmp_path: Path) -> None:
    # domain_customers names the domain as the U-label, domains as the A-label: one domain
    settings = _served(tmp_path, "eu.rsms.net", A_LABEL, domain_customers={U_LABEL: "sap-prd"})
    assert settings.smtp.domain_customers == {A_LABEL: "sap-prd"}
    async with running_bridge(settings) as (_, ep):
        replies = await _rcpts(ep.smtp[1], f"{PHONE}@{U_LABEL}", f"{PHONE}@{A_LABEL}")
    assert [r[:9] for r in replies] == ["550 5.7.1"] * 2, replies


async def test_a_domain_the_bridge_does_not_serve_is_told_so(tmp_path: Path) -> None:
    settings = _served(tmp_path, A_LABEL)
    async with running_bridge(settings) as (_, ep):
        replies = await _rcpts(
            ep.smtp[1], f"{PHONE}@sms.bürö.example", f"{PHONE}@elsewhere.example"
        )
    for reply, written in zip(replies, ("sms.bürö.example", "elsewhere.example"), strict=True):
        assert reply == (
            f"550 5.1.2 The domain of <{PHONE}@{written}> is not a domain this bridge serves; "
            f"write <number>@{A_LABEL}"
        ), reply


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("sms.☕.example", "codepoint U+2615 at position 1 of '☕' not allowed"),
        ("sms.-büro.example", "label must not start or end with a hyphen"),
        ("sms.b\u200dro.example", "joiner U+200D not allowed at position 2"),
        ("büro", "a domain has at least two labels"),
        ("sms.bü_ro.example", "codepoint U+005F not allowed"),
        ("sms.bu_ro.example", "the label 'bu_ro' has '_' (U+005F)"),
    ],
)
async def test_a_domain_that_is_no_domain_name_is_told_how_to_write_it(
    tmp_path: Path, domain: str, why: str
) -> None:
    settings = _served(tmp_path, A_LABEL)
    async with running_bridge(settings) as (_, ep):
        [reply] = await _rcpts(ep.smtp[1], f"{PHONE}@{domain}")
    assert reply.startswith(
        f"550 5.1.3 The domain of <{PHONE}@{domain}> is not a valid domain name ("
    ), reply
    assert why in reply, reply
    assert reply.endswith(
        "; check its spelling, or write it in ASCII (an internationalized label as its xn-- "
        f"A-label), e.g. <number>@{A_LABEL}"
    ), reply
    assert "mobile number" not in reply


async def test_an_ascii_domain_is_matched_as_before_without_an_idna_conversion(
    tmp_path: Path,
) -> None:
    settings = _served(tmp_path, "eu.rsms.net", A_LABEL)
    async with running_bridge(settings) as (_, ep):
        before = _idna_form.cache_info()
        replies = await _rcpts(
            ep.smtp[1],
            f"{PHONE}@eu.rsms.net",
            f"{PHONE}@EU.RSMS.NET",
            f"{PHONE}@SMS.XN--BRO-HOA.EXAMPLE",  # an A-label in any case is ASCII too
            "hello@eu.rsms.net",
        )
        after = _idna_form.cache_info()
    assert replies[:3] == ["250 2.1.5 Recipient ok"] * 3, replies
    assert replies[3].startswith("550 5.1.3 <hello@eu.rsms.net> is not a mobile number"), replies
    assert (after.hits, after.misses) == (before.hits, before.misses)


async def test_a_dsn_about_a_u_label_rcpt_names_it_with_the_a_label(tmp_path: Path) -> None:
    # the RCPT as written is the Final-Recipient: in ASCII, as RFC 6533 section 3 has it
    settings = _served(tmp_path, A_LABEL)
    rcpt = f"{PHONE}@{U_LABEL}"
    async with running_bridge(settings) as (_, ep):
        reply = await transaction(
            *ep.smtp,
            f"MAIL FROM:<{SENDER}> SMTPUTF8 RET=HDRS",
            f"RCPT TO:<{rcpt}> NOTIFY=SUCCESS",
            _utf8_mail(rcpt, "Druck zu hoch"),
        )
        assert reply.startswith("250"), reply
        [data] = await wait_for(lambda: _dsns(settings.mailer.maildir), within=15)
    assert data.isascii()
    fields = _status_fields(data)
    assert (fields["Action"], fields["Status"]) == ("delivered", "2.0.0")
    assert fields["Final-Recipient"] == f"rfc822; {PHONE}@{A_LABEL}"
