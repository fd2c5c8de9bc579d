"""The intake's commit: what one accepted mail writes, as an explicit list of steps.

A mail from the SMTP intake is written in one transaction, group-committed with the
other mails of the moment (`Store.grouped`), before its `250`:

1. duplicates: a mail delivered twice within its dedupe window is not written again
   (its `250` names the earlier copy);
2. conversations: replies keep the conversation's sender number (inbound's reply
   assignments, read in the same transaction: no extra round trip per mail);
3. SMS pumping: orders over the customer's velocity limits are held, the admins alerted;
4. the mail, its orders and their first history lines (`bridge.mt.mails`);
5. the list mail record, when the mail went to distribution lists;
6. the notices the mail itself asks for (previews).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from bridge.db.store import Store
from bridge.inbound.store import conversation_senders
from bridge.intake.velocity import VelocityCheck
from bridge.intake.velocity_store import hold_pumping
from bridge.lists.store import insert_list_mails
from bridge.mt import lanes
from bridge.mt.mails import NewMail, NewOrder, find_duplicates, insert_mails
from bridge.notices.queue import NewNotice, queue_notices


@dataclass(frozen=True, slots=True)
class Conversation:
    """The mail's first `orders` orders keep the sender number of a conversation the user
    had with their recipient within `window` seconds (`[inbound] reply_window`)."""

    orders: int
    window: float


@dataclass(frozen=True, slots=True)
class IntakeMail:
    """A mail as the SMTP intake accepted it: the mail with its orders, and what else it writes."""

    mail: NewMail
    notices: tuple[NewNotice, ...] = field(default=())
    list_mail: dict[str, Any] | None = None  # a list_mail row when it went to lists
    conversation: Conversation | None = None
    velocity: VelocityCheck | None = None  # SMS pumping across mails

    @property
    def id(self) -> str:
        return self.mail.id


def _with_orders(m: IntakeMail, orders: tuple[NewOrder, ...]) -> IntakeMail:
    """`m` with these orders; `m` itself when they are the same objects (the usual case: no
    conversation, no pumping), so the mail is not copied twice per step for nothing."""
    if orders is m.mail.orders or (
        len(orders) == len(m.mail.orders)
        and all(a is b for a, b in zip(orders, m.mail.orders, strict=True))
    ):
        return m
    return replace(m, mail=replace(m.mail, orders=orders))


def _in_conversation(conn: Connection, mails: list[IntakeMail]) -> list[IntakeMail]:
    """Each mail's first `conversation.orders` orders sent from the number of the user's
    conversation with their recipient, if any: one query for the whole group commit."""
    asking = [m for m in mails if m.conversation is not None and m.conversation.orders]
    if not asking:
        return mails
    wanted = [
        (m.mail.user_id, order.recipient, m.mail.received_at - timedelta(seconds=c.window))
        for m in asking
        if (c := m.conversation) is not None
        for order in m.mail.orders[: c.orders]
    ]
    senders = iter(conversation_senders(conn, wanted))
    out = []
    for m in mails:
        if m.conversation is not None and m.conversation.orders:
            n, orders = m.conversation.orders, m.mail.orders
            direct = tuple(
                replace(order, sender_id=sender) if (sender := next(senders)) else order
                for order in orders[:n]
            )
            m = _with_orders(m, direct + orders[n:])
        out.append(m)
    return out


def _hold_pumping(conn: Connection, mails: list[IntakeMail]) -> list[IntakeMail]:
    if not any(m.velocity for m in mails):
        return mails
    orders = hold_pumping(conn, [(m.mail, m.velocity) for m in mails])
    return [_with_orders(m, o) for m, o in zip(mails, orders, strict=True)]


def _insert(conn: Connection, mails: list[IntakeMail]) -> list[IntakeMail]:
    insert_mails(conn, [m.mail for m in mails], checked=True)
    return mails


def _list_mails(conn: Connection, mails: list[IntakeMail]) -> list[IntakeMail]:
    insert_list_mails(conn, [{"mail_id": m.id, **m.list_mail} for m in mails if m.list_mail])
    return mails


def _notices(conn: Connection, mails: list[IntakeMail]) -> list[IntakeMail]:
    for m in mails:
        queue_notices(conn, m.notices, m.mail.received_at)
    return mails


Step = Callable[[Connection, list[IntakeMail]], list[IntakeMail]]

# The steps of the commit after the duplicates are set aside, in order.
COMMIT_STEPS: tuple[Step, ...] = (_in_conversation, _hold_pumping, _insert, _list_mails, _notices)


def commit_mails(conn: Connection, mails: list[IntakeMail]) -> list[str]:
    """Write the mails (one transaction); per mail its id, or the earlier copy's id."""
    duplicates = find_duplicates(conn, [m.mail for m in mails])
    fresh = [m for m in mails if m.id not in duplicates]
    for step in COMMIT_STEPS:
        if not fresh:
            break
        fresh = step(conn, fresh)
    return [duplicates.get(m.id, m.id) for m in mails]


async def accept(store: Store, mail: IntakeMail) -> str:
    """Commit a mail and its orders; returns, once they are durable, the mail's id.

    For the same mail delivered twice within its dedupe window nothing new is written,
    and the id returned is the earlier copy's.
    """
    return await store.grouped(commit_mails, mail, lane=lanes.ORDERS)
