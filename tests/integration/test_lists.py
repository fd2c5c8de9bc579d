"""List storage on SQLite and PostgreSQL: batched members, update/replace, stop-list flags."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.inbound.actions_store import add_stop
from bridge.lists.store import (
    ListError,
    Member,
    create_list,
    get_list,
    list_members,
    put_members,
    remove_members,
)
from bridge.reports.store import customer_id
from bridge.tenants.admin import add_customer


def _setup(engine: Engine) -> tuple[int, int]:
    run_sync(engine, add_customer, "acme", {})
    cid = run_sync(engine, customer_id, "acme")
    assert cid is not None
    return cid, run_sync(engine, create_list, "acme", "Team", ["city"])


def test_members_are_added_updated_and_replaced(engine: Engine) -> None:
    _, list_id = _setup(engine)
    many = [Member(f"+4917{i:09d}", f"N{i}") for i in range(12_000)]  # more than one batch
    assert run_sync(engine, put_members, list_id, many) == (12_000, 0, 0)
    assert run_sync(engine, get_list, "acme", "team").members == 12_000
    again = [Member(many[0].msisdn, "Changed"), Member("+491799999999", "New")]
    assert run_sync(engine, put_members, list_id, again, replace=True) == (1, 1, 11_999)
    names = [(m.msisdn, m.first_name) for m in run_sync(engine, list_members, list_id)]
    assert names == [(many[0].msisdn, "Changed"), ("+491799999999", "New")]
    assert run_sync(engine, remove_members, list_id, ["+491799999999"]) == 1


def test_stop_flags_follow_the_stop_list(engine: Engine) -> None:
    cid, list_id = _setup(engine)
    run_sync(
        engine,
        put_members,
        list_id,
        [Member("+491701111111"), Member("+491702222222"), Member("+491703333333")],
    )
    run_sync(engine, add_stop, cid, "+491701111111", "", utcnow(), "sms")  # customer-wide
    run_sync(engine, add_stop, 0, "+491702222222", "", utcnow(), "cli")  # every customer
    run_sync(engine, add_stop, cid, "+491703333333", "ACME", utcnow(), "sms")  # one service
    flags = {m.msisdn: m.stopped for m in run_sync(engine, list_members, list_id, cid)}
    assert flags == {"+491701111111": True, "+491702222222": True, "+491703333333": False}
    flags = {m.msisdn: m.stopped for m in run_sync(engine, list_members, list_id, cid, ("ACME",))}
    assert flags["+491703333333"] is True


def test_list_errors_name_the_fix(engine: Engine) -> None:
    _setup(engine)
    cases: list[tuple[Callable[..., object], tuple[str, str], str]] = [
        (create_list, ("acme", "team"), "exists already"),
        (create_list, ("nobody", "x"), "no customer"),
        (get_list, ("acme", "other"), "mailsms list add"),
    ]
    for call, args, text in cases:
        try:
            run_sync(engine, call, *args)
        except ListError as exc:
            assert text in str(exc)
        else:
            raise AssertionError(f"{call.__name__}{args} did not fail")
