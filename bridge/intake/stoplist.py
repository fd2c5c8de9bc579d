"""The opt-out rule: a mail to a number on the sender's customer's stop list is refused at RCPT.

`550 5.7.1 <number> has opted out …` (reply kind `opted_out`): refused inside the SMTP
dialogue, never accepted and dropped later. Entries count globally for the customer,
for every customer (an opt-out with no known customer), or for the service number the
SMS would be sent from. Numbers are compared in one spelling (E.164, see
`bridge.inbound.actions_store`), so every way of writing a stopped number is refused.
"""

from __future__ import annotations

from bridge.db.store import Store
from bridge.errors import Reject
from bridge.inbound.actions_store import is_stopped
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction


async def opted_out(store: Store, transaction: Transaction, recipient: Recipient) -> None:
    if recipient.preview:
        return
    services = (transaction.policy.sender_id,)
    if await store.read(is_stopped, transaction.sender.customer_id, recipient.msisdn, services):
        raise Reject("opted_out", recipient=recipient.msisdn)
