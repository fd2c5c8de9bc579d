"""Distribution-list fan-out: one personalised order per member, and who was skipped and why.

Pure code. The composed text may use `{first_name}`, `{last_name}`, `{name}`,
`{msisdn}` and the list's own fields; an unknown placeholder refuses the mail
(`unknown_placeholder`). Stopped members and members in countries the policy does not
allow get no order: they are returned as skipped, for the list report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from bridge.errors import Reject
from bridge.intake.compose import sms_policy
from bridge.intake.schedule import schedule
from bridge.policy import Policy
from bridge.store.intake import NewOrder
from bridge.store.lists import ListInfo, Member
from bridge.text.errors import TextRejected
from bridge.text.sms import SmsPlan, plan_sms

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN = ("first_name", "last_name", "name", "msisdn")


@dataclass(frozen=True, slots=True)
class ListTarget:
    """A list recipient found at RCPT: the list and the address exactly as written."""

    info: ListInfo
    address: str


def placeholders(text: str) -> list[str]:
    return PLACEHOLDER.findall(text)


def check_placeholders(text: str, info: ListInfo) -> None:
    known = (*BUILTIN, *info.fields)
    for name in placeholders(text):
        if name not in known:
            raise Reject("unknown_placeholder", name=name, list=info.name, known=", ".join(known))


def personalise(text: str, member: Member) -> str:
    fields = member.fields or {}
    values = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "name": member.name,
        "msisdn": member.msisdn,
    }

    def fill(match: re.Match[str]) -> str:
        key = match[1]
        return str(values[key] if key in values else fields.get(key, ""))

    return PLACEHOLDER.sub(fill, text)


def _plan(text: str, policy: Policy) -> SmsPlan:
    p = sms_policy(policy)
    try:
        return plan_sms(
            text,
            encoding=p.encoding,
            replacement=p.replacement,
            max_parts=p.max_parts,
            overflow=p.overflow,
            truncate_marker=p.truncate_marker,
            truncate_at_word=p.truncate_at_word,
        )
    except TextRejected as exc:
        raise Reject(exc.kind, detail=exc.detail) from exc


def fan_out(
    mail_id: str,
    first_n: int,
    template: str,
    policy: Policy,
    targets: Sequence[tuple[ListTarget, Sequence[Member]]],
    now: datetime,
) -> tuple[list[NewOrder], list[dict[str, str]]]:
    """Orders `<mail_id>.<first_n>…` for every member of every list, and the skipped ones."""
    for target, _ in targets:
        check_placeholders(template, target.info)
    personal = bool(placeholders(template))
    shared = None if personal else _plan(template, policy)
    plans: dict[str, SmsPlan] = {}
    orders: list[NewOrder] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    values = policy.as_dict()
    priority = 1 if policy.priority == "express" else 0
    allowed = set(policy.allowed_countries)
    n = first_n
    for target, members in targets:
        for m in members:
            if m.msisdn in seen:
                continue
            seen.add(m.msisdn)
            if m.stopped:
                skipped.append({"msisdn": m.msisdn, "name": m.name, "reason": "opted out (STOP)"})
                continue
            if (
                allowed
                and phonenumbers.region_code_for_number(phonenumbers.parse(m.msisdn)) not in allowed
            ):
                skipped.append(
                    {"msisdn": m.msisdn, "name": m.name, "reason": "country not allowed"}
                )
                continue
            if shared is not None:
                plan = shared
            else:
                text = personalise(template, m)
                plan = plans.get(text) or plans.setdefault(text, _plan(text, policy))
            next_at, expires_at = schedule(policy, m.msisdn, now)
            orders.append(
                NewOrder(
                    id=f"{mail_id}.{n}",
                    recipient=m.msisdn,
                    rcpt_address=target.address,
                    sender_id=policy.sender_id,
                    text=plan.text,
                    encoding=plan.encoding,
                    parts=plan.parts,
                    priority=priority,
                    expires_at=expires_at,
                    policy=values,
                    next_attempt_at=next_at,
                )
            )
            n += 1
    return orders, skipped
