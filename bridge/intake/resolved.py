"""A sender's settings resolved once per sender row read, for every door (SMTP, SMPP, REST).

Resolving the customer → profile → user settings into a `Policy`, parsing the customer's
access rules (client networks, TLS, AUTH, velocity) and making the text rules cost more
than the rest of a small mail's checks. Each door reads its senders through a
`SenderCache`, which keeps a `Sender` row for a few seconds and reads it again after;
`Resolutions.of(sender)` resolves each row once, so a changed setting applies as soon as
the row is read again, and every mail of a sender in between shares one resolution.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import StorageUnavailable
from bridge.intake.access import CustomerAccess
from bridge.intake.sms_plan import text_rules
from bridge.intake.transaction import Transaction
from bridge.tenants.policy import Policy, resolve
from bridge.tenants.senders import Sender
from bridge.text.compose import ComposeRules
from bridge.text.pipeline import SmsPolicy

log = logging.getLogger("bridge.intake")

MAX_RESOLVED = 10_000  # senders whose resolution is kept


@dataclass(frozen=True, slots=True)
class Resolved:
    """One sender row's settings, resolved (read only: shared by its mails)."""

    sender: Sender
    policy: Policy
    access: CustomerAccess
    policy_values: dict[str, Any]  # `policy.as_dict()`, the orders' stored policy
    text_rules: tuple[ComposeRules, SmsPolicy]

    def transaction(self) -> Transaction:
        """A transaction of this sender (its policy, access and the values made once)."""
        return Transaction(
            sender=self.sender,
            policy=self.policy,
            access=self.access,
            policy_values=self.policy_values,
            text_rules=self.text_rules,
        )


def customer_access(settings: Mapping[str, Any]) -> CustomerAccess:
    """The customer's access rules; invalid stored settings are a temporary fault of ours
    (the client is asked to try again, and the log says why)."""
    try:
        return CustomerAccess.from_settings(settings)
    except (ValueError, TypeError) as exc:
        log.error("customer access settings are invalid (%s); treated as a temporary fault", exc)
        raise StorageUnavailable(f"invalid customer access settings: {exc}") from exc


class Resolutions:
    """Each `Sender` row resolved once against the bridge's `defaults`."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._by_row: dict[int, Resolved] = {}

    def of(self, sender: Sender) -> Resolved:
        """`sender`'s resolution (kept by the row's id: the entry holds the row, so the id
        stays its own while it is in here)."""
        hit = self._by_row.get(id(sender))
        if hit is not None and hit.sender is sender:
            return hit
        policy = resolve(
            self.defaults, sender.customer_settings, sender.profile_settings, sender.user_settings
        )
        resolved = Resolved(
            sender,
            policy,
            customer_access(sender.customer_settings),
            policy.as_dict(),
            text_rules(policy),
        )
        if len(self._by_row) >= MAX_RESOLVED:  # rows read again replace theirs
            self._by_row.clear()
        self._by_row[id(sender)] = resolved
        return resolved
