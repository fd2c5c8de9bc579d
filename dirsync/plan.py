"""Pure: diff the source users against the rows dirsync owns and produce the `Plan`.

Rules (docs/dirsync.md explains them for admins):
* users are matched on the stable id only, never on DN or mail;
* an address claimed by several enabled source users is a conflict: it is assigned to
  none of them, and a user whose primary address is in conflict is blocked (not added;
  disabled if it exists). Disabled source users only get addresses no enabled user wants;
* addresses held by rows dirsync does not own (manual users, other customers, excluded
  users) are never taken;
* a row whose source entry was read but has no valid mail address is left as it is
  (reported by the mapping; never taken for gone);
* a row missing from the source is disabled; it is deleted only once it has been
  disabled for `retention_days` (0 = never). Its addresses are released (primary
  renamed to `<address>#retired-<id>`, aliases dropped) when a source user claims them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bridge.errors import PermanentFailure
from dirsync.exclusions import Exclusions
from dirsync.model import (
    Change,
    ChangeKind,
    FieldChange,
    Plan,
    Problem,
    SourceUser,
    StoredUser,
)

RETIRED_MARK = "#retired-"


class PlanError(PermanentFailure):
    """The plan would break an invariant (a bug, never a data problem): nothing is written."""


def retired_address(address: str, user_id: int) -> str:
    """The placeholder a released primary address becomes; never a deliverable address."""
    return address if RETIRED_MARK in address else f"{address}{RETIRED_MARK}{user_id}"


def make_plan(
    source: Sequence[SourceUser],
    stored: Sequence[StoredUser],
    taken: Mapping[str, str],
    *,
    now: datetime,
    retention_days: int,
    exclusions: Exclusions | None = None,
    problems: Sequence[Problem] = (),
) -> Plan:
    """The full change set for one run; `taken` maps addresses of foreign rows to their owner."""
    excl = exclusions or Exclusions()
    plan = Plan(seen=len(source), problems=list(problems))
    plan.enabled_before = sum(1 for s in stored if s.enabled)
    stored_by_id = {s.external_id: s for s in stored}

    users: dict[str, SourceUser] = {}
    excluded_ids: set[str] = set()
    for u in source:
        if excl.matches(u.external_id, u.address):
            plan.excluded += 1
            excluded_ids.add(u.external_id)
        elif u.external_id in users:
            first = users[u.external_id].ref
            plan.problems.append(Problem(u.ref, f"duplicate id {u.external_id} (first: {first})"))
        else:
            row = stored_by_id.get(u.external_id)
            if "enabled" in u.keep and row is not None and row.enabled != u.enabled:
                u = replace(u, enabled=row.enabled)  # the source could not tell: as stored
            users[u.external_id] = u

    # read, but without a usable address: such a row is not gone, it is left as it is
    held = {p.held_id for p in problems if p.held_id is not None and p.held_id not in users}
    unavailable: dict[str, str] = dict(taken)
    rows: list[StoredUser] = []
    for s in stored:
        if s.external_id in excluded_ids or excl.matches(s.external_id, s.address):
            if s.external_id not in excluded_ids:
                plan.excluded += 1
            for addr in (s.address, *s.aliases):
                unavailable[addr] = "an excluded user"
        elif s.external_id in held:
            plan.unchanged += 1
            for addr in (s.address, *s.aliases):
                unavailable[addr] = "a user whose entry has no valid mail address"
        else:
            rows.append(s)

    enabled_tier = [u for u in users.values() if u.enabled]
    disabled_tier = [u for u in users.values() if not u.enabled and u.external_id in stored_by_id]
    winners: dict[str, str] = {}
    conflicted: set[str] = set()
    blocked: dict[str, str] = {}
    aliases_of: dict[str, frozenset[str]] = {}
    for tier in (enabled_tier, disabled_tier):
        _assign(tier, plan, unavailable, winners, conflicted, blocked, aliases_of)

    def lost(addr: str) -> bool:
        return addr in winners or addr in conflicted

    for s in rows:
        match = users.get(s.external_id)
        if match is not None and match.external_id not in blocked:
            fields = _diff(s, match, aliases_of[match.external_id])
            disables = any(f.name == "enabled" and f.after is False for f in fields)
            _emit(plan, ChangeKind.UPDATE, s, fields, match.why_disabled if disables else "")
            continue
        address = retired_address(s.address, s.id) if lost(s.address) else s.address
        aliases = frozenset(a for a in s.aliases if not lost(a)) if s.aliases else s.aliases
        release = _fields(s, address=address, aliases=aliases)
        if match is not None:
            fields = release + _fields(s, enabled=False)
            _emit(plan, ChangeKind.UPDATE, s, fields, blocked[match.external_id])
        elif s.enabled:
            fields = release + _fields(s, enabled=False)
            _emit(plan, ChangeKind.DISABLE, s, fields, "not in the directory any more")
        elif (
            retention_days > 0
            and s.disabled_at is not None
            and s.disabled_at <= now - timedelta(days=retention_days)
        ):
            reason = f"disabled since {s.disabled_at:%Y-%m-%d}, retention {retention_days} days"
            _emit(plan, ChangeKind.DELETE, s, (), reason)
        else:
            _emit(plan, ChangeKind.UPDATE, s, release, "address released")

    winners.clear()  # not needed any more; frees 200,000 entries before the last check
    for u in enabled_tier:
        if u.external_id not in stored_by_id and u.external_id not in blocked:
            plan.changes.append(
                Change(
                    ChangeKind.ADD,
                    u.external_id,
                    u.address,
                    user=_with_aliases(u, aliases_of[u.external_id]),
                )
            )
    plan.changes.sort(key=lambda c: (c.kind.value, c.address, c.external_id))
    _check_unique(plan, rows, unavailable)
    return plan


def _who(u: SourceUser) -> str:
    """A user in a conflict, so that the administrator finds each one: its DN or CSV line,
    else (an LDAP user, whose DN is not kept) its name and id; the address is the same."""
    if u.ref:
        return u.ref
    return f"{u.display_name or u.address} [id {u.external_id}]"


def _assign(
    tier: Sequence[SourceUser],
    plan: Plan,
    unavailable: Mapping[str, str],
    winners: dict[str, str],
    conflicted: set[str],
    blocked: dict[str, str],
    aliases_of: dict[str, frozenset[str]],
) -> None:
    """Hand out the addresses one tier claims; record conflicts and blocked users."""
    first: dict[str, SourceUser] = {}  # one claimant per address; lists only for conflicts
    several: dict[str, list[SourceUser]] = {}
    for u in tier:
        for addr in (u.address, *u.aliases):
            if addr in unavailable or addr in winners or addr in conflicted:
                continue
            if addr not in first:
                first[addr] = u
            elif addr in several:
                several[addr].append(u)
            else:
                several[addr] = [first[addr], u]
    del first
    for addr in sorted(several):
        who = several[addr]
        refs = ", ".join(_who(w) for w in who[:5])
        plan.problems.append(
            Problem(addr, f"claimed by {len(who)} users ({refs}); assigned to none of them")
        )
        conflicted.add(addr)
    for u in tier:
        a = u.address
        if a in conflicted:
            blocked[u.external_id] = f"address {a} is in conflict"
        elif a in unavailable or a in winners:
            owner = unavailable.get(a, "another directory user")
            blocked[u.external_id] = f"address {a} belongs to {owner}"
            plan.problems.append(Problem(u.ref or u.address, blocked[u.external_id]))
        if u.external_id in blocked:
            continue
        kept: set[str] = set()
        for alias in sorted(u.aliases):
            if alias in conflicted:
                continue
            if alias in unavailable or alias in winners:
                owner = unavailable.get(alias, "another directory user")
                plan.problems.append(
                    Problem(u.ref or u.address, f"alias {alias} belongs to {owner}; ignored")
                )
                continue
            kept.add(alias)
        winners[a] = u.external_id
        for alias in kept:
            winners[alias] = u.external_id
        aliases_of[u.external_id] = u.aliases if len(kept) == len(u.aliases) else frozenset(kept)


def _fields(s: StoredUser, **after: object) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(name, getattr(s, name), value)
        for name, value in after.items()
        if getattr(s, name) != value
    )


def _diff(s: StoredUser, u: SourceUser, aliases: frozenset[str]) -> tuple[FieldChange, ...]:
    target: dict[str, object] = {
        "address": u.address,
        "aliases": aliases,
        "display_name": u.display_name,
        "mobile": u.mobile,
        "profile": u.profile,
        "sender_id": u.sender_id,
        "cost_centre": u.cost_centre,
        "enabled": u.enabled,
    }
    for name in u.keep:
        target.pop(name, None)
    return _fields(s, **target)


def _emit(
    plan: Plan, kind: ChangeKind, s: StoredUser, fields: tuple[FieldChange, ...], reason: str
) -> None:
    if kind is ChangeKind.UPDATE and not fields:
        plan.unchanged += 1
        return
    plan.changes.append(Change(kind, s.external_id, s.address, s.id, fields, reason))


def _with_aliases(u: SourceUser, aliases: frozenset[str]) -> SourceUser:
    if aliases == u.aliases:
        return u
    return SourceUser(
        external_id=u.external_id,
        address=u.address,
        aliases=aliases,
        display_name=u.display_name,
        mobile=u.mobile,
        sender_id=u.sender_id,
        cost_centre=u.cost_centre,
        profile=u.profile,
        enabled=u.enabled,
        ref=u.ref,
        keep=u.keep,
        why_disabled=u.why_disabled,
    )


def _check_unique(plan: Plan, rows: Sequence[StoredUser], unavailable: Mapping[str, str]) -> None:
    """Every address ends up with at most one row, and never on a foreign one."""
    final: dict[str, str] = {}
    changed = {c.user_id: c for c in plan.changes if c.user_id is not None}

    def claim(addr: str, who: str) -> None:
        if addr in unavailable or final.setdefault(addr, who) != who:
            raise PlanError(f"address {addr} would belong to two users ({who}, {final.get(addr)})")

    for s in rows:
        c = changed.get(s.id)
        if c is not None and c.kind is ChangeKind.DELETE:
            continue
        after = {f.name: f.after for f in c.fields} if c is not None else {}
        address = after.get("address", s.address)
        aliases = after.get("aliases", s.aliases)
        assert isinstance(address, str) and isinstance(aliases, frozenset)
        for addr in (address, *aliases):
            claim(str(addr), s.external_id)
    for c in plan.of_kind(ChangeKind.ADD):
        assert c.user is not None
        for addr in (c.user.address, *c.user.aliases):
            claim(addr, c.external_id)
