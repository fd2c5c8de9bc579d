"""A standalone SMSC for the reliability tests: the sandbox SMSC in a process of its own.

It outlives the bridge it serves, as a real SMSC does: every SMS it accepts is written
to the inbox file before its submit_sm_resp, and a delivery receipt the bridge cannot
take (killed, restarting) is offered again for about a minute.

With `--spread` (several bridges bound, one bind each) every deliver_sm goes to a bind
other than the one that submitted the SMS: a receipt always reaches another bridge than
the one that sent the SMS, and MO SMS go to the bound bridges in turn. Each deliver_sm is
recorded as a JSON line in `deliveries.jsonl` beside the inbox: its kind ("receipt" or
"mo"), whether it went to the submitting bind, the bind (the bridge's local port) and
the status the bridge answered.

  python -m tests.reliability.smsc_process INBOX [--spread]
  (prints "listening <port>", stops on SIGTERM)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
from pathlib import Path

from bridge.sandbox.smsc import SandboxConfig, SandboxSmsc
from bridge.smpp import constants as c
from bridge.smpp.pdu import DeliverSm
from bridge.smpp.session import SmppSession


class SpreadingSmsc(SandboxSmsc):
    """The sandbox SMSC that hands every deliver_sm to another bind than the submitter's."""

    def __init__(self, config: SandboxConfig, record: Path) -> None:
        super().__init__(config)
        self._record = record
        self._turn = itertools.count()

    def _bound(self) -> list[SmppSession]:
        """The open binds of bridges that receive deliver_sm."""
        return [
            x.session
            for x in self._conns
            if x.kind == "bridge" and x.can_receive and x.session and not x.session.closed
        ]

    async def _deliver(self, pdu: DeliverSm, session: SmppSession | None = None) -> int:
        bound = self._bound()
        if session is not None:  # a receipt: to another bind than the submitter's
            others = [s for s in bound if s is not session] or bound
            target = others[0] if others else None
        else:  # an MO: to the bound bridges in turn
            target = bound[next(self._turn) % len(bound)] if bound else None
        status = await super()._deliver(pdu, target)
        peer = _peer_port(target) if target is not None else None
        line = {
            "kind": "receipt" if pdu.esm_class & c.ESM_TYPE_DELIVERY_RECEIPT else "mo",
            "to_submitter": target is not None and target is session,
            "bind": peer,
            "status": status,
        }
        with self._record.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return status


def _peer_port(session: SmppSession) -> int | None:
    """The bridge's local port of this bind (the session keeps its stream writer)."""
    peer = session._writer.get_extra_info("peername")
    return int(peer[1]) if peer else None


async def main(inbox: Path, spread: bool) -> None:
    config = SandboxConfig(
        inbox_path=inbox,
        port=0,
        receipt_delay=0.05,
        redeliver_delay=0.2,
        redeliver_attempts=300,
    )
    record = inbox.with_name("deliveries.jsonl")
    smsc = SpreadingSmsc(config, record) if spread else SandboxSmsc(config)
    await smsc.start()
    print(f"listening {smsc.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await smsc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("inbox", type=Path)
    parser.add_argument("--spread", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.inbox, args.spread))
