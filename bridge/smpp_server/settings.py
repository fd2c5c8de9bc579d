"""The `[smpp_server]` table: the bridge as an SMPP server for customers' applications."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from bridge.sections import Port, Seconds, Section


class SmppServerSettings(Section):
    """The SMPP listener (off unless enabled; on in the embedded default)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 2776
    system_id: str = "mailsms"  # what bind_resp names us
    # TLS on the whole connection (SMPP over TLS): a certificate chain and key turn it on.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    response_timeout: Seconds = 30.0  # for our deliver_sm
    outbox_interval: Seconds = 0.2  # how often bound receivers look for receipts and MO
    retry_delay: Seconds = 5.0  # after a deliver_sm_resp error; doubles up to retry_max
    retry_max: Seconds = 600.0
    # a receipt or MO the client keeps refusing is given up this long after it was queued
    give_up_after: Seconds = 259200.0  # 3 days
    part_wait: Seconds = 600.0  # how long the parts of a concatenated SMS wait for the rest
    demo_password: Annotated[str, Field(min_length=1)] = "demo"  # the demo account (demo = true)
    # The door's time and attempt limits (docs/smpp_server.md, "The door").
    bind_timeout: Seconds = 30.0  # a connection must bind within this (session_init_timer)
    enquire_link_interval: Seconds = 60.0  # a bound client silent this long is asked
    max_connections: Annotated[int, Field(ge=1)] = 1000
    max_connections_per_ip: Annotated[int, Field(ge=1)] = 50
    max_connections_per_ip_per_minute: Annotated[int, Field(ge=1)] = 600
    bind_max_failures: Annotated[int, Field(ge=1)] = 10  # wrong binds per address ...
    bind_max_failures_per_system_id: Annotated[int, Field(ge=1)] = 20  # ... and per account
    bind_lockout: Seconds = 900.0  # within 10 minutes: locked this long

    @model_validator(mode="after")
    def _tls_pair(self) -> SmppServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: set both (SMPP over TLS) or neither")
        return self
