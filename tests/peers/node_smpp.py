"""A third SMSC for the tests: the npm `smpp` package (node-smpp), which we did not write.

`tests/peers/node_smpp/smsc.js` runs `smpp.createServer` on 127.0.0.1 port 0 and talks
to `ScriptSmsc` in JSON lines: it reports every PDU the bridge sends (decoded by
node-smpp: text, UDH, TON/NPI) and sends deliver_sm / alert_notification / enquire_link
on request. It accepts every bind, answers every submit_sm with a numeric id and, when
registered_delivery asks, a receipt (esm_class 0x04 + receipted_message_id/message_state
TLVs + the standard text). The npm package is installed into the git-ignored
`node_smpp/node_modules` by `scripts/test-deps.sh`, or here on first use (`npm ci`).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from tests.peers.script_smsc import ScriptSmsc

NODE_DIR = Path(__file__).parent / "node_smpp"


def ensure_installed() -> None:
    """Install the pinned npm packages (package-lock.json) unless they are there."""
    if (NODE_DIR / "node_modules" / "smpp" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed (make test-deps installs nodejs and npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
    )


def mo(source: str, ton: int, text: object = "Hello", **extra: object) -> dict[str, object]:
    """The fields of an MO deliver_sm to the demo sender number (for `NodeSmsc.deliver_sm`):
    `text` a string, or node-smpp's `{"udh_hex": ..., "message": ...}` for a part."""
    return {
        "source_addr": source,
        "source_addr_ton": ton,
        "source_addr_npi": 1,
        "destination_addr": "4915550000001",
        "dest_addr_ton": 0,
        "dest_addr_npi": 1,
        "data_coding": 0,
        "short_message": text,
        **extra,
    }


class NodeSmsc(ScriptSmsc):
    """The node-smpp SMSC."""

    name = "node SMSC"

    def __init__(self) -> None:
        super().__init__([shutil.which("node") or "node", "smsc.js"], NODE_DIR)

    async def start(self) -> None:
        ensure_installed()
        await super().start()


@contextlib.asynccontextmanager
async def running_node_smsc() -> AsyncIterator[NodeSmsc]:
    peer = NodeSmsc()
    try:
        await peer.start()
        yield peer
    finally:
        await peer.stop()
