"""Directory-sync storage: read and write user, alias, sync-run and lock rows for dirsync.

The only SQL dirsync runs. `load_state` and `apply_plan` run inside the caller's one
transaction per run (`begin_run` takes SQLite's write lock first, so the state read is
the state written against). Bulk Core statements keep 100,000-user runs fast.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bridge.db.core import table
from bridge.mt.tables import Mail
from bridge.tenants.directory_tables import DirsyncLock, SyncRun
from bridge.tenants.tables import Alias, Customer, Profile, User
from dirsync.model import SETTINGS_KEYS, Change, ChangeKind, Plan, StoredUser
from dirsync.plan import retired_address

ORIGIN = "dirsync"
CHUNK = 500
INSERT_CHUNK = 5000

U = table(User)
A = table(Alias)
P = table(Profile)
M = table(Mail)


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: int
    name: str
    settings: dict[str, Any]
    profiles: dict[str, int]  # profile name → id


@dataclass(slots=True)
class DirectoryState:
    """The rows dirsync owns for one customer, plus every address it must not take."""

    stored: list[StoredUser] = field(default_factory=list)
    taken: dict[str, str] = field(default_factory=dict)  # address → who holds it


@dataclass(slots=True)
class ApplyResult:
    deleted: int = 0
    retired: int = 0  # "deleted" rows kept (renamed, no aliases) because mail refers to them


def schema_ready(engine: Engine) -> bool:
    """True when migration 0002 (sync_run, dirsync_lock) has been applied."""
    names = set(inspect(engine).get_table_names())
    return {"sync_run", "dirsync_lock", "user", "alias"} <= names


def load_customer(session: Session, name: str) -> CustomerInfo | None:
    row = (
        session.execute(select(Customer).where(Customer.name == name))  # type: ignore[arg-type]
        .scalars()
        .first()
    )
    if row is None:
        return None
    assert row.id is not None
    profiles = session.execute(select(P.c.name, P.c.id).where(P.c.customer_id == row.id)).all()
    return CustomerInfo(row.id, row.name, dict(row.settings), {n: i for n, i in profiles})


def begin_run(session: Session, lock_name: str) -> None:
    """Take the database write lock at the start of the run's transaction."""
    session.execute(
        update(DirsyncLock).where(DirsyncLock.name == lock_name).values(name=lock_name)  # type: ignore[arg-type]
    )


def load_state(session: Session, customer: CustomerInfo) -> DirectoryState:
    """Owned rows (origin dirsync, this customer) and the addresses held by all other rows."""
    names = {pid: name for name, pid in customer.profiles.items()}
    aliases: dict[int, list[str]] = defaultdict(list)
    stream = {"yield_per": 2000}
    for address, user_id in session.execute(
        select(A.c.address, A.c.user_id).execution_options(**stream)
    ):
        aliases[user_id].append(address)
    state = DirectoryState()
    columns = [
        U.c.id,
        U.c.customer_id,
        U.c.address,
        U.c.display_name,
        U.c.mobile,
        U.c.enabled,
        U.c.origin,
        U.c.external_id,
        U.c.settings,
        U.c.profile_id,
        U.c.disabled_at,
    ]
    empty: frozenset[str] = frozenset()
    for r in session.execute(select(*columns).execution_options(**stream)):
        owned = r.origin == ORIGIN and r.customer_id == customer.id and r.external_id
        if not owned:
            who = f"user {r.id} ({r.origin}, customer {r.customer_id})"
            state.taken[r.address] = who
            for a in aliases.get(r.id, ()):
                state.taken[a] = who
            continue
        settings = r.settings or {}
        own = aliases.pop(r.id, None)
        state.stored.append(
            StoredUser(
                id=r.id,
                external_id=r.external_id,
                address=r.address,
                aliases=frozenset(own) if own else empty,
                display_name=r.display_name,
                mobile=r.mobile,
                sender_id=_intern(settings.get("sender_id")),
                cost_centre=_intern(settings.get("cost_centre")),
                profile=names.get(r.profile_id) if r.profile_id is not None else None,
                enabled=bool(r.enabled),
                disabled_at=r.disabled_at,
            )
        )
    return state


def _intern(value: object) -> str | None:
    return sys.intern(value) if isinstance(value, str) else None


def apply_plan(session: Session, customer: CustomerInfo, plan: Plan, now: datetime) -> ApplyResult:
    """Write the plan: deletes, alias removals, address moves, field updates, adds, aliases."""
    result = ApplyResult()
    deletes = [c for c in plan.changes if c.kind is ChangeKind.DELETE and c.user_id is not None]
    edits = [c for c in plan.changes if c.kind in (ChangeKind.UPDATE, ChangeKind.DISABLE)]
    adds = plan.of_kind(ChangeKind.ADD)

    if deletes:
        ids = [c.user_id for c in deletes if c.user_id is not None]
        with_mail: set[int] = set()
        for chunk in _chunks(ids):
            with_mail.update(
                session.execute(
                    select(M.c.user_id).where(M.c.user_id.in_(chunk)).distinct()
                ).scalars()
            )
            session.execute(delete(A).where(A.c.user_id.in_(chunk)))
        gone = [i for i in ids if i not in with_mail]
        for chunk in _chunks(gone):
            session.execute(delete(U).where(U.c.id.in_(chunk)))
        keep = [c for c in deletes if c.user_id in with_mail]
        _executemany(
            session,
            [
                {"b_id": c.user_id, "address": retired_address(c.address, c.user_id or 0)}
                for c in keep
            ],
        )
        result.deleted, result.retired = len(gone), len(keep)

    removed = [
        (c.user_id, a)
        for c in edits
        for f in c.fields
        if f.name == "aliases"
        for a in _set(f.before) - _set(f.after)
    ]
    if removed:
        session.execute(
            delete(A).where(A.c.address == bindparam("b_addr"), A.c.user_id == bindparam("b_uid")),
            [{"b_addr": a, "b_uid": uid} for uid, a in removed],
        )

    moves = [(c.user_id, f.after) for c in edits for f in c.fields if f.name == "address"]
    if moves:  # two phases, so addresses can move between users within one run
        _executemany(session, [{"b_id": uid, "address": f"~dirsync-{uid}"} for uid, _ in moves])
        _executemany(session, [{"b_id": uid, "address": addr} for uid, addr in moves])

    settings = _settings_of(
        session, [c.user_id for c in edits if c.user_id is not None and _touches_settings(c)]
    )
    rows = [_update_values(c, customer, settings, now) for c in edits]
    _executemany(session, [r for r in rows if len(r) > 1])

    new_aliases = [
        {"address": a, "user_id": c.user_id}
        for c in edits
        for f in c.fields
        if f.name == "aliases"
        for a in sorted(_set(f.after) - _set(f.before))
    ]
    if new_aliases:
        session.execute(insert(A), new_aliases)
    for start in range(0, len(adds), INSERT_CHUNK):  # chunks keep the peak memory flat
        batch = adds[start : start + INSERT_CHUNK]
        session.execute(insert(U), [_insert_values(c, customer, now) for c in batch])
        wanted = [c.external_id for c in batch if c.user is not None and c.user.aliases]
        id_of: dict[str, int] = {}
        for chunk in _chunks(wanted):
            found = session.execute(
                select(U.c.external_id, U.c.id).where(
                    U.c.customer_id == customer.id,
                    U.c.origin == ORIGIN,
                    U.c.external_id.in_(chunk),
                )
            )
            id_of.update((e, i) for e, i in found)
        rows = [
            {"address": a, "user_id": id_of[c.external_id]}
            for c in batch
            if c.user is not None
            for a in sorted(c.user.aliases)
        ]
        if rows:
            session.execute(insert(A), rows)
    return result


def record_run(session: Session, run: SyncRun) -> int:
    session.add(run)
    session.flush()
    assert run.id is not None
    return run.id


def record_run_alone(engine: Engine, run: SyncRun) -> int:
    """Store the record of a run that wrote nothing else (refused, failed, dry run)."""
    with Session(engine) as session, session.begin():
        return record_run(session, run)


def acquire_lock(
    engine: Engine, name: str, holder: str, now: datetime, is_stale: Callable[[str, datetime], bool]
) -> str | None:
    """Take the named lock; None on success, else who holds it (a stale lock is taken over)."""
    try:
        with Session(engine) as session, session.begin():
            current = session.get(DirsyncLock, name)
            if current is not None:
                if not is_stale(current.holder, current.acquired_at):
                    return f"{current.holder} since {current.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
                session.delete(current)
                session.flush()
            session.add(DirsyncLock(name=name, holder=holder, acquired_at=now))
    except IntegrityError:
        return "another run (it started at the same moment)"
    return None


def release_lock(engine: Engine, name: str, holder: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            delete(DirsyncLock).where(DirsyncLock.name == name, DirsyncLock.holder == holder)  # type: ignore[arg-type]
        )


def _touches_settings(c: Change) -> bool:
    return any(f.name in SETTINGS_KEYS for f in c.fields)


def _settings_of(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Current settings of the rows whose sender_id / cost_centre change (other keys stay)."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for uid, settings in session.execute(select(U.c.id, U.c.settings).where(U.c.id.in_(chunk))):
            out[uid] = dict(settings or {})
    return out


def _update_values(
    c: Change, customer: CustomerInfo, current: dict[int, dict[str, Any]], now: datetime
) -> dict[str, Any]:
    assert c.user_id is not None
    values: dict[str, Any] = {"b_id": c.user_id}
    settings = dict(current.get(c.user_id, {}))
    settings_changed = False
    for f in c.fields:
        if f.name in ("display_name", "mobile"):
            values[f.name] = f.after
        elif f.name == "profile":
            values["profile_id"] = _profile_id(customer, f.after)
        elif f.name in SETTINGS_KEYS:
            settings_changed = True
            if f.after is None:
                settings.pop(f.name, None)
            else:
                settings[f.name] = f.after
        elif f.name == "enabled":
            values["enabled"] = f.after
            values["disabled_at"] = None if f.after else now
    if settings_changed:
        values["settings"] = settings
    if c.fields:
        values["updated_at"] = now
    return values


def _insert_values(c: Change, customer: CustomerInfo, now: datetime) -> dict[str, Any]:
    u = c.user
    assert u is not None
    settings = {k: v for k, v in (("sender_id", u.sender_id), ("cost_centre", u.cost_centre)) if v}
    return {
        "customer_id": customer.id,
        "profile_id": _profile_id(customer, u.profile),
        "address": u.address,
        "display_name": u.display_name,
        "mobile": u.mobile,
        "enabled": True,
        "origin": ORIGIN,
        "external_id": u.external_id,
        "settings": settings,
        "created_at": now,
        "updated_at": now,
        "disabled_at": None,
    }


def _profile_id(customer: CustomerInfo, name: object) -> int | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in customer.profiles:
        raise ValueError(f"profile {name!r} does not exist for customer {customer.name!r}")
    return customer.profiles[name]


def _executemany(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE user rows by id; rows are grouped by their set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[tuple(sorted(r))].append(r)
    for keys, batch in groups.items():
        assert "b_id" in keys  # the SET clause comes from the other keys
        session.execute(update(U).where(U.c.id == bindparam("b_id")), batch)


def _set(value: object) -> frozenset[str]:
    return value if isinstance(value, frozenset) else frozenset()


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
