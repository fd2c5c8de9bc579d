"""The country rule: refuse numbers outside `allowed_countries` or inside `denied_countries`."""

from __future__ import annotations

import phonenumbers

from bridge.db.store import Store
from bridge.errors import Reject
from bridge.intake.addresses import Recipient
from bridge.intake.transaction import Transaction


def country_of(msisdn: str, default_country: str = "ZZ") -> str:
    """The ISO region code of an E.164 number; a short code is national (`default_country`)."""
    if not msisdn.startswith("+"):
        return default_country.upper()
    return phonenumbers.region_code_for_number(phonenumbers.parse(msisdn)) or "ZZ"


async def allowed_country(store: Store, transaction: Transaction, recipient: Recipient) -> None:
    """RCPT rule: the number's country must be allowed (if a list is set) and not denied."""
    policy = transaction.policy
    if not policy.allowed_countries and not policy.denied_countries:
        return  # no country lists: nothing to look up
    country = country_of(recipient.msisdn, policy.default_country)
    allowed = policy.allowed_countries
    if (allowed and country not in allowed) or country in policy.denied_countries:
        raise Reject("country_not_allowed", recipient=recipient.address, country=country)
