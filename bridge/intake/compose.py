"""From the mail's text to the planned SMS under the order's policy, or the reason to refuse.

Pure code: the subject policy, then the text engine's planning (encoding, replacement,
parts); its refusals become `Reject`s with the matching SMTP reply.
"""

from __future__ import annotations

from bridge.errors import Reject
from bridge.policy import Policy
from bridge.text.errors import TextRejected
from bridge.text.mime import MailText
from bridge.text.sms import SmsPlan, plan_sms

_REJECT_KINDS = {"bad_encoding": "bad_encoding", "too_long": "too_long", "no_text": "no_text"}


def pick_text(mail: MailText, subject_policy: str) -> str:
    """Body, subject, or both, per policy; an empty body falls back to the subject."""
    body = mail.body.strip()
    subject = mail.subject.strip()
    if subject_policy == "subject":
        return subject or body
    if subject_policy == "subject_body" and subject and body:
        return f"{subject}: {body}"
    return body or subject


def compose_text(mail: MailText, policy: Policy) -> SmsPlan:
    text = pick_text(mail, policy.subject_policy)
    if not text:
        raise Reject("no_text")
    try:
        return plan_sms(
            text,
            encoding=policy.encoding,  # type: ignore[arg-type]
            replacement=policy.replacement,  # type: ignore[arg-type]
            max_parts=policy.max_parts,
            overflow=policy.overflow,  # type: ignore[arg-type]
        )
    except TextRejected as exc:
        raise Reject(_REJECT_KINDS.get(exc.kind, "no_text"), detail=exc.detail) from exc
