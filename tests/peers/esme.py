"""ESME client drivers: one interface over SMPP client libraries we did not write.

A test of an SMPP server binds, submits and receives through any of them alike:
`smpp34_esme` (the smpp34 package's Client), `smpplib_esme` (Python smpplib) and
`node_esme` (the npm `smpp` package's client). Each driver records what its library let
it see: bind results, submit_sm_resp per part, every deliver_sm (receipt or MO) with the
status it answered in deliver_sm_resp. Where a library hides something (smpp34 answers
deliver_sm and enquire_link itself, and reports a refused bind only as a timeout), the
result says so (`None`), and `tests/peers/smpp_tap.py` shows the wire.

Texts are pre-split by the client, as an application does: GSM 03.38 (data_coding 0,
153 septets per part) or UCS-2 (data_coding 8, 67 UTF-16 units per part), concatenated
with an 8-bit-reference UDH.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_MESSAGE_STATE: Final = 0x0427
ESM_UDHI: Final = 0x40
ESM_RECEIPT: Final = 0x04
DC_DEFAULT: Final = 0x00
DC_UCS2: Final = 0x08

# The GSM 03.38 default alphabet (unpacked, one septet per octet) and its extension table.
GSM7: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT: Final = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C,
                   "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
_GSM7_EXT_DECODE: Final = {v: k for k, v in GSM7_EXT.items()}


class Unsupported(Exception):
    """The client library offers no way to do this (the message says what it does instead)."""


class BindType(enum.StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"


@dataclass(frozen=True, slots=True)
class BindResult:
    """The bind_resp status (None: the library did not say), and its words."""

    status: int | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 0


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """One part's submit_sm_resp: its command_status and message_id."""

    status: int
    message_id: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One pre-split part as it goes into submit_sm."""

    short_message: bytes
    esm_class: int
    data_coding: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One deliver_sm the client received, and the status it answered (None: unknown)."""

    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]
    answered: int | None

    @property
    def is_receipt(self) -> bool:
        return self.esm_class & 0x3C == ESM_RECEIPT

    def tlv(self, tag: int) -> bytes | None:
        return next((value for t, value in self.tlvs if t == tag), None)

    @property
    def receipted_message_id(self) -> str | None:
        """The receipt's message id: the TLV, else the `id:` of the standard text."""
        value = self.tlv(TLV_RECEIPTED_MESSAGE_ID)
        if value is not None:
            return value.rstrip(b"\0").decode("ascii")
        words = self.short_message.decode("latin-1").split()
        return next((w[3:] for w in words if w.lower().startswith("id:")), None)

    @property
    def udh(self) -> bytes:
        if not self.esm_class & ESM_UDHI or not self.short_message:
            return b""
        return self.short_message[: self.short_message[0] + 1]

    @property
    def text(self) -> str:
        payload = self.short_message[len(self.udh) :]
        return decode_text(payload, self.data_coding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "esm_class": self.esm_class,
            "data_coding": self.data_coding,
            "text": self.text,
            "udh": self.udh.hex(),
            "receipt": self.is_receipt,
            "receipted_message_id": self.receipted_message_id if self.is_receipt else None,
            "answered": self.answered,
        }


class EsmeDriver(Protocol):
    """What every driver does. `deliveries` grows as deliver_sm arrive (oldest first)."""

    name: str
    deliveries: list[Delivery]

    async def bind(self, bind_type: BindType, system_id: str, password: str) -> BindResult: ...

    async def submit(
        self, source: str, destination: str, text: str, *, ucs2: bool = False, receipt: bool = True
    ) -> list[SubmitResult]: ...

    async def answer_deliveries_with(self, status: int) -> None:
        """Answer every later deliver_sm with this deliver_sm_resp status (or Unsupported)."""

    async def enquire_link(self) -> int | None: ...

    async def unbind(self) -> int | None: ...

    async def close(self) -> None: ...

    def report(self) -> dict[str, Any]: ...


async def until(predicate: Callable[[], object], within: float = 10.0) -> None:
    """Poll `predicate` (e.g. on a driver's `deliveries`, which another thread or process
    fills) until it holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {predicate}")
        await asyncio.sleep(0.01)


# --- text -------------------------------------------------------------------------------


def gsm7_encode(text: str) -> bytes:
    """GSM 03.38 septets, one per octet; ValueError for a character outside it."""
    out = bytearray()
    for ch in text:
        if ch in GSM7_EXT:
            out += bytes((0x1B, GSM7_EXT[ch]))
        else:
            index = GSM7.find(ch)
            if index < 0 or ch == "\x1b":
                raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")
            out.append(index)
    return bytes(out)


def gsm7_decode(septets: bytes) -> str:
    out: list[str] = []
    escape = False
    for octet in septets:
        if escape:
            out.append(_GSM7_EXT_DECODE.get(octet, " "))
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            out.append(GSM7[octet & 0x7F])
    return "".join(out)


def decode_text(payload: bytes, data_coding: int) -> str:
    if data_coding == DC_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding in (0x03,):
        return payload.decode("latin-1")
    return gsm7_decode(payload)


_refs = itertools.count(1)


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """The 8-bit-reference concatenation UDH (IE 0x00)."""
    return bytes((0x05, 0x00, 0x03, ref & 0xFF, total, seq))


def presplit(text: str, *, ucs2: bool = False) -> list[Segment]:
    """`text` as the parts an application sends: one when it fits, else with a UDH each."""
    if ucs2:
        encoded, single, per_part, unit = text.encode("utf-16-be"), 140, 134, 2
        chunks = _chunks(encoded, single, per_part, unit, _splits_surrogate)
        coding = DC_UCS2
    else:
        encoded = gsm7_encode(text)
        chunks = _chunks(encoded, 160, 153, 1, _splits_escape)
        coding = DC_DEFAULT
    if len(chunks) == 1:
        return [Segment(chunks[0], 0, coding)]
    ref = next(_refs)
    return [
        Segment(concat_udh(ref, len(chunks), i) + chunk, ESM_UDHI, coding)
        for i, chunk in enumerate(chunks, 1)
    ]


def _splits_surrogate(encoded: bytes, cut: int) -> bool:
    """A cut between the two halves of a UTF-16 surrogate pair."""
    return 0xD8 <= encoded[cut - 2] <= 0xDB


def _splits_escape(encoded: bytes, cut: int) -> bool:
    """A cut between the escape octet and the character of a GSM extension pair."""
    escapes = 0
    i = cut - 1
    while i >= 0 and encoded[i] == 0x1B:
        escapes += 1
        i -= 1
    return escapes % 2 == 1


def _chunks(
    encoded: bytes, single: int, per_part: int, unit: int, splits: Callable[[bytes, int], bool]
) -> list[bytes]:
    if len(encoded) <= single:
        return [encoded]
    chunks: list[bytes] = []
    start = 0
    while start < len(encoded):
        cut = min(start + per_part, len(encoded))
        if cut < len(encoded) and splits(encoded, cut):
            cut -= unit
        chunks.append(encoded[start:cut])
        start = cut
    return chunks


def address(number: str) -> tuple[str, int, int]:
    """An address as (digits or name, TON, NPI): +E.164 → 1/1, digits → 0/1, a name → 5/0."""
    if number.startswith("+") and number[1:].isdigit():
        return number[1:], 1, 1
    if number.isdigit():
        return number, 0, 1
    return number, 5, 0
