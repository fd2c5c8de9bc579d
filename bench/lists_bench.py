"""Benchmark: a mail to a 100,000-member distribution list, accepted (250) within 5 s.

Starts the bridge in-process on a temp SQLite database with the sandbox SMSC, imports
a list of N members (timed: the batched `put_members`), then sends one personalised
mail to `<list>@<domain>` with aiosmtplib and measures DATA → 250 (the 250 comes only
after the mail and its N orders are committed). It then checks the order count and
watches the dispatch for a few seconds to report the drain rate at the SMSC's pace.

    .venv/bin/python bench/lists_bench.py [--members 100000] [--drain 5]

Exit status 0 when the acceptance target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402

from bridge.app import Bridge  # noqa: E402
from bridge.db.engine import open_engine  # noqa: E402
from bridge.db.store import run_sync  # noqa: E402
from bridge.lists.store import Member, create_list, put_members  # noqa: E402
from bridge.tenants.admin import DEMO_CUSTOMER, DEMO_USER  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.helpers import make_mail  # noqa: E402

TARGET_S = 5.0


def _members(n: int) -> list[Member]:
    return [
        Member(f"+4917{i:09d}", f"Name{i}", "Bench", {"city": "Berlin" if i % 2 else "Bonn"})
        for i in range(n)
    ]


async def run(n: int, drain: float, tmp: Path) -> bool:
    settings = make_settings(tmp)
    settings = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"receipt": "none"})}
    )
    bridge = Bridge(settings)
    ep = await bridge.start()
    try:
        engine = open_engine(settings.database_url)
        t0 = time.perf_counter()
        list_id = run_sync(engine, create_list, DEMO_CUSTOMER, "all", ["city"])
        run_sync(engine, put_members, list_id, _members(n))
        imported = time.perf_counter() - t0
        print(f"import of {n} members (batched inserts): {imported:.2f} s")
        body = "Hallo {first_name}, das Treffen ist in {city}."
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
            await smtp.mail(DEMO_USER)
            await smtp.rcpt("all@eu.rsms.net")
            t0 = time.perf_counter()
            code, message = await smtp.data(make_mail(to="all@eu.rsms.net", body=body))
            accepted = time.perf_counter() - t0
        orders = sqlite3.connect(tmp / "bridge.db").execute('SELECT count(*) FROM "order"')
        count = orders.fetchone()[0]
        print(f"DATA -> {code} {message}")
        print(f"accepted {count} orders in {accepted:.2f} s (target {TARGET_S:.0f} s)")
        before = bridge.workers["dispatch"].handled
        await asyncio.sleep(drain)
        sent = bridge.workers["dispatch"].handled - before
        print(
            f"drain: {sent} orders submitted to the sandbox SMSC in {drain:.0f} s "
            f"({sent / drain:.0f}/s, at the SMSC's window and pace)"
        )
        engine.dispose()
        return code == 250 and count == n and accepted <= TARGET_S
    finally:
        await bridge.stop(grace=2.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--drain", type=float, default=5.0, help="seconds to watch the dispatch")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="lists-bench-") as tmp:
        ok = asyncio.run(run(a.members, a.drain, Path(tmp)))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
