"""The same mail sent twice (a client that lost the first 250 and sent again, e.g. on a
second connection) is written once, however close together the copies come: in the same
group commit (SQLite and PostgreSQL), or in two transactions of two bridge instances at
the same moment (PostgreSQL, READ COMMITTED). Both copies are answered with the first's id.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.intake.commit import IntakeMail, accept, commit_mails
from bridge.mt.mails import NewMail
from tests.conftest import fresh_postgres
from tests.integration.test_store import _mail, _seed

KEY = "same-message-id-sender-recipients"


def _copy(user_id: int, mail_id: str, key: str | None = KEY) -> NewMail:
    """A mail as the intake makes it, with the dedupe key of `key` (a day's window)."""
    mail = _mail(user_id, mail_id, recipients=2)
    return replace(mail, dedupe_key=key, dedupe_since=mail.received_at - timedelta(days=1))


def _written(engine: Engine) -> tuple[list[str], list[str]]:
    """The ids of the mails written, and the mail id of each order written."""
    with engine.connect() as conn:
        mails = conn.execute(text("SELECT id FROM mail ORDER BY id")).scalars().all()
        orders = conn.execute(text('SELECT mail_id FROM "order" ORDER BY id')).scalars().all()
    return list(mails), list(orders)


def test_two_copies_in_one_group_commit_are_written_once(engine: Engine) -> None:
    """A group commit holding two copies of a mail (and a third): the second copy is
    answered with the first's id and writes nothing; the others are written as always."""
    user_id = _seed(engine)
    batch = [
        IntakeMail(_copy(user_id, "M1")),
        IntakeMail(_copy(user_id, "M2", key="another mail")),
        IntakeMail(_copy(user_id, "M3")),  # the copy of M1
        IntakeMail(_copy(user_id, "M4", key=None)),  # no Message-ID: never a copy
        IntakeMail(_copy(user_id, "M5")),  # a third copy: M1 too
    ]
    assert run_sync(engine, commit_mails, batch) == ["M1", "M2", "M1", "M4", "M1"]
    mails, orders = _written(engine)
    assert mails == ["M1", "M2", "M4"]
    assert orders == ["M1", "M1", "M2", "M2", "M4", "M4"]  # one set of orders per mail
    # and a later commit of yet another copy names the first as well
    assert run_sync(engine, commit_mails, [IntakeMail(_copy(user_id, "M6"))]) == ["M1"]
    assert _written(engine) == (mails, orders)


async def test_two_copies_accepted_together_get_one_id(engine: Engine, store: Store) -> None:
    """The intake's way: both copies handed to the store's group commit at once (one
    batch), both answered with the first's id, one mail and one set of orders written."""
    user_id = _seed(engine)
    ids = await asyncio.gather(
        accept(store, IntakeMail(_copy(user_id, "M1"))),
        accept(store, IntakeMail(_copy(user_id, "M2"))),
    )
    assert store.batches == 1  # the two in one transaction
    assert list(ids) == ["M1", "M1"]
    assert _written(engine) == (["M1"], ["M1", "M1"])


def _waiting_for_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
    return bool(waiting)


@pytest.mark.postgres
def test_two_instances_committing_copies_at_once_write_one(postgres_server: str) -> None:
    """Two bridge instances (an engine each) commit a copy each, the second while the
    first's transaction is still open after its check and insert. Without a lock the
    second sees no committed copy (READ COMMITTED) and writes its own; with it, the
    second waits for the first's commit, then sees its mail: one mail, one id for both."""
    url = fresh_postgres(postgres_server)
    setup = open_engine(url)
    upgrade(setup)
    user_id = _seed(setup)
    first, second = open_engine(url), open_engine(url)
    answers: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    checked, second_done = threading.Event(), threading.Event()

    def first_instance() -> None:
        try:
            with first.begin() as conn:
                answers["first"] = commit_mails(conn, [IntakeMail(_copy(user_id, "M1"))])
                checked.set()
                # held open until the second is past its check, or waits for this one
                deadline = time.monotonic() + 20
                while not second_done.is_set() and not _waiting_for_lock(setup):
                    assert time.monotonic() < deadline, "the second instance neither ran nor waited"
                    time.sleep(0.01)
        except BaseException as exc:  # the test reports it
            errors.append(exc)
            checked.set()

    def second_instance() -> None:
        try:
            assert checked.wait(20)
            with second.begin() as conn:
                answers["second"] = commit_mails(conn, [IntakeMail(_copy(user_id, "M2"))])
        except BaseException as exc:  # the test reports it
            errors.append(exc)
        finally:
            second_done.set()

    threads = [threading.Thread(target=f) for f in (first_instance, second_instance)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert answers == {"first": ["M1"], "second": ["M1"]}
        assert _written(setup) == (["M1"], ["M1", "M1"])
    finally:
        for engine in (first, second, setup):
            engine.dispose()
