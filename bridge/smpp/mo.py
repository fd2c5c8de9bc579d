"""MO text decoding: (data_coding, payload octets, UDH IEs) -> (text, encoding).

Pure. Called after reassembly, on the joined payload, so that an ESC pair or a UTF-16
surrogate pair split across parts still decodes. National language shift IEs (0x24
single shift, 0x25 locking shift) select GSM-7 tables when the text engine has them.
Some SMSCs (and node-smpp's encoder) mark GSM-7 octets with data_coding 0x01 (IA5):
octets below 0x20 other than CR and LF ('@' 0x00, '$' 0x02, '_' 0x11, ESC 0x1B) are
not ASCII text, so such a payload is read as GSM-7.
"""

from __future__ import annotations

import logging
import re
from typing import Final, Literal

from bridge.smpp.udh import InformationElement
from bridge.text.controls import drop_controls
from bridge.text.gsm7 import decode_gsm7, is_gsm7
from bridge.values import Encoding

# SMPP 3.4 5.2.19: data_coding 0x00-0x0F is SMPP's own table, not GSM 03.38's coding
# groups (whose bits would read 0x09-0x0B as UCS-2). The ones Python can decode:
SMPP_CODECS: Final = {
    0x06: "iso8859_5",  # Cyrillic
    0x07: "iso8859_8",  # Latin/Hebrew
    0x0A: "iso2022_jp",  # music codes
    0x0E: "euc_kr",  # KS C 5601
}
IE_SINGLE_SHIFT: Final = 0x24
IE_LOCKING_SHIFT: Final = 0x25

Dcs0Alphabet = Literal["gsm7", "latin1", "ascii"]
# Octets that ASCII text does not have and GSM-7 text does: the controls but CR and LF
_NOT_ASCII_TEXT: Final = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f]")

log: Final = logging.getLogger(__name__)


def _alphabet(data_coding: int) -> str:
    """'gsm7', 'ucs2', 'latin1', 'ascii' or '8bit' for a data_coding octet."""
    if data_coding == 0x00:
        return "default"
    if data_coding == 0x01:
        return "ascii"
    if data_coding == 0x03:
        return "latin1"
    if data_coding == 0x08:
        return "ucs2"
    if data_coding < 0x10:  # 0x02 and 0x04 8-bit data; 0x05-0x0F SMPP's own codings
        return "8bit"
    group = data_coding & 0xF0
    if group == 0xF0:  # data coding / message class group: bit 2 = 8-bit data
        return "8bit" if data_coding & 0x04 else "gsm7"
    if group <= 0x30 or group in (0xC0, 0xD0, 0xE0):
        if group == 0xE0:
            return "ucs2"
        if group in (0xC0, 0xD0):
            return "gsm7"
        if data_coding & 0x20:  # compressed: we cannot decode it, show the octets
            return "8bit"
        return {0x00: "gsm7", 0x04: "8bit", 0x08: "ucs2"}.get(data_coding & 0x0C, "8bit")
    return "8bit"


def alphabet_of(data_coding: int, dcs0: Dcs0Alphabet = "gsm7") -> str:
    """'gsm7', 'ucs2', 'latin1', 'ascii' or '8bit': how to read a payload with this DCS."""
    alphabet = _alphabet(data_coding)
    return dcs0 if alphabet == "default" else alphabet


def _gsm7(payload: bytes, ies: tuple[InformationElement, ...]) -> str:
    single = next((ie.data[0] for ie in ies if ie.iei == IE_SINGLE_SHIFT and ie.data), None)
    locking = next((ie.data[0] for ie in ies if ie.iei == IE_LOCKING_SHIFT and ie.data), None)
    if single or locking:
        try:
            return decode_gsm7(payload, single_shift=single, locking_shift=locking)
        except Exception as exc:  # unknown language id or tables not available
            log.warning("national language table %s/%s not usable: %s", single, locking, exc)
    return decode_gsm7(payload)


def decode_mo(
    data_coding: int,
    payload: bytes,
    ies: tuple[InformationElement, ...] = (),
    *,
    dcs0: Dcs0Alphabet = "gsm7",
) -> tuple[str, Encoding]:
    """The text a handset would show, and which of our two encodings it counts as.
    Control characters (a NUL in UCS-2 or 8-bit data, an ESC) show nothing and are
    dropped (`bridge/text/controls.py`); line breaks and tabs stay."""
    text, encoding = _decode(data_coding, payload, ies, dcs0)
    return drop_controls(text), encoding


def _decode(
    data_coding: int, payload: bytes, ies: tuple[InformationElement, ...], dcs0: Dcs0Alphabet
) -> tuple[str, Encoding]:
    codec = SMPP_CODECS.get(data_coding)
    if codec is not None:
        text = payload.decode(codec, errors="replace")
        return text, "gsm7" if is_gsm7(text) else "ucs2"
    alphabet = _alphabet(data_coding)
    if alphabet == "default":
        alphabet = dcs0
    if alphabet == "ucs2":
        if len(payload) % 2:
            payload = payload[:-1]
        return payload.decode("utf-16-be", errors="replace"), "ucs2"
    if alphabet == "gsm7":
        return _gsm7(payload, ies), "gsm7"
    if alphabet == "ascii":
        if data_coding == 0x01 and _is_gsm7_octets(payload):
            return _gsm7(payload, ies), "gsm7"
        return payload.decode("ascii", errors="replace"), "gsm7"
    return payload.decode("latin-1"), "gsm7"  # latin1, and 8-bit data shown as octets


def _is_gsm7_octets(payload: bytes) -> bool:
    """Unpacked GSM-7 rather than ASCII: septets only, and a control ASCII text never has."""
    return payload.isascii() and _NOT_ASCII_TEXT.search(payload) is not None
