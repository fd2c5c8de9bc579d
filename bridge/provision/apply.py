"""Declarative tenants: apply a validated tenants file (customers, profiles, users, lists).

Idempotent: each object is created or brought to the file's state, and a second run
changes nothing. Objects the file does not name are left alone (dirsync or the CLI may
own them); a list's members are replaced when the file gives them. `apply_file`
returns one line per change; with `dry_run` the transaction is rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.lists.store import Member, create_list, find_list, put_members, update_list
from bridge.provision.file import CustomerSpec, TenantsError, TenantsSpec
from bridge.tenants.tables import Customer, Profile, User

_customer = table(Customer)
_profile = table(Profile)
_user = table(User)

Members = dict[tuple[str, str], list[Member] | None]


def _customer_row(conn: Connection, c: CustomerSpec, changes: list[str]) -> int:
    row = conn.execute(select(_customer).where(_customer.c.name == c.name)).first()
    if row is None:
        result = conn.execute(
            insert(_customer).values(
                name=c.name, enabled=c.enabled, settings=c.settings, created_at=utcnow()
            )
        )
        changes.append(f"+ customer {c.name}")
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])
    if (row.enabled, row.settings or {}) != (c.enabled, c.settings):
        conn.execute(
            update(_customer)
            .where(_customer.c.id == row.id)
            .values(enabled=c.enabled, settings=c.settings)
        )
        changes.append(f"~ customer {c.name}: enabled/settings")
    return int(row.id)


def _profiles(conn: Connection, cid: int, c: CustomerSpec, changes: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for p in c.profiles:
        row = conn.execute(
            select(_profile).where(_profile.c.customer_id == cid, _profile.c.name == p.name)
        ).first()
        if row is None:
            result = conn.execute(
                insert(_profile).values(customer_id=cid, name=p.name, settings=p.settings)
            )
            key = result.inserted_primary_key
            assert key is not None
            ids[p.name] = int(key[0])
            changes.append(f"+ profile {c.name}/{p.name}")
            continue
        ids[p.name] = int(row.id)
        if (row.settings or {}) != p.settings:
            conn.execute(
                update(_profile).where(_profile.c.id == row.id).values(settings=p.settings)
            )
            changes.append(f"~ profile {c.name}/{p.name}: settings")
    return ids


def _users(
    conn: Connection, cid: int, c: CustomerSpec, profiles: dict[str, int], changes: list[str]
) -> None:
    for u in c.users:
        address = u.address.lower()
        wanted: dict[str, Any] = {
            "display_name": u.display_name,
            "profile_id": profiles.get(u.profile) if u.profile else None,
            "enabled": u.enabled,
            "settings": u.settings,
        }
        row = conn.execute(select(_user).where(_user.c.address == address)).first()
        now = utcnow()
        if row is None:
            conn.execute(
                insert(_user).values(
                    customer_id=cid,
                    address=address,
                    origin="tenants",
                    created_at=now,
                    updated_at=now,
                    **wanted,
                )
            )
            changes.append(f"+ user {address} ({c.name})")
            continue
        if row.customer_id != cid:
            raise TenantsError([f"user {address} belongs to another customer; not moved"])
        current = {k: (row.settings or {}) if k == "settings" else row._mapping[k] for k in wanted}
        diff = sorted(k for k in wanted if current[k] != wanted[k])
        if diff:
            values = dict(wanted, updated_at=now)
            values["disabled_at"] = None if u.enabled else (row.disabled_at or now)
            conn.execute(update(_user).where(_user.c.id == row.id).values(**values))
            changes.append(f"~ user {address}: {', '.join(diff)}")


def _lists(
    conn: Connection, cid: int, c: CustomerSpec, members: Members, changes: list[str]
) -> None:
    for spec in c.lists:
        info = find_list(conn, cid, spec.name)
        if info is None:
            list_id = create_list(conn, c.name, spec.name, spec.fields, spec.description)
            changes.append(f"+ list {c.name}/{spec.name}")
        else:
            list_id = info.id
            if (list(info.fields), info.description) != (spec.fields, spec.description):
                update_list(conn, list_id, spec.fields, spec.description)
                changes.append(f"~ list {c.name}/{spec.name}: fields/description")
        wanted = members.get((c.name, spec.name))
        if wanted is not None:
            added, updated, removed = put_members(conn, list_id, wanted, replace=True)
            if added or updated or removed:
                changes.append(
                    f"~ list {c.name}/{spec.name} members: +{added} ~{updated} -{removed}"
                )


def apply_tenants(conn: Connection, spec: TenantsSpec, members: Members) -> list[str]:
    """Bring the database to the file's state; the changes made, one line each."""
    changes: list[str] = []
    for c in spec.customers:
        cid = _customer_row(conn, c, changes)
        profiles = _profiles(conn, cid, c, changes)
        _users(conn, cid, c, profiles, changes)
        _lists(conn, cid, c, members, changes)
    return changes


def apply_file(engine: Engine, spec: TenantsSpec, members: Members, dry_run: bool) -> list[str]:
    """Apply in one transaction; commit it, or roll it back for a dry run."""
    with engine.connect() as conn:
        changes = apply_tenants(conn, spec, members)
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    return changes


def change_setting(
    conn: Connection, level: str, target: str, name: str, value: Any | None
) -> dict[str, Any]:
    """Set (or with None, unset) one setting of a customer, "customer/profile" or user."""
    if level == "customer":
        tbl, where = _customer, _customer.c.name == target
    elif level == "profile":
        customer, _, profile = target.partition("/")
        cid = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
        tbl, where = _profile, (_profile.c.customer_id == cid) & (_profile.c.name == profile)
    else:
        tbl, where = _user, _user.c.address == target.lower()
    row = conn.execute(select(tbl.c.id, tbl.c.settings).where(where)).first()
    if row is None:
        hint = "customer/profile" if level == "profile" else level
        raise TenantsError([f"no {level} {target!r} (expected {hint}); see `mailsms {level} list`"])
    settings = dict(row.settings or {})
    if value is None:
        settings.pop(name, None)
    else:
        settings[name] = value
    conn.execute(update(tbl).where(tbl.c.id == row.id).values(settings=settings))
    return settings
