"""The allowed-countries recipient rule: refuse numbers outside the policy's `allowed_countries`."""

from __future__ import annotations

import phonenumbers

from bridge.errors import Reject
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction
from bridge.store.store import Store


def country_of(msisdn: str) -> str:
    """The ISO region code of an E.164 number ("ZZ" when unknown)."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(msisdn)) or "ZZ"


async def allowed_country(store: Store, transaction: Transaction, recipient: Recipient) -> None:
    """RCPT rule: with `allowed_countries` set, the number's country must be in it."""
    allowed = transaction.policy.allowed_countries
    if allowed and country_of(recipient.msisdn) not in allowed:
        raise Reject(
            "country_not_allowed", recipient=recipient.address, country=country_of(recipient.msisdn)
        )
