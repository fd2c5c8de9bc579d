"""Destination policy at RCPT: reserved domains, premium numbers, short codes, number runs.

Pure code: decides from the parsed recipient and what MAIL learned; refuses with `Reject`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.errors import Reject
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction


def check_destination(
    domain_customers: Mapping[str, str], transaction: Transaction, recipient: Recipient
) -> None:
    """Refuse a recipient the sender's customer may not send to."""
    owner = domain_customers.get(recipient.domain)
    if owner is not None and owner != transaction.sender.customer_name:
        raise Reject("domain_reserved", recipient=recipient.address, domain=recipient.domain)
    access = transaction.access
    if recipient.kind == "premium" and not access.premium:
        raise Reject("premium_refused", recipient=recipient.address)
    if recipient.kind == "short_code" and not access.short_codes:
        raise Reject("short_code_refused", recipient=recipient.address)
    if access.sequential_run:
        run = sequential_run([r.msisdn for r in transaction.recipients], recipient.msisdn)
        if run >= access.sequential_run:
            raise Reject("sequential_refused", recipient=recipient.address, detail=run)


def sequential_run(numbers: list[str], new: str) -> int:
    """Length of the run of consecutive numbers (same length) that `new` would extend."""
    if not new.lstrip("+").isdigit():
        return 1
    have = {int(n.lstrip("+")) for n in numbers if n.lstrip("+").isdigit() and len(n) == len(new)}
    value = int(new.lstrip("+"))
    low = value
    while low - 1 in have:
        low -= 1
    high = value
    while high + 1 in have:
        high += 1
    return high - low + 1
