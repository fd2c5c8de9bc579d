"""Why an order failed for good, as stored: `order.cause` and `order.cause_code`.

Pure code. The code that makes an order final says why in a word (`FailureCause`) and,
for an SMSC's refusal, with its SMPP command_status (`Cause.code`), next to the
human-readable reason in `order.error`. A receipt's failure is not stored here: the
failed part's state and error code (`part.state`, `part.error_code`) say it already.
The DSN's status code is read from these (`bridge/outcomes/dsn_status.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FailureCause(enum.StrEnum):
    """The cause of a final failure in one word (the order's `cause` column)."""

    SMSC_REFUSED = "smsc-refused"  # a submit_sm answered with a non-zero command_status
    SENDER_INVALID = "sender-invalid"  # the sender id cannot be sent as an SMPP source address
    TEXT_INVALID = "text-invalid"  # the text cannot be encoded as the SMSC takes it
    VALIDITY_PASSED = "validity-passed"  # the validity period ran out before any submit
    RETRIES_EXHAUSTED = "retries-exhausted"  # temporary failures until the retry lifetime ended
    NO_ROUTE = "no-route"  # no route took the number until the retry lifetime ended
    REFUSED = "refused"  # an operator (or the velocity check) refused to send it


@dataclass(frozen=True, slots=True)
class Cause:
    """Why an order failed: the word, and the SMSC's command_status when it refused."""

    kind: FailureCause
    code: int | None = None
