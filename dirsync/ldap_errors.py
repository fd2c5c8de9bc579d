"""One-line messages for a failed bind or TLS handshake that say what to change (pure).

Active Directory (and Samba's AD DC) explains a refused bind in the diagnostic message of
`invalidCredentials`, e.g. `80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext
error, data 52e, v1db1`: the hex code after `data` says why (wrong password, account
disabled, expired, locked …). A simple bind over plain LDAP is refused with
`strongerAuthRequired` ("ldap server require strong auth"). ldap3 reports certificate
problems as Python reprs of the peer certificate or of nested exception tuples; these
become a sentence naming the setting to change.
"""

from __future__ import annotations

import re
from typing import Final

INVALID_CREDENTIALS: Final = 49
STRONGER_AUTH_REQUIRED: Final = 8
ACCOUNT_FORMS: Final = "a DN, a UPN (svc@corp.example) or DOMAIN\\user"

# AD's sub-codes of invalidCredentials (the hex number after "data" in the message)
AD_BIND_REASONS: Final[dict[str, str]] = {
    "525": "no such account: check ldap.bind_dn (" + ACCOUNT_FORMS + ")",
    "52e": (
        "wrong password or no such account: check the password in ldap.password_env / "
        "ldap.password_file and ldap.bind_dn (" + ACCOUNT_FORMS + ")"
    ),
    "530": "the account may not log on at this time (its logon hours)",
    "531": "the account may not log on from this computer (its logon workstations)",
    "532": "the account's password has expired: set a new one (and keep it from expiring)",
    "533": "the account is disabled: enable it in AD",
    "568": "the account is in too many groups (its security context is too large)",
    "701": "the account has expired (accountExpires): extend or clear its expiry in AD",
    "773": ("the account must change its password at next logon: set a password without that flag"),
    "775": "the account is locked out (too many wrong passwords): unlock it in AD",
}
_AD_DATA = re.compile(r"\bdata ([0-9a-fA-F]{3,8})\b")


def ad_bind_code(message: str) -> str | None:
    """The sub-code of AD's diagnostic message (`… data 52e, v1db1` -> `52e`), if any."""
    found = _AD_DATA.search(message or "")
    return found.group(1).lower() if found else None


def bind_failure(account: str, result: int, description: str, message: str) -> str:
    """What to say when the bind as `account` ended with LDAP `result` (its `description`
    and the server's diagnostic `message`)."""
    head = f"bind as {account} failed"
    if result == STRONGER_AUTH_REQUIRED:
        return (
            f"{head}: the server refuses a password over an unencrypted connection "
            "(strongerAuthRequired; AD's and Samba's default): use an ldaps:// url, or set "
            "ldap.starttls = true"
        )
    if result == INVALID_CREDENTIALS:
        code = ad_bind_code(message)
        reason = AD_BIND_REASONS.get(code or "")
        if reason is not None:
            return f"{head}: invalid credentials (AD: data {code}): {reason}"
        if code is not None:
            return f"{head}: invalid credentials (AD: data {code})"
        return (
            f"{head}: invalid credentials: check ldap.bind_dn and the password in "
            "ldap.password_env / ldap.password_file"
        )
    detail = " ".join((message or "").split())
    return f"{head}: {description}" + (f" ({detail[:200]})" if detail else "")


_NAME_MISMATCH = re.compile(r"doesn't match any name in \[(?P<wanted>[^\]]*)\]")
_CERT_NAME = re.compile(r"\('(?:commonName|DNS)', '([^']+)'\)")
_VERIFY = re.compile(r"certificate verify failed: ([^(')\"]+)")


def tls_failure(where: str, text: str) -> str:
    """What to say when TLS with `where` (the url, "<url> (StartTLS)" for StartTLS) failed with
    ldap3's error `text`."""
    mismatch = _NAME_MISMATCH.search(text)
    if mismatch is not None:
        names = list(dict.fromkeys(_CERT_NAME.findall(text)))
        wanted = ", ".join(n.strip(" '") for n in mismatch["wanted"].split(",")) or "?"
        if names:
            return (
                f"TLS with {where}: the server's certificate is for {', '.join(names)}, not "
                f"{wanted}: connect by that name in ldap.url, or set ldap.tls_hostname = "
                f'"{names[0]}"'
            )
        return (
            f"TLS with {where}: the server's certificate is not issued for {wanted}: connect "
            "by the name it holds, or set ldap.tls_hostname to it"
        )
    verify = _VERIFY.search(text)
    if verify is not None:
        why = verify.group(1).strip()
        if "mismatch" in why.lower():  # Python's own host name check
            return (
                f"TLS with {where}: certificate verify failed ({why}): connect by the name "
                "the certificate holds in ldap.url, or set ldap.tls_hostname to it"
            )
        return (
            f"TLS with {where}: certificate verify failed ({why}): set ldap.ca_file to the "
            "CA certificate that issued the server's (a Samba AD DC's own CA is "
            "private/tls/ca.pem)"
        )
    return f"TLS with {where}: {_plain(text)}"


def _plain(text: str) -> str:
    """ldap3's text without the quotes and tuple brackets of nested exception reprs."""
    flat = " ".join(text.split())
    while True:
        inner = re.fullmatch(r"""\(\s*(["'])(.*)\1,?\s*\)""", flat)
        if inner is None:
            break
        flat = inner.group(2)
    return flat[:300] or "failed"
