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
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from email.message import Message
from typing import Any

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


def _orcpt(value: str) -> str:
    """`type;address` with the address as given when printable, else xtext-encoded."""
    if not value:
        return ""
    addr_type, _, address = value.partition(";")
    return f"{headers.text(addr_type, 20)};{headers.xtext(address)}"


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
        ("Final-Recipient", f"rfc822; {final_recipient}"),
        ("Action", headers.text(context["action"])),
        ("Status", headers.text(context["status"])),
        ("Diagnostic-Code", headers.text(context["diagnostic"], 500)),
        ("Last-Attempt-Date", headers.text(context["last_attempt_date"])),
    ]
    original = base64.b64decode(str(context.get("original") or ""))
    return mime.delivery_report(
        head, human, per_message, per_recipient, original, full=context.get("ret") == "FULL"
    )
