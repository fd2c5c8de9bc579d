"""Lists and schedules in the intake: list recipients at RCPT, list fan-out and send times at DATA.

`accept_list` answers a RCPT to `<list>@<domain>` (the list of the sender's customer,
found by `add_list_target`, which the REST API calls for a list in `to` as well);
`fan_out_lists` turns the mail's list recipients into personalised orders (members
and stop-list flags read in one query); `scheduled` moves direct orders to their
`send_at` / end of quiet hours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bridge.db.store import Store
from bridge.errors import Reject, reply
from bridge.intake.addresses import PREVIEW_PREFIX, RecipientError, split_address
from bridge.intake.fanout import ListTarget, fan_out
from bridge.intake.ratelimit import check_rate
from bridge.intake.schedule import schedule
from bridge.intake.sms_plan import compose_rules
from bridge.intake.transaction import Transaction
from bridge.lists.store import ListInfo, Member, find_list, list_members
from bridge.mt.mails import NewOrder
from bridge.tenants.policy import Policy
from bridge.text.compose import compose
from bridge.text.mime import MailText

_LIST_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
# what no list name starts with, seen before the address is split (its local part then
# starts with it, or with the "<" or '"' that split_address would keep)
_NOT_A_LIST_START = frozenset("+0123456789")


def list_name(address: str, domains: tuple[str, ...]) -> str | None:
    """The list name `address` is written as (`<list>@<domain>`), else None."""
    if address.strip().lstrip('<"')[:1] in _NOT_A_LIST_START:
        return None  # a number (most recipients): a list name starts with a letter
    try:
        local, domain = split_address(address)
    except RecipientError:
        return None
    name = local.lower()
    if domain not in domains or name.startswith(PREVIEW_PREFIX) or not _LIST_NAME.fullmatch(name):
        return None
    return name


async def named_list(
    store: Store, customer_id: int, address: str, domains: tuple[str, ...]
) -> ListInfo | None:
    """The customer's list `address` (`<list>@<domain>`) names, else None."""
    name = list_name(address, domains)
    if name is None:
        return None
    return await store.call(find_list, customer_id, name)


async def add_list_target(
    store: Store, transaction: Transaction, address: str, domains: tuple[str, ...]
) -> bool:
    """Add the list `address` names (of the sender's customer) to the transaction's lists.

    False when `address` names no list; Reject when the list is empty or its members would
    pass the sender's rate limits. Every front door that sends to lists calls this, then
    `fan_out_lists` with the message.
    """
    info = await named_list(store, transaction.sender.customer_id, address, domains)
    if info is None:
        return False
    if info.members == 0:
        raise Reject("empty_list", recipient=address)
    await check_rate(store, transaction, info.members)
    transaction.lists.append(ListTarget(info, address))
    return True


async def accept_list(
    store: Store, transaction: Transaction, envelope: Any, address: str, domains: tuple[str, ...]
) -> str | None:
    """The RCPT reply when `address` names a list of the sender's customer, else None."""
    try:
        if not await add_list_target(store, transaction, address, domains):
            return None
    except Reject as rej:
        return rej.reply
    envelope.rcpt_tos.append(address)
    return reply("recipient_ok")


async def fan_out_lists(
    store: Store,
    mail_id: str,
    transaction: Transaction,
    policy: Policy,
    mail: MailText,
    orders: Sequence[NewOrder],
    now: datetime,
) -> tuple[tuple[NewOrder, ...], dict[str, Any] | None]:
    """The mail's orders plus one per list member, and the mail's `list_mail` row (or None)."""
    if not transaction.lists:
        return tuple(orders), None
    targets: list[tuple[ListTarget, list[Member]]] = []
    for target in transaction.lists:
        members = await store.call(
            list_members, target.info.id, target.info.customer_id, (policy.sender_id,)
        )
        targets.append((target, members))
    template = compose(mail, compose_rules(policy)).text
    if not template.strip():
        raise Reject("no_text")
    added, skipped = fan_out(mail_id, len(orders) + 1, template, policy, targets, now)
    row = {
        "lists": [t.info.name for t in transaction.lists],
        "members": sum(len(m) for _, m in targets),
        "skipped": skipped,
        "reported_at": None,
    }
    return (*orders, *added), row


def scheduled(orders: Sequence[NewOrder], policy: Policy, now: datetime) -> tuple[NewOrder, ...]:
    """Direct orders moved to `send_at` or the end of the recipient's quiet hours."""
    if not policy.send_at and not policy.quiet_hours:
        return tuple(orders)
    out = []
    for order in orders:
        next_at, expires_at = schedule(policy, order.recipient, now)
        out.append(replace(order, next_attempt_at=next_at, expires_at=expires_at))
    return tuple(out)
