"""Composition: the SMS text of one mail, built by an explicit list of pure stages.

    extract (mime.py) → clean body → apply subject policy → normalise whitespace
    → (plan_sms in sms.py: replacement, encoding, parts)

`compose` runs the stages in `STAGES` order; each stage is a plain function of the state
and the rules, so a test or the preview can run and show them one by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bridge.text.clean import CleanRules, clean, normalise_whitespace
from bridge.text.mime import MailText

SubjectMode = Literal["body", "subject", "subject_body"]
Source = Literal["body", "subject", "subject_body", "none"]

_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|wg|fw|fwd|tr|rv|sv|vs|antw|doorst|r|i)\s*(?:\[\d+\])?\s*:)+\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ComposeRules:
    """How a profile turns a mail into SMS text."""

    subject: SubjectMode = "body"  # "body": body only; "subject": subject only; or both
    separator: str = "\n"  # between subject and body in "subject_body"
    strip_subject_prefixes: bool = True  # "Re:", "AW:", "Fwd:", "WG:" … off the subject
    clean: CleanRules = field(default_factory=CleanRules)


@dataclass(frozen=True)
class Composed:
    """The text to plan as SMS, what was removed on the way, and where the text came from."""

    text: str
    removed: tuple[str, ...]
    source: Source  # "subject" also when an empty body fell back to the subject
    subject: str  # the subject after prefix stripping
    body: str  # the body after cleaning


@dataclass(frozen=True)
class _State:
    subject: str
    body: str
    text: str = ""
    removed: tuple[str, ...] = ()
    source: Source = "none"

    # the changed copies, spelled out (dataclasses.replace costs ~3 µs per call)
    def with_subject(self, subject: str) -> _State:
        return _State(subject, self.body, self.text, self.removed, self.source)

    def with_body(self, body: str, removed: tuple[str, ...]) -> _State:
        return _State(self.subject, body, self.text, removed, self.source)

    def with_text(self, text: str, source: Source | None = None) -> _State:
        source = self.source if source is None else source
        return _State(self.subject, self.body, text, self.removed, source)


Stage = Callable[[_State, ComposeRules], _State]


def _stage_subject_prefixes(state: _State, rules: ComposeRules) -> _State:
    subject = " ".join(state.subject.split())
    if rules.strip_subject_prefixes:
        subject = _PREFIX.sub("", subject)
    return state.with_subject(subject)


def _stage_clean(state: _State, rules: ComposeRules) -> _State:
    cleaned = clean(state.body, rules.clean)
    return state.with_body(cleaned.text, state.removed + cleaned.removed)


def _stage_subject_policy(state: _State, rules: ComposeRules) -> _State:
    subject, body = state.subject, state.body
    if rules.subject == "subject" and subject:
        return state.with_text(subject, "subject")
    if not body.strip():  # empty body (SAP sends the text as subject only): use the subject
        return state.with_text(subject, "subject" if subject else "none")
    if rules.subject == "subject_body" and subject:
        if body.startswith(subject):  # some gateways repeat the subject as first line
            return state.with_text(body, "body")
        return state.with_text(subject + rules.separator + body, "subject_body")
    return state.with_text(body, "body")


def _stage_whitespace(state: _State, rules: ComposeRules) -> _State:
    if not rules.clean.whitespace:
        return state.with_text(state.text.strip())
    if state.text is state.body:  # the cleaned body: `clean` normalised it with these rules
        return state  # (normalising twice gives what once gives)
    collapse = rules.clean.collapse_spaces
    return state.with_text(normalise_whitespace(state.text, collapse_spaces=collapse))


STAGES: tuple[tuple[str, Stage], ...] = (
    ("subject_prefixes", _stage_subject_prefixes),
    ("clean", _stage_clean),
    ("subject_policy", _stage_subject_policy),
    ("whitespace", _stage_whitespace),
)


def compose(mail: MailText, rules: ComposeRules | None = None) -> Composed:
    """Run every stage of `STAGES` on the mail; the result goes to `plan_sms`."""
    rules = rules or ComposeRules()
    state = _State(subject=mail.subject, body=mail.body)
    for _name, stage in STAGES:
        state = stage(state, rules)
    return Composed(state.text, state.removed, state.source, state.subject, state.body)
