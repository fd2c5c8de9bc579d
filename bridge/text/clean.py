"""Body cleaning: remove quoted replies, signatures, disclaimers, markers; collapse whitespace.

Our own rules, each a switch in `CleanRules`, each saying what it removed (the preview shows
it). A reply header goes with the quote it introduces; text after a "> " quote is the
writer's (bottom-posting, interleaved answers). Quote rules never remove all of a body;
signature rules may (a body that is only a signature has no message). A reply-parsing
library (`mail-parser-reply`) serves as a second opinion in the tests, not here: it keeps
only the text above the first quote header, so it loses bottom-posted answers, and it cuts
at any line that starts with "Thanks," or "Best,".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bridge.text import signoff

_EOL = r"[ \t]*$"
# attribution lines: "<opening> … <verb>:" ("On Mon, 3 Nov 2025, Bob <b@x> wrote:"), on one line
# or wrapped over up to three when the first holds a date (iPhone, Gmail with long names)
_ATTRIBUTIONS = (
    r"On\b.*\bwrote",
    r"Am\b.*\bschrieb\b.*",
    r"Le\b.*\ba\s+écrit",
    r"El\b.*\bescribió",
    r"Il\b.*\bha\s+scritto",
    r"Op\b.*\bschreef\b.*",
    r"Em\b.*\bescreveu",
    r"(?:Den|På)\b.*\bskrev\b.*",
    r"(?:W dniu|Dnia)\b.*\bnapisał(?:\(a\))?",
    r"Dne\b.*\bnapsal(?:\(a\))?",
)
ATTRIBUTION = re.compile(r"[ \t]*(?:" + "|".join(_ATTRIBUTIONS) + r")\s*:[ \t]*", re.IGNORECASE)
_OPENING = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Il|Op|Em|Den|På|W dniu|Dnia|Dne)\b[^\n]{0,300}$",
    re.MULTILINE | re.IGNORECASE,
)
_ORIGINAL = (
    r"Original Message|Ursprüngliche Nachricht|Originalnachricht|Message d'origine|"
    r"Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original|"
    r"Originalmeddelande|Oprindelig meddelelse|Opprinnelig melding|Wiadomość oryginalna|"
    r"Původní zpráva|Alkuperäinen viesti"
)
_QUOTE_HEADERS = (
    rf"-{{2,}}\s*(?:{_ORIGINAL})\s*-{{2,}}" + _EOL,
    # Outlook header block, after an optional separator line (a row of - or _, or
    # "-----Original Message-----"): From/Von/De … then Sent/Gesendet/Envoyé/Date … within
    # the next lines; it runs to the next blank line
    r"(?:(?:[-_]{10,}|-{2,}[ \t]*[^\s-][^\n-]{0,40}-{2,})[ \t]*\n(?:[ \t]*\n)*[ \t]*)?"
    r"\*?(?:From|Von|De|Van|Da|Från|Fra|Od|Lähettäjä)\s?:\*?[^\n]*\n(?:[^\n]*\n){0,3}?"
    r"[ \t]*\*?(?:Sent|Gesendet|Envoyé|Enviado|Enviada|Date|Datum|Verzonden|Inviato|Data|"
    r"Skickat|Sendt|Wysłano|Lähetetty)\s?:[^\n]*(?:\n[ \t]*\S[^\n]*)*",
)
QUOTE_HEADER = re.compile(
    r"^[ \t]*(?:" + "|".join(_QUOTE_HEADERS) + ")", re.MULTILINE | re.IGNORECASE
)
# any line that ends like an attribution and is directly followed by a "> " quote: with a
# verb ("Bob <b@x> wrote:"; mailing lists, clients in other languages), or without one but
# with the writer's address in <> or a bracketed date ("* Bob <b@x> [2025-11-03 10:12]:",
# mutt's `attribution` as its users set it)
_VERBS = (
    r"wrote|writes|schrieb|schreibt|a écrit|escribió|ha scritto|schreef|escreveu|skrev|"
    r"napisał(?:\(a\))?|napsal(?:\(a\))?|kirjoitti|írta"
)
_ADDRESS_OR_DATE = r"<[^<>\s@]+@[^<>\s]+>|\[\d{4}-\d\d-\d\d\b[^\]\n]{0,40}\]"
ATTRIBUTION_BEFORE_QUOTE = re.compile(
    rf"^[ \t]*(?=[^\s>])[^\n]{{0,300}}(?:\b(?:{_VERBS})\b|{_ADDRESS_OR_DATE})[^\n]{{0,100}}:{_EOL}"
    r"(?=\n(?:[ \t]*\n)*[ \t]*>)",
    re.MULTILINE | re.IGNORECASE,
)
# the rest of a header's line, blank lines, then "> " lines (blank lines between them too)
_QUOTED_BLOCK = re.compile(r"[^\n]*\n(?:[ \t]*\n)*(?:[ \t]*>[^\n]*(?:\n(?:[ \t]*\n)*|\Z))+")
QUOTED_LINE = re.compile(r"(?:^[ \t]*>[^\n]*(?:\n|\Z))+", re.MULTILINE)  # a run of "> " lines
SIGNATURE_DELIMITER = re.compile(r"^--[ \t]?$", re.MULTILINE)
_WORDS = r"[\w'’.&()+-]+(?: [\w'’.&()+-]+){0,5}"  # "iPhone", "Yahoo Mail on Android": words only
_DEVICE = rf"(?: ?{_WORDS})"
MOBILE_SIGNATURE = re.compile(
    r"^[ \t]*(?:"
    rf"Sent from (?:my |Mail for |Yahoo Mail|Outlook|Samsung){_DEVICE}?"
    rf"|Sent with {_DEVICE}"
    r"|Get Outlook for (?:iOS|Android)[^\n<]{0,20}(?:<[^>\n]{0,100}>)?"
    r"|Outlook für (?:iOS|Android) (?:beziehen|herunterladen)"
    rf"|(?:Von meinem|Gesendet von meinem) {_DEVICE} gesendet"
    rf"|Gesendet (?:von|mit) (?:meinem |Mail für |der |Outlook|iPhone|iPad){_DEVICE}?"
    rf"|Envoyé (?:de|depuis) (?:mon|ma|l'app|Outlook){_DEVICE}?"
    rf"|Enviado (?:desde|de) (?:mi|meu|o meu|Outlook){_DEVICE}?"
    rf"|Inviato da {_DEVICE}"
    rf"|Verzonden (?:vanaf|met) (?:mijn )?{_DEVICE}"
    r")[ \t]*[.!]?[ \t]*$",
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
# a mailing-list footer: a separator line, then a few lines naming the list or how to leave it
LIST_FOOTER = re.compile(
    r"^[ \t]*[-_=]{10,}[ \t]*\n(?:[ \t]*\n)?"
    r"(?=(?:[^\n]*\n){0,2}[^\n]*(?:mailing list|mailman/listinfo|listinfo/|Mailingliste|"
    r"liste de diffusion|lista de correo|mailinglijst|lista di distribuzione|unsubscribe|"
    r"abmelden|désinscri|darse de baja|uitschrijven))"
    r"(?:[^\n]*(?:\n|\Z)){1,8}\s*\Z",
    re.MULTILINE | re.IGNORECASE,
)
_SEPARATOR_TAIL = re.compile(r"(?:\n[ \t]*[-_=*~]{3,}[ \t]*)+\s*$")
_SEPARATOR_HEAD = re.compile(r"^(?:[ \t]*[-_=*~]{3,}[ \t]*\n)+")
_BLANK_RUNS = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*)+\n")
_SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


@dataclass(frozen=True)
class CleanRules:
    """Which cleaning rules apply (per profile); the defaults suit ordinary mail."""

    quotes: bool = True  # reply headers and what they quote; the writer's text after a quote stays
    quoted_lines: bool = True  # every "> " line
    signature: bool = True  # "-- " delimiter to the end
    mobile_signature: bool = True  # "Sent from my iPhone" and friends, anywhere
    disclaimers: bool = True  # a bottom disclaimer paragraph or mailing-list footer
    sign_off: bool = True  # "Best regards" + name/title/phone lines, "-Name" at the end
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


def _cut_from(text: str, start: int, removed: list[str], *, keep_some: bool = True) -> str:
    """Drop text[start:]; with `keep_some`, not when that would leave nothing."""
    head = text[:start]
    if keep_some and not head.strip():
        return text
    removed.append(text[start:].strip())
    return head


def _drop_all(
    pattern: re.Pattern[str], text: str, removed: list[str], *, keep_some: bool = True
) -> str:
    pieces = [m.group(0).strip() for m in pattern.finditer(text)]
    if not pieces:
        return text
    rest = pattern.sub("", text)
    if keep_some and not rest.strip():
        return text
    removed.extend(p for p in pieces if p)
    return rest


def _attribution_at(text: str, pos: int) -> tuple[int, int] | None:
    """The first attribution (one line, or 2-3 lines starting with a dated one) from pos."""
    for m in _OPENING.finditer(text, pos):
        end = m.end()
        for lines in range(3):
            if ATTRIBUTION.fullmatch(text[m.start() : end].replace("\n", " ")):
                return m.start(), end
            if lines == 0 and not any(ch.isdigit() for ch in m.group(0)):
                break  # only a dated first line may continue on the next lines
            nl = text.find("\n", end + 1)
            if end >= len(text) or nl - end > 201:
                break
            end = len(text) if nl < 0 else nl
    return None


def _span(match: re.Match[str] | None) -> tuple[int, int] | None:
    return (match.start(), match.end()) if match else None


class _Headers:
    """The reply headers of one text, left to right; each finder scans the text about once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.finders: list[Callable[[int], tuple[int, int] | None]] = [
            lambda pos: _attribution_at(text, pos),
            lambda pos: _span(QUOTE_HEADER.search(text, pos)),
        ]
        if ">" in text:
            self.finders.append(lambda pos: _span(ATTRIBUTION_BEFORE_QUOTE.search(text, pos)))
        self.found: dict[int, tuple[int, int] | None] = {}

    def next(self, pos: int) -> tuple[int, int] | None:
        """Start and end of the first header at or after pos."""
        spans = []
        for n, find in enumerate(self.finders):
            span = self.found.get(n, (-1, -1))
            if span is not None and span[0] < pos:
                span = self.found[n] = find(pos)
            if span is not None:
                spans.append(span)
        return min(spans) if spans else None


def _cut_quote(text: str, removed: list[str]) -> str:
    """Remove reply headers and what they quote; text after a "> " quote is the writer's.

    A header followed by "> " lines (bottom-posting, interleaved answers) goes with those
    lines only. A header followed by unmarked text (Outlook, top-posting) is cut to the end,
    unless it opens the mail: then only the header goes. A body that is nothing but quotes
    keeps them (without the first header).
    """
    headers = _Headers(text)
    mark = len(removed)
    kept: list[str] = []  # the writer's pieces; a removal lies between each two
    has_text, pos, first = False, 0, None
    while (span := headers.next(pos)) is not None:
        start, end = span
        first = first or span
        before = text[pos:start]
        kept.append(before)
        has_text = has_text or bool(before.strip())
        block = _QUOTED_BLOCK.match(text, end)
        if block is not None:
            removed.append(text[start : block.end()].strip())
            pos = block.end()
        elif has_text:
            removed.append(text[start:].strip())
            pos = len(text)
            break
        else:
            removed.append(text[start:end].strip())
            pos = end
    kept.append(text[pos:])
    out: list[str] = []
    has_text = False
    for piece in kept:
        filled = bool(piece.strip())
        if has_text and filled:
            out.append("\n")  # the removed quote separated two paragraphs
        out.append(piece)
        has_text = has_text or filled
    if not has_text and first is not None:  # nothing but quotes: keep them
        del removed[mark:]
        start, end = first
        removed.append(text[start:end].strip())
        return text[:start] + text[end:].lstrip("\n")
    return "".join(out)


def _cut_disclaimer(text: str, patterns: tuple[str, ...], removed: list[str]) -> str:
    footer = LIST_FOOTER.search(text)
    if footer is not None and text[: footer.start()].strip():
        removed.append(text[footer.start() :].strip())
        text = text[: footer.start()]
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


def _cut_sign_off(text: str, removed: list[str]) -> str:
    start = signoff.find(text)
    if start is None:
        return text
    return _cut_from(text, start, removed, keep_some=False)


_DISCLAIMER_PARAGRAPHS = 4
_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if patterns not in _CACHE:
        _CACHE[patterns] = re.compile("(?:" + "|".join(patterns) + ")", re.IGNORECASE)
    return _CACHE[patterns]


def normalise_whitespace(text: str, *, collapse_spaces: bool = True) -> str:
    """Trailing spaces off, runs of blank lines → one, optional space runs → one; strip."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # each line's trailing whitespace: what `[^\S\n]+$` (MULTILINE) removes, without a
    # regex attempt at every space between two words
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    text = _BLANK_RUNS.sub("\n\n", text)
    if collapse_spaces and ("  " in text or "\t" in text):  # no run of two without either
        text = _SPACE_RUNS.sub(" ", text)
    return text.strip()


def clean(body: str, rules: CleanRules) -> Cleaned:
    """Apply the enabled rules to a mail body (as `mime.extract` returns it).

    Quotes are kept when they are all there is. Signatures, sign-offs and "Sent from"
    lines are never the message: a body that is only those is left empty (the subject, if
    any, is sent instead).
    """
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
    if rules.quoted_lines and ">" in text:  # every quoted line has one
        text = _drop_all(QUOTED_LINE, text, removed)
    if rules.signature:
        m = SIGNATURE_DELIMITER.search(text)
        if m:
            text = _cut_from(text, m.start(), removed, keep_some=False)
    if rules.mobile_signature:
        text = _drop_all(MOBILE_SIGNATURE, text, removed, keep_some=False)
    if rules.disclaimers:
        text = _cut_disclaimer(text, rules.disclaimer_patterns, removed)
    if rules.sign_off:
        text = _cut_sign_off(text, removed)
    if rules.whitespace:
        text = normalise_whitespace(text, collapse_spaces=rules.collapse_spaces)
    return Cleaned(text, tuple(r for r in removed if r))
