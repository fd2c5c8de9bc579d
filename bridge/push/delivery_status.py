"""The status words of an HTTP push delivery row, as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class PushStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting to be sent
    DEFERRED = "deferred"  # a temporary failure; next_attempt_at says when again
    SENT = "sent"  # the customer's URL answered 2xx (final)
    FAILED = "failed"  # refused for good, or retried past give_up_at (final)


OPEN_PUSH_STATUSES = (PushStatus.QUEUED, PushStatus.DEFERRED)
