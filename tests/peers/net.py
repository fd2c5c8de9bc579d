"""Loopback ports for the throwaway servers of the tests."""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_LOWEST = 10_000  # below: well-known and registered services' ports
_given: set[int] = set()  # ports handed out by this process


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (and `bind(0)`)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def free_port() -> int:
    """A port free on 127.0.0.1 just now, for a server that cannot be given port 0.

    Chosen below the kernel's ephemeral range: a port the kernel picked (bind to 0) may
    be taken by any outgoing connection before the server binds it — RabbitMQ's, Redis'
    or a test client's — and the server then fails with "address already in use" (a
    Jasmin stack of ten such ports lost its router that way). Below the range only an
    explicit bind takes a port; none is handed out twice by this process."""
    low, _ = ephemeral_range()
    if low - _LOWEST >= 1_000:
        rng = random.Random()
        for _ in range(200):
            port = rng.randrange(_LOWEST, low)
            if port in _given:
                continue
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    with socket.socket() as s:  # no room below the range: the kernel's choice
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listening(port: int, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on 127.0.0.1:`port`?"""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False
