"""The bridge as an SMPP server, driven by SMPP clients we did not write (tests/peers/esme*.py).

A client binds with the demo account, submits, the sandbox phone shows the SMS and the
client gets our receipt with the message id it was given; an MO to a number with the
inbound action `smpp` reaches a bound client, and waits for the bind when none is up.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.sandbox.smsc import read_inbox, send_mo
from bridge.settings import Settings
from bridge.smpp_outbox.queue import pending_count, queue_mo
from bridge.smpp_outbox.tables import SmppOutbox
from bridge.smpp_server.accounts import set_limits
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for
from tests.peers.esme import BindType, until
from tests.peers.esme_clients import CLIENTS, open_esme
from tests.peers.raw_smpp import Client

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)

NUMBERS = """
[[customer]]
name = "demo"

[[number]]
number = "+4915550000009"
customer = "demo"

[[number.actions]]
type = "smpp"
system_id = "demo"
"""

PHONE = "+491701234567"


def _settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0))


async def test_done_when_smpplib_submits_and_gets_the_receipt(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            [result] = await esme.submit("+4915550000001", PHONE, "hello")
            assert result.status == 0 and result.message_id.endswith(".1")
            inbox = settings.sandbox.config().inbox_path
            [sms] = await wait_for(lambda: read_inbox(inbox, to=PHONE), within=10)
            assert sms.text == "hello"
            await until(lambda: [d for d in esme.deliveries if d.is_receipt], within=15)
            [receipt] = [d for d in esme.deliveries if d.is_receipt]
            assert receipt.receipted_message_id == result.message_id
            assert b"stat:DELIVRD" in receipt.short_message
            assert receipt.tlv(0x0427) == bytes((2,))


@pytest.mark.parametrize("client", CLIENTS)
async def test_bind_refusals(tmp_path: Path, client: str) -> None:
    async with running_bridge(_settings(tmp_path)) as (_, ep):
        assert ep.smpp is not None
        async with open_esme(client, *ep.smpp) as esme:
            bad = await esme.bind(BindType.TRANSCEIVER, "demo", "wrong")
            assert not bad.ok and bad.status in (None, 0x0E)
        async with open_esme(client, *ep.smpp) as esme:
            unknown = await esme.bind(BindType.TRANSMITTER, "nobody", "demo")
            assert not unknown.ok and unknown.status in (None, 0x0F)


# smpp34 waits for each part's submit_sm_resp before it sends the next; smpplib and node
# send all parts at once: each part is committed and answered as it comes.
@pytest.mark.parametrize("client", CLIENTS)
async def test_long_and_ucs2_presplit_messages_are_one_order_each(
    tmp_path: Path, client: str
) -> None:
    settings = _settings(tmp_path)
    long_text = "Lorem ipsum dolor sit amet, " * 8  # 224 septets: two parts
    ucs2_text = "Grüße aus Köln ☺ " * 6  # 102 UTF-16 units: two parts
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        async with open_esme(client, *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            first = await esme.submit("+4915550000001", PHONE, long_text)
            second = await esme.submit("+4915550000001", PHONE, ucs2_text, ucs2=True)
            for results in (first, second):
                assert len(results) == 2 and {r.status for r in results} == {0}
                assert len({r.message_id for r in results}) == 1  # one order
            inbox = settings.sandbox.config().inbox_path
            got = await wait_for(lambda: (s := read_inbox(inbox, to=PHONE)) and len(s) == 2 and s)
            assert sorted(s.text for s in got) == sorted([long_text, ucs2_text])
            assert {s.parts for s in got} == {2}


async def test_mo_reaches_the_bound_client_and_waits_for_the_bind(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.sandbox is not None
        run_sync(bridge.store.engine, apply_numbers, parse_numbers(NUMBERS))
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.RECEIVER, "demo", "demo")).ok
            await send_mo(*ep.sandbox, PHONE, "+4915550000009", "first", Path("x"))
            await until(lambda: [d for d in esme.deliveries if not d.is_receipt], within=10)
            [mo] = [d for d in esme.deliveries if not d.is_receipt]
            assert (mo.text, mo.source, mo.destination) == (
                "first",
                "491701234567",
                "4915550000009",
            )
        # no client bound: the MO waits in the outbox
        await send_mo(*ep.sandbox, PHONE, "+4915550000009", "second", Path("x"))
        engine = bridge.store.engine
        await wait_for(lambda: run_sync(engine, pending_count, "demo") == 1)
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            await until(lambda: [d for d in esme.deliveries if not d.is_receipt], within=10)
            assert [d.text for d in esme.deliveries] == ["second"]
        engine = bridge.store.engine  # answered ESME_ROK: marked sent right after
        await wait_for(lambda: run_sync(engine, pending_count, "demo") == 0)


async def test_a_receiver_gets_as_many_deliver_sm_at_once_as_its_accounts_window(
    tmp_path: Path,
) -> None:
    """The account's `window` is how many deliver_sm may wait for their answers at once;
    the session's own window was fixed at 10, so an account's 20 were sent 10 at a time
    and the rest waited for a slot — past the outbox claim's lease, which counts one
    response timeout from the take."""
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.sandbox is not None
        engine = bridge.store.engine
        run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
        run_sync(engine, lambda c: set_limits(c, "demo", window=20))
        for n in range(25):  # no client bound: they wait in the outbox
            await send_mo(*ep.sandbox, PHONE, "+4915550000009", f"mo {n}", Path("x"))
        await wait_for(lambda: run_sync(engine, pending_count, "demo") == 25, within=15)
        reader, writer = await asyncio.open_connection(*ep.smpp)
        client = Client(reader, writer, answers=False)  # reads, answers nothing yet
        client.start()
        answer = await client.request(0x01, b"demo\0demo\0\0\x34\x00\x00\0")  # receiver
        assert answer is not None and answer[1] == 0, answer
        await wait_for(lambda: len([s for s in client.seen if s[0] == 0x05]) >= 20, within=5)
        await asyncio.sleep(0.5)
        assert len([s for s in client.seen if s[0] == 0x05]) == 20  # the window, no more
        await client.close()


async def test_throttled_over_the_accounts_throughput(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        run_sync(bridge.store.engine, lambda conn: set_limits(conn, "demo", throughput=0.1))
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSMITTER, "demo", "demo")).ok
            [first] = await esme.submit("+4915550000001", PHONE, "one")
            [second] = await esme.submit("+4915550000001", PHONE, "two")
            assert (first.status, second.status) == (0, 0x58)  # ESME_RTHROTTLED: retry later


async def test_restart_mid_session_nothing_lost(tmp_path: Path) -> None:
    """A receipt that came while the client had only a transmitter bind survives a restart
    of the bridge: the client binds again as receiver and gets it, with the id it was given."""
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSMITTER, "demo", "demo")).ok
            [result] = await esme.submit("+4915550000001", PHONE, "before the restart")
            assert result.status == 0
            engine = bridge.store.engine
            await wait_for(lambda: run_sync(engine, pending_count, "demo") == 1, within=10)
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.RECEIVER, "demo", "demo")).ok
            await until(lambda: [d for d in esme.deliveries if d.is_receipt], within=10)
            assert [d.receipted_message_id for d in esme.deliveries] == [result.message_id]


async def test_a_refused_deliver_sm_is_retried(tmp_path: Path) -> None:
    smpp = SmppServerSettings(enabled=True, port=0, retry_delay=0.3)
    settings = make_settings(tmp_path, smpp_server=smpp)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.sandbox is not None
        run_sync(bridge.store.engine, apply_numbers, parse_numbers(NUMBERS))
        async with open_esme("smpplib", *ep.smpp) as esme:
            await esme.answer_deliveries_with(0x08)  # ESME_RSYSERR: try again later
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            await send_mo(*ep.sandbox, PHONE, "+4915550000009", "retry me", Path("x"))
            await until(lambda: esme.deliveries, within=10)
            await esme.answer_deliveries_with(0)
            await until(lambda: [d for d in esme.deliveries if d.answered == 0], within=10)
            assert [(d.text, d.answered) for d in esme.deliveries] == [
                ("retry me", 0x08),
                ("retry me", 0),
            ]
        engine = bridge.store.engine  # answered ESME_ROK: marked sent right after
        await wait_for(lambda: run_sync(engine, pending_count, "demo") == 0)


@pytest.mark.parametrize(
    ("answer", "give_up_after"),
    [(0x65, 3600.0), (0x66, 3600.0), (0x64, 0.5)],  # RX_P_APPN, RX_R_APPN; RX_T_APPN, old
)
async def test_a_deliver_sm_refused_for_good_is_given_up_and_the_next_goes(
    tmp_path: Path, answer: int, give_up_after: float
) -> None:
    """ESME_RX_P_APPN / ESME_RX_R_APPN say "do not send it again"; a temporary refusal is
    given up `give_up_after` seconds after the row was queued. Before, every refusal was
    retried until ESME_ROK: for ever, and the next MO waited behind it."""
    smpp = SmppServerSettings(
        enabled=True, port=0, retry_delay=0.3, retry_max=0.3, give_up_after=give_up_after
    )
    settings = make_settings(tmp_path, smpp_server=smpp)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.sandbox is not None
        engine = bridge.store.engine
        run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
        async with open_esme("smpplib", *ep.smpp) as esme:
            await esme.answer_deliveries_with(answer)
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            await send_mo(*ep.sandbox, PHONE, "+4915550000009", "not for me", Path("x"))
            await until(lambda: esme.deliveries, within=10)
            await wait_for(lambda: run_sync(engine, pending_count, "demo") == 0, within=15)
            tries = len(esme.deliveries)
            await esme.answer_deliveries_with(0)
            await send_mo(*ep.sandbox, PHONE, "+4915550000009", "next one", Path("x"))
            await until(lambda: [d for d in esme.deliveries if d.answered == 0], within=10)
            assert [d.text for d in esme.deliveries if d.answered == 0] == ["next one"]
            assert len(esme.deliveries) == tries + 1  # the refused one is not sent again
    rows = run_sync(engine, lambda c: c.exec_driver_sql(
        "SELECT status, error FROM smpp_outbox ORDER BY id").all())  # fmt: skip
    assert [r[0] for r in rows] == ["refused", "sent"]
    assert ("refused for good" if answer != 0x64 else "retried too long") in rows[0][1]
    assert tries == 1 or answer == 0x64


async def test_a_deliver_sm_goes_only_while_its_answer_fits_in_the_takes_lease(
    tmp_path: Path,
) -> None:
    """The outbox's take leased its rows for one response timeout and 5 s from a time read
    before it: a take that waited longer for the database (its thread busy with a long
    transaction, its lock held elsewhere) sent the deliver_sm after its lease had run out,
    when another instance may have taken the row and sent it too. Now a row goes only
    while its answer fits in its lease; else it goes once the lease ends, under a new one."""
    smpp = SmppServerSettings(enabled=True, port=0, response_timeout=0.5)
    settings = make_settings(tmp_path, smpp_server=smpp)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        store = bridge.store
        async with open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.RECEIVER, "demo", "demo")).ok

            def long_transaction(conn: Connection) -> None:  # the takes wait behind it
                queued = utcnow() - timedelta(seconds=1)
                queue_mo(conn, "demo", PHONE, "+4915550000009", "late", 1, queued)
                time.sleep(6.5)  # longer than the old lease (0.5 s + 5 s)

            await store.call(long_transaction)
            await until(lambda: esme.deliveries, within=15)
            await wait_for(lambda: run_sync(store.engine, pending_count, "demo") == 0, within=15)
            await asyncio.sleep(1.0)  # nothing more comes
            assert [d.text for d in esme.deliveries] == ["late"]
    with store.engine.connect() as conn:
        [row] = conn.execute(select(table(SmppOutbox))).all()
    assert row.status == "sent" and row.sent_at <= row.next_attempt_at  # within its lease
