"""The `[[routes]]` and `[dispatch]` tables: which transports a prefix uses, and the MT worker."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from bridge.sections import Seconds, Section

# Of an order's claim (`lease`), the last seconds are kept for recording its outcome: a
# submit ends by then (`Transport.submit(until=…)`).
RECORD_MARGIN: Final = 5.0


def shortest_lease(response_timeout: float) -> float:
    """The shortest `lease` an SMSC with this response_timeout can work with: the answers
    to a long SMS's parts (one response_timeout for the parts and waits before the last
    one, one for the last part's answer) and the time to record the outcome."""
    return 2 * response_timeout + RECORD_MARGIN


def lease_problem(lease: float, response_timeouts: dict[str, float]) -> str | None:
    """Why `lease` is too short for one of these SMSCs (name -> response_timeout), or None."""
    for name, timeout in response_timeouts.items():
        least = shortest_lease(timeout)
        if lease < least:
            return (
                f"dispatch: lease = {lease:g} s is too short for [[smsc]] {name!r} "
                f"(response_timeout = {timeout:g} s): a claimed order needs two response "
                f"timeouts for its parts' answers and {RECORD_MARGIN:g} s to record the "
                f"outcome; set lease to at least {least:g} s (120 s is the default) or "
                "lower that SMSC's response_timeout"
            )
    return None


class RouteSettings(Section):
    """Destination prefix → transports in failover order; the last route has prefix ''."""

    prefix: str
    transports: tuple[str, ...]

    @model_validator(mode="after")
    def _digits(self) -> RouteSettings:
        digits = self.prefix.removeprefix("+")
        if digits and not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"routes: prefix {self.prefix!r} must be digits (a leading + is ok)")
        return self


class DispatchSettings(Section):
    """The MT worker: concurrency, polling, retry and lifetime."""

    concurrency: Annotated[int, Field(ge=1, le=500)] = 20
    poll_interval: Seconds = 1.0
    lease: Seconds = 120.0
    retry_min: Seconds = 30.0
    retry_max: Seconds = 900.0
    lifetime: Seconds = 172_800.0
    # after a response timeout / lost connection: send again (SMSC duplicate marker where
    # configured) or hold the order for an operator
    on_unknown_outcome: Literal["resubmit", "hold"] = "resubmit"
    # receipts match parts submitted at most this long before them; unmatched receipts
    # are kept as orphans after it (keep it above the longest validity + receipt grace)
    receipt_window: Seconds = 259_200.0
