"""POST /api/v1/messages and its preview: a JSON request read as a mail, through the mail's pieces.

The request's text becomes the body of a plain text mail (`as_mail`), so the text engine
treats it exactly as the body of a mail; its options are the per-mail overrides of the
policy cascade (`bridge.intake.overrides.check_overrides`, origin "field <name>"),
limited by the customer's `mail_overrides`; each number passes the SMTP intake's
recipient parsing and its recipient rules (countries, rate limits, stop list); the
orders are built by `bridge.intake.direct.direct_orders` and written by the intake's
commit (`bridge.intake.commit.commit_mails`) in one transaction with the
Idempotency-Key's answer (`commit_sends`, group-committed with the other sends of the
moment). Refusals are `Reject`s of the one reply table.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Connection, bindparam, delete, select

from bridge.api.keys import KeyRow
from bridge.api.tables import ApiIdempotency
from bridge.db.bulk import bulk_insert
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.prepared import fetch
from bridge.db.store import Store
from bridge.errors import InputError, Reject
from bridge.intake.addresses import Recipient, RecipientError, parse_recipient
from bridge.intake.commit import Conversation, IntakeMail, commit_mails
from bridge.intake.destinations import check_number
from bridge.intake.direct import direct_orders
from bridge.intake.handler import new_mail_id
from bridge.intake.listing import add_list_target, fan_out_lists, named_list
from bridge.intake.overrides import Overrides, check_overrides
from bridge.intake.resolved import Resolutions
from bridge.intake.rules import RCPT_RULES
from bridge.intake.sender_cache import SenderCache
from bridge.intake.sms_plan import compose_text, preview_context
from bridge.intake.transaction import Transaction
from bridge.intake.velocity import VelocityCheck
from bridge.mt import lanes
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.tables import Order
from bridge.tenants.policy import with_mail_level
from bridge.text.mime import MailText, extract_text_part

_idem = table(ApiIdempotency)
_order = table(Order)

# JSON field -> policy setting (the per-mail options the mail interface has).
OPTIONS: Final = {
    "sender_id": "sender_id",
    "priority": "priority",
    "validity": "validity",
    "encoding": "encoding",
    "replacement": "replacement",
    "max_parts": "max_parts",
    "notify": "notify",
    "cost_centre": "cost_centre",
    "send_at": "send_at",
    "flash": "flash",
}
MAX_TEXT: Final = 10_000


class BadRequest(InputError):
    """The request is not a valid message request; the message says what to change."""


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """A checked request: numbers, text, and the options asked for."""

    to: tuple[str, ...]
    text: str
    options: dict[str, Any]

    @property
    def digest(self) -> str:
        body = json.dumps([self.to, self.text, self.options], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()


def read_request(body: Any, max_recipients: int) -> MessageRequest:
    """The request from a JSON body, or BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'to' and 'text'")
    unknown = sorted(set(body) - {"to", "text", *OPTIONS})
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; known: to, text, {', '.join(OPTIONS)}"
        )
    to = body.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(n, str) and n for n in to):
        raise BadRequest("'to': a list of phone numbers, e.g. [\"+491701234567\"]")
    if len(to) > max_recipients:
        raise BadRequest(
            f"'to': at most {max_recipients} numbers per request; send the rest in another one"
        )
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text': the SMS text, a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text': at most {MAX_TEXT} characters")
    options = {k: v for k, v in body.items() if k in OPTIONS and v is not None}
    for k, v in options.items():
        if not isinstance(v, str | int | float | bool):
            raise BadRequest(f"'{k}': a string or a number")
    return MessageRequest(tuple(to), text, options)


# The head of a request's mail: what the mail library writes for an empty Subject and
# `set_content(text, charset="utf-8", cte="base64")` under its SMTP policy.
_MAIL_FIELDS: Final = (
    ("Subject", ""),
    ("Content-Type", 'text/plain; charset="utf-8"'),
    ("Content-Transfer-Encoding", "base64"),
    ("MIME-Version", "1.0"),
)
_MAIL_HEAD: Final = b"".join(
    f"{name}:{' ' if value else ''}{value}\r\n".encode() for name, value in _MAIL_FIELDS
)
_BASE64_LINE: Final = 57  # bytes per base64 line: 76 characters, as the library writes them


def as_mail(text: str) -> tuple[bytes, MailText]:
    """The text as the body of a plain text mail (UTF-8, base64), and what the text engine
    reads of it.

    The bytes are the mail library's (`EmailMessage` with an empty Subject and
    `set_content(text, charset="utf-8", cte="base64")`, its SMTP policy: lines ending in
    CRLF), written directly: built and parsed back through the library it cost ~450 µs
    a request, a seventh of the request's whole CPU."""
    data = b"\r\n".join(text.encode().splitlines()) + b"\r\n"
    lines = (
        binascii.b2a_base64(data[at : at + _BASE64_LINE])
        for at in range(0, len(data), _BASE64_LINE)
    )
    raw = _MAIL_HEAD + b"\r\n" + b"".join(lines).replace(b"\n", b"\r\n")
    return raw, extract_text_part(_MAIL_FIELDS, data, "utf-8")


def cost(price_per_part: str, parts: int, orders: int) -> dict[str, Any] | None:
    """What `orders` SMS of `parts` parts cost at the policy's `price_per_part` (None: no price).

    One price per part whatever the destination: the `price_per_part` setting
    ("0.075 EUR", set for the customer or in [defaults]).
    """
    if not price_per_part:
        return None
    amount, currency = price_per_part.split()
    return {
        "amount": str(Decimal(amount) * parts * orders),
        "currency": currency,
        "price_per_part": amount,
        "parts": parts * orders,
    }


@dataclass(frozen=True, slots=True)
class Sent:
    """What the API answers after the commit."""

    status: int
    body: dict[str, Any]
    replayed: bool = False  # the answer kept for an Idempotency-Key, nothing new written


class MessageService:
    """Builds and commits the orders of message requests for the keys' users."""

    def __init__(
        self,
        store: Store,
        defaults: dict[str, Any],
        domains: tuple[str, ...],
        max_recipients: int,
        reply_window: float,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.domains = domains
        self.max_recipients = max_recipients
        self.reply_window = reply_window
        self.senders = SenderCache(store)
        self.resolutions = Resolutions(defaults)

    async def transaction(self, key: KeyRow, client_ip: str) -> Transaction:
        sender = await self.senders.find(key.user)
        if sender is None:
            raise Reject("unknown_sender", sender=key.user)
        if not sender.enabled or not sender.customer_enabled:
            raise Reject("disabled_sender", sender=key.user)
        resolved = self.resolutions.of(sender)
        t = Transaction(sender=sender, policy=resolved.policy, access=resolved.access)
        t.client_ip = client_ip
        return t

    def _with_options(self, t: Transaction, request: MessageRequest, now: datetime) -> None:
        found = {
            OPTIONS[k]: (str(v).lower() if isinstance(v, bool) else str(v), f"field {k}")
            for k, v in request.options.items()
        }
        if found:
            level = check_overrides(Overrides(found), t.policy, now)
            t.policy = with_mail_level(t.policy, level)

    def _recipient(self, t: Transaction, number: str) -> Recipient:
        address = f"{number.strip()}@{self.domains[0]}"
        try:
            return parse_recipient(address, self.domains, t.policy.default_country)
        except RecipientError as err:
            raise Reject(
                err.kind, recipient=address, domain=self.domains[0], detail=err.detail
            ) from None

    def _list_address(self, to: str) -> str | None:
        """The address a `to` entry names a list by (`staff` or `staff@<domain>`), else None."""
        if "@" in to:
            return to.strip()
        name = to.strip()
        return f"{name}@{self.domains[0]}" if name[:1].isalpha() else None

    async def _recipients(self, t: Transaction, request: MessageRequest) -> None:
        """Each `to` entry as the SMTP intake's RCPT takes it: a list of the customer (the
        intake's `add_list_target`), else a number through the recipient rules."""
        for to in request.to:
            address = self._list_address(to)
            if address is not None and await add_list_target(self.store, t, address, self.domains):
                continue
            recipient = self._recipient(t, to)
            for rule in RCPT_RULES:
                await rule(self.store, t, recipient)
            t.recipients.append(recipient)

    async def build(
        self, key: KeyRow, request: MessageRequest, client_ip: str
    ) -> tuple[IntakeMail, Transaction]:
        """The mail with one order per number and list member, or Reject with the SMTP
        reply's kind; lists fan out through the intake's `fan_out_lists`, as for mail."""
        now = utcnow()
        t = await self.transaction(key, client_ip)
        self._with_options(t, request, now)
        await self._recipients(t, request)
        raw, text = as_mail(request.text)
        mail_id = new_mail_id()
        orders: tuple[NewOrder, ...] = ()
        if t.recipients:
            sms = compose_text(text, t.policy)
            orders = direct_orders(mail_id, t.recipients, sms, t.policy, now)
        direct = len(orders)
        orders, list_mail = await fan_out_lists(self.store, mail_id, t, t.policy, text, orders, now)
        mail = NewMail(
            id=mail_id,
            received_at=now,
            envelope_from=t.sender.address,
            user_id=t.sender.user_id,
            client_addr=client_ip,
            helo=f"api:{key.name}",
            message_id="",
            subject="",
            raw=raw,
            orders=orders,
        )
        return (
            IntakeMail(
                mail,
                list_mail=list_mail,
                conversation=Conversation(direct, self.reply_window),
                velocity=VelocityCheck.of(
                    t.access, t.sender.customer_id, t.sender.customer_name, direct, ""
                ),
            ),
            t,
        )

    async def preview(self, key: KeyRow, request: MessageRequest, client_ip: str) -> dict[str, Any]:
        """What the request would send: parts, encoding, replaced characters (nothing written)."""
        t = await self.transaction(key, client_ip)
        self._with_options(t, request, utcnow())
        numbers: list[str] = []
        lists: list[dict[str, Any]] = []
        for to in request.to:
            address = self._list_address(to)
            info = None
            if address is not None:
                info = await named_list(self.store, t.sender.customer_id, address, self.domains)
            if info is not None:
                lists.append({"name": info.name, "members": info.members})
            else:  # refused as `build` would refuse it (the rules that count nothing)
                recipient = self._recipient(t, to)
                check_number(t, recipient)
                t.recipients.append(recipient)
                numbers.append(recipient.msisdn)
        raw, text = as_mail(request.text)
        shown = preview_context(raw, t.policy, numbers[0] if numbers else "", text)
        rejected = shown["rejected"]
        orders = len(numbers) + sum(entry["members"] for entry in lists)
        return {
            "to": numbers,
            "sender_id": shown["sender_id"],
            "text": shown["sms_text"],
            "encoding": shown["encoding"],
            "units": shown["units"],
            "parts": shown["parts"],
            "part_texts": shown["part_texts"],
            "replaced": [{"from": a, "to": b} for a, b in shown["replaced"]],
            "truncated": shown["truncated"],
            "max_parts": shown["max_parts"],
            "removed": shown["removed"],
            "refused": {"reason": rejected[0], "detail": rejected[1]} if rejected else None,
            "lists": lists,
            "orders": orders,
            "cost": None if rejected else cost(t.policy.price_per_part, shown["parts"], orders),
        }

    async def replay(
        self, key: KeyRow, request: MessageRequest, idempotency_key: str | None
    ) -> Sent | None:
        """The answer kept for the Idempotency-Key, if this request was answered before."""
        if idempotency_key is None:
            return None
        return await self.store.read(find_answer, key.customer_id, idempotency_key, request.digest)

    async def send(
        self, key: KeyRow, request: MessageRequest, client_ip: str, idempotency_key: str | None
    ) -> Sent:
        """Commit the orders (with the Idempotency-Key's answer); the answer to give."""
        earlier = await self.replay(key, request, idempotency_key)
        if earlier is not None:
            return earlier
        mail, _ = await self.build(key, request, client_ip)
        return await self.commit(key, request, mail, idempotency_key)

    async def commit(
        self, key: KeyRow, request: MessageRequest, mail: IntakeMail, idempotency_key: str | None
    ) -> Sent:
        """Write a built mail and its orders with the Idempotency-Key's answer, in the group
        commit of the moment (with the other sends, and on SQLite the SMTP intake's mails);
        the answer once it has committed."""
        send = Send.of(key, request, mail, idempotency_key)
        return await self.store.grouped(commit_sends, send, lane=lanes.ORDERS)


class IdempotencyMismatch(InputError):
    """The Idempotency-Key was used before for a different request."""


ANSWER_KEPT: Final = timedelta(days=1)  # how long an Idempotency-Key's answer is kept


def purge_answers(conn: Connection, now: datetime) -> int:
    """Delete the Idempotency-Key answers older than ANSWER_KEPT (the daily purge)."""
    result = conn.execute(delete(_idem).where(_idem.c.created_at < now - ANSWER_KEPT))
    return int(result.rowcount or 0)


# Built once: every send reads its orders back, and every send with a key its answer.
_ANSWER = select(_idem.c.request_hash, _idem.c.status, _idem.c.body).where(
    _idem.c.customer_id == bindparam("customer_id"), _idem.c.idem_key == bindparam("idem_key")
)
_WRITTEN = select(_order.c.id, _order.c.status).where(_order.c.mail_id == bindparam("mail_id"))


def find_answer(conn: Connection, customer_id: int, idem_key: str, digest: str) -> Sent | None:
    found = fetch(conn, _ANSWER, {"customer_id": customer_id, "idem_key": idem_key})
    if not found:
        return None
    row = found[0]
    if row.request_hash != digest:
        raise IdempotencyMismatch(idem_key)
    return Sent(row.status, dict(row.body), replayed=True)


@dataclass(frozen=True, slots=True)
class Send:
    """A built send on its way to the commit: the mail, and the answer it will get."""

    mail: IntakeMail
    customer_id: int
    idem_key: str | None
    digest: str  # the request's, kept with the key's answer
    body: dict[str, Any]  # the answer before the orders' statuses as written

    @classmethod
    def of(
        cls, key: KeyRow, request: MessageRequest, mail: IntakeMail, idem_key: str | None
    ) -> Send:
        body = {
            "mail_id": mail.id,
            "orders": [
                {"id": o.id, "to": o.recipient, "status": "queued", "parts": o.parts}
                for o in mail.mail.orders
            ],
        }
        return cls(mail, key.customer_id, idem_key, request.digest, body)


def commit_sends(conn: Connection, sends: list[Send]) -> list[Sent]:
    """One transaction for a group commit's sends; per send its answer.

    1. A send whose Idempotency-Key has an answer already (a retry that another commit
       answered) gets that answer, and writes nothing; one for a different request
       raises IdempotencyMismatch (the group commit then tries its sends one by one, so
       only that caller gets it). A second send with the same key in this transaction
       gets the first one's answer the same way.
    2. The others' mails and orders through the intake's commit (`commit_mails`).
    3. Each answer with its orders' statuses as written (the SMS-pumping check may have
       held some), and those with a key kept for it.
    """
    replays: dict[int, int] = {}  # a send's index -> the index of its key's first send
    answers: dict[int, Sent] = {}
    first: dict[tuple[int, str], int] = {}
    fresh: list[int] = []
    for at, s in enumerate(sends):
        if s.idem_key is not None:
            ident = (s.customer_id, s.idem_key)
            if ident in first:
                if sends[first[ident]].digest != s.digest:
                    raise IdempotencyMismatch(s.idem_key)
                replays[at] = first[ident]
                continue
            earlier = find_answer(conn, s.customer_id, s.idem_key, s.digest)
            if earlier is not None:
                answers[at] = earlier
                continue
            first[ident] = at
        fresh.append(at)
    if fresh:
        commit_mails(conn, [sends[at].mail for at in fresh])
    kept = []
    for at in fresh:
        s = sends[at]
        written = dict(fetch(conn, _WRITTEN, {"mail_id": s.mail.id}))
        orders = [{**o, "status": written.get(o["id"], o["status"])} for o in s.body["orders"]]
        answers[at] = answer = Sent(201, {**s.body, "orders": orders})
        if s.idem_key is not None:
            kept.append(
                {
                    "customer_id": s.customer_id,
                    "idem_key": s.idem_key,
                    "request_hash": s.digest,
                    "status": answer.status,
                    "body": answer.body,
                    "created_at": s.mail.mail.received_at,
                }
            )
    if kept:
        bulk_insert(conn, _idem, kept)
    for at, to in replays.items():
        answers[at] = Sent(answers[to].status, answers[to].body, replayed=True)
    return [answers[at] for at in range(len(sends))]
