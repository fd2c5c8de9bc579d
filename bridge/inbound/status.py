"""The status words of an inbound SMS row, and how it was routed, as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # stored and acknowledged, not yet routed
    NOTIFIED = "notified"  # routed, and a notice (a mail) was queued for it
    HANDLED = "handled"  # routed without a mail: pushed, or taken by an action (stop, list ...)
    UNROUTABLE = "unroutable"  # nobody to give it to (kept, logged)
    LIMITED = "limited"  # over `[inbound] mo_limit` from its sender: kept, its actions not run
    HELD = "held"  # an unexpected error; waits for an operator


class InboundRoute(enum.StrEnum):
    """How an inbound SMS found its customer (`inbound.route`)."""

    KEYWORD = "keyword"  # a keyword of a (shared) number matched
    NUMBER = "number"  # a dedicated or prefix number's default actions
    REPLY = "reply"  # the reply assignment: whom the texter last heard from
    UNMATCHED = "unmatched"  # shared number, nothing matched: the row marked takes_unmatched
    OPERATOR = "operator"  # shared number, nothing matched, nobody takes it: the operator
    UNCONFIGURED = "unconfigured"  # no number configured and no assignment (dynamic SMS2Mail)
