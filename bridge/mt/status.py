"""The status words of mail-to-SMS rows: orders, their parts and receipts, as stored.

Pure code. Each enum is a `StrEnum`, so a member is the very string the database holds
and compares equal to it; the table modules (`bridge/mt/tables.py`) use them as defaults
and the rest of the code names them instead of writing the words.
"""

from __future__ import annotations

import enum

from bridge.values import ReceiptState


class OrderStatus(enum.StrEnum):
    QUEUED = "queued"  # accepted, waiting for dispatch
    DEFERRED = "deferred"  # a temporary failure; next_attempt_at says when again
    SUBMITTED = "submitted"  # every part accepted by the SMSC
    DELIVERED = "delivered"  # every part delivered (final)
    UNDELIVERABLE = "undeliverable"  # a part failed on the network (final)
    EXPIRED = "expired"  # retried for too long (final)
    FAILED = "failed"  # the SMSC refused it for good (final)
    # accepted by the SMSC, but no final delivery report came before the receipt timeout,
    # or receipts cannot be tied to it (final: "sent, no delivery report")
    UNCONFIRMED = "unconfirmed"
    HELD = "held"  # an unexpected error; waits for an operator (traceback in `error`)


# Claimable: a dispatcher may take it (bridge/db/queue.py calls these the open statuses).
OPEN_ORDER_STATUSES = (OrderStatus.QUEUED, OrderStatus.DEFERRED)

# Not yet handed to an SMSC: a client may still cancel it (SMPP cancel_sm, the REST API).
CANCELLABLE_ORDER_STATUSES = (OrderStatus.QUEUED, OrderStatus.DEFERRED, OrderStatus.HELD)

FINAL_ORDER_STATUSES = frozenset(
    {
        OrderStatus.DELIVERED,
        OrderStatus.UNDELIVERABLE,
        OrderStatus.EXPIRED,
        OrderStatus.FAILED,
        OrderStatus.UNCONFIRMED,
    }
)


class PartState(enum.StrEnum):
    """One SMS part: submitted until a receipt says more, then the receipt's state word."""

    SUBMITTED = "submitted"  # accepted by the SMSC, no receipt yet
    ENROUTE = ReceiptState.ENROUTE.value
    ACCEPTED = ReceiptState.ACCEPTED.value
    UNKNOWN = ReceiptState.UNKNOWN.value
    DELIVERED = ReceiptState.DELIVERED.value
    EXPIRED = ReceiptState.EXPIRED.value
    DELETED = ReceiptState.DELETED.value
    UNDELIVERABLE = ReceiptState.UNDELIVERABLE.value
    REJECTED = ReceiptState.REJECTED.value

    @property
    def is_final(self) -> bool:
        return self is not PartState.SUBMITTED and ReceiptState(self.value).is_final


class ReceiptStatus(enum.StrEnum):
    NEW = "new"  # stored and acknowledged, not yet linked to a part
    APPLIED = "applied"  # linked; its part and order moved forward
    ORPHAN = "orphan"  # no part matched within the receipt window (kept, logged)
    # its id names a part receipts cannot be tied to (an empty id, one id for several
    # parts, or an id the SMSC gave to two open messages): kept, logged, never applied
    UNMATCHED = "unmatched"
