"""Dispatch benchmark: how fast a queued backlog leaves through the sandbox SMSC.

Starts the whole bridge in this process (SQLite in a temp dir, the sandbox SMSC, no
SMTP load), queues `--orders` orders at once through the store's group commit (as the
intake would), and times until every order is submitted (`--receipt none`) or final
with its status mail queued (`--receipt delivered`), and the process's CPU time per
order (all threads, intake's group commit included). Bounded by `--timeout`. Run it
against another commit's code with PYTHONPATH=DIR (e.g. unpacked with `git archive`).

  .venv/bin/python bench/dispatch_bench.py [--orders 5000] [--receipt none|delivered]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH=DIR comes first

from rows import one_sms_mail

from bridge.app import Bridge
from bridge.intake.commit import IntakeMail, accept
from bridge.mt.mails import NewMail
from bridge.mt.orders import count_by_status
from bridge.settings import load_settings
from bridge.tenants.senders import find_sender


def _settings(workdir: Path, receipt: str) -> Path:
    path = workdir / "bridge.toml"
    path.write_text(
        f"""database_url = "sqlite:///{workdir / "bridge.db"}"
demo = true
log_level = "WARNING"
[smtp]
port = 0
[sandbox]
enabled = true
port = 0
receipt = "{receipt}"
receipt_delay = 0.0
inbox = "{workdir / "sandbox" / "inbox.jsonl"}"
[mailer]
mode = "maildir"
maildir = "{workdir / "maildir"}"
""",
        encoding="utf-8",
    )
    return path


def _mail(user_id: int, n: int) -> NewMail:
    return one_sms_mail(
        user_id,
        f"B{n:07d}",
        f"+49170{n:07d}",
        notify="all",
        envelope_from="demo@example.com",
        sender_id="+4915550000001",
        text="benchmark message",
    )


async def run(orders: int, receipt: str, limit: float) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(_settings(Path(tmp), receipt), environ={})
        bridge = Bridge(settings)
        await bridge.start()
        store = bridge.store
        assert store is not None
        try:
            sender = await store.call(find_sender, "demo@example.com")
            assert sender is not None
            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(
                *(accept(store, IntakeMail(_mail(sender.user_id, n))) for n in range(orders))
            )
            queued = time.perf_counter() - start
            done = ("submitted",) if receipt == "none" else ("delivered",)
            counts: dict[str, int] = {}
            while time.perf_counter() - start < limit:
                counts = await store.call(count_by_status)
                if sum(counts.get(s, 0) for s in done) == orders:
                    break
                await asyncio.sleep(0.05)
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu
            finished = sum(counts.get(s, 0) for s in done)
            print(
                f"receipt={receipt} orders={orders}: queued in {queued:.2f} s; "
                f"{finished} {'/'.join(done)} after {took:.2f} s = "
                f"{finished / took:,.0f} orders/s, "
                f"{cpu / orders * 1e6:,.0f} µs CPU per order (end state {counts})"
            )
        finally:
            await bridge.stop(grace=1.0, linger=0.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--receipt", choices=("none", "delivered"), default="none")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    asyncio.run(run(a.orders, a.receipt, a.timeout))


if __name__ == "__main__":
    main()
