"""The status words of an inbound SMS row, as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # stored and acknowledged, not yet routed
    NOTIFIED = "notified"  # routed, and a notice (a mail) was queued for it
    HANDLED = "handled"  # routed without a mail: pushed, or taken by an action (stop, list ...)
    UNROUTABLE = "unroutable"  # nobody to give it to (kept, logged)
    HELD = "held"  # an unexpected error; waits for an operator
