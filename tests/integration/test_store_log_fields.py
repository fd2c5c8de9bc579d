"""A log line written on a database thread carries the fields of the call that put it there."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from sqlalchemy import Connection

from bridge import logcontext
from bridge.db.engine import open_engine
from bridge.db.store import Store


async def test_a_database_call_keeps_the_callers_log_fields(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logcontext.ContextFilter())
    handler.setFormatter(logcontext.formatter("json"))
    logger = logging.getLogger("test.store_fields")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def record(conn: Connection) -> None:
        logger.info("recorded on the database thread")

    def batch(conn: Connection, items: list[str]) -> list[str]:
        logger.info("a batch of %d", len(items))
        return items

    store = Store(open_engine(f"sqlite:///{tmp_path / 'bridge.db'}"))
    try:
        with logcontext.fields(order_id="ABC.1", mail_id="ABC", smsc="operator"):
            await store.call(record)
        await store.call(record)  # outside: no fields
        with logcontext.fields(mail_id="FIRST"):  # a group commit is nobody's in particular
            await store.grouped(batch, "one")
    finally:
        await store.close()
        logger.removeHandler(handler)
    inside, outside, grouped = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["order_id"], inside["mail_id"], inside["smsc"]) == ("ABC.1", "ABC", "operator")
    assert not set(logcontext.FIELDS) & set(outside)
    assert grouped["message"] == "a batch of 1" and not set(logcontext.FIELDS) & set(grouped)
