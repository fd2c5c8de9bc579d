"""The `[portal]` table: the administration portal on the HTTP listener, sessions, demo login."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bridge.sections import Seconds, Section


class PortalSettings(Section):
    """The portal at /portal/ (served only when `[http]` is enabled)."""

    enabled: bool = True
    # A session ends after this long without a request, and after `session_lifetime` anyway.
    session_idle: Seconds = 1800.0
    session_lifetime: Seconds = 43200.0
    # The Secure flag on the session cookie: "auto" sets it when [http] serves HTTPS;
    # "yes" behind a TLS-terminating proxy.
    secure_cookie: Literal["auto", "yes", "no"] = "auto"
    # The portal's language: a gettext catalog in bridge/locale/ (English is built in).
    language: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "en"
    # Password checks per second for logins (each costs ~50 ms of CPU by design, scrypt):
    # more are answered 429 at once, so logins can never take the CPU the SMS need. 0: no limit.
    login_rate: Annotated[float, Field(ge=0)] = 5.0
    # Failed logins from one client address (whatever the names) within 10 minutes before
    # that address is refused for `login_lockout` seconds (429, before any password
    # check), as the SMTP and SMPP doors do; a name is refused after 20 from any address.
    # Counted in the process serving HTTP. Behind a reverse proxy, name it in [http]
    # trusted_proxies, else every client has the proxy's address.
    login_max_failures: Annotated[int, Field(ge=1)] = 10
    login_lockout: Seconds = 900.0
    # With demo = true (the embedded default): the account "admin" for the demo customer.
    demo_password: Annotated[str, Field(min_length=10)] = "demo-portal"
