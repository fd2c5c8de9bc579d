"""The sandbox SMSC's configuration (`SandboxConfig`) and the `[sandbox]` table that sets it.

`SandboxConfig` is what the running sandbox uses (tests build it directly); the table
`SandboxSettings` takes its defaults from it, so each default is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from bridge.sandbox.rules import SandboxRule, check_number, make_rule
from bridge.sections import Port, Section


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """Where the sandbox listens, whom it lets bind, what receipts it sends, where SMS land."""

    inbox_path: Path
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "bridge"
    password: str = "sandbox"
    receipt: Literal["delivered", "failed", "none"] = "delivered"
    receipt_delay: float = 0.2
    redeliver_delay: float = 5.0  # a receipt answered with a temporary error is sent again
    redeliver_attempts: int = 3
    rules: tuple[SandboxRule, ...] = ()  # per number or prefix: fail and/or delay
    rules_file: Path | None = None  # more rules, re-read when it changes (the CLI writes it)
    # the bridge's transport for the sandbox packs GSM-7 8-in-7 (its `gsm7_packed`): MT is
    # unpacked before it reaches the phone, MO is packed
    gsm7_packed: bool = False


_SANDBOX = SandboxConfig(inbox_path=Path("var/sandbox/inbox.jsonl"))


class SandboxRuleSettings(Section):
    """One sandbox rule: fail and/or delay the SMS to a number or prefix (`sandbox_rules`)."""

    number: str
    fail: Literal["undeliverable", "expired", "rejected", "busy", "silent"] | None = None
    delay: Annotated[float, Field(ge=0, le=604_800)] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return check_number(value)


class SandboxSettings(Section):
    """The built-in sandbox SMSC (a phone simulator for `make run` and demos)."""

    enabled: bool = False
    host: str = _SANDBOX.host
    port: Port = _SANDBOX.port
    system_id: str = _SANDBOX.system_id
    password: str = _SANDBOX.password
    receipt: Literal["delivered", "failed", "none"] = _SANDBOX.receipt
    receipt_delay: Annotated[float, Field(ge=0)] = _SANDBOX.receipt_delay
    inbox: Path = _SANDBOX.inbox_path
    rules: tuple[SandboxRuleSettings, ...] = ()
    rules_file: Path = Path("var/sandbox/rules.json")
    gsm7_packed: bool = _SANDBOX.gsm7_packed  # and so the transport "sandbox" it adds

    def config(self) -> SandboxConfig:
        """What the sandbox SMSC runs with."""
        return SandboxConfig(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.password,
            receipt=self.receipt,
            receipt_delay=self.receipt_delay,
            inbox_path=self.inbox,
            rules=tuple(make_rule(r.number, r.fail, r.delay) for r in self.rules),
            rules_file=self.rules_file,
            gsm7_packed=self.gsm7_packed,
        )
