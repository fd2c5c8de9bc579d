"""What the bridge stores, an operator sees with the CLI (`bridge.cli.app`, as `mailsms` runs it).

A real bridge (sandbox SMSC, SQLite) takes mail and MO SMS; the commands read its database:
`smsc stats` (each process's bind counters, stored every stats_interval), `orders --show`
(when a waiting order is due and why), `inbound messages` (received SMS, the unroutable
ones too), `inbound lists|members` (keyword lists) and `dirsync runs` (the sync record).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.inbound.admin import customer_id
from bridge.keyword_lists.store import list_id, set_membership
from bridge.sandbox.phone import send_mo
from bridge.sandbox.rules import Failure, SandboxRule, write_file
from bridge.settings import Settings
from bridge.tenants.admin import ensure_demo
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)])


async def _cli(config: Path, *args: str) -> Result:
    """The command, off the event loop the bridge runs on."""
    return await asyncio.to_thread(_invoke, config, *args)


def _fast_stats(settings: Settings) -> Settings:
    smsc = tuple(s.model_copy(update={"stats_interval": 0.2}) for s in settings.smsc)
    return settings.model_copy(update={"smsc": smsc})


async def _send(port: int, number: str, **headers: str) -> str:
    msg = EmailMessage()
    msg["From"] = "demo@example.com"
    msg["To"] = f"{number}@eu.rsms.net"
    msg["Subject"] = "operator views"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Operator views test")
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        _, reply = await smtp.send_message(msg, sender="demo@example.com")
    return reply.split()[-1]


async def test_smsc_stats_show_each_binds_counters(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    async with running_bridge(_fast_stats(make_settings(tmp_path))) as (_, ep):
        empty = await _cli(config, "smsc", "stats")
        assert empty.exit_code == 0
        await _send(ep.smtp[1], "+491701234567")

        async def line() -> str:
            out = (await _cli(config, "smsc", "stats")).output
            return out if "submitted 1," in out and "receipts 1," in out else ""

        shown = ""
        for _ in range(200):  # each try is a CLI run; 200 of them take far longer than 5 s
            shown = await line()
            if shown:
                break
            await asyncio.sleep(0.05)
        assert shown, (await _cli(config, "smsc", "stats")).output
    (row,) = shown.splitlines()
    assert " sandbox: bound, window 0/" in row and "rejected 0" in row and "mo 0" in row
    assert row.split()[0].endswith(f":{os.getpid()}")  # this process, "host:pid"
    other = _invoke(config, "smsc", "stats", "--smsc", "elsewhere")
    assert (other.exit_code, other.output) == (
        0,
        "no bind statistics stored yet (each `mailsms serve` stores them every stats_interval)\n",
    )
    kept = _invoke(config, "smsc", "stats")  # the process stopped: its last snapshot stays
    assert "submitted 1," in kept.output


async def test_orders_show_says_when_a_waiting_order_is_due_and_why(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    write_file(rules, [SandboxRule("+49170999*", Failure.BUSY)])
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"rules_file": rules}),
            "dispatch": settings.dispatch.model_copy(update={"retry_min": 600.0}),
        }
    )
    config = tmp_path / "bridge.toml"
    when = (utcnow() + timedelta(days=30)).replace(second=0, microsecond=0)
    send_at = when.isoformat()
    async with running_bridge(settings) as (bridge, ep):
        later = await _send(ep.smtp[1], "+491701234567", X_SMS_Send_At=send_at)
        busy = await _send(ep.smtp[1], "+491709990001")
        assert bridge.store is not None

        async def deferred() -> bool:
            out = (await _cli(config, "orders", "--status", "deferred")).output
            return f"{busy}.1" in out

        for _ in range(200):
            if await deferred():
                break
            await asyncio.sleep(0.05)
        scheduled = await _cli(config, "orders", "--show", f"{later}.1")
        retried = await _cli(config, "orders", "--show", f"{busy}.1")
    assert scheduled.exit_code == 0, scheduled.output
    assert scheduled.output.splitlines()[-1].startswith(
        f"waiting: due {when:%Y-%m-%d %H:%M:%S}Z (in "
    ), scheduled.output
    assert scheduled.output.splitlines()[-1].endswith(f": scheduled (send_at): send_at {send_at}")
    last = retried.output.splitlines()[-1]
    assert last.startswith("waiting: due ") and ": deferred after an error: " in last, last
    assert "ESME_RSYSERR" in last


async def test_inbound_messages_lists_received_sms_with_filters(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert ep.sandbox is not None and bridge.store is not None
        await _send(ep.smtp[1], "+491701234567")
        inbox = tmp_path / "sandbox" / "inbox.jsonl"
        await wait_for(lambda: inbox.exists(), within=10)
        # A reply to the demo sender, and an SMS to a number nobody has.
        await send_mo(*ep.sandbox, "+491701234567", None, "Yes, see you", inbox)
        await send_mo(*ep.sandbox, "+491707654321", "+4915559999999", "who is this?", inbox)

        async def routed() -> str:
            out = (await _cli(config, "inbound", "messages")).output
            return out if out.count(" notified ") + out.count(" unroutable ") == 2 else ""

        listed = ""
        for _ in range(200):
            listed = await routed()
            if listed:
                break
            await asyncio.sleep(0.05)
    lines = listed.splitlines()
    assert len(lines) == 2, listed
    newest, oldest = lines
    assert " +491707654321    -> +4915559999999 " in newest and "'who is this?'" in newest
    assert " notified   +491701234567    -> +4915550000001 " in oldest
    assert "reply-to=" in oldest and "'Yes, see you'" in oldest
    unrouted = newest.split()[3]
    by_number = _invoke(config, "inbound", "messages", "--number", "+491707654321")
    assert by_number.output.splitlines() == [newest]
    national = _invoke(config, "inbound", "messages", "--number", "015559999999")
    assert national.output.splitlines() == [newest]  # read with [defaults] default_country
    short = _invoke(config, "inbound", "messages", "--number", "ACME")  # as written
    assert (short.exit_code, short.output) == (0, "no inbound SMS match\n")
    by_status = _invoke(config, "inbound", "messages", "--status", unrouted)
    assert newest in by_status.output.splitlines()
    assert _invoke(config, "inbound", "messages", "--limit", "1").output.splitlines() == [newest]
    future = _invoke(config, "inbound", "messages", "--since", "2100-01-01")
    assert (future.exit_code, future.output) == (0, "no inbound SMS match\n")
    wrong = _invoke(config, "inbound", "messages", "--status", "lost")
    assert wrong.exit_code == 1
    assert wrong.output == (
        "mailsms: --status 'lost': expected one of received, notified, handled, unroutable, "
        "limited, held\n"
    )
    bad_time = _invoke(config, "inbound", "messages", "--since", "yesterday")
    assert bad_time.exit_code == 1 and "expected a date or date-time" in bad_time.output


def test_keyword_list_members_and_dirsync_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '[dirsync]\ncustomer = "demo"\n', encoding="utf-8"
    )
    engine = open_engine(settings.database_url)
    try:
        upgrade(engine)
        run_sync(engine, ensure_demo)
        demo = run_sync(engine, customer_id, "demo")
        assert demo is not None
        now = utcnow()
        news = run_sync(engine, list_id, demo, "news", now)
        for number, join in (("+491701111111", True), ("+491702222222", True)):
            run_sync(engine, set_membership, news, number, join, now)
        run_sync(engine, set_membership, news, "+491702222222", False, now)
    finally:
        engine.dispose()

    lists = _invoke(config, "inbound", "lists")
    assert lists.exit_code == 0
    assert lists.output.split()[:4] == ["demo", "news", "members=1", "left=1"]
    members = _invoke(config, "inbound", "members", "news", "--customer", "demo")
    assert [line.split()[:2] for line in members.output.splitlines()] == [
        ["+491701111111", "member"]
    ]
    everyone = _invoke(config, "inbound", "members", "news", "--customer", "demo", "--all")
    assert [line.split()[:2] for line in everyone.output.splitlines()] == [
        ["+491701111111", "member"],
        ["+491702222222", "left"],
    ]
    missing = _invoke(config, "inbound", "members", "old", "--customer", "demo")
    assert (missing.exit_code, missing.output) == (
        1,
        "mailsms: customer demo has no keyword list 'old'; see `mailsms inbound lists`\n",
    )

    assert _invoke(config, "dirsync", "runs").output == "no dirsync runs recorded\n"
    users = tmp_path / "users.csv"
    users.write_text(
        "external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled\n"
        "emp-1,ann@example.com,,,Ann,,,,yes\n#END,1\n",
        encoding="utf-8",
    )
    synced = _invoke(config, "dirsync", "--csv", str(users))
    assert synced.exit_code == 0, synced.output
    runs = _invoke(config, "dirsync", "runs")
    assert runs.exit_code == 0
    (run,) = runs.output.splitlines()
    assert " demo " in run and " csv " in run and " applied " in run, run
    group_first = CliRunner().invoke(app, ["dirsync", "-c", str(config), "runs", "--details"])
    assert group_first.exit_code == 0 and group_first.output.startswith(runs.output)
