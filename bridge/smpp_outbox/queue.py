"""Store functions for the SMPP outbox: queue receipts and MO SMS, take what is due, record answers.

A row is a deliver_sm in JSON (`OutboxPdu`). `queue_receipt_for` is the step that follows
an order's final status (`bridge.outcomes.steps`): an order that came in over SMPP with
registered_delivery set gets our receipt, the standard "id:… stat:…" text with the
receipted_message_id and message_state TLVs, addressed to the client's bind. `queue_mo`
is the inbound action `smpp`. `take_due` hands the server the rows it may send now: per
`message_key` only the oldest unsent row, so the parts of one MO and the receipt of one
order arrive in order; a taken row is leased through the one queue claim (its next
attempt moves `lease` seconds ahead), so a crash re-sends it rather than losing it;
`lease` is `outbox_lease`, and the server sends a taken row only while its answer can
come before the lease ends, measured from before the take (`send_by`), so that no other
instance takes it and sends it again while this one still waits for its answer.
`answered` records the client's answers: ESME_ROK sends it, a permanent refusal
(ESME_RX_P_APPN, ESME_RX_R_APPN: "do not send it again") or any refusal once the row is
older than `give_up_after` ends it (`refused`, which no longer holds back the rows after
it), else it is tried again later.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, exists, func, insert, select, update

from bridge.db.core import delete_before, table
from bridge.db.queue import Queue, claim
from bridge.smpp import constants as c
from bridge.smpp.address import source_address
from bridge.smpp_outbox.tables import SmppOutbox
from bridge.text.gsm7 import is_gsm7
from bridge.text.sms import split_sms

_outbox = table(SmppOutbox)

# SMPP 3.4: the client will never take this deliver_sm; sending it again cannot help.
PERMANENT_ANSWERS: Final = frozenset({c.ESME_RX_P_APPN, c.ESME_RX_R_APPN})


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"  # not answered ESME_ROK yet
    SENT = "sent"  # answered ESME_ROK (final)
    REFUSED = "refused"  # refused for good, or past give_up_after (final)


# An order's final status -> (the receipt's stat word, SMPP message_state).
RECEIPT_STATES: Final[dict[str, tuple[str, int]]] = {
    "delivered": ("DELIVRD", 2),
    "expired": ("EXPIRED", 3),
    "cancelled": ("DELETED", 4),
    "undeliverable": ("UNDELIV", 5),
    "unconfirmed": ("UNKNOWN", 7),
    "failed": ("REJECTD", 8),
}


# Seconds a take's lease keeps after its deliver_sm's last possible answer, to record it.
RECORD_MARGIN: Final = 5.0


def outbox_lease(response_timeout: float) -> float:
    """How long a take leases its rows: up to one response_timeout for the take itself and
    a window slot (measured from before the take: a busy database or its lock delays it),
    one for the answer, and RECORD_MARGIN to record it."""
    return 2 * response_timeout + RECORD_MARGIN


def send_by(taken_at: float, response_timeout: float) -> float:
    """The last moment (the clock `taken_at` was read on, before the take) a row taken
    then may be sent: its answer, or its response timeout, comes by the lease's end less
    RECORD_MARGIN."""
    return taken_at + outbox_lease(response_timeout) - RECORD_MARGIN - response_timeout


@dataclass(frozen=True, slots=True)
class OutboxPdu:
    """The fields of one deliver_sm as stored."""

    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def stored(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_ton": self.source_ton,
            "source_npi": self.source_npi,
            "destination": self.destination,
            "dest_ton": self.dest_ton,
            "dest_npi": self.dest_npi,
            "short_message": self.short_message.hex(),
            "esm_class": self.esm_class,
            "data_coding": self.data_coding,
            "tlvs": [[tag, value.hex()] for tag, value in self.tlvs],
        }

    @classmethod
    def of(cls, stored: dict[str, Any]) -> OutboxPdu:
        return cls(
            source=str(stored["source"]),
            source_ton=int(stored["source_ton"]),
            source_npi=int(stored["source_npi"]),
            destination=str(stored["destination"]),
            dest_ton=int(stored["dest_ton"]),
            dest_npi=int(stored["dest_npi"]),
            short_message=bytes.fromhex(stored["short_message"]),
            esm_class=int(stored["esm_class"]),
            data_coding=int(stored["data_coding"]),
            tlvs=tuple((int(t), bytes.fromhex(v)) for t, v in stored["tlvs"]),
        )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    system_id: str
    kind: str
    message_key: str
    pdu: OutboxPdu
    attempts: int  # before this one
    created_at: datetime


def queue_pdus(
    conn: Connection,
    system_id: str,
    kind: str,
    message_key: str,
    pdus: Sequence[OutboxPdu],
    now: datetime,
) -> int:
    """Queue deliver_sm for `system_id`'s bind (in this order); how many."""
    if pdus:
        conn.execute(
            insert(_outbox),
            [
                {
                    "system_id": system_id,
                    "kind": kind,
                    "message_key": message_key,
                    "pdu": pdu.stored(),
                    "status": OutboxStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "error": "",
                }
                for pdu in pdus
            ],
        )
    return len(pdus)


def _stamp(at: datetime) -> str:
    return at.strftime("%y%m%d%H%M")


def receipt_pdu(
    smpp: dict[str, Any], order_id: str, status: str, text: str, created: datetime, now: datetime
) -> OutboxPdu:
    """Our delivery receipt for an order that came in over SMPP (`smpp`: its policy entry)."""
    stat, state = RECEIPT_STATES.get(status, ("UNKNOWN", 7))
    delivered = status == "delivered"
    snippet = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text[:20])
    body = (
        f"id:{order_id} sub:001 dlvrd:{'001' if delivered else '000'} "
        f"submit date:{_stamp(created)} done date:{_stamp(now)} "
        f"stat:{stat} err:{'000' if delivered else '001'} text:{snippet}"
    )
    return OutboxPdu(
        source=str(smpp["destination"]),
        source_ton=int(smpp["dest_ton"]),
        source_npi=int(smpp["dest_npi"]),
        destination=str(smpp["source"]),
        dest_ton=int(smpp["source_ton"]),
        dest_npi=int(smpp["source_npi"]),
        short_message=body.encode("ascii"),
        esm_class=c.ESM_TYPE_DELIVERY_RECEIPT,
        tlvs=(
            (c.TLV_RECEIPTED_MESSAGE_ID, order_id.encode("ascii") + b"\0"),
            (c.TLV_MESSAGE_STATE, bytes((state,))),
        ),
    )


def wants_receipt(registered_delivery: int, status: str) -> bool:
    """SMPP 3.4 registered_delivery bits 0-1: 1 any final outcome, 2 failures only."""
    asked = registered_delivery & 0x03
    return asked == 1 or (asked == 2 and status != "delivered")


def queue_receipt_for(conn: Connection, row: Any, now: datetime) -> None:
    """The outcome step: an SMPP client's receipt for a final order, when it asked for one."""
    smpp = (row.policy or {}).get("smpp")
    if not isinstance(smpp, dict) or not wants_receipt(
        int(smpp.get("registered_delivery", 0)), row.status
    ):
        return
    created = row.created_at
    pdu = receipt_pdu(smpp, row.id, str(row.status), str(row.text or ""), created, now)
    queue_pdus(conn, str(smpp["system_id"]), "receipt", row.id, (pdu,), now)


def mo_pdus(source: str, destination: str, text: str, ref: int = 0) -> list[OutboxPdu]:
    """An MO SMS as the deliver_sm a handset's network would send: split with UDH when long."""
    segments = split_sms(text, "gsm7" if is_gsm7(text) else "ucs2")
    total = len(segments.payloads)
    src, dst = source_address(source), source_address(destination)
    out = []
    for seq, payload in enumerate(segments.payloads, 1):
        udh = bytes((0x05, 0x00, 0x03, ref & 0xFF, total, seq)) if total > 1 else b""
        out.append(
            OutboxPdu(
                source=src.addr,
                source_ton=src.ton,
                source_npi=src.npi,
                destination=dst.addr,
                dest_ton=dst.ton,
                dest_npi=dst.npi,
                short_message=udh + payload,
                esm_class=c.ESM_UDHI if total > 1 else 0,
                data_coding=segments.data_coding,
            )
        )
    return out


def queue_mo(
    conn: Connection,
    system_id: str,
    source: str,
    destination: str,
    text: str,
    inbound_id: int,
    now: datetime,
) -> int:
    """The inbound action `smpp`: the MO for `system_id`'s bind; how many parts."""
    return queue_pdus(
        conn,
        system_id,
        "mo",
        f"mo:{inbound_id}",
        mo_pdus(source, destination, text, inbound_id),
        now,
    )


# Taken per account, oldest due first; a row waits while an earlier row of its message
# to the same account (the parts of one MO) is unsent. The indexes (migration 0023): the
# account's queued rows in the order they are taken, and a message's queued rows by id,
# so a take seeks in what is queued and never reads what was sent.
_earlier = _outbox.alias("earlier")
_QUEUE = Queue(
    _outbox,
    _outbox.c.status == OutboxStatus.QUEUED,
    per="system_id",
    ready=~exists().where(
        _earlier.c.message_key == _outbox.c.message_key,
        _earlier.c.status == OutboxStatus.QUEUED,
        _earlier.c.id < _outbox.c.id,
        _earlier.c.system_id == _outbox.c.system_id,
    ),
    order=("next_attempt_at", "id"),
)


def take_due(
    conn: Connection, system_id: str, now: datetime, limit: int, lease: float
) -> list[OutboxItem]:
    """Rows `system_id`'s binds may send now (the oldest unsent one per message), leased
    through the one queue claim (`bridge.db.queue.claim`): two instances taking at once
    never both get a row."""
    return [
        OutboxItem(
            r.id, r.system_id, r.kind, r.message_key, OutboxPdu.of(r.pdu), r.attempts, r.created_at
        )
        for r in claim(conn, _QUEUE, now, limit, lease, per=system_id)
    ]


def mark_sent(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    if ids:
        conn.execute(
            update(_outbox)
            .where(_outbox.c.id.in_(list(ids)))
            .values(status=OutboxStatus.SENT, sent_at=now, error="")
        )


def mark_retry(conn: Connection, row_id: int, at: datetime, error: str) -> None:
    conn.execute(
        update(_outbox).where(_outbox.c.id == row_id).values(next_attempt_at=at, error=error[:500])
    )


def mark_refused(conn: Connection, row_id: int, error: str) -> None:
    conn.execute(
        update(_outbox)
        .where(_outbox.c.id == row_id)
        .values(status=OutboxStatus.REFUSED, error=error[:500])
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client answered one deliver_sm, and what the row becomes."""

    item: OutboxItem
    status: int  # command_status (ESME_RSYSERR when there was no answer)
    given_up: bool = False


def answered(
    conn: Connection,
    answers: Sequence[tuple[OutboxItem, int]],
    now: datetime,
    *,
    retry_delay: float,
    retry_max: float,
    give_up_after: float,
) -> list[Answer]:
    """Record the client's answers (one transaction); those given up come back marked."""
    done = []
    sent = [item.id for item, status in answers if status == c.ESME_ROK]
    mark_sent(conn, sent, now)
    for item, status in answers:
        if status == c.ESME_ROK:
            continue
        word = c.status_name(status)
        old = (now - item.created_at).total_seconds() > give_up_after
        if status in PERMANENT_ANSWERS or old:
            why = "refused for good" if status in PERMANENT_ANSWERS else "retried too long"
            mark_refused(conn, item.id, f"{word} ({why}, {item.attempts + 1} attempt(s))")
            done.append(Answer(item, status, given_up=True))
            continue
        delay = min(retry_max, retry_delay * 2 ** max(0, item.attempts))
        mark_retry(conn, item.id, now + timedelta(seconds=delay), word)
        done.append(Answer(item, status))
    return done


def pending_count(conn: Connection, system_id: str | None = None) -> int:
    """Rows not yet answered with ESME_ROK (all accounts, or one)."""
    query = select(func.count()).select_from(_outbox).where(_outbox.c.status == OutboxStatus.QUEUED)
    if system_id is not None:
        query = query.where(_outbox.c.system_id == system_id)
    return int(conn.execute(query).scalar() or 0)


def purge_outbox(conn: Connection, cut: datetime, *, dry_run: bool) -> int:
    """deliver_sm sent or given up before `cut` (MO texts, receipts' text snippets)."""
    done = _outbox.c.status.in_((OutboxStatus.SENT, OutboxStatus.REFUSED))
    return delete_before(conn, _outbox, _outbox.c.created_at, cut, done, dry_run=dry_run)
