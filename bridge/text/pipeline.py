"""The whole text engine for one mail: raw bytes → SMS plan and parts, and its preview.

`render` is what the intake runs (off the event loop for big mails); it raises
`MimeTooComplex` or `TextRejected`. `preview` runs the same steps but never raises for a
policy decision: it reports the rejection, so `mailsms preview` and preview+ mails can show
exactly what would happen. `bench_corpus` times `render` over a list of mails.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bridge.text.compose import Composed, ComposeRules, Source, compose
from bridge.text.errors import MimeTooComplex, TextRejected
from bridge.text.gsm7 import decode_gsm7
from bridge.text.mime import MailText, extract
from bridge.text.sms import (
    EncodingChoice,
    Overflow,
    Replacement,
    SmsPlan,
    SmsSegments,
    plan_sms,
    split_sms,
)
from bridge.values import Encoding


@dataclass(frozen=True)
class SmsPolicy:
    """The resolved SMS settings of one order (see `plan_sms` for their meaning)."""

    encoding: EncodingChoice = "auto"
    replacement: Replacement = "typographic"
    max_parts: int = 10
    overflow: Overflow = "reject"
    truncate_marker: str = "..."
    truncate_at_word: bool = True
    ref16: bool = False


@dataclass(frozen=True)
class Limits:
    """Structural limits for `extract`."""

    max_depth: int = 20
    max_parts: int = 100
    max_body_chars: int = 200_000


@dataclass(frozen=True)
class Rendered:
    """Every intermediate result of one mail's trip through the engine."""

    mail: MailText
    composed: Composed
    plan: SmsPlan
    segments: SmsSegments


def render(
    raw: bytes,
    compose_rules: ComposeRules | None = None,
    policy: SmsPolicy | None = None,
    limits: Limits | None = None,
) -> Rendered:
    """Extract, compose, plan and split; raises MimeTooComplex or TextRejected."""
    limits = limits or Limits()
    mail = extract(
        raw,
        max_depth=limits.max_depth,
        max_parts=limits.max_parts,
        max_body_chars=limits.max_body_chars,
    )
    return render_mail(mail, compose_rules, policy)


def plan_mail(
    mail: MailText, compose_rules: ComposeRules | None = None, policy: SmsPolicy | None = None
) -> tuple[Composed, SmsPlan]:
    """Compose and plan an extracted mail (no split: the transport splits); raises TextRejected."""
    policy = policy or SmsPolicy()
    composed = compose(mail, compose_rules)
    if not composed.text.strip() and composed.removed:
        raise TextRejected(
            "only_signature",
            "the body holds nothing but a signature (or text the cleaning rules remove) "
            "and the subject is empty",
        )
    plan = plan_sms(
        composed.text,
        encoding=policy.encoding,
        replacement=policy.replacement,
        max_parts=policy.max_parts,
        overflow=policy.overflow,
        truncate_marker=policy.truncate_marker,
        truncate_at_word=policy.truncate_at_word,
        ref16=policy.ref16,
    )
    return composed, plan


def render_mail(
    mail: MailText, compose_rules: ComposeRules | None = None, policy: SmsPolicy | None = None
) -> Rendered:
    """Compose, plan and split an extracted mail; raises TextRejected."""
    policy = policy or SmsPolicy()
    composed, plan = plan_mail(mail, compose_rules, policy)
    return Rendered(mail, composed, plan, split_sms(plan.text, plan.encoding, ref16=policy.ref16))


def part_texts(segments: SmsSegments) -> tuple[str, ...]:
    """The text of each part as the handset shows it."""
    if segments.encoding == "gsm7":
        return tuple(decode_gsm7(p) for p in segments.payloads)
    return tuple(p.decode("utf-16-be") for p in segments.payloads)


@dataclass(frozen=True)
class Preview:
    """What would be sent for one mail, for `mailsms preview` and preview+ mails."""

    subject: str
    body: str  # the body as extracted, before cleaning
    text: str  # after cleaning and the subject policy, before character replacement
    removed: tuple[str, ...]  # pieces the cleaning rules took out
    source: Source
    attachments: int
    sms_text: str = ""  # after replacement and truncation: exactly what the phone shows
    encoding: Encoding | None = None
    data_coding: int | None = None
    replaced: tuple[tuple[str, str], ...] = ()
    units: int = 0  # septets (gsm7) or UTF-16 units (ucs2)
    parts: int = 0
    part_texts: tuple[str, ...] = ()
    split_at: tuple[int, ...] = ()  # character offsets in sms_text where parts 2.. start
    truncated: bool = False
    rejected: tuple[str, str] | None = None  # (kind, detail) when the policy refuses
    notes: tuple[str, ...] = field(default=())


def preview(
    raw: bytes,
    compose_rules: ComposeRules | None = None,
    policy: SmsPolicy | None = None,
    limits: Limits | None = None,
) -> Preview:
    """Run the engine and describe the outcome; refusals are reported, not raised."""
    limits = limits or Limits()
    try:
        mail = extract(
            raw,
            max_depth=limits.max_depth,
            max_parts=limits.max_parts,
            max_body_chars=limits.max_body_chars,
        )
    except MimeTooComplex as err:
        return Preview("", "", "", (), "none", 0, rejected=(err.kind, err.detail))
    composed = compose(mail, compose_rules)
    base = Preview(
        subject=mail.subject,
        body=mail.body,
        text=composed.text,
        removed=composed.removed,
        source=composed.source,
        attachments=mail.attachments,
        notes=("the body was cut at the size limit",) if mail.body_truncated else (),
    )
    try:
        rendered = render_mail(mail, compose_rules, policy)
    except TextRejected as err:
        return replace(base, rejected=(err.kind, err.detail))
    plan, seg = rendered.plan, rendered.segments
    texts = part_texts(seg)
    offsets, pos = [], 0
    for t in texts[:-1]:
        pos += len(t)
        offsets.append(pos)
    return replace(
        base,
        sms_text=plan.text,
        encoding=plan.encoding,
        data_coding=seg.data_coding,
        replaced=plan.replaced,
        units=plan.units,
        parts=plan.parts,
        part_texts=texts,
        split_at=tuple(offsets),
        truncated=plan.truncated,
    )


@dataclass(frozen=True)
class BenchResult:
    """Throughput of the text engine over a corpus."""

    mails: int
    seconds: float
    rejected: int

    @property
    def per_second(self) -> float:
        return self.mails / self.seconds if self.seconds else float("inf")


def bench_corpus(
    raws: Sequence[bytes],
    *,
    rounds: int = 10,
) -> BenchResult:
    """Time parse + clean + encode + split over `raws`, `rounds` times (CPU only, no I/O)."""
    rejected = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            try:
                render(raw)
            except (TextRejected, MimeTooComplex):
                rejected += 1
    return BenchResult(len(raws) * rounds, time.perf_counter() - start, rejected)
