"""Open any of the ESME client drivers by name: "smpp34", "smpplib" or "node"."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

from tests.peers.esme import EsmeDriver
from tests.peers.esme_node import NodeEsme
from tests.peers.esme_smpp34 import Smpp34Esme
from tests.peers.esme_smpplib import SmpplibEsme

CLIENTS: Final = ("smpp34", "smpplib", "node")


@contextlib.asynccontextmanager
async def open_esme(client: str, host: str, port: int) -> AsyncIterator[EsmeDriver]:
    """A driver of `client` for the SMPP server at host:port (not yet bound); closed after."""
    driver: EsmeDriver
    node: NodeEsme | None = None
    if client == "smpp34":
        driver = Smpp34Esme(host, port)
    elif client == "smpplib":
        driver = SmpplibEsme(host, port)
    elif client == "node":
        driver = node = NodeEsme(host, port)
    else:
        raise ValueError(f"unknown ESME client {client!r}; one of {', '.join(CLIENTS)}")
    try:
        if node is not None:
            await node.start()  # the node process
        yield driver
    finally:
        await driver.close()
