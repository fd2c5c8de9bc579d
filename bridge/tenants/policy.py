"""The settings cascade: defaults → customer → profile → user → mail, resolved into a Policy.

Pure code. Each level is a plain mapping of setting names to values (the JSON
`settings` column of the customer, profile and user rows; the per-mail overrides);
the most specific level that sets a value wins, and `Policy.sources` records which.
Single values are validated by `bridge.tenants.policy_values`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from bridge.tenants.policy_values import (
    CLEANING_RULES,
    NOTIFY_CHANNELS,
    OVERRIDABLE,
    PolicyError,
    check_value,
    sender_id_kind,
)

Notify = Literal["none", "failures", "all"]
LEVELS = ("default", "customer", "profile", "user", "mail")
# Settings only the operator (defaults) or the customer may set.
CUSTOMER_ONLY = frozenset({"mail_overrides", "report_recipients", "price_per_part"})

__all__ = [
    "CLEANING_RULES",
    "CUSTOMER_ONLY",
    "LEVELS",
    "NOTIFY_CHANNELS",
    "OVERRIDABLE",
    "SETTING_NAMES",
    "Policy",
    "PolicyError",
    "check_setting",
    "resolve",
    "sender_id_kind",
]


@dataclass(frozen=True, slots=True)
class Policy:
    """The resolved settings of one order."""

    sender_id: str = "MailSMS"
    notify: Notify = "failures"
    default_country: str = "DE"
    encoding: str = "auto"
    replacement: str = "typographic"
    max_parts: int = 10
    overflow: str = "reject"
    subject_policy: str = "body"
    validity: float = 172_800.0
    cost_centre: str = ""
    priority: str = "normal"
    subject_separator: str = "\n"
    cleaning: tuple[str, ...] = CLEANING_RULES
    end_markers: tuple[str, ...] = ()
    strip_strings: tuple[str, ...] = ()
    notify_channel: tuple[str, ...] = ("html",)  # html status mail, dsn, http push
    notify_address: str = ""  # status mails go here instead of the sender
    allowed_countries: tuple[str, ...] = ()  # ISO codes; empty: every country
    denied_countries: tuple[str, ...] = ()  # ISO codes never sent to (checked after allowed)
    rate_per_minute: int = 0  # orders per user and minute; 0: no limit
    rate_per_day: int = 0  # orders per user and day; 0: no limit
    quiet_hours: str = ""  # "21:00-08:00" in the recipient's local time; "": none
    timezone: str = "UTC"  # how send_at times without an offset are read
    flash: bool = False  # class-0 SMS shown on the display
    send_at: str = ""  # ISO UTC time; the order waits until then
    mail_overrides: tuple[str, ...] = (
        "priority",
        "validity",
        "notify",
        "cost_centre",
        "max_parts",
        "send_at",
        "flash",
    )
    report_recipients: tuple[str, ...] = ()  # monthly report addresses (customer level)
    price_per_part: str = ""  # "0.075 EUR": what one SMS part costs (customer level); "": none
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The values (without sources), e.g. for the order's `policy` column."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}

    def source(self, name: str) -> str:
        """The level `name` came from ("default" when no level set it)."""
        return self.sources.get(name, "default")


SETTING_NAMES = tuple(f.name for f in fields(Policy) if f.name != "sources")


def check_setting(name: str, value: Any, level: str = "default") -> Any:
    """Validate one setting value at `level`; return it normalised or raise PolicyError."""
    if name not in SETTING_NAMES:
        raise PolicyError(f"unknown setting {name!r}; known: {', '.join(SETTING_NAMES)}")
    if name in CUSTOMER_ONLY and level not in ("default", "customer"):
        raise PolicyError(f"{name}: can only be set for a customer, not for a {level}")
    return check_value(name, value)


def resolve(
    defaults: Mapping[str, Any],
    customer: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    mail: Mapping[str, Any] | None = None,
) -> Policy:
    """Merge the levels, most specific last; unknown keys in stored rows are ignored."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for level, settings in zip(LEVELS, (defaults, customer, profile, user, mail), strict=True):
        for name, value in (settings or {}).items():
            if name not in SETTING_NAMES or value is None:
                continue
            if name in CUSTOMER_ONLY and level not in ("default", "customer"):
                continue
            values[name] = check_value(name, value)
            sources[name] = level
    return Policy(**values, sources=sources)


def describe(policy: Policy) -> list[tuple[str, Any, str]]:
    """(name, value, source level) for every setting, in declaration order."""
    return [(name, getattr(policy, name), policy.source(name)) for name in SETTING_NAMES]


def with_mail_level(policy: Policy, mail: Mapping[str, Any]) -> Policy:
    """`policy` with the per-mail level on top (values already checked)."""
    if not mail:
        return policy
    sources = {**policy.sources, **dict.fromkeys(mail, "mail")}
    return replace(policy, **mail, sources=sources)
