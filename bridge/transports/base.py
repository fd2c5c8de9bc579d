"""The transport protocol: how dispatch reaches an SMSC and how an SMSC reaches us.

The values that cross it (`OutboundSms`, `Receipt`, `InboundSms`, ...) are in
`bridge.values`.

A transport translates its own errors at the edge: it raises `TransportTemporaryFailure`
(throttled, queue full, not bound, timeout: try again later or on another route)
or `TransportPermanentFailure` (bad destination, rejected: give up), never a foreign
exception. Receipts and inbound messages are handed to the `Inbox`; the
transport acknowledges them to the SMSC only after the inbox call returned,
because the inbox returns once the row is committed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from bridge.errors import BridgeError, PermanentFailure, TemporaryFailure
from bridge.smpp.throttle import SenderRates
from bridge.values import InboundSms, MoKey, MoPart, OutboundSms, Receipt, SubmitResult


class TransportError(BridgeError):
    """Base of the errors a transport raises from `submit`: one of the two below."""

    def __init__(
        self,
        reason: str,
        *,
        code: int | None = None,
        kind: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # e.g. the SMPP command_status, when there is one
        # why, in one word for the order history: throttled, not-bound, unknown-outcome, ...
        self.kind = kind or ("temporary" if isinstance(self, TemporaryFailure) else "rejected")
        self.retry_after = retry_after  # seconds, when the transport knows better than backoff


class TransportTemporaryFailure(TransportError, TemporaryFailure):
    """Try again later (or on the next transport of the route)."""


class TransportPermanentFailure(TransportError, PermanentFailure):
    """The SMSC refused the message for good; retrying cannot help."""


class UnsendableKind(enum.StrEnum):
    """The `kind` of a TransportPermanentFailure raised before a submit went out: the
    message cannot be put into one (no command_status; dispatch keeps it as the cause)."""

    SENDER = "invalid-sender"  # the sender id cannot be the source address
    TEXT = "invalid-text"  # the text (or a submit_sm field) cannot be encoded


class InboxUnavailable(TemporaryFailure):
    """The inbox could not store an item; the transport must answer a transient error."""


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """What dispatch must know about a transport besides how to submit.

    `capacity`: orders handed to it at the same time (more wait in the queue, so a slow
    SMSC holds only its own orders; an SMPP transport takes four times its windows, so
    they stay busy while dispatch claims the next batch); `receipt_timeout`: seconds
    after submission after which an order without a final report is "unconfirmed"
    (None: the end of the order's validity plus `receipt_grace`); `rates`: each sender
    id's sending rate.
    """

    capacity: int = 10
    receipt_timeout: float | None = None
    receipt_grace: float = 3600.0
    rates: SenderRates = field(default_factory=SenderRates)


class MoPartStore(Protocol):
    """Keeps MO parts durably until their message is complete (or timed out)."""

    async def add(self, part: MoPart) -> tuple[MoPart, ...] | None:
        """Store the part (a repeat replaces it); every part, in order, once all are there.

        Returns once the part is committed; raises InboxUnavailable otherwise.
        """
        ...

    async def discard(self, key: MoKey) -> None:
        """Forget a message whose joined text was handed to the inbox."""
        ...

    async def expired(self, transport: str, older_than: float) -> list[tuple[MoPart, ...]]:
        """Incomplete messages whose first part is older than `older_than` seconds."""
        ...


class Inbox(Protocol):
    """Where transports hand over what the SMSC sends us."""

    async def on_message(self, sms: InboundSms) -> None:
        """Return once the inbound row is committed; raise InboxUnavailable otherwise."""
        ...

    async def on_receipt(self, receipt: Receipt) -> None:
        """Return once the receipt row is committed; raise InboxUnavailable otherwise."""
        ...

    async def on_text_receipt(self, receipt: Receipt, sms: InboundSms) -> bool:
        """A receipt that came as unmarked text, which a phone could have written too.

        Kept as a receipt when a part with its message id exists (True), else as the
        inbound SMS `sms` (False), so an unmatched one reaches a mailbox. Returns once
        committed; raises InboxUnavailable otherwise.
        """
        ...


class Transport(Protocol):
    """A way to reach an SMSC."""

    name: str

    @property
    def limits(self) -> TransportLimits:
        """Capacity, receipt timeout and sender rates (see TransportLimits)."""
        ...

    async def start(self, inbox: Inbox) -> None:
        """Connect and bind (in the background), then feed `inbox`."""
        ...

    async def submit(self, sms: OutboundSms, *, until: float | None = None) -> SubmitResult:
        """Submit every part; raise TransportTemporaryFailure or TransportPermanentFailure.

        `until` (loop time): when the order's claim runs out, less the time its outcome
        takes to be recorded. The submit ends by then, whatever it waits for (a bind,
        a pause, a token, a window slot, an answer), so that no other instance claims
        the order and sends it again while this one still works on it."""
        ...

    async def stop(self) -> None:
        """Unbind and close."""
        ...
