"""`apply tenants.toml`: creates, converges, is idempotent, refuses invalid files, dry-runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bridge.db.store import run_sync
from bridge.lists.store import get_list, list_members
from bridge.provision.apply import apply_file
from bridge.provision.file import TenantsError, load_tenants

FILE = """
[[customers]]
name = "acme"
settings = { sender_id = "ACME", allowed_countries = ["DE", "AT"] }
[[customers.profiles]]
name = "sales"
settings = { priority = "express", validity = "2h" }
[[customers.users]]
address = "Anna@Acme.example"
display_name = "Anna"
profile = "sales"
settings = { notify = "all" }
[[customers.lists]]
name = "team"
fields = ["city"]
members_csv = "team.csv"
"""
CSV = "msisdn,first_name,last_name,city\n0170 1111111,Anna,Berg,Berlin\n+491702222222,Ben,,Bonn\n"


def _apply(engine: Engine, tmp_path: Path, body: str, dry_run: bool = False) -> list[str]:
    (tmp_path / "team.csv").write_text(CSV, encoding="utf-8")
    path = tmp_path / "tenants.toml"
    path.write_text(body, encoding="utf-8")
    spec, members = load_tenants(path, default_country="DE")
    return apply_file(engine, spec, members, dry_run)


def test_apply_creates_then_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    assert _apply(engine, tmp_path, FILE, dry_run=True) == [
        "+ customer acme",
        "+ profile acme/sales",
        "+ user anna@acme.example (acme)",
        "+ list acme/team",
        "~ list acme/team members: +2 ~0 -0",
    ]
    with engine.connect() as conn:  # the dry run changed nothing
        assert conn.execute(text("SELECT count(*) FROM customer")).scalar() == 0
    assert len(_apply(engine, tmp_path, FILE)) == 5
    assert _apply(engine, tmp_path, FILE) == []
    info = run_sync(engine, get_list, "acme", "team")
    members = run_sync(engine, list_members, info.id, info.customer_id)
    assert [(m.msisdn, m.first_name, m.fields) for m in members] == [
        ("+491701111111", "Anna", {"city": "Berlin"}),
        ("+491702222222", "Ben", {"city": "Bonn"}),
    ]


def test_apply_converges_changes(engine: Engine, tmp_path: Path) -> None:
    _apply(engine, tmp_path, FILE)
    changed = FILE.replace('notify = "all"', 'notify = "none"').replace("ACME", "ACME2")
    assert _apply(engine, tmp_path, changed) == [
        "~ customer acme: enabled/settings",
        "~ user anna@acme.example: settings",
    ]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ('sender_id = "ACME"', 'sender_id = "ACME GmbH!"'),
        ('notify = "all"', 'notify = "sometimes"'),
        ('profile = "sales"', 'profile = "support"'),
        ('settings = { notify = "all" }', 'settings = { mail_overrides = ["priority"] }'),
        ('members_csv = "team.csv"', 'members_csv = "missing.csv"'),
        ('name = "team"', 'name = "Team List"'),
    ],
)
def test_invalid_files_are_refused_before_any_change(
    engine: Engine, tmp_path: Path, bad: str, problem: str
) -> None:
    with pytest.raises(TenantsError) as err:
        _apply(engine, tmp_path, FILE.replace(bad, problem))
    assert err.value.problems
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customer")).scalar() == 0
