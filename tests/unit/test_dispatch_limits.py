"""Sender rates, the receipt deadline, the duplicate marker, and which parts receipts can match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.mt.parts import part_rows, unmatchable_events
from bridge.retry import receipt_deadline
from bridge.smpp.throttle import SenderBuckets, SenderRates, sender_key
from bridge.transports.smpp import replace_marker
from bridge.transports.smpp_config import SmppConfig
from bridge.values import OutboundSms

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_sender_rate_by_kind_and_per_number() -> None:
    rates = SenderRates(
        long_code=1.0,
        short_code=30.0,
        alphanumeric=0.0,
        per_sender=(("+4915112345678", 3.0), ("ACME", 20.0)),
    )
    assert rates.rate_for("+491701234567") == 1.0  # a long code
    assert rates.rate_for("4930123456789") == 1.0  # digits without '+': still a number
    assert rates.rate_for("80888") == 30.0  # a short code
    assert rates.rate_for("Shop") == 0.0  # alphanumeric: no limit of its own
    assert rates.rate_for("004915112345678") == 3.0  # the same number, another spelling
    assert rates.rate_for("ACME") == 20.0
    assert sender_key("+4915112345678") == sender_key("004915112345678") == "4915112345678"


def test_sender_buckets_pace_one_sender_and_leave_others_alone() -> None:
    buckets = SenderBuckets()
    rates = SenderRates(long_code=2.0)
    waits = [buckets.reserve("a", "+491701234567", rates, 0.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])  # booked in the order asked
    assert buckets.reserve("a", "Shop", rates, 0.0) == 0.0  # alphanumeric: not slowed
    assert buckets.reserve("a", "+491709999999", rates, 0.0) == 0.0  # another number
    assert buckets.reserve("b", "+491701234567", rates, 0.0) == 0.0  # another SMSC
    assert buckets.reserve("a", "+491701234567", SenderRates(long_code=0.0), 0.0) == 0.0


def test_receipt_deadline_is_validity_plus_grace_or_the_smsc_timeout() -> None:
    expires = T0 + timedelta(hours=48)
    assert receipt_deadline(T0, expires, timeout=None, grace=3600) == expires + timedelta(hours=1)
    assert receipt_deadline(T0, None, timeout=None, grace=60, validity=600) == T0 + timedelta(
        seconds=660
    )
    assert receipt_deadline(T0, expires, timeout=300, grace=3600) == T0 + timedelta(seconds=300)
    past = T0 - timedelta(minutes=5)  # validity ran out while it was being submitted
    assert receipt_deadline(T0, past, timeout=None, grace=60) == T0 + timedelta(seconds=60)


def _sms(resubmit: bool, may_replace: bool) -> OutboundSms:
    return OutboundSms(
        "M.1", "+491701234567", "ACME", "hi", "gsm7", resubmit=resubmit, may_replace=may_replace
    )


@pytest.mark.parametrize(
    ("marker", "resubmit", "may_replace", "parts", "expected"),
    [
        ("replace_if_present", True, True, 1, True),
        ("replace_if_present", False, True, 1, False),  # a first attempt: nothing to replace
        ("replace_if_present", True, False, 1, False),  # another order may be replaced
        ("replace_if_present", True, True, 2, False),  # the parts would replace each other
        ("none", True, True, 1, False),  # the safe default
    ],
)
def test_replace_if_present_only_where_it_cannot_replace_another_message(
    marker: str, resubmit: bool, may_replace: bool, parts: int, expected: bool
) -> None:
    config = _config(resubmit_marker=marker)
    assert replace_marker(_sms(resubmit, may_replace), config, parts) is expected


def _config(**changes: object) -> SmppConfig:
    return SmppConfig.model_validate(
        {"name": "a", "host": "127.0.0.1", "port": 1, "system_id": "x", "password": "y", **changes}
    )


def test_config_limits_room_is_four_times_the_windows_of_submitting_binds() -> None:
    assert _config(window=10, binds=3).limits.capacity == 120
    assert _config(bind_type="receiver").limits.capacity == 1
    limits = _config(receipt_timeout=60.0, long_code_rate=2.0).limits
    assert (limits.receipt_timeout, limits.rates.long_code) == (60.0, 2.0)


def test_parts_with_empty_or_shared_ids_cannot_be_matched() -> None:
    rows = part_rows("M.1", "a", ("7", "7", "8"), T0, T0)
    assert [(r["seq"], r["matchable"]) for r in rows] == [(1, False), (2, False), (3, True)]
    empty = part_rows("M.2", "a", ("",), T0, T0)
    assert [r["matchable"] for r in empty] == [False]
    lines = unmatchable_events(rows + empty)
    assert [order for order, _ in lines] == ["M.1", "M.2"]
    assert "parts 1,2" in lines[0][1] and "'7'" in lines[0][1]
    assert "empty message id" in lines[1][1]
    assert unmatchable_events(part_rows("M.3", "a", ("1", "2"), T0, T0)) == []
