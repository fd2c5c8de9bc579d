"""What one submit_sm asks for, read as it was sent: addresses, parts, times, receipt wish.

Pure code (no database, no sockets). A client's text arrives encoded and, when long,
already split (UDH or sar_* TLVs): `read_part` keeps each part's octets, data_coding and
esm_class as sent, so dispatch submits them unchanged; the text is decoded only for the
order's record (reports, receipts' `text:`). message_payload carries a whole text in one
PDU: it is decoded and split by the transport like a mail's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bridge.errors import InputError
from bridge.smpp import constants as c
from bridge.smpp.mo import decode_mo
from bridge.smpp.pdu import SubmitSm, find_tlv
from bridge.smpp.udh import Concat, UdhError, find_concat, sar_concat, split_udh

_TIME_LEN: Final = 16


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
    offset = timedelta(minutes=15 * quarters) * (1 if value[15] == "+" else -1)
    local = datetime(2000 + yy, mo, dd, hh, mi, ss, int(value[12]) * 100_000)
    return (local - offset).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm as sent: its octets (UDH included), esm_class and data_coding."""

    short_message: bytes
    esm_class: int
    data_coding: int
    text: str  # decoded, without the UDH
    encoding: str  # gsm7 | ucs2 (what our records call it)

    def stored(self) -> list[object]:
        return [self.short_message.hex(), self.esm_class, self.data_coding]


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
    concat = find_concat(ies) or sar_concat(pdu.tlvs)  # type: ignore[arg-type]
    text, encoding = decode_mo(pdu.data_coding, body, ies)  # type: ignore[arg-type]
    part = Part(sm, pdu.esm_class, pdu.data_coding, text, encoding)
    if concat is not None and concat.total <= 1:
        concat = None
    return ReadPart(part, concat, payload_tlv is not None)


def sender_allowed(source: str, senders: tuple[str, ...], policy_sender: str) -> bool:
    """An account's sender ids: '*' any, else the listed ones and the user's own sender id."""
    if "*" in senders:
        return True
    wanted = source.lstrip("+").lower()
    allowed = {s.lstrip("+").lower() for s in (*senders, policy_sender) if s}
    return wanted in allowed
