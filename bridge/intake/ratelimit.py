"""The rate-limit recipient rule: at most `rate_per_minute` / `rate_per_day` orders per user.

Counts the user's orders in the last minute and day plus the recipients of this
transaction (a list counts with all its members); over the limit the RCPT gets
`452 4.7.1`, so the client keeps the mail and retries later.
"""

from __future__ import annotations

from datetime import timedelta

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import Reject
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction
from bridge.mt.orders import count_orders_since


def pending(transaction: Transaction) -> int:
    """Orders this transaction would create so far (direct recipients and list members)."""
    members = sum(int(t.info.members) for t in transaction.lists)
    return sum(not r.preview for r in transaction.recipients) + members


async def check_rate(store: Store, transaction: Transaction, adding: int) -> None:
    """Reject("rate_limited") if `adding` more orders would pass a limit of the policy."""
    policy = transaction.policy
    if not policy.rate_per_minute and not policy.rate_per_day:
        return  # no limits: nothing to count
    now = utcnow()
    for limit, seconds, per in (
        (policy.rate_per_minute, 60, "minute"),
        (policy.rate_per_day, 86_400, "day"),
    ):
        if not limit:
            continue
        since = now - timedelta(seconds=seconds)
        # counted up to the limit + 1: enough to tell whether it is passed
        sent = await store.read(count_orders_since, transaction.sender.user_id, since, limit + 1)
        if sent + pending(transaction) + adding > limit:
            count = f"more than {limit}" if sent > limit else f"{sent}"
            raise Reject(
                "rate_limited",
                detail=f"at most {limit} SMS per {per} for <{transaction.sender.address}>, "
                f"{count} sent in the last {per}",
            )


async def rate_limit(store: Store, transaction: Transaction, recipient: Recipient) -> None:
    """RCPT rule: one more order must stay within the sender's limits."""
    if not recipient.preview:
        await check_rate(store, transaction, 1)
