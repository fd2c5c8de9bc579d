"""What one submit_sm asks for, read as it was sent: addresses, parts, times, receipt wish.

Pure code (no database, no sockets). A client's text arrives encoded and, when long,
already split (UDH or sar_* TLVs): `read_part` keeps each part's octets, data_coding,
esm_class and sar_* TLVs as sent, and decodes its text. The order's text is the whole
message decoded (`message_text`); the transport encodes that text anew for its SMSC, and
sends as they came only the parts it cannot (binary data, UDHs with more than their
concatenation: `bridge.transports.smpp.as_sent`). message_payload carries a whole text
in one PDU: it is decoded and split by the transport like a mail's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bridge.errors import InputError
from bridge.smpp import constants as c
from bridge.smpp.address import canonical_number
from bridge.smpp.mo import decode_mo
from bridge.smpp.pdu import SubmitSm, Tlv, find_tlv
from bridge.smpp.udh import (
    Concat,
    InformationElement,
    UdhError,
    find_concat,
    sar_concat,
    sar_problem,
    split_udh,
    udh_concat_problem,
)
from bridge.tenants.policy_values import MAX_VALIDITY, PolicyError, check_sender_id
from bridge.text.gsm7 import is_gsm7
from bridge.text.sms import split_sms
from bridge.values import Encoding

_TIME_LEN: Final = 16
_MAX_QUARTERS: Final = 48  # an SMPP time's UTC offset, in quarter hours


class SubmitRefused(InputError, ValueError):
    """The submit_sm cannot be taken; `status` is the command_status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def smpp_time(value: str, now: datetime) -> datetime | None:
    """An SMPP 3.4 time (`YYMMDDhhmmsstnnp`, absolute `+`/`-` or relative `R`); '' is None."""
    if not value:
        return None
    if len(value) != _TIME_LEN or not value[:15].isdigit() or value[15] not in "+-R":
        raise ValueError(f"{value!r} is not an SMPP time (YYMMDDhhmmsstnnp)")
    yy, mo, dd, hh, mi, ss = (int(value[i : i + 2]) for i in range(0, 12, 2))
    if value[15] == "R":
        return now + timedelta(days=yy * 365 + mo * 30 + dd, hours=hh, minutes=mi, seconds=ss)
    quarters = int(value[13:15])
    if quarters > _MAX_QUARTERS:
        raise ValueError(
            f"{value!r}: the time zone is {quarters} quarter hours from UTC (at most 48)"
        )
    offset = timedelta(minutes=15 * quarters) * (1 if value[15] == "+" else -1)
    local = datetime(2000 + yy, mo, dd, hh, mi, ss, int(value[12]) * 100_000)
    return (local - offset).replace(tzinfo=UTC)


SAR_TAGS: Final = (c.TLV_SAR_MSG_REF_NUM, c.TLV_SAR_TOTAL_SEGMENTS, c.TLV_SAR_SEGMENT_SEQNUM)


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm as sent: its octets (UDH included), esm_class, data_coding and sar_*
    TLVs (when they concatenate it)."""

    short_message: bytes
    esm_class: int
    data_coding: int
    text: str  # decoded, without the UDH
    encoding: str  # gsm7 | ucs2 (what our records call it)
    sar: tuple[Tlv, ...] = ()

    def stored(self) -> list[object]:
        """[short_message hex, esm_class, data_coding], and [[tag, value hex], ...] of the
        sar_* TLVs when it has them (bridge/mt/dispatch_sms.py reads it)."""
        fields: list[object] = [self.short_message.hex(), self.esm_class, self.data_coding]
        if self.sar:
            fields.append([[t.tag, t.value.hex()] for t in self.sar])
        return fields


@dataclass(frozen=True, slots=True)
class ReadPart:
    """A submit_sm read: the part, and its place in a concatenated message (if any)."""

    part: Part
    concat: Concat | None
    payload: bool  # the text came in message_payload (one PDU, split by the transport)


def read_part(pdu: SubmitSm) -> ReadPart:
    """Read a submit_sm's text as sent; SubmitRefused for a bad UDH or esm_class."""
    if pdu.esm_class & c.ESM_TYPE_MASK:
        raise SubmitRefused(c.ESME_RINVESMCLASS, "esm_class: only default message type")
    payload_tlv = find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD)
    if payload_tlv is not None and pdu.short_message:
        raise SubmitRefused(c.ESME_RINVOPTPARAMVAL, "short_message and message_payload both set")
    sm = pdu.short_message if payload_tlv is None else payload_tlv
    ies: tuple[object, ...] = ()
    body = sm
    if pdu.esm_class & c.ESM_UDHI:
        try:
            ies, body = split_udh(sm)
        except UdhError as exc:
            raise SubmitRefused(c.ESME_RINVESMCLASS, f"bad UDH: {exc}") from None
    problem = udh_concat_problem(ies)  # type: ignore[arg-type]
    if problem:
        raise SubmitRefused(c.ESME_RINVESMCLASS, f"bad UDH: {problem}")
    problem = sar_problem(pdu.tlvs)
    if problem:
        raise SubmitRefused(c.ESME_RINVOPTPARAMVAL, problem)
    concat = find_concat(ies) or sar_concat(pdu.tlvs)  # type: ignore[arg-type]
    text, encoding = decode_mo(pdu.data_coding, body, ies)  # type: ignore[arg-type]
    if encoding == "ucs2" and len(body) % 2:
        raise SubmitRefused(
            c.ESME_RINVMSGLEN, f"UCS-2 text of {len(body)} octets: UCS-2 takes two per character"
        )
    sar = tuple(t for t in pdu.tlvs if t.tag in SAR_TAGS)
    part = Part(sm, pdu.esm_class, pdu.data_coding, text, encoding, sar)
    if concat is not None and concat.total <= 1:
        concat = None
    return ReadPart(part, concat, payload_tlv is not None)


def message_text(stored: Sequence[Sequence[Any]]) -> tuple[str, Encoding] | None:
    """The text of a concatenated message's parts (`Part.stored()`, in order), decoded from
    their joined octets, so that a character the client split across two parts (a GSM-7
    escape pair, a UTF-16 surrogate pair) reads whole; None when the parts' data_codings
    differ (each part's own text then)."""
    codings = {int(p[2]) for p in stored}
    if len(codings) != 1:
        return None
    bodies: list[bytes] = []
    ies: tuple[InformationElement, ...] = ()
    for p in stored:
        sm = bytes.fromhex(str(p[0]))
        if int(p[1]) & c.ESM_UDHI:
            try:
                part_ies, sm = split_udh(sm)
            except UdhError:
                return None
            ies = ies or part_ies
        bodies.append(sm)
    return decode_mo(codings.pop(), b"".join(bodies), ies)


def message_receipt_wish(wishes: Sequence[int]) -> int:
    """The registered_delivery of a concatenated message, from its parts' own.

    Clients set it on one part only, and not the same one: Kannel asks on the first part
    (0x11) and sends the rest with 0, others ask on the last. A receipt asked on any part
    is asked for the message: bits 0-1 are the widest wish of any part (1: every final
    outcome, before 2: failures only), the other bits (SME acknowledgement, intermediate
    notification) are those of any part."""
    receipt = min((w & 0x03 for w in wishes if w & 0x03), default=0)
    other = 0
    for w in wishes:
        other |= w & 0xFC
    return other | receipt


def sender_refused(source: str) -> str | None:
    """Why `source` cannot be a sender id (the rule of every door), or None; '' lets the
    SMSC choose."""
    if not source:
        return None
    try:
        check_sender_id(canonical_number(source))  # 0049… (TON 0) is +49…
    except PolicyError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class Window:
    """When an order may go out (`at`, None: now) and until when (`expires`)."""

    at: datetime | None
    expires: datetime


def delivery_window(schedule: str, validity: str, now: datetime, default: float) -> Window:
    """The submit_sm's schedule_delivery_time and validity_period, checked. Without a
    validity the account's default counts from the delivery time; a longer one than any
    SMSC keeps (`MAX_VALIDITY`) is cut to it, as SMSCs do."""
    try:
        at = smpp_time(schedule, now)
    except ValueError as exc:
        raise SubmitRefused(c.ESME_RINVSCHED, str(exc)) from None
    try:
        expires = smpp_time(validity, now)
    except ValueError as exc:
        raise SubmitRefused(c.ESME_RINVEXPIRY, str(exc)) from None
    start = max(at or now, now)
    if expires is None:
        expires = start + timedelta(seconds=default)
    expires = min(expires, now + timedelta(seconds=MAX_VALIDITY))
    if expires <= now:
        raise SubmitRefused(c.ESME_RINVEXPIRY, "validity_period is in the past")
    if start >= expires:
        raise SubmitRefused(
            c.ESME_RINVSCHED,
            "schedule_delivery_time is not before the end of the validity period "
            f"({expires:%Y-%m-%d %H:%M} UTC)",
        )
    return Window(at if at is not None and at > now else None, expires)


def parts_needed(read: ReadPart, max_parts: int) -> tuple[str, int]:
    """(encoding, SMS parts) of the message `read` belongs to; SubmitRefused over the
    account's `max_parts`. A message_payload is encoded anew (GSM-7 when it can be)."""
    encoding = read.part.encoding
    if read.payload:
        encoding = "gsm7" if is_gsm7(read.part.text) else "ucs2"
        try:
            count = len(split_sms(read.part.text, encoding).payloads)  # type: ignore[arg-type]
        except ValueError as exc:
            raise SubmitRefused(c.ESME_RINVMSGLEN, f"message_payload: {exc}") from None
    else:
        count = read.concat.total if read.concat is not None else 1
    if count > max_parts:
        raise SubmitRefused(
            c.ESME_RINVMSGLEN,
            f"the text takes {count} SMS parts; this account sends at most {max_parts}",
        )
    return encoding, count


def sender_allowed(source: str, senders: tuple[str, ...], policy_sender: str) -> bool:
    """An account's sender ids: '*' any, else the listed ones and the user's own sender id."""
    if "*" in senders:
        return True
    wanted = source.lstrip("+").lower()
    allowed = {s.lstrip("+").lower() for s in (*senders, policy_sender) if s}
    return wanted in allowed
