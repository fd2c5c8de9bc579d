"""dirsync against a throwaway slapd whose entries hold what real directories hold wrong,
on SQLite and on PostgreSQL: addresses in odd case or form, the same address twice, phone
numbers written every way, names with control characters or 1,000 characters, a missing
or malformed objectGUID, groups that do not exist.

Each entry is either synced or reported as a problem with a sentence; the run is never a
traceback, never stores a control character, and a second run over the same directory
changes nothing (an odd value must not look changed at every run).

Found so far: two users with one address were both named by that address in the report.
"""

from __future__ import annotations

import base64
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bridge.tenants.tables import Alias, User
from dirsync.run import run_sync
from tests.helpers import acme_customer
from tests.integration.test_dirsync_ldap import STAFF, SUFFIX, make_config
from tests.peers.slapd import ad_user, base_ldif, running

pytestmark = [
    pytest.mark.slapd,
    pytest.mark.filterwarnings("ignore:tagMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:typeMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]


def _b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def entry(n: int, **attrs: Any) -> str:
    """One AD-like user; `attrs` replace its attributes (None: left out, bytes or a str
    with a character LDIF cannot write plainly: base64, a list: several values)."""
    g = uuid.uuid5(uuid.NAMESPACE_URL, f"odd-{n}").bytes_le
    values: dict[str, Any] = {
        "objectClass": "user",
        "objectCategory": "person",
        "cn": f"Odd {n}",
        "sn": f"Odd{n}",
        "sAMAccountName": f"odd{n}",
        "displayName": f"Odd User {n}",
        "mail": f"odd{n}@corp.example",
        "mobile": f"0170 {2000000 + n:07d}",
        "department": f"CC-{n:03d}",
        "userAccountControl": "512",
        "objectGUID": g,
    }
    values.update(attrs)
    lines = [f"dn: cn=Odd {n},{STAFF}"]
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            if v is None:
                continue
            plain = isinstance(v, str) and v.isascii() and v.isprintable() and v[:1] not in ": <"
            lines.append(f"{name}: {v}" if plain else f"{name}:: {_b64(v)}")
    return "\n".join(lines) + "\n\n"


ODD = [
    entry(1, mail="ALICE.Smith@Corp.Example"),
    entry(2, mail="dup@corp.example"),
    entry(3, mail="DUP@corp.example"),  # the same address as 2, in another case
    entry(4, mail="bob@bücher.example"),
    entry(5, mail='"john doe"@corp.example'),
    entry(6, mail="not-an-address"),
    entry(7, mail=None),
    entry(8, mobile="+49 (0)170 2000008"),
    entry(9, mobile="0170/200 00 09 ext. 12"),
    entry(10, mobile="tel:+491702000010"),
    entry(11, mobile=["00491702000011", "+491702000111"]),
    entry(12, mobile="call me"),
    entry(13, displayName="Ünïcødé 😀 \u202eevil\u202c"),
    entry(14, displayName="x" * 1000),
    entry(15, displayName="Esc\x1b[31mRed\x07"),
    entry(16, department="CC\n12\t3"),
    entry(17, department="\x00\x01"),
    entry(18, objectGUID=None),
    entry(19, objectGUID=b"\x01\x02\x03\x04\x05"),
    entry(20, userAccountControl="abc"),
    entry(21, sAMAccountName=None, cn="Odd 21"),
    entry(22, memberOf=f"cn=No Such Group,{SUFFIX}"),
    entry(23, proxyAddresses=["SMTP:", "smtp:garbage", "smtp:odd23@Legacy.Example"]),
    entry(24, proxyAddresses=["smtp:odd1@corp.example"]),  # another user's address
    entry(25, extensionAttribute1="Sender With Spaces And Far Too Long"),
]
CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}


@pytest.fixture
def acme(engine: Engine) -> Engine:
    """conftest's migrated database (SQLite and PostgreSQL) with customer acme."""
    acme_customer(engine, "standard")
    return engine


def _stored(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as s:
        users = [u.model_dump() for u in s.execute(select(User)).scalars()]
        users += [a.model_dump() for a in s.execute(select(Alias)).scalars()]
    return users


def _controls(value: object) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_controls(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_controls(v) for v in value)) if value else set()
    if isinstance(value, str):
        return {ch for ch in value if ch in CONTROLS or unicodedata.category(ch) == "Cs"}
    return set()


def test_an_odd_directory_syncs_and_stays_synced(tmp_path: Path, acme: Engine) -> None:
    engine = acme
    ldif = base_ldif(SUFFIX) + ad_user(0, SUFFIX) + "".join(ODD)
    with running(tmp_path / "slapd", ldif) as server:
        cfg = make_config(server, tmp_path)
        first = run_sync(cfg, engine)
        assert first.status == "applied", (first.status, first.message)
        assert first.plan is not None
        problems = {p.ref: p.message for p in first.plan.problems}
        stored = _stored(engine)
        assert stored, "nothing synced"
        bad = [(row.get("address"), _controls(row)) for row in stored if _controls(row)]
        assert not bad, bad
        # every entry that was not synced says why
        synced = {str(u.get("external_id") or "") for u in stored} | {
            str(u.get("address") or "") for u in stored
        }
        assert all(isinstance(m, str) and m for m in problems.values()), problems
        # the two users of one address are told apart (they were both named by it)
        conflict = problems["dup@corp.example"]
        assert "Odd User 2" in conflict and "Odd User 3" in conflict, conflict
        again = run_sync(cfg, engine)
        assert again.status in ("applied", "unchanged"), (again.status, again.message)
        assert again.plan is not None
        changed = [c.describe() for c in again.plan.changes]
        assert not changed, changed
        assert len(synced) > 10
