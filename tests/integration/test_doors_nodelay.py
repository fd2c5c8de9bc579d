"""Every door's connections send small writes at once (TCP_NODELAY), as the event loop
sets it on the sockets it makes.

With Nagle's algorithm on, an answer written in two pieces (an HTTP head, then its body;
an SMTP reply group; SMPP PDUs back to back) waits for the peer's delayed ACK of the
first piece, ~40 ms each time. The HTTP listener's socket, made by hand, had it on: every
request on a kept connection took 44 ms.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path

from bridge.http.settings import HttpSettings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge


def _connected_to(client: tuple[str, int]) -> socket.socket | None:
    """The live socket whose peer is `client` (the door's end of a connection), if any."""
    for found in gc.get_objects():
        if isinstance(found, socket.socket) and found.fileno() != -1:
            try:
                if found.getpeername() == client:
                    return found
            except OSError:  # a listening or unconnected socket
                continue
    return None


async def _server_side(client: tuple[str, int]) -> socket.socket:
    """The door's end of the connection from `client`, once the bridge has accepted it."""
    for _ in range(500):  # up to 10 s
        found = _connected_to(client)
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no socket of this process is connected to {client}")


async def test_every_door_sends_without_waiting_for_acks(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        http=HttpSettings(enabled=True, listen="127.0.0.1:0"),
        smpp_server=SmppServerSettings(enabled=True, port=0),
    )
    async with running_bridge(settings) as (_, ep):
        assert ep.http is not None and ep.smpp is not None and ep.sandbox is not None
        doors = {"smtp": ep.smtp, "http": ep.http, "smpp": ep.smpp, "sandbox": ep.sandbox}
        for name, address in doors.items():
            _, writer = await asyncio.open_connection(*address)
            try:
                door = await _server_side(writer.get_extra_info("sockname"))
                nodelay = door.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert nodelay, f"the {name} door's connections have Nagle's algorithm on"
            finally:
                writer.close()
