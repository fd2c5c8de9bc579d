"""Plain records that flow through a sync run: source users, stored users, the plan.

No I/O here: the LDAP and CSV readers produce `SourceUser`s, the store produces
`StoredUser`s, the planner turns both into a `Plan`, the store applies it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

# Keys of `User.settings` that dirsync owns; other keys are preserved.
SETTINGS_KEYS = ("sender_id", "cost_centre")


@dataclass(frozen=True, slots=True)
class SourceUser:
    """One user as the directory (or CSV file) describes it, already mapped and cleaned."""

    external_id: str
    address: str  # lower-cased primary mail
    aliases: frozenset[str] = frozenset()  # lower-cased, never containing `address`
    display_name: str = ""
    mobile: str | None = None  # E.164 with '+'
    sender_id: str | None = None
    cost_centre: str | None = None
    profile: str | None = None  # profile name inside the customer
    enabled: bool = True
    ref: str = ""  # where it came from (DN, "line 12"), for reports only
    keep: frozenset[str] = frozenset()  # fields not to touch (their source value was invalid)
    why_disabled: str = ""  # a disabled user's reason for the report (e.g. its account expired)


@dataclass(frozen=True, slots=True)
class StoredUser:
    """One user row of the customer that dirsync owns (origin "dirsync"), as loaded."""

    id: int
    external_id: str
    address: str
    aliases: frozenset[str]
    display_name: str
    mobile: str | None
    sender_id: str | None
    cost_centre: str | None
    profile: str | None
    enabled: bool
    disabled_at: datetime | None


class ChangeKind(enum.StrEnum):
    ADD = "add"
    UPDATE = "update"
    DISABLE = "disable"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One synced field of one user: value before → value after."""

    name: str
    before: object
    after: object

    def describe(self) -> str:
        return f"{self.name}: {_show(self.before)} → {_show(self.after)}"


def _disables(c: Change) -> bool:
    if c.kind is ChangeKind.DISABLE:
        return True
    return c.kind is ChangeKind.UPDATE and any(
        f.name == "enabled" and f.before is True and f.after is False for f in c.fields
    )


# Synced fields whose mass loss the safety caps count like disables (see `_empties`).
CAPPED_FIELDS = frozenset({"aliases", "mobile", "profile", "sender_id", "cost_centre"})


def _empties(c: Change) -> bool:
    """An update of a user the source still has (such updates carry no reason; releases of
    a departed user's addresses and blocked users do, and disables that say why, which
    the disable cap counts) that takes a capped field from a value to empty, or moves the
    user to another profile."""
    if c.kind is not ChangeKind.UPDATE or c.reason:
        return False
    for f in c.fields:
        if f.name == "profile" and f.before != f.after:
            return True
        if f.name in CAPPED_FIELDS and f.before and not f.after:
            return True
    return False


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(str(v) for v in value)) + "}"
    if value is None or value == "":
        return "∅"
    return str(value)


@dataclass(frozen=True, slots=True)
class Change:
    """One row-level change the plan makes."""

    kind: ChangeKind
    external_id: str
    address: str
    user_id: int | None = None  # None for adds
    fields: tuple[FieldChange, ...] = ()
    reason: str = ""
    user: SourceUser | None = None  # the full target state, for adds

    def describe(self) -> str:
        head = f"{self.kind.value:<7} {self.address} [{self.external_id}]"
        if self.reason:
            head += f" ({self.reason})"
        if self.fields:
            head += ": " + "; ".join(f.describe() for f in self.fields)
        return head


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one source user; reported, never fatal on its own.

    `held_id` is the stable id of an entry that was read but could not be used (no valid
    mail address): the planner leaves its row exactly as it is instead of taking the
    user for gone.
    """

    ref: str
    message: str
    held_id: str | None = None

    def describe(self) -> str:
        return f"{self.ref}: {self.message}"


@dataclass(slots=True)
class Plan:
    """Everything one run would change, plus what it noticed on the way."""

    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seen: int = 0  # source users read
    excluded: int = 0  # source users or rows skipped by the exclusion list
    unchanged: int = 0
    enabled_before: int = 0  # owned rows enabled before the run (the base of the % cap)

    def of_kind(self, kind: ChangeKind) -> list[Change]:
        return [c for c in self.changes if c.kind is kind]

    @property
    def disables(self) -> int:
        """Rows that go from enabled to disabled: what the mass-change cap counts."""
        return sum(1 for c in self.changes if _disables(c))

    @property
    def emptied(self) -> int:
        """Users losing a synced field's value or changing profile: capped like disables."""
        return sum(1 for c in self.changes if _empties(c))

    def counts(self) -> dict[str, int]:
        return {
            "seen": self.seen,
            "excluded": self.excluded,
            "added": len(self.of_kind(ChangeKind.ADD)),
            "updated": len(self.of_kind(ChangeKind.UPDATE)),
            "disabled": self.disables,
            "deleted": len(self.of_kind(ChangeKind.DELETE)),
            "unchanged": self.unchanged,
            "problems": len(self.problems),
        }

    @property
    def empty(self) -> bool:
        return not self.changes
