"""Mail addresses: one check (email-validator) for every address from outside and in a header.

Pure code. The CLI (`user add`, `settings set notify_address …`), the tenants file, the
numbers file, dirsync (LDAP and CSV) and the settings cascade all call
`check_mail_address`, so an address is accepted or refused the same way wherever it
comes from. The check is syntax only (no DNS), in the ASCII form an MTA uses: the domain
in IDNA (A-label) form, everything lower-cased (addresses are matched lower-cased).

Most addresses are plain (`anna.alpha@corp.example`): a strict pattern accepts those
directly with the result email-validator gives (tests/unit/test_mail_address.py checks
the two agree); everything else goes through email-validator itself.

`match_key` is how an address from outside (an envelope sender) is looked up among the
stored ones, in either spelling of an internationalized domain.

`header_address` is the same check for an address the bridge writes into a header of a
mail it builds (its sender, a notice's recipient, a reply address): it also accepts
the private names an intranet uses for its own mail (`mailsms@localhost`, `.local`), and
keeps the local part's case, since the address is written, not matched.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator

from bridge.errors import InputError

# Plain ASCII addresses email-validator accepts unchanged (apart from case): dot-atoms of
# letters, digits and _+- ; domain labels without "--" (no IDNA forms); an alphabetic TLD
# that is not a special-use name.
_PLAIN = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)
# Names email-validator refuses as "special use" that an intranet or a test setup does use
# for its own mail (mailsms@localhost is the default sender; AD domains end in .local).
_PRIVATE_TLDS = ("localhost", "local", "test", "invalid", "internal", "lan", "home.arpa")


class MailAddressError(InputError, ValueError):
    """Not a valid mail address; the message says why."""


def _plain(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    return (
        len(address) <= 254
        and len(local) <= 64
        and "--" not in domain
        and domain.rpartition(".")[2] not in _SPECIAL_USE
        and _PLAIN.fullmatch(address) is not None
    )


def check_mail_address(value: str) -> str:
    """The address, lower-cased in ASCII form; MailAddressError with the reason otherwise.

    A private domain (`sap-prd.corp.local`, `localhost`: an intranet's own names, which
    SAP systems and Active Directory use as sender domains) is accepted as `header_address`
    accepts it: checked label by label, its local part by email-validator."""
    text = value.strip()
    lowered = text.lower()
    if _plain(lowered):
        return lowered
    local, at, domain = text.rpartition("@")
    check = f"{local}@example.com" if at and _private_domain(domain) else text
    try:
        result = validate_email(check, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise MailAddressError(f"{value!r} is not a valid mail address: {exc}") from None
    if check != text:
        return f"{result.local_part}@{domain.rstrip('.')}".lower()
    return str(result.ascii_email or result.normalized).lower()


def match_key(address: str) -> str:
    """How an address from outside is looked up among the stored ones: in
    `check_mail_address`'s form when it is one (so `anna@büro.example` finds the stored
    `anna@xn--bro-hoa.example`), else lower-cased as it is. ASCII addresses are only
    lower-cased: that is already their stored form."""
    lowered = address.strip().lower()
    if lowered.isascii():
        return lowered
    try:
        return check_mail_address(address)
    except MailAddressError:
        return lowered


def _private_domain(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return any(domain == tld or domain.endswith("." + tld) for tld in _PRIVATE_TLDS)


@lru_cache(maxsize=4096)
def header_address(address: str) -> str | None:
    """`address` as an ASCII addr-spec if email-validator accepts it (no name, no brackets,
    no quoted local part, no IP literal; a private domain checked label by label), else
    None."""
    if not isinstance(address, str) or not address or len(address) > 254:
        return None
    local, at, domain = address.rpartition("@")
    # a private domain is checked label by label; its local part by email-validator
    check = f"{local}@example.com" if at and _private_domain(domain) else address
    try:
        valid = validate_email(
            check, check_deliverability=False, allow_smtputf8=False, globally_deliverable=False
        )
    except EmailNotValidError:
        return None
    if check != address:
        return f"{valid.local_part}@{domain.lower().rstrip('.')}"
    return str(valid.ascii_email or valid.normalized)


def _optional(value: str) -> str:
    return check_mail_address(value) if value.strip() else ""


# For pydantic models of files that carry addresses (tenants, numbers).
MailAddress = Annotated[str, AfterValidator(check_mail_address)]
OptionalMailAddress = Annotated[str, AfterValidator(_optional)]
