"""The inbox transports hand receipts and inbound SMS to: commit the row, then return.

A receipt that came as unmarked text (`on_text_receipt`) is kept as a receipt only
when a part has its message id, else as an inbound SMS: a phone's text that looks
like a receipt reaches a mailbox instead of vanishing among the receipts.
The transport acknowledges to the SMSC only after these calls returned; when the
store is unavailable they raise `InboxUnavailable`, and the transport answers a
transient status so the SMSC delivers again later. Rows arriving while the previous
commit runs are committed together (`Store.grouped`); each call still returns only
after its own row is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import StorageUnavailable
from bridge.inbound.store import insert_inbound, part_exists
from bridge.metrics import Metrics
from bridge.mt import lanes
from bridge.mt.receipts import insert_receipts
from bridge.transports.base import InboxUnavailable
from bridge.values import InboundSms, Receipt

log = logging.getLogger("bridge.inbound")


class StoreInbox:
    def __init__(
        self,
        store: Store,
        on_receipt: Callable[[], None] = lambda: None,
        on_message: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics.unregistered()
        self._on_receipt = on_receipt
        self._on_message = on_message

    async def on_receipt(self, receipt: Receipt) -> None:
        try:
            await self.store.grouped(_insert_receipts, (receipt, utcnow()), lane=lanes.OUTCOMES)
        except StorageUnavailable as exc:
            log.error(
                "receipt %s from %s not stored: %s", receipt.message_id, receipt.transport, exc
            )
            raise InboxUnavailable(str(exc)) from exc
        self.metrics.receipts.labels(receipt.transport, receipt.state.value).inc()
        self._on_receipt()

    async def on_text_receipt(self, receipt: Receipt, sms: InboundSms) -> bool:
        try:
            is_receipt = await self.store.call(_insert_text_receipt, receipt, sms, utcnow())
        except StorageUnavailable as exc:
            log.error("text from %s (a receipt?) not stored: %s", sms.source, exc)
            raise InboxUnavailable(str(exc)) from exc
        if is_receipt:
            self.metrics.receipts.labels(receipt.transport, receipt.state.value).inc()
            self._on_receipt()
        else:
            self.metrics.inbound_sms.labels(sms.transport).inc()
            self._on_message()
        return is_receipt

    async def on_message(self, sms: InboundSms) -> None:
        try:
            inbound_id = await self.store.grouped(_insert_inbound, (sms, utcnow()))
        except StorageUnavailable as exc:
            log.error("inbound SMS from %s not stored: %s", sms.source, exc)
            raise InboxUnavailable(str(exc)) from exc
        log.info(
            "inbound %s: from %s to %s, %d part(s) stored",
            inbound_id,
            sms.source,
            sms.destination,
            sms.parts,
        )
        self.metrics.inbound_sms.labels(sms.transport).inc()
        self._on_message()


def _insert_receipts(conn: Connection, items: list[tuple[Receipt, datetime]]) -> list[None]:
    insert_receipts(conn, items)
    return [None] * len(items)


def _insert_text_receipt(
    conn: Connection, receipt: Receipt, sms: InboundSms, now: datetime
) -> bool:
    """A receipt if a part has its message id, else the inbound SMS; True for a receipt."""
    if part_exists(conn, receipt.transport, receipt.message_id):
        insert_receipts(conn, [(receipt, now)])
        return True
    inbound_id = insert_inbound(conn, sms, now)
    log.warning(
        "inbound %s: text from %s to %s reads like a receipt, but no part has id %r: an SMS",
        inbound_id,
        sms.source,
        sms.destination,
        receipt.message_id,
    )
    return False


def _insert_inbound(conn: Connection, items: list[tuple[InboundSms, datetime]]) -> list[int]:
    return [insert_inbound(conn, sms, at) for sms, at in items]
