"""The status words of a notice row (a mail, DSN or report the bridge sends), as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class NoticeStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting to be sent
    DEFERRED = "deferred"  # a temporary failure; next_attempt_at says when again
    SENT = "sent"  # handed to the next mail server (final)
    FAILED = "failed"  # refused for good, or retried for too long (final)
    HELD = "held"  # an unexpected error; waits for an operator


OPEN_NOTICE_STATUSES = (NoticeStatus.QUEUED, NoticeStatus.DEFERRED)
