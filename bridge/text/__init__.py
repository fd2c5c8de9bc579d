"""Text engine: mail bytes → SMS text → encoded, split SMS parts (pure code, no I/O)."""

from bridge.text.errors import MimeTooComplex, TextRejected
from bridge.text.gsm7 import (
    Gsm7EncodeError,
    decode_gsm7,
    encode_gsm7,
    gsm7_units,
    is_gsm7,
    non_gsm7_chars,
)
from bridge.text.mime import MailText, extract
from bridge.text.sms import SmsPlan, SmsSegments, plan_sms, split_sms

__all__ = [
    "Gsm7EncodeError",
    "MailText",
    "MimeTooComplex",
    "SmsPlan",
    "SmsSegments",
    "TextRejected",
    "decode_gsm7",
    "encode_gsm7",
    "extract",
    "gsm7_units",
    "is_gsm7",
    "non_gsm7_chars",
    "plan_sms",
    "split_sms",
]
