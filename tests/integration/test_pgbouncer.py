"""The bridge through PgBouncer (Debian's, 1.18), in session and in transaction pooling.

PgBouncer is a peer with habits of its own. In `pool_mode = transaction` each transaction
(each statement, outside one) may run on another server connection, shared with other
clients: a session's `SET` lands on one server connection — lost for the next
transaction, and leaked to the other clients — and a statement psycopg prepared on the
server after `prepare_threshold` executions is missing on the next one ("prepared
statement "_pg3_0" does not exist"; PgBouncer 1.18 does not track them). A
`database_url` with `?pool_mode=transaction` tells the bridge: no server-side prepared
statements, and `lock_timeout` sent with each transaction (`SET LOCAL`) instead of once
per session; an undeclared transaction pooler is found at start-up and refused with a
sentence saying what to add. In session pooling the bridge runs as on PostgreSQL itself.

Each test: the real bridge (SMTP in, the sandbox SMSC, its receipts, status notices to a
maildir) with `database_url` pointing at PgBouncer in front of a throwaway PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiosmtplib
import psycopg
import pytest
from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.engine import (
    LOCK_WAIT,
    check_pooling,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from bridge.errors import ConfigError
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import db_rows, maildir_messages, make_mail, running_bridge, wait_for
from tests.peers.pgbouncer import Bouncer, PoolMode, throwaway_pgbouncer
from tests.peers.postgres import DURABLE, PgServer, throwaway_server

pytestmark = pytest.mark.postgres

PHONE = "+491701234567"
TO = f"{PHONE}@eu.rsms.net"
_databases = iter(range(1000))


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    """A durable throwaway PostgreSQL (`mailsms serve` refuses fsync=off)."""
    with throwaway_server(DURABLE) as server:
        yield server


@pytest.fixture(scope="module", params=["session", "transaction"])
def bouncer(request: pytest.FixtureRequest, pg: PgServer) -> Iterator[Bouncer]:
    mode: PoolMode = request.param
    with throwaway_pgbouncer(pg, mode) as running:
        yield running


def _database(pg: PgServer) -> str:
    name = f"b{next(_databases)}"
    pg.query(f"CREATE DATABASE {name}")
    return name


def _settings(tmp_path: Path, url: str, **updates: object) -> Settings:
    return make_settings(tmp_path).model_copy(update={"database_url": url, **updates})


async def test_mail_to_sms_to_receipt_and_notice_past_the_prepare_threshold(
    tmp_path: Path, pg: PgServer, bouncer: Bouncer
) -> None:
    """40 mails (each statement kind well past psycopg's prepare threshold of 5), each
    sent, delivered, its receipt stored, its order final and its status notice mailed."""
    name = _database(pg)
    plain = _settings(tmp_path, bouncer.url(name))
    settings = plain.model_copy(
        update={"defaults": plain.defaults.model_copy(update={"notify": "all"})}
    )
    count = 40
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
            for i in range(count):
                mail = make_mail(to=TO, body=f"mail {i}", message_id=f"<m{i}@client.example>")
                await smtp.sendmail("demo@example.com", [TO], mail)

        def final() -> bool:
            rows = db_rows(pg.url(name), 'SELECT status FROM "order"')
            return len(rows) == count and all(r[0] == "delivered" for r in rows)

        await wait_for(final, within=40)
        await wait_for(lambda: len(maildir_messages(tmp_path / "maildir")) == count, within=20)
    texts = sorted(r[0] for r in db_rows(pg.url(name), 'SELECT text FROM "order"'))
    assert texts == sorted(f"mail {i}" for i in range(count))


def _lock(holder: psycopg.Connection[Any], sql: str) -> None:
    """Take the tables' locks; one by one, so a transaction of the bridge's between them
    (a dispatcher's poll) may make a deadlock, which PostgreSQL ends by failing ours:
    then again."""
    for _ in range(20):
        try:
            holder.execute(sql)
            return
        except psycopg.errors.DeadlockDetected:
            holder.rollback()
    raise AssertionError(f"no lock after 20 deadlocks: {sql}")


async def test_a_commit_behind_a_held_lock_answers_451_within_the_lock_wait(
    tmp_path: Path, pg: PgServer, bouncer: Bouncer
) -> None:
    """A `LOCK TABLE` held by a direct connection: the intake's commit gives up after
    `LOCK_WAIT` (451), not after `database_timeout` (the transaction pooler lost the
    session's `lock_timeout`), and the retry after the lock is the one copy."""
    name = _database(pg)
    settings = _settings(tmp_path, bouncer.url(name), database_timeout=40.0)
    mail = make_mail(to=TO, body="only once")
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
            for i in range(8):  # every database thread's connection used, in any mode
                warm = make_mail(to=TO, body=f"warm {i}", message_id=f"<w{i}@client.example>")
                await smtp.sendmail("demo@example.com", [TO], warm)

        def settled() -> bool:  # the warm mails' dispatch and receipts done
            rows = db_rows(pg.url(name), 'SELECT status FROM "order"')
            return len(rows) == 8 and all(r[0] == "delivered" for r in rows)

        await wait_for(settled, within=30)
        with psycopg.connect(pg.conninfo(name)) as holder:
            _lock(holder, 'LOCK TABLE mail, "order" IN ACCESS EXCLUSIVE MODE')
            started = time.monotonic()
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
                with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                    await smtp.sendmail("demo@example.com", [TO], mail)
            waited = time.monotonic() - started
            assert refused.value.code == 451, refused.value
            assert waited < LOCK_WAIT + 5, waited
            holder.rollback()
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
            await smtp.sendmail("demo@example.com", [TO], mail)
    texts = [r[0] for r in db_rows(pg.url(name), 'SELECT text FROM "order"')]
    assert texts.count("only once") == 1


async def test_instances_migrating_together_then_two_bridges_through_one_pgbouncer(
    tmp_path: Path, pg: PgServer, bouncer: Bouncer
) -> None:
    """The migrations (alembic) under the migration's advisory lock (transaction-scoped)
    through PgBouncer: three instances migrate an empty database at once, in turn; then
    two bridges run side by side through the one PgBouncer, each taking mail."""
    name = _database(pg)
    url = bouncer.url(name)
    engines = [open_engine(url) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(upgrade, engines))
        assert current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            engine.dispose()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    async with (
        running_bridge(_settings(one, url)) as (_, first),
        running_bridge(_settings(two, url)) as (_, second),
    ):
        for i, ep in enumerate((first, second)):
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
                mail = make_mail(to=TO, body=f"by bridge {i}", message_id=f"<b{i}@client.example>")
                await smtp.sendmail("demo@example.com", [TO], mail)
    texts = sorted(r[0] for r in db_rows(pg.url(name), 'SELECT text FROM "order"'))
    assert texts == ["by bridge 0", "by bridge 1"]


def test_an_undeclared_transaction_pooler_is_refused_with_what_to_add(
    pg: PgServer, bouncer: Bouncer
) -> None:
    name = _database(pg)
    engine = open_engine(bouncer.url(name, declare=False))
    try:
        if bouncer.pool_mode == "session":
            check_pooling(engine)  # session pooling: as PostgreSQL itself
            return
        with pytest.raises(ConfigError, match=r"pool_mode=transaction"):
            check_pooling(engine)
    finally:
        engine.dispose()


def test_db_upgrade_through_pgbouncer(tmp_path: Path, pg: PgServer, bouncer: Bouncer) -> None:
    """`mailsms db upgrade` migrates through PgBouncer; through an undeclared transaction
    pooler it says what to add to database_url (no traceback)."""
    name = _database(pg)
    config = tmp_path / "bridge.toml"

    def db(command: str, url: str) -> Result:
        config.write_text(f'database_url = "{url}"\n[sandbox]\nenabled = true\n', encoding="utf-8")
        return CliRunner().invoke(app, ["db", command, "-c", str(config)])

    upgraded = db("upgrade", bouncer.url(name))
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database at revision {head_revision()}" in upgraded.output
    status = db("upgrade", bouncer.url(name, declare=False))
    if bouncer.pool_mode == "session":
        assert status.exit_code == 0, status.output
    else:
        assert status.exit_code == 2 and status.exception is not None, status.output
        assert isinstance(status.exception, SystemExit), status.exception  # no traceback
        assert status.stderr.startswith(
            f"mailsms: database_url: postgresql://mailsms@127.0.0.1:{bouncer.port}/{name} "
            "shares its server connections between transactions"
        ), status.stderr
        assert "add ?pool_mode=transaction to database_url" in status.stderr
