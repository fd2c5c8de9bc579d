"""The SMPP server: customers' applications bind, submit SMS, and receive receipts and MO.

Binds are checked against the account (`accounts.py`): system_id, scrypt password
(verified in a thread), client network, bind type, number of binds. A submit_sm becomes
an order of the account's user through the mail pipeline's pieces: the user's policy,
the recipient rules of the SMTP intake (countries, rate limits, stop list), the
account's sender ids, and the same mail/order rows (`orders.commit_submits`, group
committed). `submit_sm_resp` carries our message id (the order id) only after the
commit; a storage fault is answered ESME_RSYSERR, which clients retry. Each part of a
concatenated message (UDH or sar_* TLVs) is committed as it comes and answered with the
message id of the whole; the last part makes the one order of all of them. A bound
receiver or transceiver gets the account's outbox (receipts, MO SMS) as deliver_sm, in
order per message, retried with backoff until answered ESME_ROK.

The door has the SMTP door's limits: connections per address and in total, a bind
within `bind_timeout` (SMPP 3.4's session_init_timer), wrong passwords counted per
address and per system_id across connections (`AuthGuard`: answered later and later,
then locked out without a password check), and a bound client silent for
`enquire_link_interval` is asked with enquire_link and dropped when it does not answer,
so a bind whose network has gone does not hold the account's `max_binds` for ever.
What a submit_sm may send is decided as at the other doors: the recipient rules
(`bridge.intake.rules`), the backpressure marks (`ESME_RMSGQFUL` above them) and, in the
commit, the SMS-pumping hold (`bridge.intake.commit.commit_mails`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import Reject, StorageUnavailable
from bridge.intake.access import ConnectionLimiter
from bridge.intake.addresses import Recipient, classify_number
from bridge.intake.authguard import AuthGuard, AuthLimits
from bridge.intake.backpressure import Backpressure
from bridge.intake.handler import new_mail_id
from bridge.intake.lograte import LogLimiter
from bridge.intake.pacing import Door, Pacer
from bridge.intake.resolved import Resolutions
from bridge.intake.rules import RCPT_RULES
from bridge.intake.sender_cache import SenderCache
from bridge.intake.tls import CertWatcher, server_context
from bridge.intake.transaction import Transaction
from bridge.intake.velocity import VelocityCheck
from bridge.mt import lanes
from bridge.mt.mails import NewMail, NewOrder
from bridge.smpp import constants as c
from bridge.smpp.address import address_in
from bridge.smpp.pdu import (
    Bind,
    BindResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    UnknownPdu,
)
from bridge.smpp.session import NoTimeLeft, SessionError, SmppSession
from bridge.smpp.throttle import TokenBucket
from bridge.smpp_outbox.queue import (
    RECORD_MARGIN,
    OutboxItem,
    answered,
    outbox_lease,
    send_by,
    take_due,
)
from bridge.smpp_server.accounts import Account, find_account
from bridge.smpp_server.orders import (
    MESSAGE_STATES,
    PartOf,
    Submit,
    Taken,
    cancel_order,
    commit_submits,
    fail_incomplete,
    order_state,
    part_started,
)
from bridge.smpp_server.settings import SmppServerSettings
from bridge.smpp_server.submit import (
    ReadPart,
    SubmitRefused,
    delivery_window,
    parts_needed,
    read_part,
    sender_allowed,
    sender_refused,
)
from bridge.tenants.logins import verify_password

log = logging.getLogger("bridge.smpp_server")

_BIND_NAMES: Final = {
    c.BIND_TRANSMITTER: "transmitter",
    c.BIND_RECEIVER: "receiver",
    c.BIND_TRANSCEIVER: "transceiver",
}
_QUERY_SM_RESP: Final = c.QUERY_SM | c.RESP_BIT
_CANCEL_SM_RESP: Final = c.CANCEL_SM | c.RESP_BIT
_REPLACE_SM_RESP: Final = c.REPLACE_SM | c.RESP_BIT
_REJECT_STATUS: Final = {"rate_limited": c.ESME_RTHROTTLED}


@dataclass(eq=False)
class _Client:
    ip: str
    session: SmppSession | None = None
    account: Account | None = None
    bind: str = ""
    outstanding: int = 0
    bound: asyncio.Event = field(default_factory=asyncio.Event)  # set by a bind taken

    @property
    def can_submit(self) -> bool:
        return self.bind in ("transmitter", "transceiver")

    @property
    def can_receive(self) -> bool:
        return self.bind in ("receiver", "transceiver")


class SmppServer:
    """The listener; `await start()`, then `port` is the bound port."""

    def __init__(
        self,
        settings: SmppServerSettings,
        defaults: dict[str, Any],
        store: Store,
        on_accepted: Callable[[], None] = lambda: None,
        wake_before_commit: bool = False,
        pacer: Pacer | None = None,
        backpressure: Backpressure | None = None,
        alert_fallback: str = "",
        certs: CertWatcher | None = None,
    ) -> None:
        self.settings = settings
        self.certs = certs  # renews the TLS port's certificate (the server keeps one context)
        # the queue's high-water mark and free disk, as the SMTP door and the API keep them:
        # a submit_sm over them is answered ESME_RMSGQFUL (clients send it again later)
        self.backpressure = backpressure
        self.alert_fallback = alert_fallback  # SMS pumping alerts without a customer admin
        # parts of concatenated messages being taken now, by (system_id, part key)
        self._assembling: Counter[tuple[str, str]] = Counter()
        # a new submit_sm's pause while this process is saturated: it holds a place in the
        # client's window meanwhile, so a busy bridge slows its clients as a slow SMSC would
        self.pacer = pacer
        self.defaults = defaults
        self.store = store
        self.on_accepted = on_accepted  # wakes the dispatcher for a message taken whole
        # ... a message in one PDU as it is queued for its commit (the dispatcher's claim
        # joins that commit: their lane, `bridge.mt.lanes.ORDERS`); a concatenated one always
        # once its last part committed
        self.wake_before_commit = wake_before_commit
        self.senders = SenderCache(store)
        self.resolutions = Resolutions(defaults)
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        # submits per second over all binds of an account: refused over it, never waited
        self._rates: dict[str, TokenBucket] = {}
        self._wake = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.accepted = 0  # submit_sm answered with a message id (for the benchmark)
        s = settings
        self._limiter = ConnectionLimiter(
            s.max_connections_per_ip, s.max_connections_per_ip_per_minute, s.max_connections
        )
        self._guard = AuthGuard(
            AuthLimits(
                max_failures=s.bind_max_failures,
                max_failures_per_login=s.bind_max_failures_per_system_id,
                lockout=s.bind_lockout,
            )
        )
        self._logs = LogLimiter(log)  # lines a client can cause, at a bounded rate

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    def _tls(self) -> ssl.SSLContext | None:
        s = self.settings
        if s.tls_cert is None or s.tls_key is None:
            return None
        # the rules of every server-side TLS context of the bridge (TLS 1.2+, AEAD only,
        # X25519/P-256/P-384), not Python's defaults (which include CBC suites)
        if self.certs is not None:
            return self.certs.serve("smpp", s.tls_cert, s.tls_key)
        return server_context(str(s.tls_cert), str(s.tls_key))

    async def start(self) -> tuple[str, int]:
        s = self.settings
        tls = self._tls()
        self._server = await asyncio.start_server(self._on_connect, s.host, s.port, ssl=tls)
        self._outbox_task = asyncio.create_task(self._outbox_loop(), name="smpp-server-outbox")
        log.info("SMPP server listening on %s:%d%s", s.host, self.port, " (TLS)" if tls else "")
        return (s.host, self.port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop as an SMSC does: no new connection and no new submit_sm (answered
        ESME_RSYSERR, which clients retry); the outbox ends the round it is in (the
        deliver_sm it sent get their answers recorded); each submit_sm being handled is
        answered after its commit (for at most `grace` seconds); then each bound client
        is told `unbind` (`UNBIND_WAIT` for its answer) and every connection closes. So a
        client sees a clean unbind, not a lost connection, and is not left without the
        answer to a message that was stored (which it would send again)."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._outbox_task is not None:
            self._wake.set()  # its loop sees the stop now, not after `outbox_interval`
            await asyncio.wait({self._outbox_task}, timeout=grace)
            self._outbox_task.cancel()
            await asyncio.gather(self._outbox_task, return_exceptions=True)
        await asyncio.gather(*(self._part(client, grace) for client in list(self._clients)))
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def _part(self, client: _Client, grace: float) -> None:
        session = client.session
        if session is None or session.closed:
            return
        await session.drain(grace)
        if client.account is not None:
            await session.unbind()
        session.abort("server stopping")

    def wake(self) -> None:
        """Something was queued for the binds (a receipt, an MO): look now."""
        self._wake.set()

    def bound(self, system_id: str) -> int:
        """How many binds of `system_id` are up (tests, the log)."""
        return sum(
            1
            for x in self._clients
            if x.account and x.account.system_id == system_id and x.session and not x.session.closed
        )

    # --- connections ----------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        refused = self._limiter.admit(ip)
        if refused is not None:
            self._logs.event(
                logging.WARNING, "refused", ip, "SMPP connection from %s refused: %s", ip, refused
            )
            writer.close()
            return
        try:
            await self._serve(_Client(ip=ip), reader, writer)
        finally:
            self._limiter.release(ip)

    async def _serve(
        self, client: _Client, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async def handler(pdu: Pdu) -> Pdu | None:
            return await self._on_request(client, pdu)

        client.session = SmppSession(
            reader,
            writer,
            handler,
            name=f"smpp-server {client.ip}",
            response_timeout=self.settings.response_timeout,
        )
        self._clients.add(client)
        watch = asyncio.create_task(self._watch(client, client.session))
        try:
            await client.session.run()
        finally:
            watch.cancel()
            self._clients.discard(client)
            await client.session.close()
            if client.account is not None:
                log.info(
                    "SMPP %s (%s) unbound: %s",
                    client.account.system_id,
                    client.bind,
                    client.session.close_reason,
                )

    async def _watch(self, client: _Client, session: SmppSession) -> None:
        """Close a connection that has not bound within `bind_timeout`; then ask a bound
        client that was silent for `enquire_link_interval` whether it is still there, and
        drop it when it does not answer within `response_timeout` (its bind is free)."""
        s = self.settings
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(s.bind_timeout):
                await client.bound.wait()
        if client.account is None:
            if not session.closed:
                self._logs.event(
                    logging.INFO,
                    "no bind",
                    client.ip,
                    "SMPP connection from %s closed: no bind within %g s",
                    client.ip,
                    s.bind_timeout,
                )
                session.end(f"no bind within {s.bind_timeout:g} s")
            return
        loop = asyncio.get_running_loop()
        while not session.closed:
            silent = loop.time() - session.last_read
            if silent < s.enquire_link_interval:
                await asyncio.sleep(s.enquire_link_interval - silent)
                continue
            try:
                await session.request(
                    EnquireLink(0), response_timeout=s.response_timeout, use_window=False
                )
            except SessionError:
                if not self._stopping:
                    log.warning(
                        "SMPP %s (%s) from %s dropped: silent for %g s and no answer to "
                        "enquire_link within %g s; its bind is free",
                        client.account.system_id,
                        client.bind,
                        client.ip,
                        s.enquire_link_interval,
                        s.response_timeout,
                    )
                    session.abort("enquire_link unanswered")
                return

    async def _on_request(self, client: _Client, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, Bind):
            return await self._bind(client, pdu)
        if client.account is None:
            if isinstance(pdu, SubmitSm):
                return SubmitSmResp(pdu.sequence, c.ESME_RINVBNDSTS)
            return GenericNack(pdu.sequence, c.ESME_RINVBNDSTS)
        if isinstance(pdu, SubmitSm):
            if not client.can_submit:
                return SubmitSmResp(pdu.sequence, c.ESME_RINVBNDSTS)
            if self._stopping:  # the client sends it again: after the restart, or elsewhere
                return SubmitSmResp(pdu.sequence, c.ESME_RSYSERR)
            return await self._submit(client, pdu)
        if isinstance(pdu, UnknownPdu):
            if pdu.command_id == c.QUERY_SM:
                return await self._query(client, pdu)
            if pdu.command_id == c.CANCEL_SM:
                return await self._cancel(client, pdu)
            if pdu.command_id == c.REPLACE_SM:  # our orders are not replaceable in place
                return UnknownPdu(_REPLACE_SM_RESP, pdu.sequence, c.ESME_RREPLACEFAIL)
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    # --- bind -----------------------------------------------------------------------------

    async def _bind(self, client: _Client, pdu: Bind) -> Pdu | None:
        resp_id = pdu.command_id | c.RESP_BIT
        if client.account is not None:
            return BindResp(resp_id, pdu.sequence, c.ESME_RALYBND)
        status, account = await self._check_bind(client, pdu)
        if status != c.ESME_ROK or account is None:
            log.warning(
                "SMPP bind of %r from %s refused: %s",
                pdu.system_id,
                client.ip,
                c.status_name(status),
            )
            assert client.session is not None
            client.session.send(BindResp(resp_id, pdu.sequence, status))
            client.session.end("bind refused")
            return None
        client.account = account
        client.bind = _BIND_NAMES[pdu.command_id]
        assert client.session is not None  # no deliver_sm went before the bind
        client.session.set_window(account.window)  # the outbox's deliver_sm in flight at once
        client.bound.set()
        rate = account.throughput
        bucket = self._rates.setdefault(account.system_id, TokenBucket(rate))
        bucket.rate, bucket.burst = rate, max(1.0, rate)  # as the account says now
        log.info("SMPP %s bound as %s from %s", account.system_id, client.bind, client.ip)
        if client.can_receive:
            self.wake()
        return BindResp(
            resp_id,
            pdu.sequence,
            c.ESME_ROK,
            self.settings.system_id,
            tlvs=(Tlv(c.TLV_SC_INTERFACE_VERSION, bytes((c.INTERFACE_VERSION,))),),
        )

    async def _check_bind(self, client: _Client, pdu: Bind) -> tuple[int, Account | None]:
        """The bind's answer; wrong system_ids and passwords are counted (`AuthGuard`):
        answered after a growing delay, and a locked address or system_id is refused
        before any password is checked."""
        locked = self._guard.begin(client.ip, pdu.system_id, time.monotonic())
        if locked is not None and locked.subject == "busy":
            self._logs.event(
                logging.WARNING,
                "bind busy",
                client.ip,
                "SMPP bind of %r from %s refused for now: the counts of wrong passwords "
                "could not be had (every place of the client's bucket held, or their lock busy)",
                pdu.system_id,
                client.ip,
            )
            return c.ESME_RBINDFAIL, None
        if locked is not None:
            self._logs.event(
                logging.WARNING,
                "bind locked",
                client.ip,
                "SMPP bind of %r from %s refused: the %s is locked for another %d s "
                "after wrong passwords",
                pdu.system_id,
                client.ip,
                "address" if locked.subject == "address" else "system_id",
                round(locked.seconds),
            )
            return c.ESME_RBINDFAIL, None
        status, account = c.ESME_RSYSERR, None
        try:
            status, account = await self._verify_bind(client, pdu)
        finally:
            wrong = status in (c.ESME_RINVSYSID, c.ESME_RINVPASWD)
            delay, started = self._guard.end(
                client.ip, pdu.system_id, time.monotonic(), ok=not wrong
            )
        if started is not None:
            log.warning(
                "SMPP binds from %s (last as %r): the %s is locked for %d s after %s wrong "
                "passwords",
                client.ip,
                pdu.system_id,
                "address" if started.subject == "address" else "system_id",
                round(started.seconds),
                self.settings.bind_max_failures
                if started.subject == "address"
                else self.settings.bind_max_failures_per_system_id,
            )
        if delay:
            await asyncio.sleep(delay)
        return status, account

    async def _verify_bind(self, client: _Client, pdu: Bind) -> tuple[int, Account | None]:
        try:
            account = await self.store.read(find_account, pdu.system_id)
        except StorageUnavailable:
            return c.ESME_RSYSERR, None
        if account is None or not account.enabled:
            return c.ESME_RINVSYSID, None
        if not await asyncio.to_thread(verify_password, pdu.password, account.password_hash):
            return c.ESME_RINVPASWD, None
        if not account.allows_network(client.ip):
            return c.ESME_RBINDFAIL, None
        if _BIND_NAMES[pdu.command_id] not in account.bind_types:
            return c.ESME_RBINDFAIL, None
        if self.bound_binds(account.system_id) >= account.max_binds:
            return c.ESME_RBINDFAIL, None
        return c.ESME_ROK, account

    def bound_binds(self, system_id: str) -> int:
        return sum(1 for x in self._clients if x.account and x.account.system_id == system_id)

    # --- submit ---------------------------------------------------------------------------

    async def _submit(self, client: _Client, pdu: SubmitSm) -> Pdu:
        account = client.account
        assert account is not None
        if client.outstanding >= account.window:
            return SubmitSmResp(pdu.sequence, c.ESME_RTHROTTLED)
        client.outstanding += 1
        try:
            if self.pacer is not None:
                await self.pacer.pause(Door.SMPP)
            status, message_id = await self._take(client, account, pdu)
        finally:
            client.outstanding -= 1
        return SubmitSmResp(pdu.sequence, status, message_id if status == c.ESME_ROK else "")

    async def _take(self, client: _Client, account: Account, pdu: SubmitSm) -> tuple[int, str]:
        if not self._rates[account.system_id].take(time.monotonic()):
            return c.ESME_RTHROTTLED, ""
        try:
            read = read_part(pdu)
        except SubmitRefused as exc:
            return self._refused(account, exc), ""
        part_of = None
        if read.concat is not None:
            concat = read.concat
            part_of = PartOf(
                account.system_id,
                f"{pdu.source_addr}|{pdu.destination_addr}|{concat.ref}|{concat.total}",
                concat.seq,
                concat.total,
                read.part.stored(),
                read.part.text,
                read.part.encoding,
            )
        try:
            busy, reserved = await self._reserve(part_of)
        except StorageUnavailable as exc:
            log.error("SMPP %s: submit_sm not taken, storage: %s", account.system_id, exc)
            return c.ESME_RSYSERR, ""
        if busy is not None:  # nothing built, nothing stored: the client sends it again
            self._logs.event(
                logging.WARNING,
                "queue full",
                client.ip,
                "SMPP %s from %s: submit_sm refused: %s (ESME_RMSGQFUL)",
                account.system_id,
                client.ip,
                busy,
            )
            return c.ESME_RMSGQFUL, ""
        key = (part_of.system_id, part_of.key) if part_of is not None else None
        if key is not None:
            self._assembling[key] += 1
        taken: Taken | None = None
        try:
            status, taken = await self._commit(client, account, pdu, read, part_of)
        finally:  # on every path: the reservation counted as written, or released
            if key is not None:
                self._assembling[key] -= 1
                if not self._assembling[key]:
                    del self._assembling[key]
            if reserved and self.backpressure is not None:
                ordered = taken is not None and taken.ordered
                self.backpressure.settle(reserved, committed=ordered)
        return status, taken.message_id if taken is not None else ""

    async def _reserve(self, part_of: PartOf | None) -> tuple[str | None, int]:
        """(Why the submit_sm must wait, or None; the orders reserved for it), against the
        queue's high-water mark and the free disk as the SMTP door and the API reserve: one
        order, settled after the commit (`Backpressure.settle`).

        A part of a concatenated message reserves its message's one order too (released
        after its commit unless it completed the message: only the last part writes the
        order). Over the mark a message is refused at its first part to come, but the
        remaining parts of a message already started (a part kept, or being committed now)
        are taken without a reservation: refusing them would leave the kept parts waiting
        for `part_wait`, to end as a failed order, while the client retries a part that
        can only be taken once the queue drains. They are at most the parts of the
        messages begun before the mark was reached: a bounded overshoot."""
        if self.backpressure is None:
            return None, 0
        busy = self.backpressure.reserve(1)
        if busy is None:
            return None, 1
        if part_of is not None and await self._started(part_of):
            return None, 0
        return busy, 0

    async def _started(self, part_of: PartOf) -> bool:
        """A part of this message is kept, or being committed now (read only when busy)."""
        key = (part_of.system_id, part_of.key)
        return key in self._assembling or bool(await self.store.read(part_started, *key))

    async def _commit(
        self,
        client: _Client,
        account: Account,
        pdu: SubmitSm,
        read: ReadPart,
        part_of: PartOf | None,
    ) -> tuple[int, Taken | None]:
        """Build the message and commit it (group commit); the status to answer with, and
        what was written."""
        try:
            mail, velocity = await self._build(client, account, pdu, read)
        except SubmitRefused as exc:
            return self._refused(account, exc), None
        except StorageUnavailable as exc:
            log.error("SMPP %s: submit_sm not taken, storage: %s", account.system_id, exc)
            return c.ESME_RSYSERR, None
        early = part_of is None and self.wake_before_commit
        if early:
            self.on_accepted()
        try:
            taken: Taken = await self.store.grouped(
                commit_submits, Submit(mail, part_of, velocity), lane=lanes.ORDERS
            )
        except StorageUnavailable as exc:
            log.error("SMPP %s: submit_sm not taken, storage: %s", account.system_id, exc)
            return c.ESME_RSYSERR, None
        self.accepted += 1
        what = (
            f"part {part_of.seq}/{part_of.total}" if part_of else f"{mail.orders[0].parts} part(s)"
        )
        log.info(
            "%s: SMPP %s to=%s %s accepted",
            taken.message_id,
            account.system_id,
            mail.orders[0].recipient,
            what,
        )
        if not early and taken.ordered:
            self.on_accepted()
        return c.ESME_ROK, taken

    def _refused(self, account: Account, exc: SubmitRefused) -> int:
        log.info(
            "SMPP %s: submit_sm refused: %s (%s)",
            account.system_id,
            exc,
            c.status_name(exc.status),
        )
        return exc.status

    async def _build(
        self, client: _Client, account: Account, pdu: SubmitSm, read: ReadPart
    ) -> tuple[NewMail, VelocityCheck | None]:
        """The message's mail with its one order, and the customer's SMS-pumping limits,
        carried to the commit as the SMTP door and the API carry them (one direct order
        per message: a submit_sm per number is the pattern the check counts)."""
        sender = await self.senders.find(account.user)
        if sender is None or not sender.enabled or not sender.customer_enabled:
            raise SubmitRefused(c.ESME_RSUBMITFAIL, f"user {account.user} is disabled")
        resolved = self.resolutions.of(sender)
        policy = resolved.policy
        destination = address_in(pdu.dest_addr_ton, pdu.destination_addr)
        found = classify_number(destination, policy.default_country)
        if found is None:  # premium-rate numbers and short codes: the recipient rules
            raise SubmitRefused(c.ESME_RINVDSTADR, f"{destination!r} is not a mobile number")
        msisdn, kind = found
        source = address_in(pdu.source_addr_ton, pdu.source_addr) or policy.sender_id
        if not sender_allowed(source, account.senders, policy.sender_id):
            raise SubmitRefused(c.ESME_RINVSRCADR, f"sender {source!r} is not allowed")
        refused = sender_refused(source)
        if refused:
            raise SubmitRefused(c.ESME_RINVSRCADR, refused)
        recipient = Recipient(msisdn=msisdn, address=msisdn, domain="", kind=kind)
        transaction = Transaction(sender=sender, policy=policy, access=resolved.access)
        transaction.client_ip = client.ip
        try:
            for rule in RCPT_RULES:
                await rule(self.store, transaction, recipient)
        except Reject as rej:
            raise SubmitRefused(_REJECT_STATUS.get(rej.kind, c.ESME_RINVDSTADR), rej.kind) from None
        now = utcnow()
        window = delivery_window(
            pdu.schedule_delivery_time, pdu.validity_period, now, policy.validity
        )
        encoding, count = parts_needed(read, policy.max_parts)
        text = read.part.text
        values = dict(resolved.policy_values)  # its own top level: the SMPP fields go in
        values.update(
            notify="none",  # the client learns outcomes from our receipts
            notify_channel=[],
            send_at="",
            smpp={
                "system_id": account.system_id,
                "registered_delivery": pdu.registered_delivery,
                "source": pdu.source_addr,
                "source_ton": pdu.source_addr_ton,
                "source_npi": pdu.source_addr_npi,
                "destination": pdu.destination_addr,
                "dest_ton": pdu.dest_addr_ton,
                "dest_npi": pdu.dest_addr_npi,
            },
        )
        if not read.payload:  # as sent: dispatch submits these octets unchanged
            values["smpp_parts"] = [read.part.stored()]
        mail_id = new_mail_id()
        order = NewOrder(
            id=f"{mail_id}.1",
            recipient=msisdn,
            rcpt_address=f"smpp:{destination}",
            sender_id=source,
            text=text,
            encoding=encoding,
            parts=count,
            priority=1 if pdu.priority_flag else 0,
            expires_at=window.expires,
            policy=values,
            next_attempt_at=window.at,
        )
        return NewMail(
            id=mail_id,
            received_at=now,
            envelope_from=sender.address,
            user_id=sender.user_id,
            client_addr=client.ip,
            helo=f"smpp:{account.system_id}",
            message_id="",
            subject="",
            raw=b"",
            orders=(order,),
        ), VelocityCheck.of(
            resolved.access, sender.customer_id, sender.customer_name, 1, self.alert_fallback
        )

    # --- query_sm, cancel_sm ----------------------------------------------------------------

    async def _query(self, client: _Client, pdu: UnknownPdu) -> Pdu:
        assert client.account is not None
        message_id = pdu.body.split(b"\0", 1)[0].decode("latin-1")
        try:
            state = await self.store.read(order_state, message_id, client.account.system_id)
        except StorageUnavailable:
            return UnknownPdu(_QUERY_SM_RESP, pdu.sequence, c.ESME_RSYSERR)
        if state is None:
            return UnknownPdu(_QUERY_SM_RESP, pdu.sequence, c.ESME_RINVMSGID)
        final = state.updated_at.strftime("%y%m%d%H%M%S") + "000+" if state.final else ""
        body = (
            message_id.encode("latin-1")
            + b"\0"
            + final.encode("ascii")
            + b"\0"
            + bytes((MESSAGE_STATES.get(state.status, 1), 0))
        )
        return UnknownPdu(_QUERY_SM_RESP, pdu.sequence, c.ESME_ROK, body)

    async def _cancel(self, client: _Client, pdu: UnknownPdu) -> Pdu:
        assert client.account is not None
        fields = pdu.body.split(b"\0", 2)  # service_type, message_id, ...
        message_id = fields[1].decode("latin-1") if len(fields) > 1 else ""
        try:
            done = await self.store.call(
                cancel_order, message_id, client.account.system_id, utcnow()
            )
        except StorageUnavailable:
            return UnknownPdu(_CANCEL_SM_RESP, pdu.sequence, c.ESME_RSYSERR)
        self.wake()
        return UnknownPdu(_CANCEL_SM_RESP, pdu.sequence, c.ESME_ROK if done else c.ESME_RCANCELFAIL)

    # --- the outbox: receipts and MO to receivers ------------------------------------------

    async def _fail_incomplete(self) -> None:
        now = utcnow()
        before = now - timedelta(seconds=self.settings.part_wait)
        for m in await self.store.call(fail_incomplete, before, now):
            log.warning(
                "%s.1: SMPP message incomplete after %.0f s (parts %s of %d came): %s",
                m.mail_id,
                self.settings.part_wait,
                ", ".join(map(str, m.arrived)),
                m.total,
                "failed" if m.failed else "its parts are dropped",
            )

    async def _outbox_loop(self) -> None:
        sweep_at = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.outbox_interval)
            self._wake.clear()
            if self._stopping:
                break
            if time.monotonic() >= sweep_at:
                sweep_at = time.monotonic() + min(60.0, self.settings.part_wait / 2)
                with contextlib.suppress(StorageUnavailable):  # its receipts go out below
                    await self._fail_incomplete()
            receivers: dict[str, list[_Client]] = {}
            for x in self._clients:
                if x.account and x.can_receive and x.session and not x.session.closed:
                    receivers.setdefault(x.account.system_id, []).append(x)
            for system_id, clients in receivers.items():
                try:
                    await self._deliver_due(system_id, clients)
                except StorageUnavailable as exc:
                    log.warning("SMPP outbox of %s: storage unavailable: %s", system_id, exc)
                except Exception:
                    log.exception("SMPP outbox of %s failed", system_id)

    async def _deliver_due(self, system_id: str, clients: list[_Client]) -> None:
        window = max(1, min(x.account.window for x in clients if x.account))
        rt = self.settings.response_timeout
        # Read before the take, so no later than its lease's start in the database: a row
        # goes only by `last_send`, and its answer (or its response timeout) comes by the
        # lease's end less RECORD_MARGIN, however long the take waited for the database
        # (its thread busy, its lock held elsewhere): no other instance takes the row and
        # sends it again while this one waits for the answer. The window never waits: a
        # client gets at most its account's window of the rows taken.
        last_send = send_by(asyncio.get_running_loop().time(), rt)
        items = await self.store.call(
            take_due, system_id, utcnow(), window * len(clients), outbox_lease(rt)
        )
        if not items:
            return
        results = await asyncio.gather(
            *(
                self._deliver(clients[i % len(clients)], item, last_send)
                for i, item in enumerate(items)
            )
        )
        # A row not sent is not recorded: its lease runs out and it is taken again.
        sent = [(item, r) for item, r in zip(items, results, strict=True) if r is not None]
        if len(sent) < len(items):
            log.warning(
                "SMPP %s: %d deliver_sm not sent: taken too late for an answer within "
                "their lease (%g s, 2 x response_timeout + %g s); sent once it ends",
                system_id,
                len(items) - len(sent),
                outbox_lease(rt),
                RECORD_MARGIN,
            )
        if not sent:
            return
        settings = self.settings
        done = await self.store.call(
            answered,
            sent,
            utcnow(),
            retry_delay=settings.retry_delay,
            retry_max=settings.retry_max,
            give_up_after=settings.give_up_after,
        )
        for a in done:
            if a.given_up:
                log.warning(
                    "SMPP %s: %s %s for %s given up after %d attempt(s): the client answered %s",
                    system_id,
                    a.item.kind,
                    a.item.id,
                    a.item.message_key,
                    a.item.attempts + 1,
                    c.status_name(a.status),
                )
        if all(a.given_up for a in done):
            self.wake()  # there may be more (the next part of a message)

    async def _deliver(self, client: _Client, item: OutboxItem, last_send: float) -> int | None:
        """The client's answer to `item`'s deliver_sm (ESME_RSYSERR when there was none),
        or None when it was not sent: not by `last_send` (loop time), after which its
        answer could come when the row's lease has run out. Whatever the client does (not
        reading, not answering), this ends by `last_send` + response_timeout."""
        loop = asyncio.get_running_loop()
        if loop.time() > last_send:
            return None
        p = item.pdu
        pdu = DeliverSm(
            0,
            p.source,
            p.destination,
            p.short_message,
            source_addr_ton=p.source_ton,
            source_addr_npi=p.source_npi,
            dest_addr_ton=p.dest_ton,
            dest_addr_npi=p.dest_npi,
            esm_class=p.esm_class,
            data_coding=p.data_coding,
            tlvs=tuple(Tlv(tag, value) for tag, value in p.tlvs),
        )
        session = client.session
        assert session is not None
        try:
            async with asyncio.timeout_at(last_send + self.settings.response_timeout):
                resp = await session.request(pdu, send_by=last_send)
        except NoTimeLeft:
            return None
        except SessionError as exc:
            log.info("SMPP %s: deliver_sm %s not answered: %s", item.system_id, item.id, exc)
            return c.ESME_RSYSERR
        except TimeoutError:  # its write waited on a client that does not read
            session.abort("a deliver_sm not answered within its lease")
            log.info(
                "SMPP %s: deliver_sm %s not answered within its lease; connection dropped",
                item.system_id,
                item.id,
            )
            return c.ESME_RSYSERR
        if isinstance(resp, DeliverSmResp | GenericNack):
            if resp.status != c.ESME_ROK:
                log.info(
                    "SMPP %s: deliver_sm %s answered %s; retried later",
                    item.system_id,
                    item.id,
                    c.status_name(resp.status),
                )
            return resp.status
        return c.ESME_RSYSERR
