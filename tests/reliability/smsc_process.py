"""A standalone SMSC for the kill -9 test: the sandbox SMSC in a process of its own.

It outlives the bridge it serves, as a real SMSC does: every SMS it accepts is written
to the inbox file before its submit_sm_resp, and a delivery receipt the bridge cannot
take (killed, restarting) is offered again for about a minute.

  python -m tests.reliability.smsc_process INBOX   (prints "listening <port>", stops on SIGTERM)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from bridge.sandbox.smsc import SandboxConfig, SandboxSmsc


async def main(inbox: Path) -> None:
    smsc = SandboxSmsc(
        SandboxConfig(
            inbox_path=inbox,
            port=0,
            receipt_delay=0.05,
            redeliver_delay=0.2,
            redeliver_attempts=300,
        )
    )
    await smsc.start()
    print(f"listening {smsc.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await smsc.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
