"""Body cleaning: remove quoted replies, signatures, disclaimers, markers; collapse whitespace.

Our own rules (no reply-parser library): `mail-parser-reply` 1.36 finds quote headers well
but keeps "-- " signatures and mobile "Sent from" lines, cannot switch rules one by one and
does not say what it removed, which the preview must show. Every rule is a switch in
`CleanRules`; a cutting rule that would leave no text at all is not applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = r"[ \t]*$"
_QUOTE_HEADERS = (
    r"On\b[^\n]{0,300}(?:\n[^\n]{0,200})?\bwrote:" + _EOL,  # Gmail, Apple Mail, Thunderbird
    r"Am\b[^\n]{0,300}(?:\n[^\n]{0,200})?\bschrieb\b[^\n]{0,200}:" + _EOL,
    r"Le\b[^\n]{0,300}(?:\n[^\n]{0,200})?\ba\s+écrit\s*:" + _EOL,
    r"El\b[^\n]{0,300}(?:\n[^\n]{0,200})?\bescribió\s*:" + _EOL,
    r"Il\b[^\n]{0,300}(?:\n[^\n]{0,200})?\bha\s+scritto\s*:" + _EOL,
    r"Op\b[^\n]{0,300}(?:\n[^\n]{0,200})?\bschreef\b[^\n]{0,200}:" + _EOL,
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|"
    r"Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht)\s*-{2,}"
    + _EOL,
    # Outlook header block: From/Von/De + Sent/Gesendet/Envoyé/Date within the next lines
    r"(?:_{10,}\n+)?\*?(?:From|Von|De|Van|Da)\s?:\*?[^\n]*\n(?:[^\n]*\n){0,3}?"
    r"\*?(?:Sent|Gesendet|Envoyé|Enviado|Date|Datum|Verzonden|Inviato)\s?:",
)
QUOTE_HEADER = re.compile(
    r"^[ \t]*(?:" + "|".join(_QUOTE_HEADERS) + ")", re.MULTILINE | re.IGNORECASE
)
QUOTED_LINE = re.compile(r"^[ \t]*>[^\n]*(?:\n|$)", re.MULTILINE)
SIGNATURE_DELIMITER = re.compile(r"^--[ \t]?$", re.MULTILINE)
MOBILE_SIGNATURE = re.compile(
    r"^[ \t]*(?:"
    r"Sent from (?:my |Mail for |Yahoo Mail|Outlook|Samsung)[^\n]{0,60}"
    r"|Sent with [^\n]{1,40}"
    r"|Get Outlook for (?:iOS|Android)[^\n]{0,20}"
    r"|(?:Von meinem|Gesendet von meinem) [^\n]{1,60} gesendet\.?"
    r"|Gesendet (?:von|mit) (?:meinem |Mail für |der |Outlook|iPhone|iPad)[^\n]{0,60}"
    r"|Envoyé (?:de|depuis) (?:mon|ma|l'app|Outlook)[^\n]{0,60}"
    r"|Enviado (?:desde|de) (?:mi|meu|o meu|Outlook)[^\n]{0,60}"
    r"|Inviato da [^\n]{1,60}"
    r"|Verzonden (?:vanaf|met) (?:mijn )?[^\n]{1,60}"
    r")[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
DEFAULT_DISCLAIMERS = (
    r"(?:CONFIDENTIAL(?:ITY)?(?: NOTICE)?|DISCLAIMER)\b",
    r"This (?:e-?mail|message|communication)(?: and any (?:files|attachments)[^\n.]*)?"
    r" (?:is|are|may be|contains?)[^\n]{0,40}(?:confidential|privileged|intended)",
    r"The information (?:contained )?in this (?:e-?mail|message)",
    r"Diese (?:E-?Mail|Nachricht)[^\n]{0,60}(?:vertraulich|rechtlich geschützte)",
    r"Der Inhalt dieser (?:E-?Mail|Nachricht)[^\n]{0,40}vertraulich",
    r"Ce (?:message|courriel|e-?mail)[^\n]{0,60}(?:confidenti|destinés?)",
    r"Please consider the environment before printing",
    r"Bitte denken Sie an die Umwelt",
)
_SEPARATOR_TAIL = re.compile(r"(?:\n[ \t]*[-_=*~]{3,}[ \t]*)+\s*$")
_SEPARATOR_HEAD = re.compile(r"^(?:[ \t]*[-_=*~]{3,}[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*)+\n")
_SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


@dataclass(frozen=True)
class CleanRules:
    """Which cleaning rules apply (per profile); the defaults suit ordinary mail."""

    quotes: bool = True  # reply headers ("On … wrote:", Outlook blocks) cut to the end
    quoted_lines: bool = True  # every "> " line
    signature: bool = True  # "-- " delimiter to the end
    mobile_signature: bool = True  # "Sent from my iPhone" and friends, anywhere
    disclaimers: bool = True  # a bottom paragraph that matches a disclaimer pattern
    disclaimer_patterns: tuple[str, ...] = DEFAULT_DISCLAIMERS
    end_markers: tuple[str, ...] = ()  # e.g. ("##", "$$"): the marker and all after it go
    strip_strings: tuple[str, ...] = ()  # literal strings removed wherever they appear
    whitespace: bool = True  # trailing spaces, blank-line runs → one blank line, strip
    collapse_spaces: bool = True  # runs of spaces inside a line → one space


@dataclass(frozen=True)
class Cleaned:
    """The cleaned text and the pieces removed from it, in the order the rules ran."""

    text: str
    removed: tuple[str, ...]


def _cut_from(text: str, start: int, removed: list[str]) -> str:
    """Drop text[start:] unless that would leave nothing."""
    head = text[:start]
    if not head.strip():
        return text
    removed.append(text[start:].strip())
    return head


def _drop_all(pattern: re.Pattern[str], text: str, removed: list[str]) -> str:
    pieces = [m.group(0).strip() for m in pattern.finditer(text)]
    if not pieces:
        return text
    rest = pattern.sub("", text)
    if not rest.strip():
        return text
    removed.extend(p for p in pieces if p)
    return rest


def _cut_quote(text: str, removed: list[str]) -> str:
    for m in QUOTE_HEADER.finditer(text):
        if text[: m.start()].strip():
            return _cut_from(text, m.start(), removed)
        # bottom-posting: the header opens the mail; drop only the header line itself
        removed.append(m.group(0).strip())
        text = text[: m.start()] + text[m.end() :]
        return _cut_quote(text, removed)
    return text


def _cut_disclaimer(text: str, patterns: tuple[str, ...], removed: list[str]) -> str:
    if not patterns:
        return text
    regex = _compiled(patterns)
    paragraphs = [0] + [m.end() for m in re.finditer(r"\n[ \t]*\n", text)]
    for start in paragraphs[1:][-_DISCLAIMER_PARAGRAPHS:]:  # only near the very bottom
        para = _SEPARATOR_HEAD.sub("", text[start:].lstrip())
        if regex.match(para):
            head = _SEPARATOR_TAIL.sub("", text[:start].rstrip())
            if head.strip():
                removed.append(text[len(head) :].strip())
                return head
    return text


_DISCLAIMER_PARAGRAPHS = 4
_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if patterns not in _CACHE:
        _CACHE[patterns] = re.compile("(?:" + "|".join(patterns) + ")", re.IGNORECASE)
    return _CACHE[patterns]


def normalise_whitespace(text: str, *, collapse_spaces: bool = True) -> str:
    """Trailing spaces off, runs of blank lines → one, optional space runs → one; strip."""
    text = _TRAILING_SPACE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    if collapse_spaces:
        text = _SPACE_RUNS.sub(" ", text)
    return text.strip()


def clean(body: str, rules: CleanRules) -> Cleaned:
    """Apply the enabled rules to a mail body (as `mime.extract` returns it)."""
    removed: list[str] = []
    text = body
    for literal in rules.strip_strings:
        if literal and literal in text:
            removed.append(literal)
            text = text.replace(literal, "")
    for marker in rules.end_markers:
        at = text.find(marker) if marker else -1
        if at >= 0:
            removed.append(text[at:].strip())
            text = text[:at]
    if rules.quotes:
        text = _cut_quote(text, removed)
    if rules.quoted_lines:
        text = _drop_all(QUOTED_LINE, text, removed)
    if rules.signature:
        m = SIGNATURE_DELIMITER.search(text)
        if m:
            text = _cut_from(text, m.start(), removed)
    if rules.mobile_signature:
        text = _drop_all(MOBILE_SIGNATURE, text, removed)
    if rules.disclaimers:
        text = _cut_disclaimer(text, rules.disclaimer_patterns, removed)
    if rules.whitespace:
        text = normalise_whitespace(text, collapse_spaces=rules.collapse_spaces)
    return Cleaned(text, tuple(r for r in removed if r))
