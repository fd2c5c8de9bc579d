"""What SMSCs send wrong, against the whole bridge on SQLite and on PostgreSQL: MO and
receipts (deliver_sm) with odd addresses, every kind of data_coding with octets that do
not fit it, broken or contradictory concatenation, TLVs where text was expected, receipts
for nothing, in no known form, or saying two things.

The SMSC is the node-smpp peer (a peer we did not write), which encodes each deliver_sm
from the parameters given here. For every one: an answer, and never ESME_RX_T_APPN (0x64,
"try again later", which an SMSC obeys for days for an input that can never be stored);
no traceback or error in the log; every MO answered ESME_ROK reaches the inbox (an
unfinished concatenated one after `mo_reassembly_timeout`, with a gap marker); and the
bridge still takes a plain MO and a receipt afterwards.

Found so far: data_coding 0x09-0x0B read as UCS-2 (GSM 03.38's bits, where SMPP 3.4 has
its own table) and 0x06/0x07 as Latin-1; control characters kept in an MO's addresses
(a sender `\\x01AC\\x1bME` stored and shown as such).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from tests.e2e.one_smsc import settings_for
from tests.helpers import db_rows, our_faults, running_bridge, wait_for
from tests.peers.node_smpp import NodeSmsc, running_node_smsc

PHONE = "491701234567"
NUMBER = "4915550000001"  # the demo customer's number
CONTROLS = {chr(i) for i in [*range(0x20), *range(0x7F, 0xA0)]}
TEMPORARY = {0x64: "ESME_RX_T_APPN", 0x08: "ESME_RSYSERR", 0x14: "ESME_RMSGQFUL"}


def _hex(data: bytes | str, coding: str = "latin-1") -> dict[str, str]:
    return {"hex": (data.encode(coding) if isinstance(data, str) else data).hex()}


def _udh(udh: str, body: bytes) -> dict[str, Any]:
    return {"esm_class": 0x40, "short_message": {"hex": udh + body.hex()}}


# name -> deliver_sm parameters over BASE; each MO carries a word of its own, "mo-N"
# (in the text where there is one), to find it in the inbox.
MOS: dict[str, dict[str, Any]] = {
    "valid": {},
    "source empty": {"source_addr": ""},
    "source name with ton 1": {"source_addr": "PayPal"},
    "source name ton 5": {"source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "ACME"},
    "source control": {"source_addr_ton": 5, "source_addr": "\x01AC\x1bME"},
    "source 20 digits": {"source_addr": "4" * 20},
    "source ton 0 with 00": {"source_addr_ton": 0, "source_addr": "00491701234567"},
    "source ton 2 national": {"source_addr_ton": 2, "source_addr": "01701234567"},
    "source ton 9 npi 99": {"source_addr_ton": 9, "source_addr_npi": 99},
    "dest ton 1 with +": {"dest_addr_ton": 1, "destination_addr": "+" + NUMBER},
    "dest national": {"dest_addr_ton": 2, "destination_addr": "015550000001"},
    "dest not ours": {"destination_addr": "4930123456"},
    "dest empty": {"destination_addr": ""},
    "dest name": {"dest_addr_ton": 5, "destination_addr": "SERVICE"},
    "gsm high octets": {"short_message": _hex(b"\x80\x9f\xff TEXT")},
    "gsm escapes": {"short_message": _hex(b"\x1b\x1b\x1b TEXT \x1b")},
    "gsm NUL and CR": {"short_message": _hex(b"\x00 TEXT\r\x00")},
    "ascii with high octets": {"data_coding": 1, "short_message": _hex(b"\xe4\xf6 TEXT")},
    "latin-1": {"data_coding": 3, "short_message": _hex("Grüße TEXT")},
    "ucs2 odd length": {"data_coding": 8, "short_message": _hex(b"\0T\0E\0X\0T\0")},
    "ucs2 lone surrogate": {"data_coding": 8, "short_message": _hex(b"\xd8\x00" + b"\0T" * 4)},
    "ucs2 NULs": {"data_coding": 8, "short_message": _hex("\0TEXT\0", "utf-16-be")},
    "binary 8-bit": {"data_coding": 4, "short_message": _hex(b"\x00\x01\xfe\xff")},
    "sim data download": {"data_coding": 0xF6, "protocol_id": 0x7F, "short_message": _hex(b"\x02")},
    "flash class 0": {"data_coding": 0x10},
    "mwi group": {"data_coding": 0xC8},
    "jis": {"data_coding": 5, "short_message": _hex(b"\x82\xa0 TEXT")},
    "cyrillic": {"data_coding": 6, "short_message": _hex(b"\xc0\xc1 TEXT")},
    "reserved coding": {"data_coding": 0x0B, "short_message": _hex(b"\x01\x02 TEXT")},
    "coding 0xff": {"data_coding": 0xFF, "short_message": _hex(b"TEXT")},
    "empty text": {"short_message": _hex(b"")},
    "udh length past end": _udh("ff0003", b"TEXT"),
    "udh only": _udh("050003070101", b""),
    "udh concat total 0": _udh("050003070001", b"TEXT"),
    "udh concat part 3 of 2": _udh("050003070203", b"TEXT"),
    "udh concat wrong length": _udh("0400020702", b"TEXT"),
    "udh port addressing": _udh("0605040b8423f0", b"\x01\x06\x03\xae TEXT"),
    "udh unknown ie": _udh("037f01ff", b"TEXT"),
    "payload": {"short_message": _hex(b""), "message_payload": _hex(b"TEXT payload")},
    "payload and text": {"message_payload": _hex(b"TEXT payload too")},
    "payload 60000 octets": {"short_message": _hex(b""), "message_payload": _hex(b"p" * 60_000)},
    "payload ucs2 odd": {
        "data_coding": 8,
        "short_message": _hex(b""),
        "message_payload": _hex(b"\0T\0E\0X\0T\0"),
    },
    "sar part 3 of 2": {"sar_msg_ref_num": 9, "sar_total_segments": 2, "sar_segment_seqnum": 3},
    "sar total 0": {"sar_msg_ref_num": 9, "sar_total_segments": 0, "sar_segment_seqnum": 0},
    "sar without seqnum": {"sar_msg_ref_num": 9, "sar_total_segments": 2},
    "esm sme delivery ack": {"esm_class": 0x08},
    "esm manual ack": {"esm_class": 0x10},
    "esm all bits but receipt": {"esm_class": 0xF8 & ~0x04, "short_message": _hex(b"TEXT")},
    "priority and protocol id odd": {"priority_flag": 9, "protocol_id": 0x41},
    "schedule and validity set": {
        "schedule_delivery_time": "991231235959000+",
        "validity_period": "garbage",
    },
}

# Parts of concatenated MOs: the second never comes (delivered with a gap marker after
# the reassembly timeout); a part twice; parts out of order.
PARTS: list[tuple[str, dict[str, Any]]] = [
    ("part 1 of 2, never 2", _udh("050003210201", b"TEXT first half ")),
    ("part 2 of 2 first", _udh("050003220202", b"second half")),
    ("part 1 of 2 after 2", _udh("050003220201", b"TEXT first half ")),
    ("part 1 of 3 twice", _udh("050003230301", b"TEXT one ")),
    ("part 1 of 3 twice", _udh("050003230301", b"TEXT one ")),
    ("part 2 of 3", _udh("050003230302", b"two ")),
    ("part 3 of 3", _udh("050003230303", b"three")),
]

# Receipts (esm_class 0x04) for nothing we sent, in no known form, or odd in every field.
RECEIPT_TEXT = "id:{id} sub:001 dlvrd:001 submit date:2612041200 done date:2612041201"
RECEIPTS: dict[str, dict[str, Any]] = {
    "no id at all": {"short_message": "hello"},
    "empty": {"short_message": _hex(b"")},
    "unknown id": {"short_message": RECEIPT_TEXT.format(id="NOPE") + " stat:DELIVRD err:000"},
    "unknown id in TLV": {"receipted_message_id": "NOPE2", "message_state": 2},
    "id 300 characters": {"receipted_message_id": "9" * 250, "message_state": 2},
    "id with controls": {"short_message": _hex(b"id:\x01\x1b7 stat:DELIVRD err:000")},
    "dates out of range": {
        "short_message": "id:77 submit date:9999999999 done date:0000000000 stat:DELIVRD"
    },
    "unknown stat word": {"short_message": "id:78 stat:WHATEVER err:xyz"},
    "message_state 99": {"receipted_message_id": "79", "message_state": 99},
    "network_error_code 1 octet": {
        "receipted_message_id": "80",
        "message_state": 5,
        "network_error_code": _hex(b"\x01"),
    },
    "ucs2 receipt text": {
        "data_coding": 8,
        "short_message": _hex(RECEIPT_TEXT.format(id="81") + " stat:DELIVRD", "utf-16-be"),
    },
    "receipt with udh": _udh("050003240201", b"id:82 stat:DELIVRD"),
}


@pytest.fixture
async def node() -> AsyncIterator[NodeSmsc]:
    async with running_node_smsc() as peer:
        yield peer


async def test_odd_mo_and_receipts_get_a_lasting_answer(
    tmp_path: Path, node: NodeSmsc, bridge_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await node.set(receipts=False)
    settings = settings_for(tmp_path, node.port, mo_reassembly_timeout=1.0).model_copy(
        update={"database_url": bridge_database}
    )
    base = {
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": PHONE,
        "dest_addr_ton": 0,
        "dest_addr_npi": 1,
        "destination_addr": NUMBER,
        "data_coding": 0,
        "short_message": "TEXT",
    }
    problems: list[str] = []
    taken: dict[str, str] = {}  # name -> its word, for the MOs answered ESME_ROK

    async def deliver(name: str, params: dict[str, Any], word: str) -> tuple[int | None, bool]:
        """Send; (status, whether `word` is in the text: put where "TEXT" was)."""
        merged = {**base, **params}
        placed = False
        for key in ("short_message", "message_payload"):
            value = merged.get(key)
            if isinstance(value, str) and "TEXT" in value:
                merged[key], placed = value.replace("TEXT", word), True
            elif isinstance(value, dict) and b"TEXT" in (octets := bytes.fromhex(value["hex"])):
                merged[key], placed = _hex(octets.replace(b"TEXT", word.encode())), True
        try:
            status = await node.deliver_sm(**merged)
        except TimeoutError:
            problems.append(f"{name}: no deliver_sm_resp")
            return None, placed
        if status in TEMPORARY:
            problems.append(f"{name}: {TEMPORARY[status]}, which the SMSC sends again")
        return status, placed

    async with running_bridge(settings) as (_, ep):
        await node.wait_until(lambda: node.binds >= 1)
        for i, (name, params) in enumerate(MOS.items()):
            status, placed = await deliver(name, params, f"mo{i}")
            if status == 0 and placed:
                taken[name] = f"mo{i}"
        for i, (name, params) in enumerate(PARTS, start=len(MOS)):
            status, placed = await deliver(name, params, f"mo{i}")
            if status == 0 and placed:
                taken[name] = f"mo{i}"
        for name, params in RECEIPTS.items():
            await deliver(name, {"esm_class": 0x04, **params}, "receipt")
        assert "valid" in taken and not problems, "\n".join(problems)

        # Every MO taken reaches the inbox (the unfinished one after the timeout).
        def missing() -> list[str]:
            rows = db_rows(bridge_database, "SELECT text FROM inbound")
            texts = " ".join(str(r.text) for r in rows)
            return [name for name, word in taken.items() if word not in texts]

        with contextlib.suppress(AssertionError):
            await wait_for(lambda: not missing(), within=20, every=0.2)
        assert not missing(), missing()
        addresses = db_rows(bridge_database, "SELECT source, destination FROM inbound")
        assert not [a for a in addresses if CONTROLS & set(a.source + a.destination)], addresses

        # ... and the bridge still takes a mail, its receipt and a plain MO.
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail(
                "demo@example.com", [f"+{PHONE}@eu.rsms.net"], b"Subject: x\r\n\r\nafter\r\n"
            )
        await node.wait_until(lambda: len(node.submits) == 1)
        [(smsc_id,)] = await wait_for(
            lambda: db_rows(bridge_database, "SELECT smsc_id FROM part"), within=10
        )
        receipt = RECEIPT_TEXT.format(id=smsc_id) + " stat:DELIVRD err:000"
        status = await node.deliver_sm(**{**base, "esm_class": 4, "short_message": receipt})
        assert status == 0
        await wait_for(
            lambda: db_rows(bridge_database, "SELECT 1 FROM \"order\" WHERE status = 'delivered'"),
            within=10,
        )
    faults = list(our_faults(caplog))
    assert not faults, "\n".join(faults)
