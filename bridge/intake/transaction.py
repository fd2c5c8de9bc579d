"""What the intake learns during one SMTP transaction (sender, policy, recipients)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.intake.addresses import Recipient
from bridge.policy import Policy
from bridge.store.intake import Sender


@dataclass
class Transaction:
    """Filled by MAIL (sender, policy) and RCPT (recipients); read by DATA."""

    sender: Sender
    policy: Policy
    recipients: list[Recipient] = field(default_factory=list)
    lists: list[Any] = field(default_factory=list)  # fanout.ListTarget: list recipients
