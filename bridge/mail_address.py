"""Mail addresses that enter the bridge from outside: one check (email-validator) for all.

Pure code. The CLI (`user add`, `settings set notify_address …`), the tenants file, the
numbers file, dirsync (LDAP and CSV) and the settings cascade all call
`check_mail_address`, so an address is accepted or refused the same way wherever it
comes from. The check is syntax only (no DNS), in the ASCII form an MTA uses: the domain
in IDNA (A-label) form, everything lower-cased (addresses are matched lower-cased).

Most addresses are plain (`anna.alpha@corp.example`): a strict pattern accepts those
directly with the result email-validator gives (tests/unit/test_mail_address.py checks
the two agree); everything else goes through email-validator itself.
"""

from __future__ import annotations

import re
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
    """The address, lower-cased in ASCII form; MailAddressError with the reason otherwise."""
    text = value.strip()
    lowered = text.lower()
    if _plain(lowered):
        return lowered
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise MailAddressError(f"{value!r} is not a valid mail address: {exc}") from None
    return str(result.ascii_email or result.normalized).lower()


def _optional(value: str) -> str:
    return check_mail_address(value) if value.strip() else ""


# For pydantic models of files that carry addresses (tenants, numbers).
MailAddress = Annotated[str, AfterValidator(check_mail_address)]
OptionalMailAddress = Annotated[str, AfterValidator(_optional)]
