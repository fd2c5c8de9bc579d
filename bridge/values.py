"""The values the SMS side passes around: outbound and inbound SMS, receipts, MO parts.

Pure data (frozen dataclasses and enums) shared by `bridge.text`, `bridge.smpp`,
`bridge.transports` and whoever drives them; this module imports nothing of the bridge,
so any package may depend on it without depending on another package.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True, slots=True)
class SmsSegment:
    """One part as an SMPP client sent it: short_message (its UDH included), esm_class,
    data_coding, and its sar_* TLVs as (tag, value) when it was concatenated by them."""

    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One MT order as a transport sees it: the text is split by the transport."""

    order_id: str
    destination: str  # E.164 with '+'
    source: str  # sender id: alphanumeric, short code or E.164 number
    text: str
    encoding: Encoding
    want_receipt: bool = True
    validity: float | None = None  # seconds from now; None = the SMSC's default
    flash: bool = False  # class 0: shown at once, not stored
    priority: int = 0  # 0 normal; > 0 express (SMPP priority_flag)
    schedule_at: datetime | None = None  # deliver at (SMSC-side scheduling)
    resubmit: bool = False  # an earlier attempt may have reached the SMSC (unknown outcome)
    # no other message from this sender to this number may still be at an SMSC, so a
    # replace_if_present marker on a resubmit can only replace this order's own copy
    may_replace: bool = False
    # the parts an SMPP client sent, encoded and split by it: the transport sends binary
    # parts as they are and encodes a text anew from `text` (`SmsSegment`)
    segments: tuple[SmsSegment, ...] = ()


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What the SMSC answered: one message id per part, in part order."""

    transport: str
    message_ids: tuple[str, ...]


class ReceiptState(enum.StrEnum):
    """SMPP 3.4 message_state values, by name (section 5.2.28)."""

    ENROUTE = "enroute"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DELETED = "deleted"
    UNDELIVERABLE = "undeliverable"
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self not in (ReceiptState.ENROUTE, ReceiptState.ACCEPTED, ReceiptState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery receipt as received (after parsing TLVs, then the text)."""

    transport: str
    message_id: str  # the SMSC's id of the part this receipt is about
    state: ReceiptState
    error_code: str = ""
    done_at: datetime | None = None
    raw: str = ""


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One MO SMS (already reassembled when it came in several parts)."""

    transport: str
    source: str  # E.164 when a phone number (read with the SMSC's address rules), else as sent
    destination: str  # likewise: our number in E.164, or a short code
    text: str
    encoding: Encoding
    parts: int = 1
    smsc_fields: dict[str, str] = field(default_factory=dict)


MoKey = tuple[str, str, str, int, int]  # transport, source, destination, ref, total


@dataclass(frozen=True, slots=True)
class MoPart:
    """One part of a concatenated MO, as kept until every part is there."""

    transport: str
    source: str
    destination: str
    ref: int
    total: int
    seq: int
    data_coding: int
    udh: bytes  # the part's whole UDH (national language IEs matter when decoding)
    payload: bytes  # after the UDH; unpacked septets when the SMSC packs GSM-7

    @property
    def key(self) -> MoKey:
        return (self.transport, self.source, self.destination, self.ref, self.total)
