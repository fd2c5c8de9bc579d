"""Why a waiting order waits: read from its row and its history (`mailsms orders --show`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.mt.waiting import WaitReason, waiting

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


def _order(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "status": "queued",
        "next_attempt_at": LATER,
        "attempts": 0,
        "policy": {},
        "error": "",
    }
    return {**row, **changes}


def test_send_at_in_the_future_is_named() -> None:
    order = _order(policy={"send_at": LATER.isoformat()})
    found = waiting(order, [(NOW, "queued", "from a@b")], NOW)
    assert found is not None and found.reason is WaitReason.SEND_AT
    assert found.line(NOW) == (
        f"waiting: due 2026-12-02 12:30:00Z (in 30 min): scheduled (send_at): "
        f"send_at {LATER.isoformat()}"
    )


def test_quiet_hours_move_the_due_time_past_send_at() -> None:
    order = _order(policy={"send_at": NOW.isoformat(), "quiet_hours": "22:00-07:00"})
    found = waiting(order, [], NOW - timedelta(hours=1))
    assert found is not None and found.reason is WaitReason.QUIET_HOURS
    assert found.detail == "quiet hours 22:00-07:00"


def test_deferred_after_an_error_or_throttled() -> None:
    error = [
        (NOW, "smsc-error", "smsc: ESME_RSYSERR"),
        (NOW, "deferred", "smsc: ESME_RSYSERR; next attempt 2026-12-02 12:30:00Z"),
    ]
    found = waiting(_order(status="deferred", attempts=1), error, NOW)
    assert found is not None and found.reason is WaitReason.DEFERRED
    assert found.detail.startswith("smsc: ESME_RSYSERR")
    throttled = [
        (NOW - timedelta(minutes=5), "deferred", "an older error"),
        (NOW, "throttled", "smsc: ESME_RTHROTTLED 3 times"),
        (NOW, "deferred", "smsc: ESME_RTHROTTLED 3 times; bind paused 2.0 s"),
    ]
    found = waiting(_order(status="deferred", attempts=2), throttled, NOW)
    assert found is not None and found.reason is WaitReason.THROTTLED


def test_due_claimed_parked_and_held() -> None:
    due = waiting(_order(next_attempt_at=NOW - timedelta(seconds=5)), [], NOW)
    assert due is not None and due.reason is WaitReason.DUE
    assert due.line(NOW).startswith("waiting: due since 2026-12-02 11:59:55Z")
    claimed = waiting(_order(attempts=1), [], NOW)
    assert claimed is not None and claimed.reason is WaitReason.CLAIMED
    parked = waiting(_order(), [], NOW)
    assert parked is not None and parked.reason is WaitReason.NO_ROOM
    held = waiting(_order(status="held", error="Traceback …\nRuntimeError: boom"), [], NOW)
    assert held is not None and held.reason is WaitReason.HELD and held.due is None
    assert held.line(NOW) == "waiting: not due (held): held for an operator: RuntimeError: boom"


def test_submitted_and_final_orders_are_not_waiting() -> None:
    for status in ("submitted", "delivered", "failed", "expired"):
        assert waiting(_order(status=status), [], NOW) is None


def test_naive_times_from_sqlite_are_utc() -> None:
    order = _order(next_attempt_at=LATER.replace(tzinfo=None))
    found = waiting(order, [], NOW)
    assert found is not None and found.due == LATER
