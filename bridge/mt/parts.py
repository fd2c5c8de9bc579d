"""Store functions for parts: keep every part the SMSC accepted whatever id it got, and mark
the parts receipts cannot be tied to.

An SMSC message id is not unique: counters restart and wrap, some SMSCs answer "" or
give every part of a long SMS the same id, some answer one id for everything. A part is
therefore always stored, and `matchable` says whether a receipt naming its id can be
tied to it:

* an empty id cannot be matched;
* an id several parts of one order share cannot say which part a receipt is about;
* an id the SMSC gave to a new part while an older part (of another order, on the
  same transport, within the receipt window) with that id still waits for its final
  report: a receipt for it could be about either message, so neither is matched. This
  is found when such a receipt comes (`REUSED_WHILE_OPEN` in the receipts query), so
  recording a submit costs no extra query; from then on all those parts are unmatchable.

Orders whose parts cannot be matched end by the receipt timeout ("unconfirmed"). Each
such decision leaves an order_event line and a log line saying what happened.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select, update

from bridge.db.core import table
from bridge.mt.status import PartState
from bridge.mt.tables import Part

log = logging.getLogger("bridge.mt.dispatch")

_part = table(Part)
FINAL_PART_STATES = tuple(sorted(s.value for s in PartState if s.is_final))

_older = _part.alias("older")
# SQL, for a part row `_part`: another message (an older part of another order, on the
# same transport, within the window) still waits for its final report with this id.
REUSED_WHILE_OPEN = (
    exists()
    .where(
        _older.c.transport == _part.c.transport,
        _older.c.smsc_id == _part.c.smsc_id,
        _older.c.order_id != _part.c.order_id,
        _older.c.submitted_at <= _part.c.submitted_at,
        _older.c.submitted_at >= bindparam("since"),
        _older.c.state.notin_(FINAL_PART_STATES),
    )
    .correlate(_part)
)
_OPEN_HOLDERS = (  # the parts concerned: every open part with the id, up to the newest
    select(_part.c.id, _part.c.order_id).where(
        _part.c.transport == bindparam("transport"),
        _part.c.smsc_id == bindparam("smsc_id"),
        _part.c.submitted_at >= bindparam("since"),
        _part.c.submitted_at <= bindparam("upto"),
        _part.c.state.notin_(FINAL_PART_STATES),
    )
)
_UNMATCHABLE = update(_part).where(_part.c.id == bindparam("p_id")).values(matchable=False)


def part_rows(
    order_id: str,
    transport: str,
    message_ids: Sequence[str],
    submitted_at: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """The part rows of one submitted order; empty ids and ids shared by its parts unmatchable."""
    shared = Counter(message_ids) if len(message_ids) > 1 else {}
    return [
        {
            "order_id": order_id,
            "seq": seq,
            "transport": transport,
            "smsc_id": smsc_id,
            "state": PartState.SUBMITTED,
            "error_code": "",
            "updated_at": now,
            "submitted_at": submitted_at,
            "matchable": bool(smsc_id) and shared.get(smsc_id, 1) == 1,
        }
        for seq, smsc_id in enumerate(message_ids, start=1)
    ]


def unmatchable_events(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(order id, history line) for each order whose own ids make parts unmatchable."""
    by_order: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not r["matchable"]:
            by_order.setdefault(r["order_id"], []).append(r)
    lines = []
    for order_id, parts in by_order.items():
        ids = {r["smsc_id"] for r in parts}
        shared = ids - {""}
        why = [f"one message id ({_ids(shared)}) to several parts"] if shared else []
        why += ["an empty message id"] if "" in ids else []
        text = f"{_seqs(parts)}: the SMSC gave {' and '.join(why)}; receipts cannot be matched"
        lines.append((order_id, text))
        log.warning("%s: %s", order_id, text)
    return lines


def mark_reused(
    conn: Connection, transport: str, smsc_id: str, upto: datetime, since: datetime
) -> list[tuple[str, str]]:
    """A receipt named an id several open messages hold: make all of them unmatchable.

    Returns (order id, history line) for every order concerned, and logs what happened.
    """
    holders = conn.execute(
        _OPEN_HOLDERS,
        {"transport": transport, "smsc_id": smsc_id, "since": since, "upto": upto},
    ).all()
    if not holders:
        return []
    conn.execute(_UNMATCHABLE, [{"p_id": h.id} for h in holders])
    orders = sorted({h.order_id for h in holders})
    line = (
        f"the SMSC gave message id {smsc_id!r} on {transport} to several messages "
        f"still waiting for their report ({', '.join(orders)}); receipts cannot be told apart"
    )
    log.warning("%s", line)
    return [(order_id, line) for order_id in orders]


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in sorted(ids))


def _seqs(parts: list[dict[str, Any]]) -> str:
    seqs = [str(r["seq"]) for r in parts]
    return f"part {seqs[0]}" if len(seqs) == 1 else f"parts {','.join(seqs)}"
