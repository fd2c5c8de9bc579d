"""From the mail's text to the planned SMS under the order's policy, or the reason to refuse.

Pure code: the policy chooses the text engine's rules (cleaning, subject policy,
encoding, replacement, parts); the engine's refusals become `Reject`s carrying the
matching SMTP reply.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import Reject
from bridge.tenants.policy import Policy
from bridge.text.clean import CleanRules
from bridge.text.compose import ComposeRules
from bridge.text.errors import TextRejected
from bridge.text.mime import MailText
from bridge.text.pipeline import SmsPolicy, plan_mail, preview
from bridge.text.sms import SmsPlan


def compose_rules(policy: Policy) -> ComposeRules:
    on = set(policy.cleaning)
    return ComposeRules(
        subject=policy.subject_policy,  # type: ignore[arg-type]
        separator=policy.subject_separator,
        clean=CleanRules(
            quotes="quotes" in on,
            quoted_lines="quoted_lines" in on,
            signature="signature" in on,
            mobile_signature="mobile_signature" in on,
            disclaimers="disclaimers" in on,
            sign_off="sign_off" in on,
            whitespace="whitespace" in on,
            collapse_spaces="collapse_spaces" in on,
            end_markers=policy.end_markers,
            strip_strings=policy.strip_strings,
        ),
    )


def sms_policy(policy: Policy) -> SmsPolicy:
    return SmsPolicy(
        encoding=policy.encoding,  # type: ignore[arg-type]
        replacement=policy.replacement,  # type: ignore[arg-type]
        max_parts=policy.max_parts,
        overflow=policy.overflow,  # type: ignore[arg-type]
    )


def text_rules(policy: Policy) -> tuple[ComposeRules, SmsPolicy]:
    """The text engine's rules under `policy` (made once per sender, not per mail)."""
    return compose_rules(policy), sms_policy(policy)


def compose_text(
    mail: MailText, policy: Policy, rules: tuple[ComposeRules, SmsPolicy] | None = None
) -> SmsPlan:
    """The planned SMS for `mail`, or Reject (no_text, bad_encoding, too_long).

    `rules`: `text_rules(policy)` when the caller keeps them (else they are made here).
    """
    compose, sms = rules or text_rules(policy)
    try:
        return plan_mail(mail, compose, sms)[1]
    except TextRejected as exc:
        raise Reject(exc.kind, detail=exc.detail) from exc


def preview_context(raw: bytes, policy: Policy, msisdn: str, mail: MailText) -> dict[str, Any]:
    """Everything the preview notice shows: cleaning, encoding, replacements, split points."""
    pv = preview(raw, compose_rules(policy), sms_policy(policy))
    return {
        "msisdn": msisdn,
        "subject": mail.subject,
        "in_reply_to": mail.message_id or "",
        "body": pv.body,
        "text": pv.text,
        "removed": list(pv.removed),
        "source": pv.source,
        "attachments": pv.attachments,
        "sms_text": pv.sms_text,
        "encoding": pv.encoding or "",
        "replaced": [list(pair) for pair in pv.replaced],
        "units": pv.units,
        "parts": pv.parts,
        "part_texts": list(pv.part_texts),
        "truncated": pv.truncated,
        "rejected": list(pv.rejected) if pv.rejected else [],
        "sender_id": policy.sender_id,
        "max_parts": policy.max_parts,
    }
