"""CPU per SMTP connection to build the session object: aiosmtpd's __init__ against the one
from remembered lookups (`bridge.intake.server.Lookups`), interleaved in one process.

  .venv/bin/python bench/session_init_bench.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP

from bridge.intake.access import ConnectionLimiter, Networks
from bridge.intake.server import BridgeSMTP, Shared

OPTIONS: dict[str, Any] = {
    "hostname": "bench.example",
    "ident": "mailsms ESMTP",
    "data_size_limit": 10_000_000,
    "enable_SMTPUTF8": True,
    "decode_data": False,
    "tls_context": None,
    "require_starttls": False,
    "auth_require_tls": True,
    "timeout": 300,
    "command_call_limit": {"*": 100},
}


class _Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def main(rounds: int = 9, n: int = 500) -> None:
    handler = _Handler()
    shared = Shared(
        limiter=ConnectionLimiter(0, 0, 0),
        plaintext=Networks(()),
        data_size_limit=10_000_000,
        tls_on=False,
        require_tls=False,
    )
    BridgeSMTP(handler, shared=shared, **OPTIONS)  # remembers the lookups
    assert shared.lookups is not None
    # the lookups of another handler: every session takes aiosmtpd's own __init__
    slow = dataclasses.replace(shared, lookups=dataclasses.replace(shared.lookups, handler=None))
    times: dict[str, list[float]] = {"bare aiosmtpd SMTP": [], "aiosmtpd's": [], "lookups": []}
    make: Callable[[], SMTP]
    for _ in range(rounds):
        for name, make in (
            ("bare aiosmtpd SMTP", lambda: SMTP(handler, hostname="bench.example")),
            ("aiosmtpd's", lambda: BridgeSMTP(handler, shared=slow, **OPTIONS)),
            ("lookups", lambda: BridgeSMTP(handler, shared=shared, **OPTIONS)),
        ):
            start = time.process_time()
            for _ in range(n):
                make()
            times[name].append((time.process_time() - start) / n * 1e6)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:20s} {median:7.1f} µs CPU per session (median of {rounds})")


if __name__ == "__main__":
    asyncio.run(main())
