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

from bridge.errors import Reject
from bridge.intake.countries import country_of
from bridge.intake.schedule import schedule
from bridge.intake.sms_plan import sms_policy
from bridge.lists.store import ListInfo, Member
from bridge.mt.mails import NewOrder
from bridge.tenants.policy import Policy
from bridge.text.errors import TextRejected
from bridge.text.shift_tables import BASIC_TABLE
from bridge.text.sms import SmsPlan, plan_sms

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN = ("first_name", "last_name", "name", "msisdn")
_BASIC = frozenset(BASIC_TABLE) - {"\x1b"}  # one septet each, no escapes


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


def _value(member: Member, key: str) -> str:
    if key == "first_name":
        return member.first_name
    if key == "last_name":
        return member.last_name
    if key == "name":
        return member.name
    if key == "msisdn":
        return member.msisdn
    return str((member.fields or {}).get(key, ""))


def personalise(text: str, member: Member, pieces: list[str] | None = None) -> str:
    """`text` with each placeholder filled from the member (`pieces`: text split once)."""
    pieces = pieces if pieces is not None else PLACEHOLDER.split(text)
    return "".join(p if i % 2 == 0 else _value(member, p) for i, p in enumerate(pieces))


def _fast_plan(text: str, policy: Policy) -> SmsPlan | None:
    """The plan of a text of basic GSM-7 characters only (the common case), else None."""
    if policy.encoding == "ucs2" or not _BASIC.issuperset(text):
        return None
    units = len(text)
    parts = 1 if units <= 160 else -(-units // 153)
    if parts > policy.max_parts or not text.strip():
        return None  # plan_sms refuses or truncates
    return SmsPlan(text, "gsm7", units, parts, (), truncated=False)


def _plan(text: str, policy: Policy) -> SmsPlan:
    fast = _fast_plan(text, policy)
    if fast is not None:
        return fast
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
    pieces = PLACEHOLDER.split(template)
    shared = _plan(template, policy) if len(pieces) == 1 else None
    timing = None if policy.quiet_hours else schedule(policy, "", now)  # same for everyone
    plans: dict[str, SmsPlan] = {}
    orders: list[NewOrder] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    values = policy.as_dict()
    priority = 1 if policy.priority == "express" else 0
    allowed = set(policy.allowed_countries)
    denied = set(policy.denied_countries)
    n = first_n
    for target, members in targets:
        for m in members:
            if m.msisdn in seen:
                continue
            seen.add(m.msisdn)
            if m.stopped:
                skipped.append({"msisdn": m.msisdn, "name": m.name, "reason": "opted out (STOP)"})
                continue
            country = country_of(m.msisdn, policy.default_country)
            if (allowed and country not in allowed) or country in denied:
                skipped.append(
                    {"msisdn": m.msisdn, "name": m.name, "reason": "country not allowed"}
                )
                continue
            if shared is not None:
                plan = shared
            else:
                text = personalise(template, m, pieces)
                plan = plans.get(text) or plans.setdefault(text, _plan(text, policy))
            next_at, expires_at = timing or schedule(policy, m.msisdn, now)
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
