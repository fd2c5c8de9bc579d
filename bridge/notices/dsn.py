"""Delivery status notifications: an RFC 3464 `multipart/report` built from a dsn notice.

The report has three parts: a human-readable text, the `message/delivery-status`
fields (Reporting-MTA, Original-Envelope-Id, Arrival-Date; Original-Recipient,
Final-Recipient — the address exactly as the client wrote it, e.g. SAP's
`SMS=+49…@domain` — Action, Status, Diagnostic-Code, Last-Attempt-Date), and the
original header block (RET=HDRS) or the whole original mail (RET=FULL), 7-bit
(message/global-headers or message/global for one with 8-bit octets; `mime._returned`).
It is sent from the null sender; `In-Reply-To`/`References` point at the original
Message-ID.
Values from the client or the SMSC pass `headers` (ENVID and ORCPT that are not
printable ASCII are written xtext-encoded), so a CR or LF in them cannot hold the DSN.
`mime.delivery_report` builds the message.

Every field of message/delivery-status is ASCII (RFC 3464; RFC 6533 allows UTF-8 only
in message/global-delivery-status, which few DSN readers know), written so a reader
gets the value back: an address an SMTPUTF8 client wrote with a U-label domain
(`SMS=+49…@sms.büro.example`, in an ORCPT) is the same address with the A-label
(`rfc822; SMS=+49…@sms.xn--bro-hoa.example`, IDNA); one whose local part is not ASCII,
and an ORCPT of the `utf-8` type, is of RFC 6533's `utf-8` type in its 7-bit form, each
character outside printable ASCII (and `\\`, `+`, `=`) as `\\x{HEX}`
(`utf-8; j\\x{F6}rg@example.com`; `_address`, `_orcpt`). An
SMSC's text in the Diagnostic-Code is ASCII too: a letter with an accent as its base
letter (ä as ae, ß as ss), any other character as `\\x{HEX}` (`_ascii_text`); the
human-readable part has the text as it came. Never RFC 2047 encoded words, which no
DSN reader decodes in these fields.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Mapping
from email.message import Message
from typing import Any

from bridge.domains import DomainError, address_domain
from bridge.notices import headers, mime

_SUBJECT = {"SUCCESS": "Success", "FAILURE": "Failure", "DELAY": "Delay"}
_HUMAN = {
    "SUCCESS": "Your SMS to {msisdn} was delivered to the handset.",
    "FAILURE": "Your SMS to {msisdn} could NOT be delivered.\n\nReason: {diagnostic}",
    "DELAY": (
        "Your SMS to {msisdn} has not been delivered yet; the bridge keeps trying.\n\n"
        "Reason for the delay: {diagnostic}\n\nYou need not do anything now."
    ),
}


_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
# German's own spellings of its letters without the marks; other letters lose the mark
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_GERMAN_SZ = str.maketrans({"ß": "ss", "ẞ": "SS"})
_CAPITALS = {"Ä": "AE", "Ö": "OE", "Ü": "UE"}
_CAPITAL_UMLAUT = re.compile(r"(?<=[A-ZÄÖÜ])[ÄÖÜ]|[ÄÖÜ](?=[A-ZÄÖÜ])")  # ÄNDERUNG: AENDERUNG


def _orcpt(value: str) -> str:
    """Original-Recipient: `type;address`. An `rfc822` address as given when printable
    ASCII, as `_address` writes it when it has characters that are not ASCII; a `utf-8`
    one (sent 7-bit or in UTF-8) in the 7-bit form; else (control characters, another
    type) xtext-encoded as RFC 3461 sends it."""
    if not value:
        return ""
    addr_type, _, address = value.partition(";")
    addr_type = headers.text(addr_type, 20).strip()
    if addr_type.lower() == "utf-8":  # stays of its type, in the 7-bit form
        return f"utf-8;{_utf8_xtext(_UTF8_ESCAPE.sub(lambda m: _char(m.group(1)), address))}"
    if addr_type.lower() == "rfc822" and not address.isascii():
        return _address(address, sep=";")
    return f"{addr_type};{headers.xtext(address)}"


def _char(hexpoint: str) -> str:
    code = int(hexpoint, 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"


def _address(address: str, *, sep: str = "; ") -> str:
    """An address as a DSN field value in ASCII (RFC 6533 section 3): `rfc822` as it is
    when printable ASCII, or with the domain's A-labels when only the domain is not
    ASCII; else of the `utf-8` type (`_utf8_xtext`)."""
    local, at, domain = address.rpartition("@")
    if address.isascii() and address.isprintable():
        return f"rfc822{sep}{address}"
    if at and local.isascii() and local.isprintable():
        try:  # the A-label by the rules the SMS domains are read with (bridge.domains)
            return f"rfc822{sep}{local}@{address_domain(domain)}"
        except DomainError:  # not a domain IDNA can write: the address as utf-8 below
            pass
    return f"utf-8{sep}{_utf8_xtext(address)}"


def _utf8_xtext(address: str) -> str:
    """RFC 6533's utf-8-addr-xtext: `\\x{HEX}` for each character that is not printable
    ASCII, and for `\\`, `+` and `=`."""
    return "".join(
        ch if "!" <= ch <= "~" and ch not in "\\+=" else f"\\x{{{ord(ch):X}}}" for ch in address
    )


def _ascii_text(value: str) -> str:
    """A text in a DSN field (the Diagnostic-Code) as ASCII: German letters as German
    writes them without marks (ä ae, ß ss), other letters without their marks (é e),
    any other character that is not ASCII as `\\x{HEX}`."""
    if value.isascii():
        return value
    value = _CAPITAL_UMLAUT.sub(lambda m: _CAPITALS[m.group()], value.translate(_GERMAN_SZ))
    plain = unicodedata.normalize("NFKD", value.translate(_GERMAN))
    return "".join(
        ch if ch.isascii() else f"\\x{{{ord(ch):X}}}"
        for ch in plain
        if not unicodedata.combining(ch)
    )


def build_dsn(context: Mapping[str, Any], *, reporting_mta: str, recipient: str) -> Message:
    """The DSN message for one order (one recipient of the original mail)."""
    event = str(context["event"])
    final_recipient = headers.text(context["final_recipient"])
    head = mime.head(
        ("Mail Delivery System", f"MAILER-DAEMON@{reporting_mta}"),
        [("", recipient)],
        f"Delivery Status Notification ({_SUBJECT[event]}) for {final_recipient}",
        domain=reporting_mta,
        in_reply_to=context.get("in_reply_to"),
    )
    human = _HUMAN[event].format(msisdn=context["msisdn"], diagnostic=context["diagnostic"])
    human += (
        f"\n\nRecipient: {context['final_recipient']}\nOrder: {context['order_id']}"
        f"\nAction: {context['action']} ({context['status']})\n"
    )
    per_message = [
        ("Reporting-MTA", f"dns; {headers.text(reporting_mta)}"),
        ("Original-Envelope-Id", headers.xtext(context.get("envid"))),
        ("Arrival-Date", headers.text(context["arrival_date"])),
    ]
    per_recipient = [
        ("Original-Recipient", _orcpt(str(context.get("orcpt") or ""))),
        ("Final-Recipient", _address(final_recipient)),
        ("Action", headers.text(context["action"])),
        ("Status", headers.text(context["status"])),
        ("Diagnostic-Code", _ascii_text(headers.text(context["diagnostic"], 500))),
        ("Last-Attempt-Date", headers.text(context["last_attempt_date"])),
    ]
    original = base64.b64decode(str(context.get("original") or ""))
    return mime.delivery_report(
        head, human, per_message, per_recipient, original, full=context.get("ret") == "FULL"
    )
