"""The `[push]` table: HTTP push of inbound SMS and statuses to customer URLs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bridge.sections import Seconds, Section


class PushSettings(Section):
    """HTTP push of inbound SMS to customer URLs: timeouts, retries, the SSRF allow-list."""

    timeout: Seconds = 10.0
    concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    poll_interval: Seconds = 1.0
    retry_min: Seconds = 30.0
    retry_max: Seconds = 900.0
    give_up_after: Seconds = 86_400.0
    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    max_response_bytes: Annotated[int, Field(ge=0)] = 65_536
    # seconds a receiver's connection is kept open for its next push (0: one per push)
    keepalive: Annotated[float, Field(ge=0, le=60)] = 2.0
