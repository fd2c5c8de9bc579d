"""Sign-off blocks: a closing line ("Best regards", "Mit freundlichen Grüßen", "-Name") with
only name, title, company, address and contact lines after it, at the end of a text.

Outlook and most company mail put a signature under the closing without a "-- " line. The
block is recognised from the bottom: a closing line, then nothing but signature lines up to
the end. The first line after a closing must be a name, a team ("Ihr Logistik-Team") or a
contact line (phone, e-mail, URL); later lines may be titles, departments, companies or
addresses, but never a sentence (lower-case words beyond name particles, "?" or "!", a line
ending in ":", a "PS"). A closing such as "Thanks" or "Danke" counts only with a name after
it, so a "Thanks!" that ends a text stays.
"""

from __future__ import annotations

import re

_MAX_LINES = 16  # a closing further from the end than this is not a sign-off

# formal closings: the block may end right after them
_FORMAL = (
    # English
    r"(?:(?:with |many |warm(?:est)? |kind(?:est)? |best |all the best and |)regards?)",
    r"(?:(?:very |)best(?: wishes)?|all the best|(?:best|warm|kind) wishes|greetings)",
    r"(?:yours(?: sincerely| faithfully| truly)?|sincerely(?: yours)?|respectfully|cordially)",
    r"(?:br|kr|rgds|brgds|cheers)",
    # German
    r"(?:mit )?(?:freundliche[mn]?|beste[mn]?|viele[mn]?|liebe[mn]?|herzliche[mn]?|"
    r"sonnige[mn]?|schöne[mn]?|kollegiale[mn]?|besten) gr(?:ü|ue|u)(?:ß|ss)(?:en?)?",
    r"(?:gr(?:ü|ue)(?:ß|ss)e?|gru(?:ß|ss)|mfg|vg|lg|bg|ciao|tschüss|servus)",
    # French
    r"(?:(?:bien |très |)cordialement|bien à (?:vous|toi)|(?:bien |)amicalement|"
    r"(?:meilleures|sincères|cordiales|mes) salutations(?: distinguées)?|salutations)",
    # Dutch
    r"(?:met )?(?:vriendelijke|hartelijke|beste|lieve) groet(?:en)?|groet(?:en|jes)?|mvg",
    # Spanish, Portuguese
    r"(?:un |muchos |)saludos?(?: cordiales)?|atentamente|un abrazo|abrazos",
    r"atenciosamente|(?:melhores |)cumprimentos|abraços",
    # Italian
    r"(?:cordiali|distinti|cari|un) salut[io]|saluti|un caro saluto",
    # Nordic, Polish
    r"(?:med )?(?:vänliga|vänlig|bästa) hälsningar?|hälsningar|"
    r"(?:med )?(?:venlig|vennlig|venlige|vennlige|kærlig|bedste|mange) hilsen|hilsen|"
    r"mvh|m\.v\.h\.|kh|vh|pozdrawiam|pozdrowienia|z (?:poważaniem|powazaniem)",
)
# thanks: a sign-off only when a name follows
_THANKS = (
    r"(?:many |)thanks(?: (?:a lot|again|in advance))?|thank you(?: (?:very much|again))?|thx",
    r"(?:vielen |besten |herzlichen |)dank(?:e(?: schön| sehr| dir| euch)?)?(?: im voraus)?",
    r"merci(?: beaucoup| d'avance)?|(?:muchas |)gracias|obrigad[oa]|(?:mille |)grazie",
    r"bedankt|dank je(?: wel)?|dank u(?: wel)?|tack|takk|dziękuję",
)
_JOIN = r"(?:\s*(?:[,&+/]|and|und|et|en|y|e)\s*)"
_WHERE = r"(?:\s+(?:from|aus|de|van|da|desde|an|to|vom|von|nach)(?:\s+[\w'’.-]+){1,3})?"
_NAME_WORD = r"(?:[A-ZÀ-ÖØ-Þ][\w'’.-]*|[A-ZÀ-ÖØ-Þ]\.)"
_NAME_PARTICLE = r"(?:von|van|de|der|den|du|la|le|da|di|del|dos|das|ten|ter|zu|bin|al)"
_NAME = rf"{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|{_NAME_PARTICLE})){{0,3}}"


def _closing(lead: tuple[str, ...], main: tuple[str, ...]) -> re.Pattern[str]:
    """A closing line: phrases in any case ("Danke und Gruß"), then at most a capitalised name.

    The line holds one phrase of `main`, optionally after phrases of `lead`, optionally
    followed by more phrases of either.
    """
    either = "(?i:" + "|".join(lead + main) + ")"
    first = "(?i:" + "|".join(main) + ")"
    before = f"(?:(?i:{'|'.join(lead)})(?i:{_JOIN}))*" if lead else ""
    return re.compile(
        rf"^[ \t]*{before}{first}(?:(?i:{_JOIN}){either})*(?i:{_WHERE})[ \t]*[,.!:;-]*"
        rf"(?:[ \t]*(?P<name>{_NAME}))?[ \t]*[,.!]*[ \t]*$"
    )


FORMAL_CLOSING = _closing(_THANKS, _FORMAL)  # "Best regards", "Danke und Gruß"
THANKS_CLOSING = _closing((), _THANKS)  # "Thanks", "Danke": a sign-off only with a name
# "-Name", "-- Name", "– Name", "~Name", "/Name": a one-line sign-off (a single "-" needs no
# space, so a "- item" list line is not one)
DASH_SIGN_OFF = re.compile(rf"^[ \t]*(?:[-/](?=\S)|--[ \t]?|[–—~][ \t]?){_NAME}[ \t]*$")
_SEPARATOR = re.compile(r"^[ \t]*[-_=*~]{3,}[ \t]*$")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+|\b00|\(0)?\d[\d \t/().–-]{5,}\d")
_CONTACT_LABEL = re.compile(
    r"^(?:tel|tél|phone|fon|telefon|telefono|teléfono|mobil|mobile|mob|handy|cell|fax|"
    r"direct|durchwahl|zentrale|e-?mail|mail|web|internet|skype|teams|[tmfpewd])\b\.?[ \t]*:?",
    re.IGNORECASE,
)
_TEAM = re.compile(
    r"^(?:(?:ihr|ihre|euer|eure|dein|deine|your|the|das|die|der|votre|vos|l'|su|il|uw|je|"
    r"el|la)\s+)?[\w&'’ -]{0,40}\b(?:team|équipe|equipo|squadra|service|support|"
    r"system|systems|helpdesk|leitstand|dispatch)\b[\w&'’ -]{0,30}$",
    re.IGNORECASE,
)
# lower-case words a name, title, company or address line may hold
_PARTICLE_WORDS = (
    "von van de der den des del della di da dos das do du la le les al el y e et and und & of "
    "for the für im in at bei am an zu zum zur en ten ter op i.a. i.v. ppa. pp. c/o z.hd. "
    "e.v. e.k. mbh gmbh ag se kg co. co inc. ltd. llc plc sa sarl bv nv srl spa "
    "tel tel. fax mobil mobile mob. phone e-mail email mail web www ext. rue avenue av. "
    "bd boulevard chemin place via calle straße str. strasse weg platz "
    "a.d. u. bzw. v. vs. |"
)
_PARTICLES = frozenset(_PARTICLE_WORDS.split())
# capitalised words that open sentences, not names ("Bitte Rückruf", "Bin gleich da")
_OPENER_WORDS = (
    "bitte please danke thanks ich wir sie du er es das die der ein eine kein keine bis bin "
    "ist sind war hat haben habe kann können muss müssen wird werden heute morgen gestern "
    "jetzt hier dort ja nein ok okay i we you he she it they this that these there here "
    "see call bring send let can could will would should must is are was were have has "
    "just also yes no je nous vous il elle on ce merci oui non yo el ella es está "
    "ik wij het dit dat io noi"
)
_SENTENCE_OPENERS = frozenset(_OPENER_WORDS.split())
_PROSE_MARK = re.compile(r"[?!]|:\s*$|^\s*(?:p\.?\s?p?\.?\s?s\.?|nb)\b[.:]?", re.IGNORECASE)


def _words(line: str) -> list[str]:
    return [w for w in re.split(r"[ \t,;|/•·]+", line.strip()) if w]


def _is_contact(line: str) -> bool:
    if _EMAIL.search(line) or _URL.search(line) or _CONTACT_LABEL.match(line.strip()):
        return True
    match = _PHONE.search(line)
    return match is not None and sum(ch.isdigit() for ch in match.group(0)) >= 6


def _opens_sentence(words: list[str]) -> bool:
    return words[0].lower().strip(".,:") in _SENTENCE_OPENERS


def _is_name(line: str) -> bool:
    """A person's name ("Karl Meier", "Meier, Karl", "Dr. K. Meier") or a team."""
    stripped = line.strip()
    if _TEAM.match(stripped) and not _PROSE_MARK.search(stripped):
        return True
    words = _words(stripped)
    if not 1 <= len(words) <= 5 or any(ch.isdigit() for ch in stripped) or _opens_sentence(words):
        return False
    named = [w for w in words if w.lower() not in _PARTICLES]
    return bool(named) and all(w[0].isupper() for w in named)


def _is_signature_line(line: str) -> bool:
    """A title, department, company, address or contact line (never a sentence)."""
    stripped = line.strip()
    if not stripped or _is_contact(stripped):
        return True
    if _PROSE_MARK.search(stripped) or len(stripped) > 120:
        return False
    words = _words(stripped)
    if _opens_sentence(words) or len(words) > 12:
        return False
    lower = [w for w in words if w[0].islower() and w.lower() not in _PARTICLES]
    if len(lower) > 1:
        return False
    # a sentence ends with a full stop; an abbreviation ("Co.", "e.V.", "Str.") does not count
    return not (stripped.endswith(".") and len(words) >= 4 and len(words[-1]) > 4)


_MAX_CLOSING = 100  # characters: a closing line with a name is short


def _closing_kind(line: str) -> str | None:
    if len(line) > _MAX_CLOSING:
        return None
    if FORMAL_CLOSING.match(line):
        return "formal"
    if THANKS_CLOSING.match(line):
        return "thanks"
    if DASH_SIGN_OFF.match(line):
        return "dash"
    return None


def find(text: str) -> int | None:
    """Offset where the sign-off block at the end of `text` starts, or None."""
    lines = text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    filled = [i for i, line in enumerate(lines) if line.strip() and not _SEPARATOR.match(line)]
    first_candidate = max(0, len(filled) - _MAX_LINES)
    for n in range(first_candidate, len(filled)):
        i = filled[n]
        kind = _closing_kind(lines[i])
        if kind is None:
            continue
        after = [lines[j] for j in filled[n + 1 :]]
        if kind == "dash" and i > 0 and lines[i - 1].strip() and not _closing_kind(lines[i - 1]):
            continue  # "-Name" stands alone under the text, not inside a paragraph
        if not after:
            if kind != "thanks" or _has_name(lines[i]):
                return starts[i]
            continue
        first, rest = after[0], after[1:]
        if not (_closing_kind(first) or _is_name(first) or _is_contact(first)):
            continue
        if all(_closing_kind(line) or _is_signature_line(line) for line in rest):
            return starts[i]
    return None


def _has_name(line: str) -> bool:
    match = THANKS_CLOSING.match(line)
    return bool(match and match.group("name"))
