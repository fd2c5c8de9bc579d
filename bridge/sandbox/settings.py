"""The `[sandbox]` table: the built-in sandbox SMSC (a phone simulator) and its rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from bridge.sandbox.rules import check_number
from bridge.sections import Port, Section


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
    host: str = "127.0.0.1"
    port: Port = 2775
    system_id: str = "bridge"
    password: str = "sandbox"
    receipt: Literal["delivered", "failed", "none"] = "delivered"
    receipt_delay: Annotated[float, Field(ge=0)] = 0.2
    inbox: Path = Path("var/sandbox/inbox.jsonl")
    rules: tuple[SandboxRuleSettings, ...] = ()
    rules_file: Path = Path("var/sandbox/rules.json")
