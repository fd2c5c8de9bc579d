"""The `[defaults]` table: the bottom level of the settings cascade, checked like every level."""

from __future__ import annotations

from pydantic import model_validator

from bridge.sections import Section
from bridge.tenants.policy import Policy, PolicyError, check_setting

_POLICY = Policy()


class DefaultsSettings(Section):
    """Values at the bottom of the settings cascade (below customer, profile and user).

    The defaults are Policy's own; every value is checked by the same rule that checks
    it at the customer, profile and user levels (`bridge.tenants.policy_values`).
    """

    sender_id: str = _POLICY.sender_id
    notify: str = _POLICY.notify
    default_country: str = _POLICY.default_country
    encoding: str = _POLICY.encoding
    replacement: str = _POLICY.replacement
    max_parts: int = _POLICY.max_parts
    overflow: str = _POLICY.overflow
    subject_policy: str = _POLICY.subject_policy
    validity: float = _POLICY.validity
    subject_separator: str = _POLICY.subject_separator
    cleaning: tuple[str, ...] = _POLICY.cleaning
    end_markers: tuple[str, ...] = _POLICY.end_markers
    strip_strings: tuple[str, ...] = _POLICY.strip_strings
    cost_centre: str = _POLICY.cost_centre
    priority: str = _POLICY.priority
    notify_channel: tuple[str, ...] = _POLICY.notify_channel
    notify_address: str = _POLICY.notify_address
    allowed_countries: tuple[str, ...] = _POLICY.allowed_countries
    denied_countries: tuple[str, ...] = _POLICY.denied_countries
    rate_per_minute: int = _POLICY.rate_per_minute
    rate_per_day: int = _POLICY.rate_per_day
    quiet_hours: str = _POLICY.quiet_hours
    timezone: str = _POLICY.timezone
    flash: bool = _POLICY.flash
    mail_overrides: tuple[str, ...] = _POLICY.mail_overrides
    price_per_part: str = _POLICY.price_per_part

    @model_validator(mode="after")
    def _valid_policy_values(self) -> DefaultsSettings:
        for name, value in self.model_dump().items():
            try:
                check_setting(name, value)
            except PolicyError as exc:
                raise ValueError(str(exc)) from None
        return self
