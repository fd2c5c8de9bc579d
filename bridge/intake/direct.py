"""The orders of a message's direct recipients: one per number, as every front door writes them.

The SMTP intake and the REST API both call `direct_orders` with the planned SMS and the
policy of the message (after its per-message overrides), so the same input makes the
same orders whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bridge.intake.addresses import Recipient
from bridge.intake.listing import scheduled
from bridge.mt.mails import NewOrder
from bridge.tenants.policy import Policy
from bridge.text.sms import SmsPlan


def direct_orders(
    mail_id: str,
    recipients: Sequence[Recipient],
    sms: SmsPlan,
    policy: Policy,
    now: datetime,
    policy_values: dict[str, Any] | None = None,
) -> tuple[NewOrder, ...]:
    """`<mail id>.<n>` per recipient, moved to send_at or past quiet hours where asked.

    `policy_values` is `policy.as_dict()` when the caller has it already (made once per
    sender); the orders share it, so it must not be changed.
    """
    expires_at = now + timedelta(seconds=policy.validity)
    if policy_values is None:
        policy_values = policy.as_dict()
    orders = tuple(
        NewOrder(
            id=f"{mail_id}.{n}",
            recipient=rcpt.msisdn,
            rcpt_address=rcpt.address,
            sender_id=policy.sender_id,
            text=sms.text,
            encoding=sms.encoding,
            parts=sms.parts,
            priority=1 if policy.priority == "express" else 0,
            expires_at=expires_at,
            policy=policy_values,
            dsn_notify=",".join(rcpt.notify) if rcpt.notify else None,
            dsn_orcpt=rcpt.orcpt,
        )
        for n, rcpt in enumerate(recipients, start=1)
    )
    return scheduled(orders, policy, now)  # sender numbers of conversations: at commit
