"""REST API sends in the group commit: several in one transaction, each with its own
answer; an Idempotency-Key sent twice in one transaction writes once. On SQLite and on a
throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from bridge.api.keys import KeyRow, check_token
from bridge.api.messages import (
    IdempotencyMismatch,
    MessageService,
    Send,
    commit_sends,
    read_request,
)
from bridge.api.tables import ApiIdempotency
from bridge.db.core import table
from bridge.mt.tables import Mail
from tests.e2e.test_api import PHONE, api

_mail = table(Mail)
_idem = table(ApiIdempotency)


def _counts(conn: Connection) -> tuple[int, int]:
    mails = conn.execute(select(func.count()).select_from(_mail)).scalar_one()
    answers = conn.execute(select(func.count()).select_from(_idem)).scalar_one()
    return mails, answers


async def test_one_transaction_answers_each_send_and_writes_a_key_once(
    tmp_path: Path, bridge_database: str
) -> None:
    async with api(tmp_path, database_url=bridge_database) as a:
        store = a.bridge.store
        assert store is not None
        service = MessageService(
            store, a.settings.defaults.model_dump(), a.settings.smtp.domains, 10, 0.0
        )
        key = await store.read(check_token, a.demo["Authorization"].split()[1])
        assert isinstance(key, KeyRow)
        before = await store.read(_counts)

        async def send(text: str, idem: str | None) -> Send:
            request = read_request({"to": [PHONE], "text": text}, 10)
            mail, _ = await service.build(key, request, "127.0.0.1")
            return Send.of(key, request, mail, idem)

        first, retry = await send("one", "k-1"), await send("one", "k-1")
        other = await send("two", None)
        answers = await store.call(commit_sends, [first, retry, other])
        assert [x.status for x in answers] == [201, 201, 201]
        assert not answers[0].replayed and answers[1].replayed and not answers[2].replayed
        assert answers[1].body == answers[0].body and answers[0].body["mail_id"] == first.mail.id
        assert answers[2].body["mail_id"] == other.mail.id
        assert await store.read(_counts) == (before[0] + 2, before[1] + 1)

        # the same key for another request in one transaction: refused, nothing written
        clash = [await send("three", "k-2"), await send("four", "k-2")]
        with pytest.raises(IdempotencyMismatch):
            await store.call(commit_sends, clash)
        assert await store.read(_counts) == (before[0] + 2, before[1] + 1)
        # a key answered in an earlier transaction: its answer, nothing written
        again = await store.call(commit_sends, [await send("one", "k-1")])
        assert again[0].replayed and again[0].body == answers[0].body
        assert await store.read(_counts) == (before[0] + 2, before[1] + 1)


async def test_concurrent_requests_each_get_their_answer(
    tmp_path: Path, bridge_database: str
) -> None:
    async with api(tmp_path, database_url=bridge_database) as a:
        store = a.bridge.store
        assert store is not None
        before = await store.read(_counts)

        async def post(n: int, idem: str) -> tuple[int, dict[str, object]]:
            r = await a.http.post(
                "/api/v1/messages",
                json={"to": [f"+4917012345{n:02d}"], "text": f"job {idem}"},
                headers={**a.demo, "Idempotency-Key": idem},
            )
            return r.status_code, r.json()

        # eight retries of one request (one key, one body) and eight requests of their own
        found = await asyncio.gather(
            *(post(0, "same") for _ in range(8)), *(post(n, f"own-{n}") for n in range(1, 9))
        )
        assert {status for status, _ in found} == {201}
        same = [body for _, body in found[:8]]
        assert all(body == same[0] for body in same)
        own = {body["mail_id"] for _, body in found[8:]}
        assert len(own) == 8 and same[0]["mail_id"] not in own
        assert await store.read(_counts) == (before[0] + 9, before[1] + 9)
