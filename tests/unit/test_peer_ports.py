"""The test servers' ports (`tests.peers.net.free_port`): outside the range the kernel
gives outgoing connections, so that none can take a port before its server binds it."""

from __future__ import annotations

import socket

from tests.peers.net import HOST, ephemeral_range, free_port


def test_ports_come_from_below_the_ephemeral_range_bindable_and_distinct() -> None:
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(300)]
    assert all(1024 <= p < low for p in ports), [p for p in ports if p >= low][:5]
    assert len(set(ports)) == len(ports)
    with socket.socket() as s:
        s.bind((HOST, ports[-1]))  # free indeed
