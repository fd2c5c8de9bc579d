"""Per-mail overrides: `X-SMS-*` headers and `[token]`s in the subject, limited by the customer.

Pure code. `read_overrides(raw, subject)` finds what the mail asks for (and the subject
with the tokens removed); `check_overrides` refuses what the customer does not allow
(`override_refused`) or what is not a valid value (`bad_override`) with a `Reject`, so
the sender learns it in the SMTP dialogue. Recognised subject tokens: `[express]`,
`[normal]`, `[flash]`, `[from:ACME]`, `[at:2026-12-01 09:00]`, `[validity:2h]`,
`[notify:all]`, `[cc:4711]`, `[parts:3]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from bridge.errors import Reject
from bridge.tenants.policy import Policy, PolicyError, check_setting, with_mail_level
from bridge.tenants.policy_values import parse_send_at
from bridge.text.charset import decode_header_value
from bridge.text.mime import MailText

HEADERS = {
    "x-sms-sender": "sender_id",
    "x-sms-priority": "priority",
    "x-sms-validity": "validity",
    "x-sms-notify": "notify",
    "x-sms-cost-centre": "cost_centre",
    "x-sms-cost-center": "cost_centre",
    "x-sms-max-parts": "max_parts",
    "x-sms-send-at": "send_at",
    "x-sms-flash": "flash",
}
FLAGS = {
    "express": ("priority", "express"),
    "normal": ("priority", "normal"),
    "flash": ("flash", True),
}
VALUED = {
    "from": "sender_id",
    "at": "send_at",
    "validity": "validity",
    "notify": "notify",
    "cc": "cost_centre",
    "parts": "max_parts",
}
SEND_AT_HORIZON = timedelta(days=366)  # a later send_at is a typo, not a plan
_TOKEN = re.compile(r"\[\s*([A-Za-z]+)\s*(?::\s*([^\]]*?)\s*)?\]")


@dataclass(frozen=True, slots=True)
class Overrides:
    """What one mail asks for: setting → (value, where it was written)."""

    values: dict[str, tuple[Any, str]] = field(default_factory=dict)
    subject: str = ""  # the subject without the recognised tokens
    tokens_removed: bool = False


def _tokens(subject: str, found: dict[str, tuple[Any, str]]) -> str:
    def take(match: re.Match[str]) -> str:
        word, value = match[1].lower(), match[2]
        if value is None and word in FLAGS:
            name, flag_value = FLAGS[word]
            found[name] = (flag_value, f"subject token [{match[1]}]")
            return ""
        if value is not None and word in VALUED:
            found[VALUED[word]] = (value, f"subject token [{match[0][1:-1]}]")
            return ""
        return match[0]  # "[EXTERNAL]" and the like stay

    return " ".join(_TOKEN.sub(take, subject).split())


def may_override(raw: bytes, subject: str) -> bool:
    """Whether `read_overrides` can find anything: a `[` in the subject, or `x-sms-` (any
    case) in the header section. A quick test for every mail: the header section is what
    the parser reads as fields, and it ends at the first empty line, so the body (tens of
    KB of HTML from some mail clients) is not searched."""
    if "[" in subject:
        return True
    ends = [at for at in (raw.find(b"\n\r\n"), raw.find(b"\n\n")) if at >= 0]
    head = raw[: min(ends)] if ends else raw
    return b"x-sms-" in head.lower()


def read_overrides(raw: bytes, subject: str) -> Overrides:
    """The overrides a mail asks for, from its headers and its subject tokens."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found: dict[str, tuple[Any, str]] = {}
    for name, value in headers.items():
        setting = HEADERS.get(name.lower())
        if setting is not None:
            text = " ".join(decode_header_value(str(value)).split())  # RFC 2047 decoded
            found[setting] = (text, f"header {name}")
    cleaned = _tokens(subject, found)
    return Overrides(found, cleaned, cleaned != subject)


def check_overrides(
    overrides: Overrides, policy: Policy, now: datetime | None = None
) -> dict[str, Any]:
    """The mail level of the cascade, or Reject when an override is not allowed or invalid."""
    now = now or datetime.now(UTC)
    level: dict[str, Any] = {}
    for name, (value, origin) in overrides.values.items():
        if name not in policy.mail_overrides:
            raise Reject(
                "override_refused",
                origin=origin,
                setting=name,
                allowed=", ".join(policy.mail_overrides) or "none",
            )
        try:
            if name == "send_at":
                value = parse_send_at(value, policy.timezone)
                if value and datetime.fromisoformat(value) > now + SEND_AT_HORIZON:
                    raise PolicyError(f"send_at: at most one year ahead, got {value[:10]}")
            level[name] = check_setting(name, value, "mail")
        except PolicyError as exc:
            raise Reject("bad_override", origin=origin, detail=str(exc)) from None
    return level


def apply_overrides(
    raw: bytes, mail: MailText, policy: Policy, now: datetime | None = None
) -> tuple[MailText, Policy]:
    """The mail without its subject tokens, and the policy with the mail's overrides."""
    found = read_overrides(raw, mail.subject)
    if not found.values:
        return mail, policy
    level = check_overrides(found, policy, now)
    if found.tokens_removed:
        mail = replace(mail, subject=found.subject)
    return mail, with_mail_level(policy, level)
