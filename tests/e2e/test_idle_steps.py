"""Steps that would find nothing are not run: the dispatcher's and the mailer's.

The whole bridge against its sandbox SMSC, with both workers' poll ticks far away, so
every step they run is one a claim or a wake-up asked for. Orders that come one by one
are each claimed once (no second claim right after, which would find nothing while the
first order is being submitted), in the transaction that commits their mail (SQLite's
one writer: the claim, woken as the mail is queued, joins the mail's commit); delivered
orders with notify = failures queue no notice, so they do not wake the mailer, while a
failed order's status mail still goes out at once (well before the mailer's poll tick),
from a receipt and from a rejected submit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, event

from bridge.app import Bridge, Endpoints
from bridge.settings import Settings, load_settings
from bridge.tenants.admin import add_customer, add_user
from tests.e2e.test_smpp_faults import statuses
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

N = 8  # orders, one after the other
SENDER = "ops@shop.example"  # notify = failures (the default; the demo user has "all")


async def add_sender(bridge: Bridge) -> None:
    assert bridge.store is not None
    shop = {"sender_id": "Shop", "access": {"networks": ["127.0.0.0/8"]}}
    await bridge.store.call(add_customer, "shop", shop)
    await bridge.store.call(add_user, SENDER, "shop")


async def send(ep: Endpoints, to: str) -> None:
    async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
        mail = make_mail(to, "Hello", SENDER, message_id=f"<idle-{to}@client>")
        await smtp.sendmail(SENDER, [f"{to}@eu.rsms.net"], mail)


def quiet_settings(tmp_path: Path) -> Settings:
    """Defaults (notify = failures), the sandbox SMSC with two failing numbers, and poll
    ticks of a minute for the dispatcher and the mailer."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[smtp]
port = 0
[sandbox]
enabled = true
port = 0
receipt_delay = 0.05
inbox = "{tmp_path / "sandbox" / "inbox.jsonl"}"
rules = [{{ number = "+4915100000001", fail = "undeliverable" }},
         {{ number = "+4915200000001", fail = "rejected" }}]
[mailer]
mode = "maildir"
maildir = "{tmp_path / "maildir"}"
poll_interval = 60.0
[dispatch]
poll_interval = 60.0
""",
        encoding="utf-8",
    )
    return load_settings(path, environ={})


@contextmanager
def transactions() -> Iterator[list[list[str]]]:
    """The statements of every transaction committed meanwhile, on any engine."""
    done: list[list[str]] = []
    running: dict[int, list[str]] = {}

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        running.setdefault(id(conn), []).append(sql)

    def commit(conn: Any) -> None:
        done.append(running.pop(id(conn), []))

    def rollback(conn: Any) -> None:
        running.pop(id(conn), None)

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("commit", commit),
        ("rollback", rollback),
    ]
    flagged = Engine._has_events
    for name, fn in hooks:
        event.listen(Engine, name, fn)
    try:
        yield done
    finally:
        for name, fn in hooks:
            event.remove(Engine, name, fn)
        # SQLAlchemy leaves the class marked as having cursor events after the last is
        # removed: every later engine of the test session would run the hot statements
        # through SQLAlchemy's execution (bridge.db.prepared.drive), not the driver's
        Engine._has_events = flagged


def _inserts_orders(sql: str) -> bool:
    return sql.startswith('INSERT INTO "order" ')


def _claims_orders(sql: str) -> bool:  # bridge.db.queue's lease of the selected rows
    return sql.startswith('UPDATE "order" SET attempts=') and "next_attempt_at" in sql


async def one_by_one(tmp_path: Path) -> dict[str, int]:
    """N orders, each sent once the one before was delivered: what the workers did."""
    settings = quiet_settings(tmp_path)
    with transactions() as committed:
        async with running_bridge(settings) as (bridge, ep):
            await add_sender(bridge)
            dispatch, mailer = bridge.workers["dispatch"], bridge.workers["mailer"]
            await wait_for(lambda: dispatch.counts["steps"] >= 1)  # its first step, at start
            before = dict(dispatch.counts), dict(mailer.counts)
            for n in range(N):
                await send(ep, f"+4917012340{n:02d}")
                await wait_for(lambda n=n: list(statuses(tmp_path).values()).count("delivered") > n)  # type: ignore[misc]
            done = {
                "claims": dispatch.counts["steps"] - before[0]["steps"],
                "idle_claims": dispatch.counts["idle_steps"] - before[0]["idle_steps"],
                "mailer_wakeups": mailer.counts["wakeups"] - before[1]["wakeups"],
            }
    inserting = [t for t in committed if any(_inserts_orders(sql) for sql in t)]
    done["orders_committed"] = len(inserting)
    done["claimed_in_their_commit"] = sum(any(_claims_orders(sql) for sql in t) for t in inserting)
    assert list(statuses(tmp_path).values()) == ["delivered"] * N
    assert maildir_messages(settings.mailer.maildir) == []  # notify = failures
    return done


async def test_orders_one_by_one_are_claimed_once_each(tmp_path: Path) -> None:
    done = await one_by_one(tmp_path)
    # One claim per order (each came with its own wake-up), none that finds nothing.
    assert (done["claims"], done["idle_claims"]) == (N, 0)


async def test_an_order_is_claimed_in_the_transaction_that_commits_its_mail(
    tmp_path: Path,
) -> None:
    """One transaction fewer per order on SQLite: the intake wakes the dispatcher as it
    queues the mail, and the claim (queued `after_others`) runs after the mail's insert in
    the same commit, so it finds the new orders there."""
    done = await one_by_one(tmp_path)
    assert (done["orders_committed"], done["claimed_in_their_commit"]) == (N, N)


async def test_delivered_orders_that_queue_no_notice_do_not_wake_the_mailer(
    tmp_path: Path,
) -> None:
    done = await one_by_one(tmp_path)
    assert done["mailer_wakeups"] == 0


async def test_a_failed_orders_status_mail_goes_out_at_once(tmp_path: Path) -> None:
    settings = quiet_settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        await add_sender(bridge)
        mailer = bridge.workers["mailer"]
        await send(ep, "+4917012349999")  # delivered: no notice
        await send(ep, "+4915100000001")  # undeliverable: a receipt says so
        await send(ep, "+4915200000001")  # rejected by the SMSC: failed at submit
        # Both status mails within seconds: the mailer's poll tick is a minute away.
        await wait_for(lambda: len(maildir_messages(settings.mailer.maildir)) >= 2, within=10)
        assert sorted(statuses(tmp_path).values()) == ["delivered", "failed", "undeliverable"]
        assert mailer.counts["wakeups"] >= 2  # one from the receipts round, one from dispatch
    assert len(maildir_messages(settings.mailer.maildir)) == 2
