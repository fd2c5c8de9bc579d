"""The recipient rules: the explicit, ordered list of checks every accepted recipient passes,
at every door: an SMTP RCPT, a number of a REST API request, an SMPP `submit_sm`.

A rule is `async def rule(store, transaction, recipient) -> None` and refuses by
raising `Reject(kind, …)`; the handler answers with that kind's reply from the one
reply table. Rules run after the address was parsed into an E.164 number.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bridge.db.store import Store
from bridge.intake.addresses import Recipient
from bridge.intake.countries import allowed_country
from bridge.intake.destinations import allowed_destination
from bridge.intake.ratelimit import rate_limit
from bridge.intake.stoplist import opted_out
from bridge.intake.transaction import Transaction

RcptRule = Callable[[Store, Transaction, Recipient], Awaitable[None]]

# In order; each entry is one function, added by the feature that needs it.
RCPT_RULES: tuple[RcptRule, ...] = (
    allowed_destination,
    allowed_country,
    rate_limit,
    opted_out,
)
