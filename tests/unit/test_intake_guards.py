"""Pure intake guards: AUTH failure counting, the log-rate limiter, the access decision and its
warnings, backpressure reservations, pumping prefixes, bounds of per-mail overrides."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bridge.errors import Reject, reply
from bridge.intake.access import Client, CustomerAccess, check_client, exposure
from bridge.intake.authguard import AuthGuard, AuthLimits
from bridge.intake.backpressure import Backpressure
from bridge.intake.lograte import LogLimiter
from bridge.intake.overrides import apply_overrides
from bridge.intake.server import _bad_bytes, _minutes
from bridge.intake.velocity import prefix_of, upper_bound, watched
from bridge.tenants.policy import PolicyError, resolve
from bridge.tenants.policy_values import parse_duration, parse_send_at
from bridge.text.mime import extract


def test_auth_failures_delay_more_and_more_then_lock_the_address() -> None:
    guard = AuthGuard(AuthLimits(max_failures=4, max_failures_per_login=100, delay=1, delay_max=3))
    delays = []
    for n in range(4):
        assert guard.begin("10.0.0.1", f"user{n}", now=n) is None
        delay, started = guard.end("10.0.0.1", f"user{n}", now=n, ok=False)
        delays.append(delay)
    assert delays == [1, 2, 3, 3]  # doubling, capped
    assert started is not None and started.subject == "address"
    locked = guard.begin("10.0.0.1", "user9", now=10)
    assert locked is not None and locked.seconds == 900 - 7
    assert guard.begin("10.0.0.2", "user9", now=10) is None  # other addresses are not locked
    assert guard.begin("10.0.0.1", "user9", now=904) is None  # the lockout ends


def test_an_ipv6_client_is_locked_out_with_its_whole_64() -> None:
    """A new address from the same /64 for every guess does not reset the count."""
    guard = AuthGuard(AuthLimits(max_failures=3, max_failures_per_login=100))
    for n in range(3):
        ip = f"2001:db8:aa:bb::{n + 1:x}"
        assert guard.begin(ip, f"user{n}", now=n) is None
        guard.end(ip, f"user{n}", now=n, ok=False)
    locked = guard.begin("2001:db8:aa:bb:1234::9", "user9", now=5)
    assert locked is not None and locked.subject == "address"
    assert guard.begin("2001:db8:aa:bc::1", "user9", now=5) is None  # the next /64


def test_auth_attempts_running_in_parallel_count_against_the_limit() -> None:
    guard = AuthGuard(AuthLimits(max_failures=3))
    started = [guard.begin("10.0.0.1", "sap", now=0) for _ in range(5)]
    assert [s is None for s in started] == [True, True, True, False, False]
    for _ in range(3):
        guard.end("10.0.0.1", "sap", now=1, ok=False)
    assert guard.begin("10.0.0.1", "sap", now=2) is not None


def test_auth_failures_per_login_across_addresses_and_expiry() -> None:
    guard = AuthGuard(AuthLimits(max_failures=100, max_failures_per_login=3, window=60))
    for n in range(3):
        guard.begin(f"10.0.0.{n}", "sap", now=n)
        guard.end(f"10.0.0.{n}", "sap", now=n, ok=False)
    locked = guard.begin("10.9.9.9", "sap", now=5)
    assert locked is not None and locked.subject == "login"
    # Failures older than the window no longer count (once the lockout is over).
    assert guard.begin("10.9.9.9", "sap", now=5 + 900) is None


def test_auth_counters_are_bounded_and_a_flood_of_logins_does_not_unlock_the_address() -> None:
    guard = AuthGuard(AuthLimits(), max_keys=50)
    assert guard.table.slots == 64  # 50 rounded up to whole buckets
    for n in range(500):
        guard.begin("10.0.0.1", f"junk-login-{n}", now=0)
        guard.end("10.0.0.1", f"junk-login-{n}", now=0, ok=False)
    assert guard.table.used_slots(now=0) <= guard.table.slots
    # the locked address kept its slot while hundreds of logins came and went
    locked = guard.begin("10.0.0.1", "someone", now=1)
    assert locked is not None and locked.subject == "address"


def test_log_limiter_counts_what_it_leaves_out() -> None:
    now = [0.0]
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("test.lograte")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    limiter = LogLimiter(logger, burst=3, total_burst=5, interval=60, clock=lambda: now[0])
    for _ in range(10):
        limiter.event(logging.INFO, "bad", "10.0.0.1", "bad input from %s", "10.0.0.1")
    assert records == ["bad input from 10.0.0.1"] * 3
    for n in range(5):
        limiter.event(logging.INFO, "bad", f"10.0.1.{n}", "bad input from %s", n)
    assert len(records) == 5  # the kind's total limit holds across clients too
    now[0] = 61.0
    limiter.event(logging.INFO, "bad", "10.0.0.1", "bad input again")
    assert records[-1] == "bad input again (7 similar lines left out)"


ACCESS = CustomerAccess(networks=("10.0.0.0/8",))
AUTH_TOO = CustomerAccess(networks=("10.0.0.0/8",), require_auth=True)
TLS_TOO = CustomerAccess(networks=("10.0.0.0/8",), require_tls=True)


@pytest.mark.parametrize(
    ("access", "client", "refusal"),
    [
        (ACCESS, Client("10.1.2.3", False, None), None),
        (ACCESS, Client("192.0.2.1", False, None), "client_not_allowed"),
        (ACCESS, Client("10.1.2.3", False, 9), "not_your_account"),
        (CustomerAccess(), Client("10.1.2.3", True, None), "auth_required"),
        (CustomerAccess(), Client("192.0.2.1", True, 1), None),
        (AUTH_TOO, Client("10.1.2.3", True, None), "auth_required"),
        (TLS_TOO, Client("10.1.2.3", False, None), "tls_required"),
    ],
)  # fmt: skip
def test_check_client(access: CustomerAccess, client: Client, refusal: str | None) -> None:
    if refusal is None:
        check_client(access, client, 1, "a@x")
        return
    with pytest.raises(Reject) as rejected:
        check_client(access, client, 1, "a@x")
    assert rejected.value.kind == refusal


def test_exposure_names_customers_open_to_the_world_or_closed() -> None:
    world = CustomerAccess(networks=("10.0.0.0/8", "0.0.0.0/0"))
    assert "open to the world" in (exposure(world, 0) or "")
    assert exposure(CustomerAccess(networks=("::/0",)), 3) is not None
    assert exposure(CustomerAccess(networks=("0.0.0.0/0",), require_auth=True), 1) is None
    assert exposure(CustomerAccess(networks=("10.0.0.0/8",)), 0) is None
    assert "cannot send" in (exposure(CustomerAccess(), 0) or "")
    assert exposure(CustomerAccess(), 1) is None


def test_access_velocity_settings_are_validated() -> None:
    access = CustomerAccess.from_settings({"access": {"watch_prefixes": ["+234"]}})
    assert access.watch_prefixes == ("+234",) and access.velocity_numbers == 25
    for bad in ({"watch_prefixes": ["234"]}, {"velocity_window": 0}, {"velocity_numbers": -1}):
        with pytest.raises(ValueError):
            CustomerAccess.from_settings({"access": bad})


def test_backpressure_reservations_hold_the_mark() -> None:
    backpressure = Backpressure(None, high_water=10, min_free_mb=0, disk=None)  # type: ignore[arg-type]
    backpressure.depth = 7
    assert backpressure.reason() is None
    assert backpressure.reserve(4) is not None  # 7 + 4 > 10
    assert backpressure.reserve(3) is None
    assert backpressure.reason() is not None and backpressure.reason(1) is not None
    backpressure.settle(3, committed=False)  # the commit failed: room again
    assert backpressure.reserve(2) is None
    backpressure.settle(2, committed=True)
    assert backpressure.queued() == 9


def test_bad_bytes_in_command_arguments() -> None:
    assert _bad_bytes("FROM:<a@b> SIZE=10") is None
    assert _bad_bytes("FROM:<jörg@bücher.example>") is None  # UTF-8 is fine
    assert _bad_bytes("FROM:<\udcff@x>") == "bytes that are not UTF-8"
    assert _bad_bytes("FROM:<a\x00@x>") == "the control character '\\x00'"
    assert _bad_bytes("FROM:<a@x>\tSIZE=1") is None


def test_pumping_prefixes() -> None:
    assert prefix_of("+491701234567", 3) == "+491701234"
    assert prefix_of("+12345", 3) == "+123"
    assert watched("+2348031234567", ("+880", "+234")) == "+234"
    assert watched("+491701234567", ("+880", "+234")) is None
    assert "+491701234999" < upper_bound("+491701234") < "+49170123500"


def test_validity_and_send_at_have_bounds() -> None:
    assert parse_duration("30d") == 30 * 86400
    for bad in ("31d", 99999999999999999999, float("nan"), float("inf")):
        with pytest.raises(PolicyError):
            parse_duration(bad)
    with pytest.raises(PolicyError):
        parse_send_at("9999-12-31T23:59:59-12:00")


@pytest.mark.parametrize("header", ["X-SMS-Send-At: 9999-12-31", "X-SMS-Send-At: 2028-01-01"])
def test_send_at_more_than_a_year_ahead_is_refused(header: str) -> None:
    raw = f"Subject: x\r\n{header}\r\n\r\nhello\r\n".encode()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(Reject) as rejected:
        apply_overrides(raw, extract(raw), resolve({}), now)
    assert rejected.value.kind == "bad_override"
    fine = b"Subject: x\r\nX-SMS-Send-At: 2027-06-01 09:00\r\n\r\nhello\r\n"
    _, policy = apply_overrides(fine, extract(fine), resolve({}), now)
    assert policy.send_at.startswith("2027-06-01")


def test_a_lockout_reply_says_its_minutes_in_words() -> None:
    """ "try again in 1 minutes" was the reply to a lockout with less than a minute left."""
    assert [_minutes(n) for n in (0, 1, 2, 15)] == [
        "1 minute",
        "1 minute",
        "2 minutes",
        "15 minutes",
    ]
    assert reply("auth_locked", detail="for this login", wait=_minutes(1)).endswith(
        "try again in 1 minute"
    )
