"""SMS abuse (A1–A3): pumping across mails is held and the admin alerted; premium numbers and
foreign countries are refused at RCPT."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from sqlalchemy import Connection, event

from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.intake.access import CustomerAccess
from bridge.intake.access_store import set_access
from bridge.intake.commit import IntakeMail, accept, commit_mails
from bridge.intake.velocity import VelocityCheck
from bridge.intake.velocity_store import Pending, _over, held_orders, purge_numbers
from bridge.mt.mails import NewMail, NewOrder
from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for
from tests.security.common import greeted, order_rows

MAILSMS = str(Path(sys.executable).parent / "mailsms")
NOC = "noc@bridge.example"


def _settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    inbound = settings.inbound.model_copy(update={"postmaster": NOC})
    return settings.model_copy(update={"inbound": inbound})


async def _send_one(port: int, number: str, n: int) -> str:
    c = await greeted("127.0.0.1", port)
    await c.command("MAIL FROM:<demo@example.com>")
    await c.command(f"RCPT TO:<{number}@eu.rsms.net>")
    await c.command("DATA")
    await c.send(make_mail(to=f"{number}@eu.rsms.net", message_id=f"<pump-{n}@x>") + b".\r\n")
    answer = await c.read_reply()
    await c.close()
    return answer


def _alerts(tmp_path: Path) -> list[str]:
    return [
        str(m["To"])
        for m in maildir_messages(tmp_path / "maildir")
        if str(m["Subject"]).startswith("SMS held for review")
    ]


def _mailsms(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [MAILSMS, *args, "-c", str(tmp_path / "bridge.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a1_consecutive_numbers_across_mails_are_held_and_the_admin_alerted(
    tmp_path: Path,
) -> None:
    async with running_bridge(_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, set_access, "demo", {"velocity_numbers": 5})
        numbers = [f"+4917012345{n:02d}" for n in range(8)]
        answers = [await _send_one(ep.smtp[1], number, n) for n, number in enumerate(numbers)]
        assert all(a.startswith("250 2.0.0") for a in answers), answers  # accepted, kept
        rows = order_rows(tmp_path)
        assert [s == "held" for _, s, _ in rows] == [False] * 5 + [True] * 3
        assert all("SMS pumping protection" in error for _, s, error in rows if s == "held")
        await wait_for(lambda: _alerts(tmp_path), within=10)
        inbox = tmp_path / "sandbox" / "inbox.jsonl"
        await wait_for(lambda: len(read_inbox(inbox, None)) == 5, within=10)
        assert _alerts(tmp_path) == [NOC]  # one alert for the burst, not one per mail
        assert {r[0] for r in rows if r[1] == "held"}.isdisjoint(
            m.destination for m in read_inbox(inbox, None)
        )
        # The operator looks, releases one mail's orders and refuses the rest.
        listed = _mailsms(tmp_path, "held", "list", "--customer", "demo")
        assert "+491701234505" in listed and "SMS pumping protection" in listed
        mail_id = answers[5].split()[-1]
        assert "1 order(s) released" in _mailsms(tmp_path, "held", "release", "--mail", mail_id)
        await wait_for(lambda: len(read_inbox(inbox, None)) == 6, within=10)
        assert "2 order(s) refused" in _mailsms(tmp_path, "held", "refuse", "--customer", "demo")
    statuses = [s for _, s, _ in order_rows(tmp_path)]
    assert statuses.count("held") == 0 and statuses.count("failed") == 2


async def test_a1_watched_destinations_across_mails_are_held(tmp_path: Path) -> None:
    numbers = [
        "+2348031000001", "+2348052000002", "+2347063000003", "+2348094000004",
        "+2348105000005", "+2349016000006", "+2348127000007",
    ]  # fmt: skip
    async with running_bridge(_settings(tmp_path)) as (_, ep):
        answers = [await _send_one(ep.smtp[1], number, n) for n, number in enumerate(numbers)]
        assert all(a.startswith("250 2.0.0") for a in answers), answers
        await wait_for(lambda: _alerts(tmp_path), within=10)
    held = [(r, e) for r, s, e in order_rows(tmp_path) if s == "held"]
    assert [r for r, _ in held] == numbers[5:]  # more than 5 in watched destinations
    assert all("watched destinations" in e for _, e in held)


async def test_velocity_limits_are_per_customer_and_can_be_turned_off(tmp_path: Path) -> None:
    async with running_bridge(_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, set_access, "demo", {"velocity_numbers": 0})
        answers = [await _send_one(ep.smtp[1], f"+4917012345{n:02d}", n) for n in range(30)]
    assert all(a.startswith("250") for a in answers)
    assert [s for _, s, _ in order_rows(tmp_path)].count("held") == 0


def _premium_examples() -> list[str]:
    found = []
    for region in ("DE", "AT", "CH", "GB", "FR", "IT", "ES", "US"):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.PREMIUM_RATE)
        if example is not None:
            found.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return found


@pytest.mark.parametrize("number", _premium_examples())
async def test_a2_premium_rate_numbers_of_each_region_are_refused_at_rcpt(
    tmp_path: Path, number: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        answer = await c.command(f"RCPT TO:<{number}@eu.rsms.net>")
        await c.close()
    assert answer.startswith("550 5.7.1") and "premium-rate" in answer, answer


async def test_a3_a_country_outside_the_customers_list_is_refused_at_rcpt(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        settings = {
            "allowed_countries": ["DE", "AT", "CH"],
            "access": {"networks": ["127.0.0.1/32"]},
        }
        run_sync(bridge.store.engine, add_customer, "dach", settings)
        run_sync(bridge.store.engine, add_user, "ops@dach.example", "dach")
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<ops@dach.example>")
        nigeria = await c.command("RCPT TO:<+2348031234567@eu.rsms.net>")
        austria = await c.command("RCPT TO:<+436641234567@eu.rsms.net>")
        await c.close()
    assert nigeria.startswith("550 5.7.1") and "country NG" in nigeria, nigeria
    assert austria.startswith("250"), austria


def _velocity_mail(user_id: int, mail_id: str, number: str) -> IntakeMail:
    now = utcnow()
    order = NewOrder(
        id=f"{mail_id}.1",
        recipient=number,
        rcpt_address=f"{number}@eu.rsms.net",
        sender_id="ACME",
        text="Hello",
        encoding="gsm7",
        parts=1,
        priority=0,
        expires_at=now + timedelta(days=2),
        policy={},
    )
    check = VelocityCheck.of(CustomerAccess(velocity_numbers=3), 1, "acme", 1, "noc@x.example")
    mail = NewMail(
        id=mail_id,
        received_at=now,
        envelope_from="ops@acme.example",
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id="",
        subject="",
        raw=b"Subject: x\r\n\r\nHello\r\n",
        orders=(order,),
    )
    return IntakeMail(mail, velocity=check)


async def test_the_velocity_count_is_shared_through_the_database(store: Store) -> None:
    """On SQLite and PostgreSQL alike: mails of one commit and of later commits count."""
    engine = store.engine
    run_sync(engine, add_customer, "acme", {"access": {"networks": ["127.0.0.0/8"]}})
    user_id = run_sync(engine, add_user, "ops@acme.example", "acme")
    mails = [_velocity_mail(user_id, f"V{n}", f"+4917012345{n:02d}") for n in range(6)]
    await asyncio.gather(*(accept(store, m) for m in mails[:4]))  # (likely) one commit
    await accept(store, mails[4])
    # While the prefix is over its limit, its traffic is held, to numbers seen before too.
    await accept(store, _velocity_mail(user_id, "V9", "+491701234500"))
    await accept(store, mails[5])
    rows = await store.call(held_orders, "acme", None)
    assert sorted(r["recipient"] for r in rows) == [
        "+491701234500",
        "+491701234503",
        "+491701234504",
        "+491701234505",
    ]
    notices = await store.call(
        lambda conn: conn.exec_driver_sql("SELECT kind, recipient FROM notice").all()
    )
    assert [tuple(n) for n in notices] == [("velocity_hold", "noc@x.example")]
    assert await store.call(purge_numbers, utcnow() + timedelta(days=2)) == 6


async def test_an_old_demo_customer_gets_loopback_networks(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    run_sync(engine, add_customer, "demo", {"default_country": "DE"})  # as before networks
    run_sync(engine, add_user, "demo@example.com", "demo", origin="demo")
    engine.dispose()
    async with running_bridge(settings) as (_, ep):
        answer = await _send_one(ep.smtp[1], "+491701234567", 1)
    assert answer.startswith("250 2.0.0"), answer


def _record(conn: Connection, customer_id: int, numbers: set[str], at: datetime) -> None:
    """Record `numbers` as the pumping check does at the end of a commit."""
    pending = Pending()
    pending.add(customer_id, numbers, at)
    pending.write(conn)


async def test_recording_a_number_again_moves_its_last_time(store: Store) -> None:
    """The commit's upsert (compiled once, run on the driver): new numbers get a row, a
    number sent to before gets the later time, on SQLite and PostgreSQL alike."""
    customer_id = run_sync(store.engine, add_customer, "acme", {})
    t1 = utcnow().replace(microsecond=0)
    t2 = t1 + timedelta(minutes=3)
    await store.call(_record, customer_id, {"+491701111111", "+491702222222"}, t1)
    await store.call(_record, customer_id, {"+491701111111"}, t2)
    rows = await store.call(
        lambda conn: conn.exec_driver_sql(
            "SELECT number, last_at FROM velocity_number ORDER BY number"
        ).all()
    )
    assert [(number, str(at)[:19]) for number, at in rows] == [
        ("+491701111111", str(t2)[:19]),
        ("+491702222222", str(t1)[:19]),
    ]


def _statements(store: Store, into: list[str]) -> Callable[..., None]:
    """Collect the statements `store`'s engine runs that write `velocity_number`."""

    def seen(conn: object, cursor: object, sql: str, *args: object) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO VELOCITY_NUMBER"):
            into.append(sql)

    event.listen(store.engine, "before_cursor_execute", seen)
    return seen


async def test_the_mails_of_one_commit_count_each_other_and_are_recorded_at_once(
    store: Store,
) -> None:
    run_sync(store.engine, add_customer, "acme", {"access": {"networks": ["127.0.0.0/8"]}})
    user_id = run_sync(store.engine, add_user, "ops@acme.example", "acme")
    mails = [_velocity_mail(user_id, f"C{n}", f"+4917012345{n:02d}") for n in range(5)]
    upserts: list[str] = []
    seen = _statements(store, upserts)
    try:
        ids = await store.call(commit_mails, mails)  # one transaction, limit 3
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert ids == [m.id for m in mails]
    rows = await store.call(held_orders, "acme", None)
    assert sorted(r["recipient"] for r in rows) == ["+491701234503", "+491701234504"]
    assert len(upserts) == 1  # the commit's numbers in one statement, not one per mail
    numbers = await store.call(
        lambda conn: conn.exec_driver_sql("SELECT number FROM velocity_number").all()
    )
    assert sorted(n for (n,) in numbers) == [f"+4917012345{n:02d}" for n in range(5)]


async def test_without_a_per_prefix_limit_only_watched_numbers_are_kept(store: Store) -> None:
    run_sync(store.engine, add_customer, "acme", {"access": {"networks": ["127.0.0.0/8"]}})
    user_id = run_sync(store.engine, add_user, "ops@acme.example", "acme")
    access = CustomerAccess(velocity_numbers=0, watch_numbers=2, watch_prefixes=("+234",))
    check = VelocityCheck.of(access, 1, "acme", 1, "noc@x.example")
    numbers = ["+4917012345601", "+2348031234501", "+4917012345602", "+2348031234502"]
    numbers.append("+2348031234503")  # the third watched number: over watch_numbers = 2
    mails = [
        replace(_velocity_mail(user_id, f"W{n}", number), velocity=check)
        for n, number in enumerate(numbers)
    ]
    await store.call(commit_mails, mails[:2])
    await store.call(commit_mails, mails[2:])
    kept = await store.call(
        lambda conn: conn.exec_driver_sql("SELECT number FROM velocity_number").all()
    )
    assert sorted(n for (n,) in kept) == ["+2348031234501", "+2348031234502", "+2348031234503"]
    rows = await store.call(held_orders, "acme", None)
    assert [r["recipient"] for r in rows] == ["+2348031234503"]


async def test_the_database_counts_each_distinct_number_once(store: Store) -> None:
    """`_over` against the plain set it stands for: numbers sent to within the window, the
    commit's earlier mails' and this mail's, each once (one sent before and again now, a
    number under two nested prefixes), counted exactly up to the limit and past it."""
    customer_id = run_sync(store.engine, add_customer, "acme", {})
    now = utcnow()
    window = timedelta(minutes=10)
    rng = random.Random(7)
    numbers = [f"+4917012{n:05d}" for n in range(0, 400, 7)]
    sent = {n: now - timedelta(minutes=rng.choice([1, 5, 30])) for n in numbers}
    for number, at in sent.items():
        await store.call(_record, customer_id, {number}, at)
    check = VelocityCheck.of(CustomerAccess(), customer_id, "acme", 1, "")
    assert check is not None
    prefix_sets = [  # numbers under both of two nested prefixes; none under "+43"
        ("+491701200",),
        ("+4917012001", "+49170120"),
        ("+49170120", "+4917012002", "+49170"),
        ("+43",),
    ]

    def case(conn: Connection) -> tuple[int, int, int]:
        prefixes = rng.choice(prefix_sets)
        mine = set(rng.sample(numbers, 3)) | {f"+4917012{rng.randrange(100000):05d}"}
        mine = {n for n in mine if n.startswith(prefixes)}
        pending = Pending()
        earlier = set(rng.sample(numbers, 5)) | {"+491701200999"}
        pending.add(customer_id, earlier, now)
        pending.add(customer_id + 1, {"+491701200998"}, now)  # another customer's
        limit = rng.randrange(1, 80)  # the numbers within the window: about 40
        counted = _over(conn, check, prefixes, limit, mine, now - window, pending)
        within = {n for n, at in sent.items() if at >= now - window}
        want = {n for n in within | earlier | mine if n.startswith(prefixes)}
        return counted, len(want), limit

    outcomes = [await store.call(case) for _ in range(80)]
    for counted, want, limit in outcomes:
        assert counted == want if want <= limit else counted > limit, (counted, want, limit)
    assert {want <= limit for _, want, limit in outcomes} == {True, False}  # both kinds
