"""SMS pumping across mails: what the commit checks per customer, and the number prefixes it counts.

Pure code. A mail's direct orders are held for review (not sent) when, within the
customer's window, more distinct numbers than allowed share one prefix (the number
without its last digits: bursts to consecutive numbers of one range are the mark of
SMS pumping), or go to watched destinations (calling codes pumping traffic often goes
to). The counting itself runs in the commit's transaction (`bridge.intake.velocity_store`),
so it sees every earlier mail of the customer, from every bridge instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.intake.access import CustomerAccess

HOLD_REASON = "SMS pumping protection"  # held orders' error starts with this


@dataclass(frozen=True, slots=True)
class VelocityCheck:
    """The limits of one customer, carried by a mail to its commit."""

    customer_id: int
    customer: str
    window: float  # seconds
    numbers: int  # most distinct numbers per prefix in the window (0: no check)
    suffix_digits: int  # the prefix is the number without this many last digits
    watch_prefixes: tuple[str, ...]
    watch_numbers: int  # most distinct numbers to watched prefixes in the window (0: none)
    direct: int  # the mail's first `direct` orders are checked (list orders are not)
    alert_fallback: str = ""  # alert address when the customer names no admin/postmaster

    @classmethod
    def of(
        cls, access: CustomerAccess, customer_id: int, customer: str, direct: int, fallback: str
    ) -> VelocityCheck | None:
        if not direct or not (access.velocity_numbers or access.watch_numbers):
            return None
        return cls(
            customer_id=customer_id,
            customer=customer,
            window=access.velocity_window,
            numbers=access.velocity_numbers,
            suffix_digits=access.velocity_suffix_digits,
            watch_prefixes=access.watch_prefixes if access.watch_numbers else (),
            watch_numbers=access.watch_numbers,
            direct=direct,
            alert_fallback=fallback,
        )


def prefix_of(number: str, suffix_digits: int) -> str:
    """The number without its last `suffix_digits` digits (never shorter than '+' and 3 digits)."""
    return number[: max(4, len(number) - suffix_digits)]


def watched(number: str, prefixes: tuple[str, ...]) -> str | None:
    """The watched prefix `number` starts with, or None."""
    for prefix in prefixes:
        if number.startswith(prefix):
            return prefix
    return None


def upper_bound(prefix: str) -> str:
    """The smallest string above every number that starts with `prefix` ('9' < ':')."""
    return prefix + ":"
