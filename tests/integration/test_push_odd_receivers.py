"""The push worker against HTTP receivers with bad habits, on SQLite and PostgreSQL.

Every answer a customer's URL can give (tests/peers/http_receiver.py) is queued as one
push and worked off by two workers sharing the queue, as two processes of one bridge
do. Each push must end as its answer says — sent on a 2xx status line whatever the body
does after it, failed at once on a redirect or another 4xx, deferred on a 5xx, 408, 425,
429, a timeout or a broken connection, no later than `Retry-After` asks — and each
request must reach the receiver exactly once: an attempt that outlives its claim's lease
is sent again by the other worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.push.delivery_status import PushStatus
from bridge.push.queue import queue_push
from bridge.push.settings import PushSettings
from bridge.push.tables import PushDelivery
from bridge.push.worker import Pusher
from tests.peers.dns_server import dns_server, run_behind_resolver
from tests.peers.http_receiver import http_receiver

SENT, DEFERRED, FAILED = PushStatus.SENT, PushStatus.DEFERRED, PushStatus.FAILED

EXPECTED: dict[str, PushStatus] = {
    "/200": SENT,
    "/201": SENT,
    "/202": SENT,
    "/204": SENT,
    "/big-body": SENT,
    "/slow-body": SENT,  # the status line said 200: delivered, however the body goes on
    "/broken-chunks": SENT,
    "/http10": SENT,
    "/continue-then-200": SENT,
    "/301": FAILED,
    "/302": FAILED,
    "/307": FAILED,
    "/308": FAILED,
    "/400": FAILED,
    "/401": FAILED,
    "/403": FAILED,
    "/404": FAILED,
    "/405": FAILED,
    "/410": FAILED,
    "/413": FAILED,
    "/422": FAILED,
    "/408": DEFERRED,
    "/425": DEFERRED,
    "/429": DEFERRED,
    "/500": DEFERRED,
    "/502": DEFERRED,
    "/503": DEFERRED,
    "/504": DEFERRED,
    "/retry-after-seconds": DEFERRED,
    "/retry-after-date": DEFERRED,
    "/retry-after-junk": DEFERRED,
    "/slow-status": DEFERRED,
    "/silent": DEFERRED,
    "/close": DEFERRED,
    "/reset": DEFERRED,
    "/not-http": DEFERRED,
    "/huge-headers": DEFERRED,
    "/odd-code": DEFERRED,
    "/only-1xx": DEFERRED,
}

TIMEOUT = 1.0  # the lease is three times this: an attempt must end well within it
RETRY_MIN, RETRY_MAX = 30.0, 120.0


async def _work(pusher: Pusher, until: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        await pusher.step()
        await asyncio.sleep(0.05)


async def test_every_answer_ends_as_it_says_and_is_asked_once(engine: Engine, store: Store) -> None:
    settings = PushSettings(
        timeout=TIMEOUT,
        concurrency=100,
        retry_min=RETRY_MIN,
        retry_max=RETRY_MAX,
        allow_hosts=("127.0.0.1",),
        allow_http=True,
    )
    async with http_receiver() as receiver:
        ids: dict[str, int] = {}
        for path in EXPECTED:
            target = {"type": "push", "url": receiver.url(path)}
            ids[path] = run_sync(
                engine,
                queue_push,
                0,
                None,
                target,
                '{"a": 1}',
                "application/json",
                utcnow(),
                3600.0,
            )
        # A target stored before the numbers file's checks (a line break in a header):
        # given up at once with the reason, not retried as if the network had failed.
        stored = {"type": "push", "url": receiver.url("/x"), "headers": {"X-A": "a\r\nX-B: b"}}
        bad = run_sync(
            engine, queue_push, 0, None, stored, "{}", "application/json", utcnow(), 3600.0
        )
        started = utcnow()
        workers = [
            Pusher(settings, store, lambda conn, cid: None, fallback_admin="ops@example.com")
            for _ in range(2)
        ]
        until = asyncio.get_running_loop().time() + 2.5 * 3 * TIMEOUT  # 2.5 leases
        tasks = [asyncio.create_task(_work(w, until)) for w in workers]
        await asyncio.wait(tasks, timeout=2.5 * 3 * TIMEOUT + 5)
        for task in tasks:  # a worker still inside an attempt: the attempt hangs
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    push = table(PushDelivery)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(push))}
    ended = {path: (rows[i].status, rows[i].error) for path, i in ids.items()}
    assert {p: s for p, (s, _) in ended.items()} == EXPECTED, ended
    assert {p: n for p, n in receiver.requests.items() if n != 1} == {}
    assert set(receiver.requests) == set(EXPECTED)
    assert (rows[bad].status, rows[bad].error.split(":")[0]) == (
        FAILED,
        "the push target is not valid",
    )
    assert "redirects are not followed" in ended["/302"][1]
    assert ended["/404"][1] == "HTTP 404"

    def wait(path: str) -> float:
        at: datetime = rows[ids[path]].next_attempt_at
        return (at.replace(tzinfo=None) - started.replace(tzinfo=None)) / timedelta(seconds=1)

    assert 590 <= wait("/retry-after-seconds") <= 620, ended["/retry-after-seconds"]
    assert 3_500 <= wait("/retry-after-date") <= 3_620, ended["/retry-after-date"]
    assert RETRY_MIN - 1 <= wait("/retry-after-junk") <= RETRY_MAX + 20
    assert RETRY_MIN - 1 <= wait("/503") <= RETRY_MAX + 20
    assert "asked to wait 600 s" in ended["/retry-after-seconds"][1]


# --- the name lookup: a resolver that does not answer is not a host that does not exist ---

HOST_LOOKUPS = {
    "/resolver-down": "https://hooks.example/resolver-down",
    "/no-such-host": "https://no-such-host.example/x",
    "/servfail": "https://servfail.example/x",
}


async def _lookups(folder: str) -> None:
    """Run in a network and mount namespace whose resolv.conf names 127.0.0.1: one push
    while nothing answers there, then two against a DNS server on port 53 that says
    NXDOMAIN for one name and SERVFAIL for the other. Prints each push's end as JSON."""
    engine = open_engine(f"sqlite:///{folder}/bridge.db")
    upgrade(engine)
    store = Store(engine)
    pusher = Pusher(PushSettings(timeout=5.0), store, lambda conn, cid: None)

    def queue(path: str) -> int:
        target = {"type": "push", "url": HOST_LOOKUPS[path]}
        return run_sync(
            engine, queue_push, 0, None, target, "{}", "application/json", utcnow(), 3600.0
        )

    ids = {"/resolver-down": queue("/resolver-down")}
    await pusher.step()
    async with dns_server({}, servfail={"servfail.example"}, port=53):
        ids |= {path: queue(path) for path in ("/no-such-host", "/servfail")}
        await pusher.step()
    await store.close()
    push = table(PushDelivery)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(push))}
    print(json.dumps({path: [rows[i].status, rows[i].error] for path, i in ids.items()}))


def test_a_resolver_that_does_not_answer_defers_a_push_and_a_missing_name_fails_it(
    tmp_path: Path,
) -> None:
    ended = run_behind_resolver("tests.integration.test_push_odd_receivers", "_lookups", tmp_path)
    assert {p: s for p, (s, _) in ended.items()} == {
        "/resolver-down": DEFERRED,
        "/no-such-host": FAILED,
        "/servfail": DEFERRED,
    }, ended
    assert "the name lookup failed" in ended["/resolver-down"][1]
    assert "cannot resolve 'no-such-host.example'" in ended["/no-such-host"][1]


async def test_a_push_claimed_late_is_sent_once_within_a_lease(tmp_path: Path) -> None:
    """A claim leases its pushes for three timeouts from a time read before it: an attempt
    started when the claim came back, however long the claim had waited for the database
    (its one thread busy with a long transaction), so it could start after the lease had
    run out, and the other worker claimed the push too and sent it a second time. Now an
    attempt starts only while it ends within its lease; a push claimed too late is left
    to its lease's end and then sent once."""
    engine = open_engine(f"sqlite:///{tmp_path}/bridge.db")
    upgrade(engine)
    store = Store(engine)
    settings = PushSettings(timeout=0.5, allow_hosts=("127.0.0.1",), allow_http=True)
    try:
        async with http_receiver() as receiver:
            target = {"type": "push", "url": receiver.url("/200")}

            def long_transaction(conn: Connection) -> None:  # the claims wait behind it
                queued = utcnow() - timedelta(seconds=1)
                queue_push(conn, 0, None, target, "{}", "application/json", queued, 3600.0)
                time.sleep(2.0)  # longer than the lease (3 x 0.5 s)

            busy = asyncio.create_task(store.call(long_transaction))
            await asyncio.sleep(0.1)  # it runs: the workers' claims queue behind it
            workers = [Pusher(settings, store, lambda conn, cid: None) for _ in range(2)]
            until = asyncio.get_running_loop().time() + 4.0
            await asyncio.gather(busy, *(_work(w, until) for w in workers))
            assert dict(receiver.requests) == {"/200": 1}
        with engine.connect() as conn:
            [row] = conn.execute(select(table(PushDelivery))).all()
        assert row.status == SENT
    finally:
        await store.close()
        engine.dispose()
