"""Destination policy: reserved domains, premium numbers, short codes, number runs.

`check_number` (premium-rate numbers, short codes, runs of consecutive numbers) holds on
every door: it is the first of the recipient rules (`rules.RCPT_RULES`), which the SMTP
door, the REST API and the SMPP server all run, so an account refused a number by mail
is refused it by HTTP and SMPP too. `check_domain` (a recipient domain another customer
owns) is the SMTP door's alone: only there does the sender choose the domain.

Pure code: decides from the parsed recipient and the sender's access rules; refuses with
`Reject`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.errors import Reject
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction


def check_domain(
    domain_customers: Mapping[str, str], transaction: Transaction, recipient: Recipient
) -> None:
    """Refuse a recipient domain that another customer owns."""
    owner = domain_customers.get(recipient.domain)
    if owner is not None and owner != transaction.sender.customer_name:
        raise Reject("domain_reserved", recipient=recipient.address, domain=recipient.domain)


async def allowed_destination(
    _store: object, transaction: Transaction, recipient: Recipient
) -> None:
    """The recipient rule of `check_number` (it reads nothing)."""
    check_number(transaction, recipient)


def check_number(transaction: Transaction, recipient: Recipient) -> None:
    """Refuse a number the sender's access rules do not allow: a premium-rate or
    shared-cost number, a short code, or one that continues a run of consecutive numbers
    among the transaction's recipients."""
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
