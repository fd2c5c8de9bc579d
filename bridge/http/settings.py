"""The `[http]` table: the HTTP listener (health, readiness, metrics), its address and TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from bridge.intake.access import Networks, check_cidrs
from bridge.sections import Seconds, Section


def split_listen(listen: str) -> tuple[str, int]:
    """A "host:port" or "[v6]:port" → (host, port); ValueError saying what is expected."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"listen: expected host:port such as 127.0.0.1:8025 or [::1]:8025, got {listen!r}"
        )
    return host, int(port)


class HttpSettings(Section):
    """The HTTP listener: off unless enabled (the embedded default enables it)."""

    enabled: bool = False
    listen: str = "127.0.0.1:8025"
    # TLS: a certificate chain and its key turn on HTTPS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Seconds a readiness check (the database's) may take before it counts as failed.
    check_timeout: Seconds = 2.0
    # Seconds the scrape-time queries (queue depths, dirsync runs) may take.
    scrape_timeout: Seconds = 5.0
    # Customers named in the per-customer metrics (the first seen); the rest count as "other".
    customer_labels: Annotated[int, Field(ge=0, le=10_000)] = 100
    # Seconds a request may take to arrive whole (request line, headers, body), counted
    # from the connection's start or the previous answer (bridge/http/door.py).
    request_timeout: Seconds = 30.0
    # Open connections per client address and in total; new ones per address and minute.
    max_connections: Annotated[int, Field(ge=1)] = 1000
    max_connections_per_ip: Annotated[int, Field(ge=1)] = 100
    max_connections_per_ip_per_minute: Annotated[int, Field(ge=1)] = 6000
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the
    # API keys' networks, the portal's login limits and the log lines then judge the
    # address the proxy forwards. Empty: the connection's own address, no header believed.
    trusted_proxies: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> HttpSettings:
        split_listen(self.listen)
        try:
            check_cidrs(p.strip() for p in self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(
                f"trusted_proxies: {exc}; name the reverse proxies by address or network"
            ) from None
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: set both (HTTPS) or neither (HTTP)")
        return self

    def proxy_networks(self) -> list[str]:
        """`trusted_proxies` as networks (`10.0.0.5/24` as `10.0.0.0/24`), the form uvicorn
        matches; it would take a network with host bits for a name and never match it."""
        return [str(network) for network in Networks(self.trusted_proxies).networks]

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]
