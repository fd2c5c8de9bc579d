"""A sender's settings are resolved once per sender row read, for the SMTP, SMPP and REST doors."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import StorageUnavailable
from bridge.intake.resolved import Resolutions
from bridge.tenants.senders import Sender
from bridge.tenants.settings import DefaultsSettings

DEFAULTS = DefaultsSettings().model_dump()


def _sender(customer: dict[str, Any] | None = None, user: dict[str, Any] | None = None) -> Sender:
    return Sender(
        user_id=1,
        customer_id=1,
        customer_name="acme",
        address="alice@example.com",
        display_name="Alice",
        enabled=True,
        customer_enabled=True,
        customer_settings=customer or {"default_country": "DE"},
        profile_settings={},
        user_settings=user or {},
    )


def test_one_row_is_resolved_once_and_a_row_read_again_anew() -> None:
    resolutions = Resolutions(DEFAULTS)
    row = _sender(user={"max_parts": 3})
    first = resolutions.of(row)
    assert resolutions.of(row) is first  # the same row: the same resolution
    assert first.policy.max_parts == 3 and first.policy.default_country == "DE"
    assert first.policy_values == first.policy.as_dict()
    transaction = first.transaction()
    assert transaction.policy is first.policy and transaction.access is first.access
    assert transaction.policy_values is first.policy_values
    # The sender cache reads the row again after its TTL: a changed setting applies.
    again = resolutions.of(_sender(user={"max_parts": 2}))
    assert again is not first and again.policy.max_parts == 2


def test_access_rules_are_the_customers() -> None:
    resolved = Resolutions(DEFAULTS).of(
        _sender(customer={"access": {"networks": ["10.0.0.0/8"], "require_tls": True}})
    )
    assert resolved.access.networks == ("10.0.0.0/8",) and resolved.access.require_tls


def test_invalid_stored_access_rules_are_a_temporary_fault_and_not_kept() -> None:
    resolutions = Resolutions(DEFAULTS)
    bad = _sender(customer={"access": {"networks": ["not a network"]}})
    for _ in range(2):  # nothing half-made is kept: the next mail is refused the same way
        with pytest.raises(StorageUnavailable, match="invalid customer access settings"):
            resolutions.of(bad)
