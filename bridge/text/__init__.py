"""Text engine: mail bytes → SMS text → encoded, split SMS parts (pure code, no I/O)."""

from bridge.text.clean import Cleaned, CleanRules, clean
from bridge.text.compose import Composed, ComposeRules, compose
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
from bridge.text.pipeline import (
    BenchResult,
    Limits,
    Preview,
    Rendered,
    SmsPolicy,
    bench_corpus,
    part_texts,
    preview,
    render,
    render_mail,
)
from bridge.text.sms import SmsPlan, SmsSegments, part_limit, plan_sms, split_sms

__all__ = [
    "BenchResult",
    "CleanRules",
    "Cleaned",
    "ComposeRules",
    "Composed",
    "Gsm7EncodeError",
    "Limits",
    "MailText",
    "MimeTooComplex",
    "Preview",
    "Rendered",
    "SmsPlan",
    "SmsPolicy",
    "SmsSegments",
    "TextRejected",
    "bench_corpus",
    "clean",
    "compose",
    "decode_gsm7",
    "encode_gsm7",
    "extract",
    "gsm7_units",
    "is_gsm7",
    "non_gsm7_chars",
    "part_limit",
    "part_texts",
    "plan_sms",
    "preview",
    "render",
    "render_mail",
    "split_sms",
]
