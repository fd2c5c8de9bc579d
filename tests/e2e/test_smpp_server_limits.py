"""The SMPP server keeps the limits of the other doors: the queue's high-water mark
(backpressure: ESME_RMSGQFUL, nothing stored) and the SMS-pumping hold across messages
(the SMTP door's velocity check, in the same commit).

A real bridge (SQLite, the SMPP server on 127.0.0.1) and a raw SMPP client
(tests/peers/raw_smpp.py); the SMTP door's mails, where compared, come over a real SMTP
session.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import our_faults, running_bridge, wait_for
from tests.peers.raw_smpp import Client
from tests.security.common import order_rows
from tests.security.test_pumping import _alerts, _send_one

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)

BIND_TRANSCEIVER = 0x09
SUBMIT_SM = 0x04
CANCEL_SM = 0x08
ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
SENDER = b"4915550000001"
NOC = "noc@bridge.example"


def _submit_body(dest: str, text: bytes, udh: bytes = b"") -> bytes:
    """A submit_sm to international number `dest` (digits), GSM 7-bit as octets, with a
    receipt asked for; with `udh`, esm_class UDHI and the UDH before the text."""
    short_message = udh + text
    return (
        b"\0"  # service_type
        + bytes((1, 1))
        + SENDER
        + b"\0"
        + bytes((1, 1))
        + dest.encode()
        + b"\0"
        + bytes((0x40 if udh else 0, 0, 0))  # esm_class, protocol_id, priority_flag
        + b"\0\0"  # schedule_delivery_time, validity_period
        + bytes((1, 0, 0, 0, len(short_message)))
        + short_message
    )


def _concat(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0, 3, ref, total, seq))


async def _submit(client: Client, dest: str, text: bytes, udh: bytes = b"") -> tuple[int, str]:
    """(command_status, message_id) of the submit_sm_resp."""
    answer = await client.request(SUBMIT_SM, _submit_body(dest, text, udh))
    assert answer is not None, "no submit_sm_resp"
    command_id, status, body = answer
    assert command_id == SUBMIT_SM | 0x80000000
    return status, body.split(b"\0", 1)[0].decode()


@asynccontextmanager
async def _bound(host: str, port: int) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection(host, port)
    client = Client(reader, writer)
    client.start()
    try:
        answer = await client.request(BIND_TRANSCEIVER, b"demo\0demo\0\0\x34\x00\x00\0")
        assert answer is not None and answer[1] == ESME_ROK, answer
        yield client
    finally:
        await client.close()


def _count(tmp_path: Path, sql: str) -> int:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return int(conn.execute(sql).fetchone()[0])


def _orders(tmp_path: Path) -> int:
    return _count(tmp_path, 'SELECT count(*) FROM "order"')


# --- backpressure -------------------------------------------------------------------------


def _unreachable_smsc(tmp_path: Path, high_water: int) -> Settings:
    """Orders stay open (the SMSC does not answer); `queue_high_water` as given."""
    settings = make_settings(tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0))
    return settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"enabled": False}),
            "smtp": settings.smtp.model_copy(update={"queue_high_water": high_water}),
            "smsc": (settings.smsc[0].model_copy(update={"port": 1}),),
        }
    )


async def test_over_the_high_water_mark_a_submit_gets_msgqful_and_nothing_is_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bridge(_unreachable_smsc(tmp_path, 2)) as (bridge, ep):
        assert ep.smpp is not None and bridge.handler is not None
        backpressure = bridge.handler.backpressure  # the bridge's one, every door's
        assert backpressure is not None
        async with _bound(*ep.smpp) as client:
            first = await _submit(client, "491701234561", b"one")
            second = await _submit(client, "491701234562", b"two")
            assert (first[0], second[0]) == (ESME_ROK, ESME_ROK)
            await backpressure.refresh()  # as its worker does: 2 open orders read
            assert _orders(tmp_path) == 2
            full = await _submit(client, "491701234563", b"three")
            assert full == (ESME_RMSGQFUL, "")
            assert _orders(tmp_path) == 2  # nothing stored for it
            # The queue drains below the mark (the client cancels one of its orders).
            body = b"\0" + first[1].encode() + b"\0" + bytes((1, 1)) + SENDER + b"\0\x01\x01\0"
            cancelled = await client.request(CANCEL_SM, body)
            assert cancelled is not None and cancelled[1] == ESME_ROK, cancelled
            await backpressure.refresh()
            again = await _submit(client, "491701234563", b"three")
            assert again[0] == ESME_ROK
            assert _orders(tmp_path) == 3
    assert any(
        "ESME_RMSGQFUL" in r.getMessage() and "2 orders queued, the limit is 2" in r.getMessage()
        for r in caplog.records
    )
    assert not list(our_faults(caplog))


async def test_over_the_mark_a_message_is_refused_at_its_first_part_and_one_begun_completes(
    tmp_path: Path,
) -> None:
    """A concatenated message is never half-stored by backpressure: a message begun before
    the mark was reached takes its remaining parts (one order of all of them); a new one is
    refused at its first part, so none of its parts is kept."""
    async with running_bridge(_unreachable_smsc(tmp_path, 2)) as (_, ep):
        assert ep.smpp is not None
        async with _bound(*ep.smpp) as client:
            begun = await _submit(client, "491701234560", b"Hello ", _concat(7, 2, 1))
            assert begun[0] == ESME_ROK and _orders(tmp_path) == 0  # a part is no order
            for n in (1, 2):  # the queue reaches the mark
                assert (await _submit(client, f"49170123456{n}", b"whole"))[0] == ESME_ROK
            assert (await _submit(client, "491701234563", b"whole"))[0] == ESME_RMSGQFUL
            new = await _submit(client, "491701234564", b"Good ", _concat(8, 2, 1))
            assert new == (ESME_RMSGQFUL, "")
            rest = await _submit(client, "491701234560", b"world", _concat(7, 2, 2))
            assert rest == (ESME_ROK, begun[1])
    rows = order_rows(tmp_path)
    assert sorted(r for r, _, _ in rows) == ["+491701234560", "+491701234561", "+491701234562"]
    assert _count(tmp_path, "SELECT count(*) FROM smpp_part") == 0  # nothing of the refused
    text = _count(tmp_path, "SELECT count(*) FROM \"order\" WHERE text = 'Hello world'")
    assert text == 1


# --- SMS pumping --------------------------------------------------------------------------


def _settings(tmp_path: Path) -> Settings:
    """As tests/security/test_pumping.py: the bridge's postmaster gets the alerts."""
    settings = make_settings(tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0))
    inbound = settings.inbound.model_copy(update={"postmaster": NOC})
    return settings.model_copy(update={"inbound": inbound})


HELD_ERROR = "SMS pumping protection: more than 5 distinct numbers under +491701234… within 10 min"


async def test_submits_to_numbers_of_one_prefix_past_the_limit_are_held_as_by_smtp(
    tmp_path: Path,
) -> None:
    """One submit_sm per number is the pumping pattern: past `velocity_numbers` distinct
    numbers under one prefix the orders are written `held`, with the SMTP door's reason,
    and the admin (here the postmaster) is alerted once; the held orders are not sent."""
    numbers = [f"4917012345{n:02d}" for n in range(8)]
    async with running_bridge(_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        run_sync(bridge.store.engine, set_access, "demo", {"velocity_numbers": 5})
        async with _bound(*ep.smpp) as client:
            answers = [await _submit(client, number, b"pump") for number in numbers]
        assert [status for status, _ in answers] == [ESME_ROK] * 8  # accepted, kept
        rows = order_rows(tmp_path)
        by_number = {r: (s, e) for r, s, e in rows}
        assert sorted(by_number) == [f"+{n}" for n in numbers]
        assert [by_number[f"+{n}"] for n in numbers[5:]] == [("held", HELD_ERROR)] * 3
        assert "held" not in {by_number[f"+{n}"][0] for n in numbers[:5]}
        await wait_for(lambda: _alerts(tmp_path), within=10)
        inbox = tmp_path / "sandbox" / "inbox.jsonl"
        await wait_for(lambda: len(read_inbox(inbox, None)) == 5, within=10)
        assert _alerts(tmp_path) == [NOC]  # one alert for the burst
        sent = {m.destination for m in read_inbox(inbox, None)}
        assert sent.isdisjoint(r for r, s, _ in rows if s == "held")


async def test_the_velocity_count_is_shared_by_the_smtp_and_smpp_doors(tmp_path: Path) -> None:
    """The doors commit through one path: numbers mailed count for numbers submitted
    (the SMTP door's mails first, then the SMPP client's submits, one customer)."""
    async with running_bridge(_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        run_sync(bridge.store.engine, set_access, "demo", {"velocity_numbers": 5})
        mailed = [await _send_one(ep.smtp[1], f"+4917012345{n:02d}", n) for n in range(4)]
        assert all(a.startswith("250 2.0.0") for a in mailed), mailed
        async with _bound(*ep.smpp) as client:
            answers = [await _submit(client, f"4917012345{n:02d}", b"pump") for n in range(4, 8)]
        assert [status for status, _ in answers] == [ESME_ROK] * 4
    held = sorted((r, e) for r, s, e in order_rows(tmp_path) if s == "held")
    assert held == [(f"+4917012345{n:02d}", HELD_ERROR) for n in (5, 6, 7)]
