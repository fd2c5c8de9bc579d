"""The settings cascade: defaults → customer → profile → user → mail, resolved into a Policy.

Pure code. Each level is a plain mapping of setting names to values (the JSON
`settings` column of the customer, profile and user rows; the per-mail overrides);
the most specific level that sets a value wins, and `Policy.sources` records which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Notify = Literal["none", "failures", "all"]
CLEANING_RULES = (
    "quotes",
    "quoted_lines",
    "signature",
    "mobile_signature",
    "disclaimers",
    "whitespace",
    "collapse_spaces",
)
_LISTS = ("cleaning", "end_markers", "strip_strings")
LEVELS = ("default", "customer", "profile", "user", "mail")


@dataclass(frozen=True, slots=True)
class Policy:
    """The resolved settings of one order."""

    sender_id: str = "MailSMS"
    notify: Notify = "failures"
    default_country: str = "DE"
    encoding: str = "auto"
    replacement: str = "ucs2"
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
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The values (without sources), e.g. for the order's `policy` column."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}


SETTING_NAMES = tuple(f.name for f in fields(Policy) if f.name != "sources")
_CHOICES: dict[str, tuple[str, ...]] = {
    "notify": ("none", "failures", "all"),
    "encoding": ("auto", "gsm7", "ucs2"),
    "replacement": ("ucs2", "smart", "simple", "reject"),
    "overflow": ("truncate", "reject"),
    "subject_policy": ("body", "subject", "subject_body"),
    "priority": ("normal", "express"),
}


class PolicyError(ValueError):
    """A stored or given setting has an invalid value; the message says which and why."""


def check_setting(name: str, value: Any) -> Any:
    """Validate one setting value; return it normalised or raise PolicyError."""
    if name not in SETTING_NAMES:
        raise PolicyError(f"unknown setting {name!r}; known: {', '.join(SETTING_NAMES)}")
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise PolicyError(f"{name}: expected one of {', '.join(_CHOICES[name])}, got {value!r}")
        return value
    if name in _LISTS:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{name}: expected a list of strings, got {value!r}")
        unknown = [v for v in value if name == "cleaning" and v not in CLEANING_RULES]
        if unknown:
            raise PolicyError(
                f"cleaning: unknown rules {unknown}; known: {', '.join(CLEANING_RULES)}"
            )
        return tuple(value)
    if name == "max_parts":
        if not isinstance(value, int) or not 1 <= value <= 255:
            raise PolicyError(f"max_parts: expected an integer from 1 to 255, got {value!r}")
        return value
    if name == "validity":
        if not isinstance(value, int | float) or value <= 0:
            raise PolicyError(f"validity: expected seconds > 0, got {value!r}")
        return float(value)
    if name == "default_country":
        if not isinstance(value, str) or len(value) != 2 or not value.isalpha():
            raise PolicyError(f"default_country: expected a 2-letter ISO code, got {value!r}")
        return value.upper()
    if not isinstance(value, str):
        raise PolicyError(f"{name}: expected text, got {value!r}")
    return value


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
            if name in SETTING_NAMES and value is not None:
                values[name] = check_setting(name, value)
                sources[name] = level
    return Policy(**values, sources=sources)
