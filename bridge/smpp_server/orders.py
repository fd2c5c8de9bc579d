"""What the SMPP server writes and reads of orders: commit submits, query_sm, cancel_sm.

`commit_submits` is the group-committed write of submit_sm (`Store.grouped`): each
message becomes a mail with one order through the SMTP intake's commit
(`bridge.intake.commit.commit_mails`: the SMS-pumping hold, then the same mail and order
rows), so velocity limits, dispatch, routing, receipts and reports treat it alike.
A part of a concatenated message is kept as a row (`SmppPart`) and answered with the
message id its first part got; the last part makes the order of all of them; when the
rest does not come in time, the parts that did make a failed order (`fail_incomplete`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, delete, insert, select

from bridge.db.core import table
from bridge.intake.commit import IntakeMail, commit_mails
from bridge.intake.velocity import VelocityCheck
from bridge.mt.mails import NewMail, NewOrder, insert_mails
from bridge.mt.orders import record_final
from bridge.mt.status import CANCELLABLE_ORDER_STATUSES
from bridge.mt.tables import Order
from bridge.outcomes.steps import STEPS
from bridge.smpp_server.submit import message_receipt_wish, message_text
from bridge.smpp_server.tables import SmppPart

_order = table(Order)
_part = table(SmppPart)

# An order's status -> SMPP 3.4 message_state (query_sm_resp).
MESSAGE_STATES: Final[dict[str, int]] = {
    "queued": 1,
    "deferred": 1,
    "submitted": 1,
    "held": 1,
    "delivered": 2,
    "expired": 3,
    "undeliverable": 5,
    "unconfirmed": 7,
    "failed": 8,
}
CANCELLABLE: Final = CANCELLABLE_ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class PartOf:
    """Where a submit_sm belongs in a concatenated message, and its part as sent."""

    system_id: str
    key: str  # source|destination|reference|total
    seq: int
    total: int
    part: list[object]  # `Part.stored()`: short_message hex, esm_class, data_coding, sar_*
    text: str
    encoding: str


@dataclass(frozen=True, slots=True)
class Submit:
    """One submit_sm to write: a whole message, or one part of one (`part_of`), whose
    `mail` then is the message as this part would make it. `velocity`: the customer's
    SMS-pumping limits, checked when the message's order is written (as for a mail)."""

    mail: NewMail
    part_of: PartOf | None = None
    velocity: VelocityCheck | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """What a committed submit_sm wrote."""

    message_id: str  # to answer with: its order's id (a part's: its message's order)
    ordered: bool  # its order was written (a whole message, or the part that completed one)


def commit_submits(conn: Connection, submits: list[Submit]) -> list[Taken]:
    """Write the submits (one transaction); per submit the message id to answer with.

    The parts are kept first, in order; then the orders of the whole messages and of
    the messages a part completed go through the intake's commit together (one
    SMS-pumping check and one insert for the group commit, as for the SMTP door's mails)."""
    taken = []
    made: list[IntakeMail] = []
    for s in submits:
        mail: NewMail | None = s.mail
        if s.part_of is not None:
            message_id, mail = _commit_part(conn, s.mail, s.part_of)
        else:
            message_id = s.mail.orders[0].id
        if mail is not None:
            made.append(IntakeMail(mail, velocity=s.velocity))
        taken.append(Taken(message_id, mail is not None))
    if made:
        commit_mails(conn, made)
    return taken


def part_started(conn: Connection, system_id: str, key: str) -> bool:
    """Whether a part of this concatenated message is kept already (its order is to come)."""
    where = (_part.c.system_id == system_id, _part.c.part_key == key)
    return conn.execute(select(_part.c.seq).where(*where).limit(1)).first() is not None


def _commit_part(conn: Connection, mail: NewMail, p: PartOf) -> tuple[str, NewMail | None]:
    """Keep the part; (the message id, the message's mail when this part completed it)."""
    where = (_part.c.system_id == p.system_id, _part.c.part_key == p.key)
    rows = {r.seq: r for r in conn.execute(select(_part).where(*where))}
    mail_id = next(iter(rows.values())).mail_id if rows else mail.id
    if p.seq not in rows:  # a part sent again (its answer was lost) keeps the first copy
        conn.execute(
            insert(_part).values(
                system_id=p.system_id,
                part_key=p.key,
                seq=p.seq,
                total=p.total,
                mail_id=mail_id,
                part=p.part,
                text=p.text,
                encoding=p.encoding,
                created_at=mail.received_at,
                message=message_facts(mail),
            )
        )
        rows = {r.seq: r for r in conn.execute(select(_part).where(*where))}
    if set(rows) != set(range(1, p.total + 1)):
        return f"{mail_id}.1", None
    parts = [rows[i] for i in range(1, p.total + 1)]
    order = mail.orders[0]
    policy = {**_asked_by_any(order.policy, parts), "smpp_parts": [r.part for r in parts]}
    text, encoding = message_text([r.part for r in parts]) or _joined(parts)
    order = replace(
        order,
        id=f"{mail_id}.1",
        text=text,
        encoding=encoding,
        parts=len(parts),
        policy=policy,
    )
    conn.execute(delete(_part).where(*where))
    return order.id, replace(mail, id=mail_id, orders=(order,))


def _asked_by_any(policy: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
    """`policy` with the receipt wish of the whole message: that of any of its parts
    (`message_receipt_wish`), read from each kept part's message facts."""
    smpp = policy.get("smpp")
    if not isinstance(smpp, dict):
        return policy
    wishes = [_wish(smpp)]
    for r in parts:
        facts = r.message if isinstance(r.message, dict) else {}
        part_smpp = (facts.get("policy") or {}).get("smpp")
        if isinstance(part_smpp, dict):
            wishes.append(_wish(part_smpp))
    return {**policy, "smpp": {**smpp, "registered_delivery": message_receipt_wish(wishes)}}


def _wish(smpp: dict[str, Any]) -> int:
    value = smpp.get("registered_delivery", 0)
    return value if isinstance(value, int) else 0


def _joined(parts: list[Any]) -> tuple[str, str]:
    """The parts' own texts, one after another, and the encoding our records call it."""
    text = "".join(r.text for r in parts)
    return text, "ucs2" if any(r.encoding == "ucs2" for r in parts) else "gsm7"


def message_facts(mail: NewMail) -> dict[str, Any]:
    """What a part's mail and order are, as JSON (`SmppPart.message`)."""
    order = mail.orders[0]
    return {
        "received_at": mail.received_at.isoformat(),
        "envelope_from": mail.envelope_from,
        "user_id": mail.user_id,
        "client_addr": mail.client_addr,
        "helo": mail.helo,
        "recipient": order.recipient,
        "rcpt_address": order.rcpt_address,
        "sender_id": order.sender_id,
        "priority": order.priority,
        "expires_at": order.expires_at.isoformat(),
        "policy": order.policy,
    }


def _mail_of(mail_id: str, facts: dict[str, Any], parts: list[Any]) -> NewMail:
    """The order of a message whose parts did not all come: the parts that did."""
    text, encoding = _joined(parts)
    order = NewOrder(
        id=f"{mail_id}.1",
        recipient=str(facts["recipient"]),
        rcpt_address=str(facts["rcpt_address"]),
        sender_id=str(facts["sender_id"]),
        text=text,
        encoding=encoding,
        parts=int(parts[0].total),
        priority=int(facts["priority"]),
        expires_at=datetime.fromisoformat(str(facts["expires_at"])),
        policy={**_asked_by_any(facts["policy"], parts), "smpp_parts": [r.part for r in parts]},
    )
    return NewMail(
        id=mail_id,
        received_at=datetime.fromisoformat(str(facts["received_at"])),
        envelope_from=str(facts["envelope_from"]),
        user_id=int(facts["user_id"]),
        client_addr=str(facts["client_addr"]),
        helo=str(facts["helo"]),
        message_id="",
        subject="",
        raw=b"",
        orders=(order,),
    )


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A concatenated message whose parts did not all come in time."""

    mail_id: str
    arrived: tuple[int, ...]
    total: int
    failed: bool  # its order is written, failed (False: parts from before 0018, dropped)


def fail_incomplete(conn: Connection, before: datetime, now: datetime) -> list[Incomplete]:
    """The messages with a part older than `before`: each becomes a failed order (the
    client's receipt, when it asked for one, is queued by the final steps)."""
    stale = {
        str(r.mail_id)
        for r in conn.execute(select(_part.c.mail_id).where(_part.c.created_at < before))
    }
    done = []
    for mail_id in sorted(stale):
        rows = sorted(
            conn.execute(select(_part).where(_part.c.mail_id == mail_id)), key=lambda r: r.seq
        )
        facts = next((r.message for r in rows if isinstance(r.message, dict)), None)
        arrived = tuple(int(r.seq) for r in rows)
        total = int(rows[0].total)
        if facts is not None:
            mail = _mail_of(mail_id, facts, rows)
            insert_mails(conn, [mail], checked=True)
            missing = ", ".join(str(i) for i in range(1, total + 1) if i not in arrived)
            reason = (
                f"incomplete: part(s) {missing} of {total} did not come; "
                "send every part of a concatenated message within part_wait"
            )
            record_final(conn, mail.orders[0].id, now, "failed", reason, steps=STEPS)
        conn.execute(delete(_part).where(_part.c.mail_id == mail_id))
        done.append(Incomplete(mail_id, arrived, total, facts is not None))
    return done


@dataclass(frozen=True, slots=True)
class OrderState:
    status: str
    updated_at: datetime
    final: bool


def _own(policy: Any, system_id: str) -> bool:
    smpp = (policy or {}).get("smpp") if isinstance(policy, dict) else None
    return isinstance(smpp, dict) and smpp.get("system_id") == system_id


def order_state(conn: Connection, order_id: str, system_id: str) -> OrderState | None:
    """The state of an order this account submitted (None: not one of its orders)."""
    r = conn.execute(
        select(_order.c.status, _order.c.updated_at, _order.c.policy).where(_order.c.id == order_id)
    ).first()
    if r is None or not _own(r.policy, system_id):
        return None
    final = MESSAGE_STATES.get(r.status, 1) != 1
    return OrderState(r.status, r.updated_at, final)


def cancel_order(conn: Connection, order_id: str, system_id: str, now: datetime) -> bool:
    """End an order of this account that has not been submitted yet (cancel_sm)."""
    r = conn.execute(
        select(_order.c.status, _order.c.policy).where(_order.c.id == order_id)
    ).first()
    if r is None or not _own(r.policy, system_id) or r.status not in CANCELLABLE:
        return False
    return record_final(conn, order_id, now, "failed", "cancelled by the SMPP client", steps=STEPS)
