"""`mailsms orders release|retry ID`: a held order is queued again and then really sent;
unknown ids and orders that are not held are refused with one line, and a retry leaves
orders held by SMS pumping protection to an operator's decision."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.intake.commit import IntakeMail, accept
from bridge.intake.velocity import HOLD_REASON
from bridge.mt import orders as order_sql
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.status import OrderStatus
from bridge.tenants.admin import ensure_demo
from bridge.tenants.senders import find_sender
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for

TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom'
PUMPING = f"{HOLD_REASON}: more than 25 distinct numbers under +49170123… within 10 min"


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)])


def _statuses(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return dict(conn.execute('SELECT id, status FROM "order" ORDER BY id').fetchall())


def _mail(user_id: int) -> NewMail:
    now = utcnow()
    orders = tuple(
        NewOrder(
            id=f"M1.{n}",
            recipient=f"+4917012345{n:02d}",
            rcpt_address=f"+4917012345{n:02d}@eu.rsms.net",
            sender_id="Demo",
            text="Hello",
            encoding="gsm7",
            parts=1,
            priority=0,
            expires_at=now + timedelta(days=2),
            policy={"notify": "none"},
            status=OrderStatus.HELD if n == 3 else OrderStatus.QUEUED,
            error=PUMPING if n == 3 else "",
        )
        for n in (1, 2, 3)
    )
    return NewMail(
        id="M1",
        received_at=now,
        envelope_from="demo@example.com",
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id="<M1@client>",
        subject="Hi",
        raw=b"Subject: Hi\r\n\r\nHello\r\n",
        orders=orders,
    )


async def _seed(tmp_path: Path) -> None:
    """M1.1 held after an unexpected error, M1.2 queued, M1.3 held by pumping protection."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    run_sync(engine, ensure_demo)
    sender = run_sync(engine, find_sender, "demo@example.com")
    assert sender is not None
    store = Store(engine)
    try:
        await accept(store, IntakeMail(_mail(sender.user_id)))
        await store.call(order_sql.record_held, "M1.1", utcnow(), TRACEBACK)
    finally:
        await store.close()


async def test_released_and_retried_orders_are_sent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    await _seed(tmp_path)
    assert _statuses(tmp_path) == {"M1.1": "held", "M1.2": "queued", "M1.3": "held"}

    unknown = _invoke(config, "orders", "release", "M9.1")
    assert (unknown.exit_code, unknown.output) == (
        1,
        "mailsms: no order M9.1; see `mailsms orders`\n",
    )
    not_held = _invoke(config, "orders", "retry", "M1.2")
    assert not_held.exit_code == 1
    assert not_held.output.startswith("mailsms: order M1.2 is not held (its last event: queued")
    assert "see `mailsms orders --show M1.2`" in not_held.output
    pumping = _invoke(config, "orders", "retry", "M1.1", "M1.3")
    assert pumping.exit_code == 1
    assert pumping.output.startswith(
        "mailsms: order M1.3 is held by SMS pumping protection, not after an error"
    )
    assert "`mailsms orders release M1.3`" in pumping.output
    assert "Traceback" not in unknown.output + not_held.output + pumping.output
    assert _statuses(tmp_path) == {"M1.1": "held", "M1.2": "queued", "M1.3": "held"}

    retried = _invoke(config, "orders", "retry", "M1.1")
    assert (retried.exit_code, retried.output) == (
        0,
        "order M1.1 queued again (it was held: RuntimeError: boom)\n",
    )
    released = CliRunner().invoke(app, ["orders", "-c", str(config), "release", "M1.3"])
    assert (released.exit_code, released.output) == (
        0,
        f"order M1.3 released (it was held: {PUMPING})\n",
    )
    assert _statuses(tmp_path) == {"M1.1": "queued", "M1.2": "queued", "M1.3": "queued"}
    again = _invoke(config, "orders", "release", "M1.3")
    assert again.exit_code == 1 and "order M1.3 is not held" in again.output
    *history, wait = _invoke(config, "orders", "--show", "M1.1").output.splitlines()
    assert [line.split()[2] for line in history] == ["queued", "held", "released"]
    assert wait.startswith("waiting: due since ") and wait.endswith(
        ": due now, waiting for a dispatcher"
    )
    assert "no held orders" in _invoke(config, "held", "list").output

    async with running_bridge(settings):
        await wait_for(lambda: set(_statuses(tmp_path).values()) == {"delivered"}, within=20)
