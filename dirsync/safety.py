"""Pure: the guard rails that refuse a whole run before anything is written.

* fewer source users than `min_users` (zero included): the directory answer is doubtful;
* more disables than `max_disable_count` or `max_disable_percent` of the enabled rows
  dirsync owns: refused unless the admin passes `--allow-mass-changes` for this run;
* likewise more users than these caps whose aliases, mobile, sender ID or cost centre
  would become empty, or whose profile would change (a renamed attribute or group must
  not wipe every user's data in one run).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import InputError
from dirsync.model import Plan


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured caps (`[safety]` in dirsync.toml)."""

    min_users: int = 1
    max_disable_count: int = 50
    max_disable_percent: float = 10.0
    retention_days: int = 90


class Refused(InputError):
    """The run was refused by a safety check; `kind` is "min_users" or "mass_change"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_source(count: int, limits: Limits) -> None:
    """Refuse a source that returned too few users (checked before planning)."""
    minimum = max(1, limits.min_users)
    if count < minimum:
        raise Refused(
            "min_users",
            f"the source returned {count} users, fewer than min_users={minimum}; nothing changed",
        )


def check_plan(plan: Plan, limits: Limits, *, allow_mass_changes: bool) -> None:
    """Refuse a plan that disables, or empties fields of, more users than the caps allow."""
    check_source(plan.seen, limits)
    if allow_mass_changes:
        return
    _check_cap(plan.disables, plan.enabled_before, limits, "disable {n} users", "disable {n}")
    _check_cap(
        plan.emptied,
        plan.enabled_before,
        limits,
        "empty the aliases, mobile, sender ID or cost centre of, or change the profile of, "
        "{n} users",
        "change {n}",
    )


def _check_cap(count: int, base: int, limits: Limits, what: str, short: str) -> None:
    if count == 0:
        return
    again = "nothing changed (re-run with --allow-mass-changes if this is intended)"
    if count > limits.max_disable_count:
        raise Refused(
            "mass_change",
            f"the run would {what.format(n=count)}, more than max_disable_count="
            f"{limits.max_disable_count}; {again}",
        )
    percent = 100.0 * count / base if base else 0.0
    if base and percent > limits.max_disable_percent:
        raise Refused(
            "mass_change",
            f"the run would {short.format(n=count)} of {base} users ({percent:.1f} %), more "
            f"than max_disable_percent={limits.max_disable_percent:g}; {again}",
        )
