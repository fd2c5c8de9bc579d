"""A push URL's form: the SSRF guard's rules that need no DNS (`bridge.push.guard` adds the
addresses). Pure code, so the numbers file's checks (`bridge.push.target`) can use it.

A push URL must be `https` (or `http` where allowed), carry no credentials, name a host
in ordinary form (no decimal, octal or hex IPv4 tricks such as `2130706433` or
`0x7f.1`) and a valid port.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bridge.errors import InputError

_IPV4_ODD = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$", re.IGNORECASE)


class PushBlocked(InputError, ValueError):
    """The URL is refused by the SSRF guard; the message says why."""


def _is_dotted_quad(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and str(int(p)) == p for p in parts)


def parse_target(url: str, allow_http: bool) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise PushBlocked(f"scheme {scheme or '(none)'!r} not allowed; use https")
    if parts.username or parts.password:
        raise PushBlocked("credentials in the URL are not allowed; use auth settings")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise PushBlocked("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise PushBlocked(f"bad port: {exc}") from None
    if ":" not in host and _IPV4_ODD.fullmatch(host) and not _is_dotted_quad(host):
        raise PushBlocked(f"host {host!r} is a numeric address in an unusual form")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path
