"""Delivery receipt detection and parsing: deliver_sm/data_sm fields -> `Receipt` or None.

Pure. Detection: a receipt is *marked* by esm_class type 0x04 (or 0x20, intermediate
notification) or a receipted_message_id / message_state TLV. Plain text in the SMPP 3.4
Appendix B form (`id:… stat:DELIVRD …`, a known stat word, no UDH) is only a receipt
candidate (`text_receipt`): a phone's SMS can read `ID: 4711 Stat: OK`, so the caller
accepts text receipts only from SMSCs configured to send them. Parsing takes the TLVs
first, then the text, tolerantly: `text:`/`Text:` or none at all, 10- or 12-digit
dates, hex or decimal ids, alphanumeric `err`. Nothing here raises on bad input; a
receipt we cannot tie to a message id yields None.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from bridge.smpp import constants as c
from bridge.smpp.pdu import Tlvs, find_tlv
from bridge.text.controls import drop_controls
from bridge.values import Receipt, ReceiptState

MESSAGE_STATES: Final[dict[int, ReceiptState]] = {
    1: ReceiptState.ENROUTE,
    2: ReceiptState.DELIVERED,
    3: ReceiptState.EXPIRED,
    4: ReceiptState.DELETED,
    5: ReceiptState.UNDELIVERABLE,
    6: ReceiptState.ACCEPTED,
    7: ReceiptState.UNKNOWN,
    8: ReceiptState.REJECTED,
}

STAT_WORDS: Final[dict[str, ReceiptState]] = {
    "ENROUTE": ReceiptState.ENROUTE,
    "DELIVRD": ReceiptState.DELIVERED,
    "DELIVERED": ReceiptState.DELIVERED,
    "EXPIRED": ReceiptState.EXPIRED,
    "DELETED": ReceiptState.DELETED,
    "UNDELIV": ReceiptState.UNDELIVERABLE,
    "UNDELIVERABLE": ReceiptState.UNDELIVERABLE,
    "ACCEPTD": ReceiptState.ACCEPTED,
    "ACCEPTED": ReceiptState.ACCEPTED,
    "UNKNOWN": ReceiptState.UNKNOWN,
    "REJECTD": ReceiptState.REJECTED,
    "REJECTED": ReceiptState.REJECTED,
}

# Each field is looked up on its own so that order, extra fields and a missing `text:` are fine.
_ID: Final = re.compile(r"(?:^|\s)id:\s*([^\s:]+)(?=\s|$)", re.IGNORECASE)
_STAT: Final = re.compile(r"\bstat:\s*([A-Za-z_]+)", re.IGNORECASE)
_ERR: Final = re.compile(r"\berr:\s*([0-9A-Za-z_-]+)", re.IGNORECASE)
_DONE: Final = re.compile(r"\bdone\s+date:\s*(\d{10}(?:\d{2})?)\b", re.IGNORECASE)
_LOOKS_LIKE: Final = re.compile(r"(?:^|\s)id:\s*\S+.*\bstat:\s*[A-Za-z]", re.IGNORECASE | re.DOTALL)


def _text(short_message: bytes) -> str:
    # Receipt texts are ASCII in practice; latin-1 never fails and keeps every octet visible.
    # Control characters are dropped: some SMSCs end the text with a NUL, as a C string,
    # and PostgreSQL cannot store one (the receipt would be refused and sent again forever).
    return drop_controls(short_message.decode("latin-1"))


def marked_receipt(esm_class: int, tlvs: Tlvs) -> bool:
    """Whether the SMSC marked this deliver_sm/data_sm as a receipt (esm_class or TLVs)."""
    msg_type = esm_class & c.ESM_TYPE_MASK
    if msg_type in (c.ESM_TYPE_DELIVERY_RECEIPT, c.ESM_TYPE_INTERMEDIATE_NOTIFICATION):
        return True
    return any(tlv.tag in (c.TLV_RECEIPTED_MESSAGE_ID, c.TLV_MESSAGE_STATE) for tlv in tlvs)


def text_receipt(esm_class: int, short_message: bytes) -> bool:
    """Whether unmarked text has the receipt form: `id:<id> … stat:<known word>`, no UDH."""
    if esm_class & c.ESM_UDHI or short_message[:3].lower() != b"id:":
        return False
    text = _text(short_message)
    if _LOOKS_LIKE.search(text) is None:
        return False
    m = _STAT.search(text)
    return m is not None and m.group(1).upper() in STAT_WORDS


def is_receipt(esm_class: int, tlvs: Tlvs, short_message: bytes) -> bool:
    """Whether a deliver_sm/data_sm is a receipt: marked, or unmarked in the receipt form."""
    return marked_receipt(esm_class, tlvs) or text_receipt(esm_class, short_message)


def parse_date(digits: str) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss -> datetime (taken as UTC); None when not a real date."""
    if len(digits) not in (10, 12) or not digits.isdigit():
        return None
    try:
        return datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]) if len(digits) == 12 else 0,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _tlv_message_id(tlvs: Tlvs) -> str:
    raw = find_tlv(tlvs, c.TLV_RECEIPTED_MESSAGE_ID)
    if not raw:
        return ""
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _tlv_state(tlvs: Tlvs) -> ReceiptState | None:
    raw = find_tlv(tlvs, c.TLV_MESSAGE_STATE)
    if not raw:
        return None
    return MESSAGE_STATES.get(raw[0])


def _tlv_error(tlvs: Tlvs) -> str:
    raw = find_tlv(tlvs, c.TLV_NETWORK_ERROR_CODE)
    if raw is None or len(raw) != 3:
        return ""
    return f"{raw[0]}:{int.from_bytes(raw[1:3], 'big')}"


def parse_receipt(
    transport: str, *, esm_class: int, tlvs: Tlvs, short_message: bytes
) -> Receipt | None:
    """The receipt in these fields, or None when it is not one or carries no message id."""
    if not is_receipt(esm_class, tlvs, short_message):
        return None
    text = _text(short_message)
    message_id = _tlv_message_id(tlvs)
    if not message_id:
        m = _ID.search(text)
        message_id = m.group(1) if m else ""
    if not message_id:
        return None
    state = _tlv_state(tlvs)
    if state is None:
        m = _STAT.search(text)
        state = STAT_WORDS.get(m.group(1).upper(), ReceiptState.UNKNOWN) if m else None
    if state is None:
        state = ReceiptState.UNKNOWN
    m = _ERR.search(text)
    error_code = m.group(1) if m else _tlv_error(tlvs)
    m = _DONE.search(text)
    done_at = parse_date(m.group(1)) if m else None
    return Receipt(
        transport=transport,
        message_id=message_id,
        state=state,
        error_code=error_code,
        done_at=done_at,
        raw=text,
    )
