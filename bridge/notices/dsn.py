"""Delivery status notifications: an RFC 3464 `multipart/report` built from a dsn notice.

The report has three parts: a human-readable text, the `message/delivery-status`
fields (Reporting-MTA, Original-Envelope-Id, Arrival-Date; Original-Recipient,
Final-Recipient — the address exactly as the client wrote it, e.g. SAP's
`SMS=+49…@domain` — Action, Status, Diagnostic-Code, Last-Attempt-Date), and the
original header block (RET=HDRS) or the whole original mail (RET=FULL). It is sent
from the null sender; `In-Reply-To`/`References` point at the original Message-ID.
Values from the client or the SMSC pass `headers` (ENVID and ORCPT that are not
printable ASCII are written xtext-encoded), so a CR or LF in them cannot hold the DSN.
"""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Mapping
from email.charset import QP, Charset
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import Any

from bridge.notices import headers

_SUBJECT = {"SUCCESS": "Success", "FAILURE": "Failure", "DELAY": "Delay"}
_HUMAN = {
    "SUCCESS": "Your SMS to {msisdn} was delivered to the handset.",
    "FAILURE": "Your SMS to {msisdn} could NOT be delivered.\n\nReason: {diagnostic}",
    "DELAY": (
        "Your SMS to {msisdn} has not been delivered yet; the bridge keeps trying.\n\n"
        "Reason for the delay: {diagnostic}\n\nYou need not do anything now."
    ),
}


def _text(text: str, subtype: str) -> MIMEText:
    charset = Charset("us-ascii" if text.isascii() else "utf-8")
    charset.body_encoding = QP
    return MIMEText(text, subtype, charset)  # type: ignore[arg-type]


def _fields(pairs: list[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in pairs:
        if value:
            block[name] = value
    return block


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
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = headers.mailbox("Mail Delivery System", f"MAILER-DAEMON@{reporting_mta}")
    report["To"] = headers.mailbox("", recipient)
    report["Subject"] = f"Delivery Status Notification ({_SUBJECT[event]}) for {final_recipient}"
    report["Date"] = formatdate(localtime=False)
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    original_id = headers.msg_ids(context.get("in_reply_to"))[:1]
    if original_id:
        report["In-Reply-To"] = original_id[0]
        report["References"] = original_id[0]

    human = _HUMAN[event].format(msisdn=context["msisdn"], diagnostic=context["diagnostic"])
    human += (
        f"\n\nRecipient: {context['final_recipient']}\nOrder: {context['order_id']}"
        f"\nAction: {context['action']} ({context['status']})\n"
    )
    report.attach(_text(human, "plain"))

    status = Message()
    status["Content-Type"] = "message/delivery-status"
    per_message = _fields(
        [
            ("Reporting-MTA", f"dns; {headers.text(reporting_mta)}"),
            ("Original-Envelope-Id", headers.xtext(context.get("envid"))),
            ("Arrival-Date", headers.text(context["arrival_date"])),
        ]
    )
    per_recipient = _fields(
        [
            ("Original-Recipient", _orcpt(str(context.get("orcpt") or ""))),
            ("Final-Recipient", f"rfc822; {final_recipient}"),
            ("Action", headers.text(context["action"])),
            ("Status", headers.text(context["status"])),
            ("Diagnostic-Code", headers.text(context["diagnostic"], 500)),
            ("Last-Attempt-Date", headers.text(context["last_attempt_date"])),
        ]
    )
    status.set_payload([per_message, per_recipient])
    report.attach(status)

    original = base64.b64decode(str(context.get("original") or ""))
    if context.get("ret") == "FULL":
        parsed = email.message_from_bytes(original, policy=email.policy.compat32)
        report.attach(MIMEMessage(parsed))
    else:
        block = original.decode("utf-8", "replace").replace("\r\n", "\n")
        report.attach(_text(block, "rfc822-headers"))
    return report
