"""The bridge as an SMPP server against what customers' applications send wrong, on SQLite
and on PostgreSQL: every field of a submit_sm with odd values, TLVs that lie about their
length or contradict each other, commands we do not serve, responses nobody asked for.

The PDUs are written here byte by byte (not with the bridge's codec, whose own
assumptions would hide the faults). For every request: an answer with its sequence
number; never ESME_RSYSERR, ESME_RMSGQFUL or ESME_RTHROTTLED (a client sends those again,
and an input that can never be taken would come back for ever); no traceback in the log;
the bind still works. Every submit answered ESME_ROK ends, through the sandbox SMSC, in a
final state after at most one attempt, or in a receipt to the client: nothing taken is
left to retry without end or dropped without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.db.store import run_sync
from bridge.smpp_server.accounts import set_limits
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import db_rows, our_faults, running_bridge, wait_for
from tests.peers.raw_smpp import Client, pdu, tlv

PHONE = b"491701234567"
SENDER = b"4915550000001"
TRANSIENT = {0x08: "ESME_RSYSERR", 0x14: "ESME_RMSGQFUL", 0x58: "ESME_RTHROTTLED"}
FINAL = {"delivered", "failed", "expired", "undeliverable", "rejected"}


@dataclass(frozen=True)
class Submit:
    """A submit_sm's fields, each as raw bytes or an int (C strings without their NUL)."""

    service_type: bytes = b""
    source_ton: int = 1
    source_npi: int = 1
    source: bytes = SENDER
    dest_ton: int = 1
    dest_npi: int = 1
    dest: bytes = PHONE
    esm_class: int = 0
    protocol_id: int = 0
    priority: int = 0
    schedule: bytes = b""
    validity: bytes = b""
    registered_delivery: int = 1
    replace: int = 0
    data_coding: int = 0
    default_msg_id: int = 0
    short_message: bytes = b"odd input"
    sm_length: int | None = None
    tlvs: bytes = b""

    def body(self) -> bytes:
        sm_length = len(self.short_message) if self.sm_length is None else self.sm_length
        return (
            self.service_type
            + b"\0"
            + bytes((self.source_ton, self.source_npi))
            + self.source
            + b"\0"
            + bytes((self.dest_ton, self.dest_npi))
            + self.dest
            + b"\0"
            + bytes((self.esm_class, self.protocol_id, self.priority))
            + self.schedule
            + b"\0"
            + self.validity
            + b"\0"
            + bytes((self.registered_delivery, self.replace, self.data_coding))
            + bytes((self.default_msg_id, sm_length))
            + self.short_message
            + self.tlvs
        )


def _sar(ref: bytes, total: bytes, seq: bytes) -> bytes:
    return tlv(0x020C, ref) + tlv(0x020E, total) + tlv(0x020F, seq)


SUBMITS: dict[str, Submit] = {
    "valid": Submit(),
    "service_type too long": Submit(service_type=b"CMTCMTCMT"),
    "service_type control": Submit(service_type=b"CM\x01"),
    "source empty": Submit(source=b""),
    "source control": Submit(source_ton=5, source=b"\x01ACME\x1b"),
    "source latin-1": Submit(source_ton=5, source=b"\xff\xfe\xe4"),
    "source too long": Submit(source_ton=5, source=b"A" * 40),
    "source ton 0 international": Submit(source_ton=0, source=b"004915550000001"),
    "source ton 2 national": Submit(source_ton=2, source=b"015550000001"),
    "source name with ton 1": Submit(source_ton=1, source=b"ACME"),
    "source ton 7": Submit(source_ton=7, source_npi=18, source=SENDER),
    "dest empty": Submit(dest=b""),
    "dest letters": Submit(dest=b"abc"),
    "dest control": Submit(dest=PHONE + b"\x1b"),
    "dest latin-1": Submit(dest=b"49170\xb2\xb3\xb9"),
    "dest fullwidth digits": Submit(dest="4917０１２３４５６７".encode()),
    "dest too long": Submit(dest=b"4" * 40),
    "dest ton 0 national": Submit(dest_ton=0, dest=b"01701234567"),
    "dest ton 0 with 00": Submit(dest_ton=0, dest=b"00491701234567"),
    "dest ton 0 with +": Submit(dest_ton=0, dest=b"+491701234567"),
    "dest ton 5 alphanumeric": Submit(dest_ton=5, dest=b"ACME"),
    "dest ton 9": Submit(dest_ton=9, dest_npi=99, dest=PHONE),
    "dest premium": Submit(dest=b"4990012345678"),
    "dest landline": Submit(dest=b"4930123456"),
    "esm udhi without udh": Submit(esm_class=0x40, short_message=b""),
    "esm udh length past end": Submit(esm_class=0x40, short_message=b"\xff\x00\x03"),
    "esm udh ie past udh": Submit(esm_class=0x40, short_message=b"\x03\x00\x09\x01hi"),
    "esm udh concat total 0": Submit(esm_class=0x40, short_message=b"\x05\x00\x03\x07\x00\x01hi"),
    "esm udh concat seq past total": Submit(
        esm_class=0x40, short_message=b"\x05\x00\x03\x07\x02\x05hi"
    ),
    "esm udh only": Submit(esm_class=0x40, short_message=b"\x05\x00\x03\x07\x01\x01"),
    "concat part 1 of 2, never part 2": Submit(
        esm_class=0x40, short_message=b"\x05\x00\x03\x09\x02\x01first half"
    ),
    "esm delivery ack type": Submit(esm_class=0x08),
    "esm type bits": Submit(esm_class=0x3C),
    "esm all bits": Submit(esm_class=0xFF),
    "esm datagram mode": Submit(esm_class=0x01),
    "esm reply path": Submit(esm_class=0x80),
    "protocol id silent": Submit(protocol_id=0x40),
    "protocol id 0xff": Submit(protocol_id=0xFF),
    "priority 0xff": Submit(priority=0xFF),
    "schedule garbage": Submit(schedule=b"tomorrow at 9"),
    "schedule month 13": Submit(schedule=b"271399120000000+"),
    "schedule superscript digits": Submit(schedule=b"2\xb2\xb3201000000000+"),
    "schedule quarter 99": Submit(schedule=b"271201000000099+"),
    "schedule relative zero": Submit(schedule=b"000000000000000R"),
    "schedule relative 99 years": Submit(schedule=b"990000000000000R"),
    "schedule far future": Submit(schedule=b"991231235959048-"),
    "schedule in the past": Submit(schedule=b"010101000000000+"),
    "schedule no NUL room": Submit(schedule=b"27120100000000000+"),
    "validity garbage": Submit(validity=b"\xff" * 16),
    "validity relative zero": Submit(validity=b"000000000000000R"),
    "validity relative 1 s": Submit(validity=b"000000000001000R"),
    "validity 99 years": Submit(validity=b"990000000000000R"),
    "validity in the past": Submit(validity=b"010101000000000+"),
    "registered 0xff": Submit(registered_delivery=0xFF),
    "registered intermediate": Submit(registered_delivery=0x10),
    "replace if present": Submit(replace=1),
    "default msg id": Submit(default_msg_id=7),
    "text empty": Submit(short_message=b""),
    "text 254 octets": Submit(short_message=b"x" * 254),
    "text gsm high octets": Submit(short_message=b"\x80\x9f\xff"),
    "text gsm trailing escape": Submit(short_message=b"odd\x1b"),
    "text gsm double escape": Submit(short_message=b"\x1b\x1b\x1b"),
    "text gsm NUL": Submit(short_message=b"a\x00b"),
    "ucs2 odd length": Submit(data_coding=0x08, short_message=b"\x00a\x00"),
    "ucs2 lone surrogate": Submit(data_coding=0x08, short_message=b"\xd8\x00\x00a"),
    "ucs2 NUL": Submit(data_coding=0x08, short_message=b"\x00\x00\x00a"),
    "sm_length past end": Submit(short_message=b"abc", sm_length=200),
    "sm_length short": Submit(short_message=b"abcdef", sm_length=2),
    "payload and text": Submit(tlvs=tlv(0x0424, b"payload")),
    "payload empty": Submit(short_message=b"", tlvs=tlv(0x0424, b"")),
    "payload 2000 octets": Submit(short_message=b"", tlvs=tlv(0x0424, b"p" * 2000)),
    "payload 60000 octets": Submit(short_message=b"", tlvs=tlv(0x0424, b"p" * 60_000)),
    "payload twice": Submit(short_message=b"", tlvs=tlv(0x0424, b"one") + tlv(0x0424, b"two")),
    "payload latin-1 not GSM": Submit(
        data_coding=0x03, short_message=b"", tlvs=tlv(0x0424, b"H\xf4tel \xa4 " * 20)
    ),
    "payload ucs2 odd": Submit(data_coding=0x08, short_message=b"", tlvs=tlv(0x0424, b"\x00")),
    "tlv length past end": Submit(tlvs=struct.pack(">HH", 0x0424, 500) + b"x"),
    "tlv header cut": Submit(tlvs=b"\x04"),
    "tlv tag 0": Submit(tlvs=tlv(0, b"")),
    "tlv vendor": Submit(tlvs=tlv(0x1400, b"\xff" * 10)),
    "sar total 0": Submit(tlvs=_sar(b"\x00\x07", b"\x00", b"\x01")),
    "sar seq 0": Submit(tlvs=_sar(b"\x00\x07", b"\x02", b"\x00")),
    "sar seq past total": Submit(tlvs=_sar(b"\x00\x07", b"\x02", b"\x03")),
    "sar empty values": Submit(tlvs=_sar(b"", b"", b"")),
    "sar long values": Submit(tlvs=_sar(b"\x00" * 8, b"\x00\x02", b"\x00\x01")),
    "sar one of one": Submit(tlvs=_sar(b"\x00\x08", b"\x01", b"\x01")),
    "user_message_reference odd": Submit(tlvs=tlv(0x0204, b"\x01")),
    "ports odd": Submit(tlvs=tlv(0x020A, b"") + tlv(0x020B, b"\x01\x02\x03")),
}
for coding in (*range(0x01, 0x08), *range(0x09, 0x20), 0x40, 0xC0, 0xD0, 0xE0, 0xF0, 0xF4, 0xFF):
    SUBMITS[f"data_coding 0x{coding:02X}"] = Submit(data_coding=coding, short_message=b"dc test")

# What some of them must be answered (the rest: any lasting answer). Each was once taken
# with ESME_ROK and then failed at the SMSC, waited for ever or went out broken.
REFUSED = {
    "source too long": 0x0A,  # ESME_RINVSRCADR
    "source latin-1": 0x0A,
    "schedule quarter 99": 0x61,  # ESME_RINVSCHED
    "schedule relative 99 years": 0x61,
    "schedule far future": 0x61,
    "esm udh concat total 0": 0x43,  # ESME_RINVESMCLASS
    "esm udh concat seq past total": 0x43,
    "sar total 0": 0xC4,  # ESME_RINVOPTPARAMVAL
    "sar seq 0": 0xC4,
    "sar seq past total": 0xC4,
    "sar empty values": 0xC4,
    "sar long values": 0xC4,
    "ucs2 odd length": 0x01,  # ESME_RINVMSGLEN
    "payload ucs2 odd": 0x01,
    "payload 2000 octets": 0x01,  # 14 parts; the account's max_parts is 10
    "payload 60000 octets": 0x01,
}

# ... and some must reach the phone: a Latin-1 message_payload with characters GSM-7 has
# not was once taken as GSM-7 and failed at the SMSC; a name sent with TON 1 became "+ACME".
DELIVERED = ("valid", "payload latin-1 not GSM", "source name with ton 1", "source control")

# Requests that are not submit_sm: (command_id, body); each wants some answer.
OTHERS: dict[str, tuple[int, bytes]] = {
    "query_sm empty": (0x03, b""),
    "query_sm unknown id": (0x03, b"NOPE.1\0\x01\x01" + SENDER + b"\0"),
    "query_sm id no NUL": (0x03, b"\xff" * 70),
    "query_sm id control": (0x03, b"\x01\x1b\0\x01\x01\0"),
    "cancel_sm empty": (0x08, b""),
    "cancel_sm unknown id": (0x08, b"\0NOPE.1\0\x01\x01\0\x01\x01\0"),
    "cancel_sm id latin-1": (0x08, b"\0\xff\xfe.1\0\x01\x01\0\x01\x01\0"),
    "replace_sm": (0x07, b"NOPE.1\0\x01\x01\0\0\0\x01\x00\x02hi"),
    "data_sm": (0x103, b"\0\x01\x01" + SENDER + b"\0\x01\x01" + PHONE + b"\0\x00\x01\x00"),
    "submit_multi": (0x21, b"\0\x01\x01" + SENDER + b"\0\x01\x01\x01\x01" + PHONE + b"\0"),
    "deliver_sm from the client": (0x05, Submit().body()),
    "outbind": (0x0B, b"demo\0demo\0"),
    "enquire_link with a body": (0x15, b"junk"),
    "bind again": (0x09, b"demo\0demo\0\0\x34\x00\x00\0"),
    "command id 0": (0x00, b""),
    "command id 0x7fffffff": (0x7FFFFFFF, b"\x00" * 8),
    "submit_sm cut after service_type": (0x04, b"CMT\0"),
    "submit_sm cut in the middle": (0x04, Submit().body()[:20]),
    "submit_sm without any NUL": (0x04, b"\x01" * 60),
}

# Responses nobody asked for, and alert_notification (which has no response): the server
# answers nothing, and the bind stays up.
UNSOLICITED: dict[str, tuple[int, bytes]] = {
    "generic_nack": (0x80000000, b""),
    "submit_sm_resp": (0x80000004, b"X.1\0"),
    "deliver_sm_resp unknown sequence": (0x80000005, b"\0"),
    "enquire_link_resp": (0x80000015, b""),
    "bind_transceiver_resp": (0x80000009, b"x\0"),
    "alert_notification": (0x102, b"\x01\x01" + SENDER + b"\0\x01\x01" + PHONE + b"\0"),
}


async def _bind(host: str, port: int) -> Client:
    reader, writer = await asyncio.open_connection(host, port)
    client = Client(reader, writer)
    client.start()
    answer = await client.request(0x09, b"demo\0demo\0\0\x34\x00\x00\0")
    assert answer is not None and answer[:2] == (0x80000009, 0), answer
    return client


async def test_odd_submits_and_commands_get_a_lasting_answer(
    tmp_path: Path, bridge_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(
        tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0, part_wait=1.0)
    ).model_copy(update={"database_url": bridge_database})
    accepted: dict[str, str] = {}
    problems: list[str] = []
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        run_sync(bridge.store.engine, lambda c: set_limits(c, "demo", throughput=10_000))
        client = await _bind(*ep.smpp)
        for name, submit in SUBMITS.items():
            answer = await client.request(0x04, submit.body())
            if answer is None:
                problems.append(f"{name}: no answer")
                continue
            command_id, status, body = answer
            if command_id not in (0x80000004, 0x80000000):
                problems.append(f"{name}: answered with 0x{command_id:08X}")
            if status in TRANSIENT:
                problems.append(f"{name}: {TRANSIENT[status]}, which the client sends again")
            if name in REFUSED and status != REFUSED[name]:
                problems.append(f"{name}: 0x{status:02X}, not 0x{REFUSED[name]:02X}")
            if status == 0:
                accepted[name] = body.rstrip(b"\0").decode("latin-1")
        for name, (command_id, body) in OTHERS.items():
            answer = await client.request(command_id, body)
            if answer is None:
                problems.append(f"{name}: no answer")
            elif answer[1] in TRANSIENT:
                problems.append(f"{name}: {TRANSIENT[answer[1]]}, which the client sends again")
        for name, (command_id, body) in UNSOLICITED.items():
            before = len(client.seen)
            client.send(pdu(command_id, 7_000_000 + before, body))
            answer = await client.request(0x15, b"")  # the bind still answers
            if answer is None or answer[:2] != (0x80000015, 0):
                problems.append(f"{name}: the bind stopped answering ({answer})")
            mine = [s for s in client.seen[before:] if s[2] >= 7_000_000]
            if mine:
                problems.append(f"{name}: the server answered a response: {mine}")
        assert "valid" in accepted, problems
        assert not problems, "\n".join(problems)
        # What was taken ends (or waits for its time): no endless retries, no silent drop.
        ids = set(accepted.values())
        quoted = ", ".join(f"'{i}'" for i in sorted(ids))

        def unsettled() -> list[Any]:
            rows = db_rows(
                bridge_database,
                f'SELECT id, status, attempts, next_attempt_at FROM "order" WHERE id IN ({quoted})',
            )
            pending = [r for r in rows if r.status not in FINAL and r.status != "submitted"]
            waiting = [r for r in pending if r.attempts == 0 and r.next_attempt_at is not None]
            names = {i: n for n, i in accepted.items()}
            missing = ids - {r.id for r in rows}
            if missing:
                return [f"{names[i]}: accepted, no order" for i in sorted(missing)]
            return [(names[r.id], r.status, r.attempts) for r in pending if r not in waiting]

        with contextlib.suppress(AssertionError):  # the assert below names what is left
            await wait_for(lambda: not unsettled(), within=30, every=0.2)
        assert not (left := unsettled()), left
        # ... and the client hears of each final one that asked for a receipt.
        rows = db_rows(bridge_database, f'SELECT id, status FROM "order" WHERE id IN ({quoted})')
        final = {r.id for r in rows if r.status in FINAL}
        asked = {i for n, i in accepted.items() if SUBMITS[n].registered_delivery & 3 == 1}

        def receipted() -> set[str]:
            return {
                body.split(b"id:", 1)[1].split(b" ", 1)[0].decode()
                for command_id, _, _, body in client.seen
                if command_id == 0x05 and b"id:" in body
            }

        with contextlib.suppress(AssertionError):
            await wait_for(lambda: final & asked <= receipted(), within=15, every=0.2)
        names = {i: n for n, i in accepted.items()}
        assert final & asked <= receipted(), sorted(names[i] for i in final & asked - receipted())
        await client.close()
    rows = db_rows(
        bridge_database, f'SELECT id, status, attempts FROM "order" WHERE id IN ({quoted})'
    )
    assert {r.id for r in rows} == ids, sorted(set(accepted.items()))
    for name in ("source name with ton 1", "source control"):  # "ACME", not "+ACME" or "\x01AC…"
        [(sender,)] = db_rows(
            bridge_database, f"""SELECT sender_id FROM "order" WHERE id = '{accepted[name]}'"""
        )
        assert sender == "ACME", (name, sender)
    statuses = {r.id: r.status for r in rows}
    for name in DELIVERED:
        assert statuses[accepted[name]] == "delivered", (name, statuses[accepted[name]])
    retried = [
        (name, i) for name, i in accepted.items() for r in rows if r.id == i and r.attempts > 1
    ]
    assert not retried, retried
    faults = list(our_faults(caplog))
    assert not faults, "\n".join(faults)


# Binds as clients get them wrong: (command_id, body); none is bound, each gets a bind_resp
# (or a generic_nack) that is not a temporary error, and nothing of it reaches the log as
# a fault.
BINDS: dict[str, tuple[int, bytes]] = {
    "system_id empty": (0x09, b"\0demo\0\0\x34\x00\x00\0"),
    "system_id too long": (0x09, b"d" * 40 + b"\0demo\0\0\x34\x00\x00\0"),
    "system_id latin-1": (0x09, b"d\xe9mo\0demo\0\0\x34\x00\x00\0"),
    "system_id control": (0x09, b"de\x1bmo\0demo\0\0\x34\x00\x00\0"),
    "password empty": (0x09, b"demo\0\0\0\x34\x00\x00\0"),
    "password latin-1": (0x02, b"demo\0d\xe9mo\0\0\x34\x00\x00\0"),
    "password too long": (0x01, b"demo\0" + b"p" * 100 + b"\0\0\x34\x00\x00\0"),
    "cut after system_id": (0x09, b"demo\0"),
    "no NUL at all": (0x09, b"demo"),
    "interface version 0x50": (0x09, b"nobody\0demo\0\0\x50\x00\x00\0"),
    "address range odd": (0x09, b"nobody\0demo\0\0\x34\x07\x09[0-9\x01]*\0"),
    "bind with a body past the fields": (0x09, b"nobody\0demo\0\0\x34\x00\x00\0trailing"),
}


async def test_odd_binds_are_refused_with_a_lasting_answer(
    tmp_path: Path, bridge_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(
        tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0)
    ).model_copy(update={"database_url": bridge_database})
    problems: list[str] = []
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        for n, (name, (command_id, body)) in enumerate(BINDS.items()):
            # each from its own address: the door slows and locks out an address that
            # guesses (test_smpp_server_door.py), which is not what is looked at here
            source = (f"127.0.0.{n + 2}", 0)
            reader, writer = await asyncio.open_connection(*ep.smpp, local_addr=source)
            client = Client(reader, writer)
            client.start()
            answer = await client.request(command_id, body)
            await client.close()
            if answer is None:
                problems.append(f"{name}: no answer")
            elif answer[1] == 0:
                problems.append(f"{name}: bound")
            elif answer[1] in TRANSIENT:
                problems.append(f"{name}: {TRANSIENT[answer[1]]}, which the client sends again")
        good = await _bind(*ep.smpp)  # and the right one still binds
        await good.close()
    assert not problems, "\n".join(problems)
    faults = list(our_faults(caplog))
    assert not faults, "\n".join(faults)
