"""The SMTP intake: aiosmtpd hooks that check sender and recipients and queue each mail's orders.

MAIL checks the envelope sender (an enabled user) and whether this client may send
for it (`access.check_client`), RCPT parses each recipient into an E.164 mobile
number, DATA turns the mail into SMS text and commits the mail with one order per
recipient; `250 … queued as <mail id>` is sent only after that commit returned.
Every reply comes from `bridge.errors.REPLIES`. A fault of the client's input is
always a 5xx (`_from_input`), a 4xx only ever means our own fault (storage,
backpressure, and `internal_error` for anything else that fails on the DATA path, its
traceback in the log only: `_fault_of_input` tells the two apart). Known senders come
from a 5-second cache (`bridge.intake.sender_cache`); refusals are logged through a rate limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from email.errors import MessageError
from typing import Any

from bridge import logcontext
from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import InputError, Reject, StorageUnavailable, reply
from bridge.inbound.store import DEFAULT_REPLY_WINDOW
from bridge.intake.access import Client, Networks, check_client, client_in
from bridge.intake.access_store import known_networks
from bridge.intake.addresses import RecipientError, parse_recipient, probe_refusal
from bridge.intake.backpressure import Backpressure
from bridge.intake.commit import Conversation, IntakeMail, accept
from bridge.intake.destinations import check_domain
from bridge.intake.direct import direct_orders
from bridge.intake.dsn_params import MailDsn, RcptDsn
from bridge.intake.entropy import random24
from bridge.intake.hygiene import bare_line_ending, dedupe_key, loop_reason, normalise_line_endings
from bridge.intake.listing import accept_list, fan_out_lists
from bridge.intake.lograte import LogLimiter
from bridge.intake.overrides import apply_overrides, may_override
from bridge.intake.pacing import Door, Pacer
from bridge.intake.ratelimit import pending
from bridge.intake.resolved import Resolutions
from bridge.intake.rules import RCPT_RULES
from bridge.intake.sender_cache import SenderCache
from bridge.intake.settings import SmtpSettings
from bridge.intake.sms_plan import compose_text, preview_context
from bridge.intake.transaction import Transaction
from bridge.intake.velocity import VelocityCheck
from bridge.metrics import Metrics
from bridge.mt.mails import NewMail, NewOrder
from bridge.notices.queue import NewNotice
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import extract

log = logging.getLogger("bridge.intake")
# Seconds the customers' client networks are kept for recipient probes (as senders' rows).
PROBE_NETWORKS_TTL = 5.0

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
        wake_before_commit: bool = False,
        backpressure: Backpressure | None = None,
        pacer: Pacer | None = None,
        alert_fallback: str = "",
        reply_window: float = DEFAULT_REPLY_WINDOW,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.reply_window = reply_window  # `[inbound] reply_window`: conversations' sender number
        self.metrics = metrics or Metrics.unregistered()
        self.alert_fallback = alert_fallback  # SMS pumping alerts without a customer admin
        self.logs = LogLimiter(log, burst=30, total_burst=300)
        self.backpressure = backpressure
        self.pacer = pacer  # a new mail's pause while this process is saturated
        self._normalize_networks = Networks(settings.normalize_networks)
        self.defaults = defaults
        self.store = store
        # every enabled customer's client networks, and when they were read (probe_MAIL)
        self._networks: tuple[float, tuple[str, ...]] | None = None
        self.on_accepted = on_accepted  # wakes the dispatcher for a mail with orders
        # ... as the mail is queued for its commit, not once it committed: the dispatcher's
        # claim then joins that commit (their lane, `bridge.mt.lanes.ORDERS`)
        self.wake_before_commit = wake_before_commit
        self.on_notice = on_notice
        self.in_flight = 0
        self.senders = SenderCache(store)
        # a cached sender's policy, access, policy values and text rules: once per row read
        self.resolutions = Resolutions(defaults)
        self._idle = asyncio.Event()
        self._idle.set()
        self._customer_orders: dict[str, Any] = {}  # customer label -> its child counter

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        offer = getattr(server, "pipelining", None)  # BridgeSMTP's: `[smtp] pipelining`
        pipelining = ["250-PIPELINING"] if offer is not None and offer() else []
        return [*responses[:-1], *pipelining, "250-DSN", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        logcontext.set_fields(mail_id=None, customer=None)  # a new transaction in the session
        if self.pacer is not None:
            await self.pacer.pause(Door.SMTP)
        try:
            if self.backpressure is not None:
                busy = self.backpressure.reason()
                if busy is not None:
                    raise Reject("queue_full", detail=busy)
            transaction = await self._check_sender(address)
            logcontext.set_fields(customer=transaction.sender.customer_name)
            self._check_access(server, session, transaction)
            transaction.dsn = getattr(server, "mail_dsn", None) or MailDsn()
        except Reject as rej:
            ip = _peer_ip(session)
            self.logs.event(
                logging.INFO,
                "mail",
                ip,
                "MAIL from=<%s> client=%s refused: %s",
                address,
                ip,
                rej.kind,
            )
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
        return self.resolutions.of(sender).transaction()

    def _check_access(self, server: Any, session: Any, transaction: Transaction) -> None:
        """Client networks, TLS and AUTH of the sender's customer (whatever the greeting)."""
        ip = getattr(server, "client_ip", "") or _peer_ip(session)
        transaction.client_ip = ip
        client = Client(
            ip=ip,
            tls=bool(getattr(server, "is_tls", False)),
            auth_customer_id=getattr(server, "auth_customer_id", None),
        )
        sender = transaction.sender
        check_client(transaction.access, client, sender.customer_id, sender.address)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        transaction: Transaction = envelope.bridge
        if len(transaction.recipients) >= self.settings.max_recipients:
            return reply("too_many_recipients")
        if self.backpressure is not None:
            busy = self.backpressure.reason(pending(transaction) + 1)
            if busy is not None:
                return reply("queue_full", detail=busy)
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
                address,
                self.settings.domains,
                transaction.policy.default_country,
                self.settings.sms_services,
            )
        except RecipientError as err:
            self._refused("RCPT to=<%s> from=<%s> refused: %s", address, envelope, err.kind)
            return reply(
                err.kind, recipient=address, domain=self.settings.domains[0], detail=err.detail
            )
        except Exception as exc:  # the number parser failed on input it should refuse
            self._refused("RCPT to=<%s> from=<%s> unreadable: %r", address, envelope, exc)
            return reply("bad_recipient", recipient=address, domain=self.settings.domains[0])
        rcpt_dsn = getattr(server, "rcpt_dsn", None) or RcptDsn()
        if rcpt_dsn.notify is not None or rcpt_dsn.orcpt is not None:  # else as parsed
            recipient = replace(recipient, notify=rcpt_dsn.notify, orcpt=rcpt_dsn.orcpt)
        try:
            check_domain(self.settings.domain_customers, transaction, recipient)
        except Reject as rej:
            self._refused("RCPT to=<%s> from=<%s> refused: %s", address, envelope, rej.kind)
            return rej.reply
        try:
            for rule in RCPT_RULES:
                await rule(self.store, transaction, recipient)
        except Reject as rej:
            self._refused("RCPT to=<%s> from=<%s> refused: %s", address, envelope, rej.kind)
            return rej.reply
        except StorageUnavailable as exc:
            log.error("RCPT to=<%s>: storage unavailable: %s", address, exc)
            return reply("storage_failure")
        transaction.recipients.append(recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return reply("recipient_ok")

    async def probe_MAIL(self, ip: str, authenticated: bool) -> str:
        """The reply to `MAIL FROM:<>` (a recipient probe, see `probe_RCPT`): taken from
        a client that could send a mail — one authenticated (AUTH), or on a network of an
        enabled customer (`[customer] access`, read at most every 5 s) — so that the
        internet cannot ask the bridge about numbers; else `550 5.7.1`."""
        if not authenticated:
            try:
                networks = await self._probe_networks()
            except StorageUnavailable as exc:
                log.error("MAIL from=<>: storage unavailable: %s", exc)
                return reply("storage_failure")
            if not client_in(networks, ip):
                self.logs.event(
                    logging.INFO, "mail", ip, "MAIL from=<> client=%s refused: probe", ip
                )
                return reply("probe_not_allowed", ip=ip)
        return reply("sender_ok")

    async def _probe_networks(self) -> tuple[str, ...]:
        now = time.monotonic()
        cached = self._networks
        if cached is None or now - cached[0] > PROBE_NETWORKS_TTL:
            cached = self._networks = (now, await self.store.read(known_networks))
        return cached[1]

    def probe_RCPT(self, ip: str, address: str) -> str:
        """The reply to a RCPT in a null-sender transaction: an MTA's callout verification
        (Exim's `verify = recipient/callout`, Postfix's `reject_unverified_recipient`),
        which asks with `MAIL FROM:<>` and never sends DATA. What holds for every sender
        is answered (`probe_refusal`); nothing is stored or counted."""
        try:
            refused = probe_refusal(address, self.settings.domains, self.settings.sms_services)
        except Exception:  # the number parser failed: the real transaction will say why
            refused = None
        if refused is None:
            return reply("recipient_ok")
        self.logs.event(
            logging.INFO, "rcpt", ip, "probe RCPT to=<%s> refused: %s", address, refused.kind
        )
        return reply(
            refused.kind, recipient=address, domain=self.settings.domains[0], detail=refused.detail
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        transaction: Transaction = envelope.bridge
        raw: bytes = envelope.original_content or envelope.content
        mail_id = new_mail_id()
        logcontext.set_fields(mail_id=mail_id)
        self.in_flight += 1
        self._idle.clear()
        reserved = 0
        try:
            raw = self._check_line_endings(raw, transaction.client_ip)
            mail = await self._build(mail_id, transaction, raw, session, envelope.mail_from)
            reserved = self._reserve(len(mail.mail.orders))
            if mail.mail.orders and self.wake_before_commit:
                self.on_accepted()
            accepted_id = await accept(self.store, mail)
        except Reject as rej:
            self._settle(reserved, committed=False)
            self.logs.event(
                logging.INFO,
                "data",
                transaction.client_ip,
                "%s: from=<%s> refused: %s",
                mail_id,
                envelope.mail_from,
                rej.reply,
            )
            return rej.reply
        except StorageUnavailable as exc:
            self._settle(reserved, committed=False)
            log.error(
                "%s: from=<%s> not accepted, storage unavailable: %s",
                mail_id,
                envelope.mail_from,
                exc,
            )
            return reply("storage_failure")
        except Exception as exc:  # a fault of ours (`_build`): the client's MTA tries again
            self._settle(reserved, committed=False)
            self.logs.event(
                logging.ERROR,
                "internal",
                "",
                "%s: from=<%s> not accepted, internal error (answered 451): %r",
                mail_id,
                envelope.mail_from,
                exc,
                exc_info=exc,
            )
            return reply("internal_error")
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()
        self._settle(reserved, committed=accepted_id == mail_id)
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
            len(mail.mail.orders),
            mail.mail.orders[0].parts if mail.mail.orders else 0,
            len(mail.notices),
        )
        self.metrics.mails_accepted.inc()
        self.metrics.orders_accepted.inc(len(mail.mail.orders))
        customer = self.metrics.customer(transaction.sender.customer_name)
        counter = self._customer_orders.get(customer)
        if counter is None:  # at most [http] customer_labels + 1 labels, each looked up once
            counter = self._customer_orders[customer] = self.metrics.customer_orders.labels(
                customer
            )
        counter.inc(len(mail.mail.orders))
        if mail.mail.orders and not self.wake_before_commit:
            self.on_accepted()
        if mail.notices:
            self.on_notice()
        return reply("queued", mail_id=mail_id)

    def _refused(self, msg: str, address: str, envelope: Any, why: object) -> None:
        transaction: Transaction | None = getattr(envelope, "bridge", None)
        ip = transaction.client_ip if transaction is not None else ""
        self.logs.event(logging.INFO, "rcpt", ip, msg, address, envelope.mail_from, why)

    def _reserve(self, orders: int) -> int:
        """Count the mail's orders against the queue's high-water mark (or Reject)."""
        if self.backpressure is None:
            return 0
        busy = self.backpressure.reserve(orders)
        if busy is not None:
            raise Reject("queue_full", detail=busy)
        return orders

    def _settle(self, reserved: int, *, committed: bool) -> None:
        if self.backpressure is not None and reserved:
            self.backpressure.settle(reserved, committed=committed)

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
    ) -> IntakeMail:
        try:
            return await self._build_mail(mail_id, transaction, raw, session, mail_from)
        except (Reject, StorageUnavailable):
            raise
        except Exception as exc:
            if not _fault_of_input(exc):
                raise  # ours (a bug, MemoryError, OSError, shutdown): handle_DATA says 451
            raise self._from_input(mail_id, transaction.client_ip, exc) from exc

    def _from_input(self, mail_id: str, client_ip: str, exc: Exception) -> Reject:
        """A fault of the mail found while reading it (`_fault_of_input`): a 5xx, the same
        mail fails the same way at every retry.

        Faults of decoding and of values (charsets, numbers, dates) are the refusal's one
        log line; a crash of a foreign parser is logged with its traceback as well (through
        the rate limiter): it may want a work-around in `bridge.text.mime`.
        """
        if not _value_fault(exc):
            self.logs.event(
                logging.WARNING,
                "unreadable",
                client_ip,
                "%s: the mail parser failed on this mail (refused with 554)",
                mail_id,
                exc_info=exc,
            )
        return Reject("unreadable_mail", detail=_describe(exc))

    async def _build_mail(
        self, mail_id: str, transaction: Transaction, raw: bytes, session: Any, mail_from: str
    ) -> IntakeMail:
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
        now = utcnow()
        policy = transaction.policy
        if may_override(raw, text.subject):
            text, policy = apply_overrides(raw, text, policy, now)  # per mail
        real = [r for r in transaction.recipients if not r.preview]
        orders: tuple[NewOrder, ...] = ()
        if real:
            same = policy is transaction.policy  # no per-mail override
            values = transaction.policy_values if same else None
            sms = compose_text(text, policy, transaction.text_rules if same else None)
            orders = direct_orders(mail_id, real, sms, policy, now, policy_values=values)
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
        new = NewMail(
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
            dsn_ret=transaction.dsn.ret,
            dsn_envid=transaction.dsn.envid,
            dedupe_key=dedupe_key(
                text.message_id,
                mail_from,
                [r.address for r in transaction.recipients]
                + [target.address for target in transaction.lists],
            ),
            dedupe_since=now - timedelta(seconds=self.settings.dedupe_window),
        )
        return IntakeMail(
            new,
            notices=notices,
            list_mail=list_mail,
            conversation=Conversation(direct, self.reply_window),
            velocity=VelocityCheck.of(
                transaction.access,
                transaction.sender.customer_id,
                transaction.sender.customer_name,
                direct,
                self.alert_fallback,
            ),
        )

    async def drained(self, within: float) -> bool:
        """Wait until no DATA is being processed (or `within` seconds passed)."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True


def _extract(raw: bytes) -> Any:
    try:
        return extract(raw)
    except MimeTooComplex as exc:
        raise Reject("mime_too_complex", reason=str(exc)) from exc


# What `_build` refuses as the mail's fault (554 `unreadable_mail`), because the same bytes
# fail the same way at every retry; anything else is a fault of ours, answered 451 so that
# the client's MTA tries again (MemoryError under load, OSError, the parse thread's
# "cannot schedule new futures after shutdown", a bug: TypeError, AttributeError, KeyError).
#
# Values read from the mail (dates, numbers, base64, charset names, RFC 2047 words) fail as
# ValueError (UnicodeError, binascii.Error and most of our InputErrors among them) or
# OverflowError, an unknown charset label as a bare LookupError (`codecs.lookup`), nesting
# past the pre-scan as a RecursionError, a header as an `email.errors.MessageError`.
# ValueError is broad, but everything this path reads comes from the mail, and a ValueError
# of ours would be as deterministic: a retry could not help either.
_VALUE_FAULTS = (InputError, ValueError, OverflowError, RecursionError, MessageError)
# The foreign parsers of the mail's bytes, and the classes their deterministic crashes on
# hostile input raise: the stdlib's `email.utils.decode_params` raises TypeError for
# `filename*=a; filename*0=b`. Answered 451, such a mail would come back for days; raised in
# our own code, the same classes are a bug of ours (451).
_PARSERS = frozenset({"email", "lxml", "inscriptis"})
_PARSER_CRASHES = (TypeError, AttributeError, LookupError, AssertionError)


def _value_fault(exc: Exception) -> bool:
    # LookupError itself, not its subclasses KeyError and IndexError (a bug of ours)
    return isinstance(exc, _VALUE_FAULTS) or type(exc) is LookupError


def _fault_of_input(exc: Exception) -> bool:
    """Whether `exc`, raised while the mail was read, is the mail's fault (a 5xx)."""
    if _value_fault(exc):
        return True
    if not isinstance(exc, _PARSER_CRASHES):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = "" if tb is None else str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.partition(".")[0] in _PARSERS  # raised inside the parser, not by our code


def _describe(exc: Exception) -> str:
    """What of the mail cannot be read, for the reply: short, one line, ASCII, never an
    exception's class name (nor, for a parser's crash, its message)."""
    if isinstance(exc, UnicodeError):
        text = f"its text cannot be decoded: {exc}"
    elif isinstance(exc, RecursionError):
        text = "its MIME parts are nested too deeply"
    elif type(exc) is LookupError:
        text = f"it names an unknown character set: {exc}"
    elif _value_fault(exc):
        text = f"a header or value in it cannot be read: {exc}".rstrip(": ")
    else:
        text = "its MIME headers cannot be parsed: a malformed or repeated parameter"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:120]


def _peer_ip(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) else ""
