"""The `[[routes]]` and `[dispatch]` tables: which transports a prefix uses, and the MT worker."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bridge.sections import Seconds, Section


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
