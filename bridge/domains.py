"""Domain names in one canonical form: lower-case ASCII, an internationalized label as
its A-label (`sms.büro.example` is `sms.xn--bro-hoa.example`).

Pure code. The bridge's own domains (`[smtp] domains`, `domain_customers`) are put in
this form once, when the settings are read (`configured_domain`), and the domain of every
recipient address once per RCPT or API number (`address_domain`), so an address matches a
configured domain whichever spelling either side uses: U-label or A-label, any case.

The rules are those of the `idna` package (which email-validator brings, and which
`bridge.mail_address` uses for senders): UTS 46 mapping, non-transitional (what current
browsers and email-validator do: case and width folded, `。` read as a dot, `ß` kept as
`ß`), then the IDNA2008 checks of every label (no symbols or emoji, no hyphen at either
end, joiners only where their context allows). So a domain a user types in any common
way finds the same domain, and one no registry could hold is refused, saying why.

An ASCII domain (nearly all of them) takes the fast path: lower-cased and checked with one
pattern, no IDNA call. An A-label written in any case is already canonical lower-cased
(an invalid one matches no configured domain, and those are checked in full). A domain
that is not ASCII is converted once and remembered (`DOMAINS_KEPT`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna

from bridge.errors import InputError

# a host name of two or more labels of letters, digits and inner hyphens (RFC 1123)
DOMAIN = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+", re.ASCII
)
DOMAIN_MAX = 253  # RFC 1035, without the trailing dot
# The internationalized domains whose ASCII form is kept: the few a company's clients
# write (its SMS domain in U-labels); any other text costs one conversion.
DOMAINS_KEPT = 1024


class DomainError(InputError, ValueError):
    """`domain` is not a domain name; `reason` says what is wrong with it."""

    def __init__(self, domain: str, reason: str) -> None:
        super().__init__(f"{domain!r} is not a domain name: {reason}")
        self.domain = domain
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Refused:
    """Why a domain has no ASCII form (kept in the cache like an answer)."""

    reason: str


def address_domain(domain: str) -> str:
    """The canonical form of the domain of an address, or DomainError (the hot path)."""
    if domain.isascii():
        lowered = domain.lower()
        if len(lowered) <= DOMAIN_MAX and DOMAIN.fullmatch(lowered):
            return lowered
        raise DomainError(domain, _ascii_reason(lowered))
    found = _idna_form(domain)
    if isinstance(found, _Refused):
        raise DomainError(domain, found.reason)
    return found


def configured_domain(domain: str) -> str:
    """The canonical form of a domain from the settings, every label checked (an A-label
    too: `xn--zz.example` is refused), or DomainError saying why."""
    text = domain.strip()
    found = _idna_form(text)
    if isinstance(found, _Refused):
        raise DomainError(text, found.reason)
    return found


@functools.lru_cache(maxsize=DOMAINS_KEPT)
def _idna_form(domain: str) -> str | _Refused:
    if len(domain) > DOMAIN_MAX:  # no longer text reaches the conversion (bounded work)
        return _Refused(f"it is longer than {DOMAIN_MAX} characters")
    if domain.isascii():  # its faults said as `address_domain` says them; its A-labels checked
        lowered = domain.lower()
        if len(lowered) > DOMAIN_MAX or not DOMAIN.fullmatch(lowered):
            return _Refused(_ascii_reason(lowered))
    try:
        ascii_form = idna.encode(domain, uts46=True, std3_rules=True, transitional=False)
    except UnicodeError as exc:  # idna.IDNAError and the codecs' own errors
        return _Refused(_idna_reason(exc))
    lowered = ascii_form.decode("ascii").lower()
    if len(lowered) > DOMAIN_MAX or not DOMAIN.fullmatch(lowered):
        return _Refused(_ascii_reason(lowered))
    return lowered


def _idna_reason(exc: UnicodeError) -> str:
    text = str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


def _ascii_reason(domain: str) -> str:
    if not domain:
        return "it is empty"
    if len(domain) > DOMAIN_MAX:
        return f"it is longer than {DOMAIN_MAX} characters"
    if "." not in domain.strip("."):
        return "a domain has at least two labels (e.g. sms.example.com)"
    if domain.endswith(".") or domain.startswith(".") or ".." in domain:
        return "a label is empty (a dot at the start or end, or two dots)"
    for label in domain.split("."):
        if len(label) > 63:
            return f"the label {label[:20]}… is longer than 63 characters"
        if label.startswith("-") or label.endswith("-"):
            return f"the label {label!r} starts or ends with a hyphen"
        bad = next((c for c in label if not (c.isalnum() or c == "-")), None)
        if bad is not None:
            return (
                f"the label {label!r} has {bad!r} (U+{ord(bad):04X}), not a letter, digit or hyphen"
            )
    return "not a host name of letters, digits and hyphens"
