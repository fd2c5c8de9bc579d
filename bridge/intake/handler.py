"""The SMTP intake: aiosmtpd hooks that check sender and recipients and queue each mail's orders.

MAIL checks the envelope sender (an enabled user), RCPT parses each recipient
into an E.164 mobile number, DATA turns the mail into SMS text and commits the mail
with one order per recipient; `250 … queued as <mail id>` is sent only after that
commit returned. Every reply comes from `bridge.errors.REPLIES`. Known senders come
from a 5-second cache (`bridge.intake.senders`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from bridge.errors import Reject, StorageUnavailable, reply
from bridge.intake.access import CustomerAccess, Networks
from bridge.intake.addresses import RecipientError, parse_recipient
from bridge.intake.backpressure import Backpressure
from bridge.intake.compose import compose_text, preview_context
from bridge.intake.destinations import check_destination
from bridge.intake.dsn_params import MailDsn, RcptDsn
from bridge.intake.entropy import random24
from bridge.intake.hygiene import bare_line_ending, dedupe_key, loop_reason, normalise_line_endings
from bridge.intake.listing import accept_list, fan_out_lists, scheduled
from bridge.intake.overrides import apply_overrides
from bridge.intake.rules import RCPT_RULES
from bridge.intake.senders import SenderCache
from bridge.intake.transaction import Transaction
from bridge.policy import resolve
from bridge.settings import SmtpSettings
from bridge.store.intake import NewMail, NewNotice, NewOrder
from bridge.store.models import utcnow
from bridge.store.store import Store
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import extract

log = logging.getLogger("bridge.intake")

_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZ"


def new_mail_id() -> str:
    """A short, time-ordered, unique-enough id ("queued as"), like a Postfix queue id."""
    n = (time.time_ns() // 1_000_000) << 24 | random24()
    out = []
    while n:
        n, r = divmod(n, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


class IntakeHandler:
    """aiosmtpd handler; one instance serves every session."""

    def __init__(
        self,
        settings: SmtpSettings,
        defaults: dict[str, Any],
        store: Store,
        on_accepted: Callable[[], None] = lambda: None,
        on_notice: Callable[[], None] = lambda: None,
        backpressure: Backpressure | None = None,
    ) -> None:
        self.settings = settings
        self.backpressure = backpressure
        self._normalize_networks = Networks(settings.normalize_networks)
        self.defaults = defaults
        self.store = store
        self.on_accepted = on_accepted
        self.on_notice = on_notice
        self.in_flight = 0
        self.senders = SenderCache(store)
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        try:
            if self.backpressure is not None:
                busy = self.backpressure.reason()
                if busy is not None:
                    raise Reject("queue_full", detail=busy)
            transaction = await self._check_sender(address)
            self._check_access(server, session, transaction)
            transaction.dsn = getattr(server, "mail_dsn", None) or MailDsn()
        except Reject as rej:
            log.info("MAIL from=<%s> client=%s refused: %s", address, session.peer, rej.kind)
            return rej.reply
        except StorageUnavailable as exc:
            log.error("MAIL from=<%s>: storage unavailable: %s", address, exc)
            return reply("storage_failure")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.bridge = transaction
        return reply("sender_ok")

    async def _check_sender(self, address: str) -> Transaction:
        if not address:
            raise Reject("null_sender")
        sender = await self.senders.find(address)
        if sender is None:
            raise Reject("unknown_sender", sender=address)
        if not sender.enabled or not sender.customer_enabled:
            raise Reject("disabled_sender", sender=address)
        policy = resolve(
            self.defaults, sender.customer_settings, sender.profile_settings, sender.user_settings
        )
        return Transaction(
            sender=sender, policy=policy, access=customer_access(sender.customer_settings)
        )

    def _check_access(self, server: Any, session: Any, transaction: Transaction) -> None:
        """The customer's client networks, its TLS rule, and the AUTH identity's customer."""
        ip = getattr(server, "client_ip", "") or _peer_ip(session)
        transaction.client_ip = ip
        sender = transaction.sender
        access = transaction.access
        if access.networks and ip not in networks(access.networks):
            raise Reject("client_not_allowed", ip=ip, sender=sender.address)
        if access.require_tls and not getattr(server, "is_tls", False):
            raise Reject("tls_required")
        auth_customer = getattr(server, "auth_customer_id", None)
        if auth_customer is not None and auth_customer != sender.customer_id:
            raise Reject("not_your_account", sender=sender.address)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        transaction: Transaction = envelope.bridge
        if len(transaction.recipients) >= self.settings.max_recipients:
            return reply("too_many_recipients")
        try:  # <list>@<domain> before number parsing (issue 8)
            listed = await accept_list(
                self.store, transaction, envelope, address, self.settings.domains
            )
        except StorageUnavailable:
            return reply("storage_failure")
        if listed is not None:
            return listed
        try:
            recipient = parse_recipient(
                address, self.settings.domains, transaction.policy.default_country
            )
        except RecipientError as err:
            log.info("RCPT to=<%s> from=<%s> refused: %s", address, envelope.mail_from, err.kind)
            return reply(
                err.kind, recipient=address, domain=self.settings.domains[0], detail=err.detail
            )
        rcpt_dsn = getattr(server, "rcpt_dsn", None) or RcptDsn()
        recipient = replace(recipient, notify=rcpt_dsn.notify, orcpt=rcpt_dsn.orcpt)
        try:
            check_destination(self.settings.domain_customers, transaction, recipient)
        except Reject as rej:
            log.info("RCPT to=<%s> from=<%s> refused: %s", address, envelope.mail_from, rej.kind)
            return rej.reply
        try:
            for rule in RCPT_RULES:
                await rule(self.store, transaction, recipient)
        except Reject as rej:
            log.info("RCPT to=<%s> from=<%s> refused: %s", address, envelope.mail_from, rej.kind)
            return rej.reply
        except StorageUnavailable as exc:
            log.error("RCPT to=<%s>: storage unavailable: %s", address, exc)
            return reply("storage_failure")
        transaction.recipients.append(recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return reply("recipient_ok")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        transaction: Transaction = envelope.bridge
        raw: bytes = envelope.original_content or envelope.content
        mail_id = new_mail_id()
        self.in_flight += 1
        self._idle.clear()
        try:
            raw = self._check_line_endings(raw, transaction.client_ip)
            mail = await self._build(mail_id, transaction, raw, session, envelope.mail_from)
            accepted_id = await self.store.accept(mail)
        except Reject as rej:
            log.info("%s: from=<%s> refused: %s", mail_id, envelope.mail_from, rej.reply)
            return rej.reply
        except StorageUnavailable as exc:
            log.error(
                "%s: from=<%s> not accepted, storage unavailable: %s",
                mail_id,
                envelope.mail_from,
                exc,
            )
            return reply("storage_failure")
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()
        if accepted_id != mail_id:
            log.info(
                "%s: from=<%s> is a copy of %s (same Message-ID and envelope): nothing new queued",
                mail_id,
                envelope.mail_from,
                accepted_id,
            )
            return reply("queued", mail_id=accepted_id)
        log.info(
            "%s: from=<%s> to=%s orders=%d parts=%d previews=%d accepted",
            mail_id,
            envelope.mail_from,
            ",".join(r.msisdn for r in transaction.recipients),
            len(mail.orders),
            mail.orders[0].parts if mail.orders else 0,
            len(mail.notices),
        )
        if mail.orders:
            self.on_accepted()
        if mail.notices:
            self.on_notice()
        return reply("queued", mail_id=mail_id)

    def _check_line_endings(self, raw: bytes, client_ip: str) -> bytes:
        """Refuse (or, for trusted networks, repair) bare CR, bare LF and NUL."""
        found = bare_line_ending(raw)
        if found is None:
            return raw
        if self.settings.bare_line_endings == "normalize" or client_ip in self._normalize_networks:
            log.info("client %s sent a %s; line endings normalised", client_ip, found)
            return normalise_line_endings(raw)
        raise Reject("bare_line_ending", detail=found)

    async def _build(
        self, mail_id: str, transaction: Transaction, raw: bytes, session: Any, mail_from: str
    ) -> NewMail:
        if len(raw) > self.settings.parse_in_thread_above:
            text = await asyncio.to_thread(_extract, raw)
        else:
            text = _extract(raw)
        loop = loop_reason(text, self.settings.max_received)
        if loop is not None:
            kind = (
                "mail_loop"
                if text.received_count >= self.settings.max_received
                else "auto_submitted"
            )
            raise Reject(kind, detail=loop)
        text, policy = apply_overrides(raw, text, transaction.policy)  # per-mail (issue 8)
        real = [r for r in transaction.recipients if not r.preview]
        now = utcnow()
        orders: tuple[NewOrder, ...] = ()
        if real:
            sms = compose_text(text, policy)
            expires_at = now + timedelta(seconds=policy.validity)
            policy_values = policy.as_dict()
            orders = tuple(
                NewOrder(
                    id=f"{mail_id}.{n}",
                    recipient=rcpt.msisdn,
                    rcpt_address=rcpt.address,
                    sender_id=policy.sender_id,
                    text=sms.text,
                    encoding=sms.encoding,
                    parts=sms.parts,
                    priority=1 if policy.priority == "express" else 0,
                    expires_at=expires_at,
                    policy=policy_values,
                    dsn_notify=",".join(rcpt.notify) if rcpt.notify else None,
                    dsn_orcpt=rcpt.orcpt,
                )
                for n, rcpt in enumerate(real, start=1)
            )
            orders = scheduled(orders, policy, now)  # sender numbers of conversations: at commit
        direct = len(orders)
        orders, list_mail = await fan_out_lists(
            self.store, mail_id, transaction, policy, text, orders, now
        )
        notices = tuple(
            NewNotice(
                "preview",
                mail_from,
                preview_context(raw, policy, rcpt.msisdn, text),
                transaction.sender.customer_name,
            )
            for rcpt in transaction.recipients
            if rcpt.preview
        )
        peer = session.peer
        return NewMail(
            id=mail_id,
            received_at=now,
            envelope_from=mail_from,
            user_id=transaction.sender.user_id,
            client_addr=str(peer[0]) if isinstance(peer, tuple) else str(peer or ""),
            helo=str(session.host_name or ""),
            message_id=text.message_id or "",
            subject=text.subject[:998],
            raw=raw,
            orders=orders,
            notices=notices,
            list_mail=list_mail,
            dsn_ret=transaction.dsn.ret,
            dsn_envid=transaction.dsn.envid,
            dedupe_key=dedupe_key(
                text.message_id,
                mail_from,
                [r.address for r in transaction.recipients]
                + [target.address for target in transaction.lists],
            ),
            dedupe_since=now - timedelta(seconds=self.settings.dedupe_window),
            conversation=direct,
        )

    async def drained(self, within: float) -> bool:
        """Wait until no DATA is being processed (or `within` seconds passed)."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    async def handle_exception(self, error: Exception) -> str:
        log.exception("unexpected error in the SMTP session", exc_info=error)
        return reply("internal_error")


def _extract(raw: bytes) -> Any:
    try:
        return extract(raw)
    except MimeTooComplex as exc:
        raise Reject("mime_too_complex", reason=str(exc)) from exc


@lru_cache(maxsize=256)
def networks(cidrs: tuple[str, ...]) -> Networks:
    return Networks(cidrs)


def customer_access(settings: dict[str, Any]) -> CustomerAccess:
    try:
        return CustomerAccess.from_settings(settings)
    except (ValueError, TypeError) as exc:
        log.error("customer access settings are invalid (%s); treated as a temporary fault", exc)
        raise StorageUnavailable(f"invalid customer access settings: {exc}") from exc


def _peer_ip(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) else ""
