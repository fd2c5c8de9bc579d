"""What the intake learns during one SMTP transaction (sender, policy, recipients)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.intake.access import CustomerAccess
from bridge.intake.addresses import Recipient
from bridge.intake.dsn_params import MailDsn
from bridge.tenants.policy import Policy
from bridge.tenants.senders import Sender
from bridge.text.compose import ComposeRules
from bridge.text.pipeline import SmsPolicy


@dataclass
class Transaction:
    """Filled by MAIL (sender, policy) and RCPT (recipients); read by DATA."""

    sender: Sender
    policy: Policy
    recipients: list[Recipient] = field(default_factory=list)
    access: CustomerAccess = field(default_factory=CustomerAccess)
    dsn: MailDsn = field(default_factory=MailDsn)
    client_ip: str = ""
    lists: list[Any] = field(default_factory=list)  # fanout.ListTarget: list recipients
    # `policy.as_dict()`, made once per sender (not per mail) and shared by its orders:
    # read only, like the orders that carry it
    policy_values: dict[str, Any] | None = None
    # `sms_plan.text_rules(policy)`, made once per sender like `policy_values`
    text_rules: tuple[ComposeRules, SmsPolicy] | None = None
