"""Backoff, route choice, and how receipts move parts and orders (forward only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

import pytest

from bridge.mt.receipt_states import next_part_state, order_outcome
from bridge.mt.routing import Route, choose
from bridge.retry import next_attempt

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class _Backoff(TypedDict):
    minimum: float
    maximum: float
    lifetime: float


def test_backoff_doubles_with_age_between_floor_and_ceiling() -> None:
    kw: _Backoff = {"minimum": 30.0, "maximum": 900.0, "lifetime": 86400.0}
    assert next_attempt(T0, T0, **kw) == T0 + timedelta(seconds=30)
    now = T0 + timedelta(seconds=100)
    assert next_attempt(T0, now, **kw) == now + timedelta(seconds=100)
    now = T0 + timedelta(hours=2)
    assert next_attempt(T0, now, **kw) == now + timedelta(seconds=900)


def test_no_next_attempt_after_lifetime_or_expiry() -> None:
    kw: _Backoff = {"minimum": 30.0, "maximum": 900.0, "lifetime": 3600.0}
    assert next_attempt(T0, T0 + timedelta(hours=1), **kw) is None
    expires = T0 + timedelta(seconds=40)
    assert next_attempt(T0, T0 + timedelta(seconds=20), expires_at=expires, **kw) == expires
    assert next_attempt(T0, T0 + timedelta(seconds=41), expires_at=expires, **kw) is None


def test_first_matching_prefix_wins_default_last() -> None:
    routes = [Route("+4917", ("a", "b")), Route("49", ("c",)), Route("", ("d",))]
    assert choose("+491701234567", routes) == ("a", "b")
    assert choose("+4930123", routes) == ("c",)
    assert choose("+33612345678", routes) == ("d",)


@pytest.mark.parametrize(
    ("current", "received", "expected"),
    [
        ("submitted", "enroute", "enroute"),
        ("enroute", "delivered", "delivered"),
        ("delivered", "undeliverable", "delivered"),  # final never changes
        ("undeliverable", "delivered", "undeliverable"),
        ("accepted", "submitted", "accepted"),  # never backwards
        ("submitted", "expired", "expired"),
    ],
)
def test_part_state_moves_forward_only(current: str, received: str, expected: str) -> None:
    assert next_part_state(current, received) == expected


def test_order_outcome() -> None:
    assert order_outcome(["delivered", "delivered", "delivered"], 3) == "delivered"
    assert order_outcome(["delivered", "delivered"], 3) is None  # a part has no receipt yet
    assert order_outcome(["delivered", "enroute", "submitted"], 3) is None
    assert order_outcome(["submitted", "rejected", "delivered"], 3) == "undeliverable"
