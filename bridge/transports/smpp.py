"""The SMPP transport: one SMSC over one or more binds; OutboundSms -> submit_sm parts.

Submits go to the bound bind with the fewest requests in flight (window per bind, token
buckets per bind and per SMSC). ESME_RTHROTTLED / ESME_RMSGQFUL pause the bind (doubling
pause) and the *same* PDU is sent again after the pause, up to `throttle_retries` times;
then the order is deferred (TransportTemporaryFailure kind "throttled" with a retry hint).
A part after the first of a long SMS waits on instead (its message's first parts are at
the SMSC), for at most `MID_MESSAGE_WAIT`, the order's validity and its claim (`until`:
a PDU goes only while its answer can still come before the claim runs out); after that
the order fails, the accepted parts' ids named, rather than going again. No wait of a
submit (bind, pause, tokens, window) goes past that send-by time: the order is deferred
instead (kind "claim-ends"), or, when its first parts went, fails as above. A long SMS
takes its parts' tokens together before its first part goes, so its rate alone never
stops it halfway. A response timeout or a
lost connection after sending is an unknown outcome (kind "unknown-outcome"): dispatch
resubmits per policy, with `replace_if_present_flag` as the duplicate marker when the
SMSC setting asks for it and it cannot replace another message (`replace_marker`).
Message options (validity, schedule, priority, flash, source TON/NPI) are applied per
part. Incoming PDUs are handled by `IncomingHandler`; partial MO waits in the
`MoPartStore`. `limits` tells dispatch this SMSC's room (windows × binds), receipt
timeout and sender rates.

Text is encoded for this SMSC (`plan_parts`: what data_coding 0 means here, packing,
concatenation, size cap), a mail's and an SMPP client's alike; a client's binary parts go
as it sent them (`as_sent`), their sar_* TLVs made a concatenation UDH when the SMSC
concatenates by UDH.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Protocol, TypedDict

from bridge.smpp import constants as c
from bridge.smpp.address import destination_address, source_address
from bridge.smpp.encoding import MtPart, plan_parts
from bridge.smpp.esme import NotBound
from bridge.smpp.mo import SMPP_CODECS
from bridge.smpp.pdu import (
    EncodedSubmitSm,
    GenericNack,
    SubmitSmResp,
    SubmitSmTemplate,
    Tlv,
)
from bridge.smpp.session import ConnectionLost, NoTimeLeft, NotSent, ResponseTimeout
from bridge.smpp.stats import BindReport, BindStats
from bridge.smpp.throttle import TokenBucket
from bridge.smpp.times import schedule_field, validity_field
from bridge.smpp.udh import (
    IE_CONCAT_8BIT,
    IE_CONCAT_16BIT,
    UdhError,
    concat_udh,
    find_concat,
    sar_concat,
    split_udh,
)
from bridge.text.gsm7 import Gsm7EncodeError
from bridge.transports.base import (
    Inbox,
    MoPartStore,
    TransportLimits,
    TransportPermanentFailure,
    TransportTemporaryFailure,
    UnsendableKind,
)
from bridge.transports.mo_parts import MemoryMoParts
from bridge.transports.smpp_bind import SmppBind
from bridge.transports.smpp_config import SmppConfig, canonical_id
from bridge.transports.smpp_incoming import IncomingHandler
from bridge.values import OutboundSms, SmsSegment, SubmitResult

__all__ = ["SmppConfig", "SmppTransport", "failure_for"]

log: Final = logging.getLogger(__name__)
THROTTLING: Final = frozenset({c.ESME_RTHROTTLED, c.ESME_RMSGQFUL})
MAX_ALPHANUMERIC: Final = 11
# At most this long (and not past the order's validity) a part after the first waits out
# the SMSC's throttling; then the order fails rather than going again from its first part.
# The order's claim (`submit(until=…)`, from `[dispatch] lease`) cuts it shorter: a part
# is sent only while its answer can come before the claim runs out, so that no other
# instance claims the order (and sends it again) while its submit still runs.
MID_MESSAGE_WAIT: Final = 90.0
# long SMS whose concatenation reference is kept for their next try (`_keep_reference`)
KEPT_REFERENCES: Final = 10_000
CLAIM_ENDS: Final = "claim-ends"  # the failure kind of a submit cut short by its claim
MAX_USER_DATA: Final = 140  # octets of one SMS (UDH included)
SAR_TAGS: Final = (c.TLV_SAR_MSG_REF_NUM, c.TLV_SAR_TOTAL_SEGMENTS, c.TLV_SAR_SEGMENT_SEQNUM)
# The data_codings of an SMPP client's text that is encoded anew for the SMSC: SMPP's own
# 0 (GSM 03.38 as the SMPP server reads it), 1 (IA5), 3 (Latin-1), 8 (UCS-2) and the
# national tables `decode_mo` reads; and message class 0 (flash) of GSM-7 and UCS-2.
TEXT_CODINGS: Final = frozenset({0x00, 0x01, 0x03, 0x08, *SMPP_CODECS})
FLASH_CODINGS: Final = frozenset({0x10, 0x18, 0xF0})


def failure_for(status: int, what: str) -> TransportTemporaryFailure | TransportPermanentFailure:
    """Our error for a non-zero command_status, via the one temporary/permanent table."""
    reason = f"{what}: {c.status_name(status)}"
    if c.is_temporary(status):
        return TransportTemporaryFailure(reason, code=status)
    return TransportPermanentFailure(reason, code=status)


def replace_marker(sms: OutboundSms, config: SmppConfig, parts: int) -> bool:
    """Whether this submit carries replace_if_present_flag = 1 (the duplicate marker).

    The SMSC replaces a message it still holds with the same source, destination and
    service_type, whichever that is. So only a single-part resubmit after an unknown
    outcome carries it (parts of one SMS would replace each other), only when the SMSC
    setting asks for it, and only when dispatch found no other order from this sender
    to this number that an SMSC may still hold (`may_replace`).
    """
    return (
        config.resubmit_marker == "replace_if_present"
        and sms.resubmit
        and sms.may_replace
        and parts == 1
    )


def as_sent(segments: Sequence[SmsSegment]) -> bool:
    """Whether the parts an SMPP client sent go to the SMSC as it sent them, not encoded
    anew from their text: when one of them is binary data (0x02, 0x04, the 8-bit data
    groups), has a data_coding whose meaning a new encoding would lose (compressed,
    message waiting, message classes 1-3, SMPP codings we cannot read), or has a UDH that
    says more than its concatenation (ports, national language shifts, ...)."""
    for s in segments:
        if s.data_coding not in TEXT_CODINGS and s.data_coding not in FLASH_CODINGS:
            return True
        if s.esm_class & c.ESM_UDHI:
            try:
                ies, _ = split_udh(s.short_message)
            except UdhError:
                return True
            if any(ie.iei not in (IE_CONCAT_8BIT, IE_CONCAT_16BIT) for ie in ies):
                return True
    return False


class SharedFields(TypedDict):
    """The submit_sm fields all parts of one SMS share (`SubmitSmTemplate.of`'s arguments)."""

    source_addr: str
    destination_addr: str
    service_type: str
    source_addr_ton: int
    source_addr_npi: int
    dest_addr_ton: int
    dest_addr_npi: int
    priority_flag: int
    schedule_delivery_time: str
    validity_period: str
    registered_delivery: int
    replace_if_present_flag: int


def _what(sms: OutboundSms, seq: int, total: int, ids: Sequence[str]) -> str:
    """The part a log line or an error is about (made only when one is written)."""
    what = f"order {sms.order_id} part {seq}/{total}"
    if ids:
        what += f" (parts 1-{seq - 1} accepted as {','.join(ids)})"
    return what


class BindStatsSink(Protocol):
    """Where the per-bind counters go every `stats_interval` (bridge/transports/bind_stats.py)."""

    async def record(self, smsc: str, reports: Sequence[BindReport]) -> None: ...


class SmppTransport:
    """A Transport over one SMSC's self-healing binds."""

    def __init__(
        self,
        config: SmppConfig,
        *,
        mo_parts: MoPartStore | None = None,
        stats_sink: BindStatsSink | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self._stats_sink = stats_sink
        self._rng = rng or random.Random()
        self.mo_parts: MoPartStore = mo_parts if mo_parts is not None else MemoryMoParts()
        smsc_bucket = TokenBucket(config.smsc_rate, config.burst)
        self.handlers: list[IncomingHandler] = []
        self.binds: list[SmppBind] = []
        for i in range(1, max(1, config.binds) + 1):
            stats = BindStats()
            handler = IncomingHandler(config, self.mo_parts, stats)
            name = config.name if config.binds <= 1 else f"{config.name}#{i}"
            self.handlers.append(handler)
            self.binds.append(SmppBind(config, name, handler, stats, smsc_bucket, self._rng))
        self._submitters = [b for b in self.binds if b.can_submit]
        self._encoding = config.encoding  # fixed per transport
        self._ref = self._rng.randrange(0x10000)
        # The concatenation reference of each long SMS that failed for now (parts of it may
        # be at the SMSC), until it goes again (`_reference`); the oldest first out.
        self._kept_refs: OrderedDict[str, int] = OrderedDict()
        self._limits = config.limits
        self._tasks: list[asyncio.Task[None]] = []

    # --- Transport protocol -----------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        for handler in self.handlers:
            handler.inbox = inbox
        for bind in self.binds:
            await bind.start()
        self._tasks.append(asyncio.create_task(self._sweep(inbox), name=f"{self.name}-mo-sweep"))
        if self.config.stats_interval > 0:
            self._tasks.append(asyncio.create_task(self._report(), name=f"{self.name}-stats"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for bind in self.binds:
            await bind.stop()

    @property
    def bound(self) -> bool:
        return any(bind.tx.bound for bind in self._submitters)  # asked before every order

    available = bound  # dispatch skips a transport whose binds are all down

    @property
    def limits(self) -> TransportLimits:
        return self._limits

    @property
    def last_error(self) -> str:
        return "; ".join(b.last_error for b in self.binds)

    async def wait_bound(self, within: float) -> bool:
        if self.bound:
            return True
        waits = [asyncio.create_task(b.wait_bound(within)) for b in self._submitters]
        if not waits:
            return False
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        while not any(t.result() for t in done) and pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        return self.bound

    def reports(self) -> list[BindReport]:
        """Per-bind state, window use, throughput and counters (for logs and metrics)."""
        now = asyncio.get_running_loop().time()
        return [b.report(now) for b in self.binds]

    # --- submit -----------------------------------------------------------------------------

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) & 0xFFFF
        return self._ref if self.config.concat in ("udh16", "sar") else self._ref & 0xFF

    def _reference(self, order_id: str) -> int:
        """The concatenation reference for `order_id`'s parts: the one its earlier parts
        carried when the SMSC took some of them before the rest failed (the order goes
        again from part 1: with the same reference and numbering the phone takes the
        parts again as parts of the message it is putting together, and drops the
        copies, instead of keeping the first try's parts as a broken message of their
        own), else the next one."""
        kept = self._kept_refs.pop(order_id, None)
        return self._next_ref() if kept is None else kept

    def _keep_reference(self, order_id: str, ref: int) -> None:
        """`order_id`, a long SMS, will go again after a temporary failure (parts of it
        may be at the SMSC, from this try or an earlier one): keep `ref` for it (in this
        process; the most recent KEPT_REFERENCES orders)."""
        self._kept_refs[order_id] = ref
        self._kept_refs.move_to_end(order_id)
        while len(self._kept_refs) > KEPT_REFERENCES:
            self._kept_refs.popitem(last=False)

    async def _pick(self, send_by: float) -> SmppBind:
        ready = [b for b in self._submitters if b.tx.bound]
        if not ready:
            within = min(self.config.bind_wait, send_by - asyncio.get_running_loop().time())
            if not await self.wait_bound(max(0.0, within)):
                raise TransportTemporaryFailure(
                    f"{self.name}: not bound ({self.last_error})", kind="not-bound"
                )
            ready = [b for b in self._submitters if b.tx.bound]
        if len(ready) == 1:
            return ready[0]
        now = asyncio.get_running_loop().time()
        return min(ready, key=lambda b: (b.pause.remaining(now) > 0, b.stats.in_flight))

    def _plan(self, sms: OutboundSms, ref: int) -> tuple[tuple[MtPart, ...], SharedFields]:
        """The parts of `sms` (concatenated under `ref`) and the submit_sm fields they share."""
        cfg = self.config
        src = source_address(sms.source)
        if src.ton == c.TON_ALPHANUMERIC and len(src.addr) > MAX_ALPHANUMERIC:
            raise TransportPermanentFailure(
                f"sender id {sms.source!r} is longer than 11 characters",
                kind=UnsendableKind.SENDER,
            )
        dst = destination_address(sms.destination)
        parts = self._parts(sms, ref)
        now = datetime.now(UTC)
        fields: SharedFields = {
            "source_addr": src.addr,
            "destination_addr": dst.addr,
            "service_type": cfg.service_type,
            "source_addr_ton": src.ton if cfg.source_ton is None else cfg.source_ton,
            "source_addr_npi": src.npi if cfg.source_npi is None else cfg.source_npi,
            "dest_addr_ton": dst.ton,
            "dest_addr_npi": dst.npi,
            "priority_flag": min(3, max(0, sms.priority)),
            "schedule_delivery_time": schedule_field(sms.schedule_at, now),
            "validity_period": validity_field(sms.validity, now, cfg.validity_format),
            "registered_delivery": 1 if sms.want_receipt else 0,
            "replace_if_present_flag": 1 if replace_marker(sms, cfg, len(parts)) else 0,
        }
        return parts, fields

    def _parts(self, sms: OutboundSms, ref: int) -> tuple[MtPart, ...]:
        """The submit_sm parts of `sms`, encoded with this SMSC's settings, concatenated
        under the reference `ref`.

        A mail's text, and the text an SMPP client sent (`sms.segments`), are encoded and
        split as this SMSC wants (`plan_parts`: its data_coding 0, packing, concatenation,
        size cap). Only what cannot be encoded anew from text goes as the client sent it
        (`as_sent`): binary data, and parts whose UDH says more than their concatenation.
        """
        flash = sms.flash
        if sms.segments:
            if as_sent(sms.segments):
                return self._as_sent(sms.segments, ref)
            flash = flash or any(s.data_coding in FLASH_CODINGS for s in sms.segments)
        try:
            try:
                return plan_parts(sms.text, sms.encoding, self._encoding, ref=ref, flash=flash)
            except Gsm7EncodeError:
                if not sms.segments:
                    raise
                # a client's Latin-1 or IA5 text with characters GSM-7 lacks
                return plan_parts(sms.text, "ucs2", self._encoding, ref=ref, flash=flash)
        except ValueError as exc:
            raise TransportPermanentFailure(
                f"text cannot be sent as {sms.encoding}: {exc}", kind=UnsendableKind.TEXT
            ) from exc

    def _as_sent(self, segments: Sequence[SmsSegment], ref: int) -> tuple[MtPart, ...]:
        """A client's binary parts as it sent them. Parts it concatenated by sar_* TLVs
        get a concatenation UDH instead when this SMSC concatenates by UDH (all parts, or
        none when one would not fit in 140 octets: then they keep their TLVs)."""
        parts = tuple(
            MtPart(s.short_message, s.esm_class, s.data_coding, tuple(Tlv(t, v) for t, v in s.tlvs))
            for s in segments
        )
        if self.config.concat not in ("udh8", "udh16") or len(parts) < 2:
            return parts
        found = [sar_concat(p.tlvs) for p in parts]
        if any(concat is None for concat in found):
            return parts
        limit = min(MAX_USER_DATA, self.config.max_short_message)
        ref16 = self.config.concat == "udh16"
        converted: list[MtPart] = []
        for part, concat in zip(parts, found, strict=True):
            assert concat is not None
            ie = concat_udh(ref, concat.total, concat.seq, ref16=ref16)[1:]
            sm = part.short_message
            if part.esm_class & c.ESM_UDHI:  # the concatenation IE goes first in its UDH
                if find_concat(split_udh(sm)[0]) is not None:
                    return parts  # concatenated by its UDH already
                sm = bytes((sm[0] + len(ie),)) + ie + sm[1:]
            else:
                sm = bytes((len(ie),)) + ie + sm
            if len(sm) > limit:
                return parts
            tlvs = tuple(t for t in part.tlvs if t.tag not in SAR_TAGS)
            converted.append(MtPart(sm, part.esm_class | c.ESM_UDHI, part.data_coding, tlvs))
        return tuple(converted)

    async def submit(self, sms: OutboundSms, *, until: float | None = None) -> SubmitResult:
        ref = self._reference(sms.order_id)
        parts, fields = self._plan(sms, ref)
        try:
            return await self._submit(sms, parts, fields, until)
        except TransportTemporaryFailure:
            # It goes again: under the same reference (`_reference`), whether parts of it
            # went in this try or in an earlier one.
            if len(parts) > 1:
                self._keep_reference(sms.order_id, ref)
            raise

    async def _submit(
        self,
        sms: OutboundSms,
        parts: tuple[MtPart, ...],
        fields: SharedFields,
        until: float | None,
    ) -> SubmitResult:
        """`submit`, its parts planned."""
        now = asyncio.get_running_loop().time()
        # the last moment a part may go: its answer (or its response timeout) comes by `until`
        send_by = math.inf if until is None else until - self.config.response_timeout
        if until is not None and now >= send_by:
            raise TransportTemporaryFailure(
                f"order {sms.order_id}: its claim ends in {max(0.0, until - now):.1f} s, "
                f"less than the response_timeout ({self.config.response_timeout:g} s); not sent",
                kind=CLAIM_ENDS,
            )
        bind = await self._pick(send_by)
        total = len(parts)
        # how long a part after the first may wait out throttling (`_submit_part`)
        wait = MID_MESSAGE_WAIT if sms.validity is None else min(MID_MESSAGE_WAIT, sms.validity)
        deadline = min(now + wait, send_by)
        # Parts go one after another on one bind, their tokens taken together first (a
        # rate that would stop the message halfway defers it before any part goes). If
        # part k fails after parts 1..k-1 were accepted we raise anyway: dispatch
        # resubmits the whole order (a rare duplicate beats a lost or truncated message),
        # under the same concatenation reference, so that the phone takes the parts again
        # as those of the message it is putting together and drops the copies. Not when
        # part k is known not to have gone: a throttling answer (part k waits for the
        # SMSC, until `deadline`) or its time run out; then the order fails, the accepted
        # parts named.
        try:
            tokens = bind.reserve(total, send_by)
        except NoTimeLeft as exc:
            raise TransportTemporaryFailure(
                f"order {sms.order_id}: not sent, its claim would run out before the answer: {exc}",
                kind=CLAIM_ENDS,
            ) from None
        return await self._submit_parts(bind, sms, parts, fields, tokens, deadline, send_by)

    async def _submit_parts(
        self,
        bind: SmppBind,
        sms: OutboundSms,
        parts: tuple[MtPart, ...],
        fields: SharedFields,
        tokens: Sequence[float],
        deadline: float,
        send_by: float,
    ) -> SubmitResult:
        """Send `parts` one after another on `bind` (see `submit`)."""
        total = len(parts)
        ids: list[str] = []
        id_base = self.config.submit_id_base
        template: SubmitSmTemplate | None = None
        for seq, part in enumerate(parts, 1):
            try:
                if template is None:
                    template = SubmitSmTemplate.of(**fields)
                pdu = EncodedSubmitSm(
                    0,
                    template.body(part.esm_class, part.data_coding, part.short_message, part.tlvs),
                )
            except (UnicodeEncodeError, ValueError) as exc:
                raise TransportPermanentFailure(
                    f"{_what(sms, seq, total, ids)}: cannot encode submit_sm: {exc}",
                    kind=UnsendableKind.TEXT,
                ) from None
            resp = await self._submit_part(
                bind, pdu, sms, seq, total, ids, deadline, send_by, tokens[seq - 1]
            )
            ids.append(canonical_id(resp.message_id, id_base))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: order %s submitted as %s", bind.name, sms.order_id, ids)
        return SubmitResult(self.name, tuple(ids))

    async def _submit_part(
        self,
        bind: SmppBind,
        pdu: EncodedSubmitSm,
        sms: OutboundSms,
        seq: int,
        total: int,
        ids: list[str],
        deadline: float,
        send_by: float,
        token_at: float,
    ) -> SubmitSmResp:
        """Send one part (its token taken, usable from `token_at`); its answer. Throttling
        answers pause the bind and the same PDU goes again, `throttle_retries` times for
        the first part (then the order is deferred); a later part waits on until
        `deadline`, since its message's earlier parts are at the SMSC already: then the
        order fails, those parts' ids named, and is not sent again (the phone would get
        them twice). Nothing is sent after `send_by` (the order's claim would run out
        before the answer): a first part's order is deferred; a later part's fails, as
        above, whatever held it up (a pause, a full window, a process that was frozen)."""
        stats = bind.stats
        loop = asyncio.get_running_loop()
        status, pause = c.ESME_ROK, 0.0
        started = loop.time()
        sent = 0
        while True:
            sent += 1
            try:
                resp = await bind.send(pdu, send_by, token_at if sent == 1 else None)
            except NoTimeLeft as exc:
                what = _what(sms, seq, total, ids)
                if ids:
                    gave_up = TransportPermanentFailure(
                        f"{what}: not sent, its claim would run out before the answer: {exc}; "
                        "not sent again, the phone would get the accepted parts twice",
                        kind=CLAIM_ENDS,
                    )
                    log.error("%s: %s", bind.name, gave_up.reason)
                    raise gave_up from None
                raise TransportTemporaryFailure(
                    f"{what}: not sent, its claim would run out before the answer: {exc}",
                    kind=CLAIM_ENDS,
                ) from None
            except (NotBound, NotSent) as exc:
                what = _what(sms, seq, total, ids)
                raise TransportTemporaryFailure(f"{what}: {exc}", kind="not-bound") from None
            except ResponseTimeout:
                what = _what(sms, seq, total, ids)
                stats.timeouts += 1
                log.warning("%s: %s: no response, dropping the connection", bind.name, what)
                raise TransportTemporaryFailure(
                    f"{what}: no response (unknown outcome)", kind="unknown-outcome"
                ) from None
            except ConnectionLost as exc:
                what = _what(sms, seq, total, ids)
                stats.lost += 1
                raise TransportTemporaryFailure(
                    f"{what}: connection lost (unknown outcome): {exc}", kind="unknown-outcome"
                ) from None
            if resp.status == c.ESME_ROK and type(resp) is SubmitSmResp:  # the usual answer
                bind.pause.succeeded()
                stats.submitted += 1
                return resp
            what = _what(sms, seq, total, ids)  # the words for a log line or an error
            nack = isinstance(resp, GenericNack)
            status = (resp.status or c.ESME_RSYSERR) if nack else resp.status
            if status in THROTTLING:
                stats.throttled += 1
                now = loop.time()
                pause = bind.pause.throttled(now)
                log.warning(
                    "%s: %s: %s, bind paused %.1f s", bind.name, what, c.status_name(status), pause
                )
                if sent <= self.config.throttle_retries and now + pause <= send_by:
                    continue
                if not ids:
                    break
                if bind.pause.remaining(now) + now <= deadline:
                    continue  # the earlier parts are at the SMSC: this one waits for it
                gave_up = TransportPermanentFailure(
                    f"{what}: {c.status_name(status)} for {now - started:.0f} s; "
                    "not sent again, the phone would get the accepted parts twice",
                    code=status,
                    kind="throttled",
                )
                log.error("%s: %s", bind.name, gave_up.reason)
                raise gave_up
            if status != c.ESME_ROK or not isinstance(resp, SubmitSmResp):
                stats.rejected += 1
                err = failure_for(
                    status or c.ESME_RSYSERR, f"{what}: {'generic_nack' if nack else 'rejected'}"
                )
                if nack:
                    err.kind = "generic-nack"
                log.info("%s: %s", bind.name, err.reason)
                raise err
            bind.pause.succeeded()
            stats.submitted += 1
            return resp
        raise TransportTemporaryFailure(
            f"{_what(sms, seq, total, ids)}: {c.status_name(status)} {sent} times; "
            f"bind paused {pause:.1f} s",
            code=status,
            kind="throttled",
            retry_after=pause,
        )

    # --- background -------------------------------------------------------------------------

    async def _sweep(self, inbox: Inbox) -> None:
        """Deliver MO whose missing parts never came, with a gap marker (every timeout/4)."""
        every = max(0.05, min(60.0, self.config.mo_reassembly_timeout / 4))
        while True:
            await asyncio.sleep(every)
            try:
                await self.handlers[0].deliver_expired(inbox)
            except Exception as exc:  # storage down: try again next round
                log.warning("%s: MO reassembly sweep failed: %s", self.name, exc)

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            reports = self.reports()
            for report in reports:
                log.info("smpp bind %s", report.line())
            if self._stats_sink is not None:
                try:
                    await self._stats_sink.record(self.name, reports)
                except Exception as exc:  # storage down: the next snapshot replaces it
                    log.warning("%s: bind statistics not stored: %s", self.name, exc)
