"""The SMPP server on the wire, with a raw client session: bind refusals, window, sender ids,
query_sm, cancel_sm, replace_sm, generic_nack, enquire_link and unbind, submit before bind, TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import text

from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.smpp import constants as c
from bridge.smpp.pdu import (
    Bind,
    BindResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnknownPdu,
    decode,
    encode,
)
from bridge.smpp.session import SessionError, SmppSession
from bridge.smpp_server.accounts import add_account, ensure_demo_account
from bridge.smpp_server.server import SmppServer
from bridge.smpp_server.settings import SmppServerSettings
from bridge.tenants.admin import ensure_demo

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


async def _nothing(pdu: Pdu) -> Pdu | None:
    return None


@asynccontextmanager
async def _server(
    store: Store, settings: SmppServerSettings | None = None, **options: Any
) -> AsyncIterator[SmppServer]:
    upgrade(store.engine)
    run_sync(store.engine, ensure_demo)
    run_sync(store.engine, ensure_demo_account, "demo")
    run_sync(store.engine, lambda conn: add_account(
        conn, "far", "demo@example.com", "pw", networks=("192.0.2.0/24",)))  # fmt: skip
    run_sync(store.engine, lambda conn: add_account(
        conn, "rx", "demo@example.com", "pw", networks=("127.0.0.1",), bind_types=("receiver",),
        window=2, max_binds=1, senders=("ACME",)))  # fmt: skip
    server = SmppServer(settings or SmppServerSettings(enabled=True, port=0), {}, store, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def _client(port: int) -> AsyncIterator[tuple[SmppSession, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = SmppSession(reader, writer, _nothing, window=20, response_timeout=5.0)
    task = asyncio.create_task(session.run())
    try:
        yield session, writer
    finally:
        await session.close()
        task.cancel()


def _submit(source: str = "4915550000001", dest: str = "491701234567") -> SubmitSm:
    return SubmitSm(0, source, dest, b"hi", source_addr_ton=1, source_addr_npi=1,
                    dest_addr_ton=1, dest_addr_npi=1)  # fmt: skip


async def _bind(session: SmppSession, system_id: str, password: str, kind: int) -> int:
    resp = await session.request(Bind(kind, 0, system_id, password))
    assert isinstance(resp, BindResp | GenericNack)
    return resp.status


async def test_binds_refused_by_password_network_type_and_count(store: Store) -> None:
    async with _server(store) as server:
        for system_id, password, kind, status in (
            ("demo", "nope", c.BIND_TRANSCEIVER, c.ESME_RINVPASWD),
            ("nobody", "x", c.BIND_TRANSCEIVER, c.ESME_RINVSYSID),
            ("far", "pw", c.BIND_TRANSCEIVER, c.ESME_RBINDFAIL),  # wrong network
            ("rx", "pw", c.BIND_TRANSMITTER, c.ESME_RBINDFAIL),  # bind type not allowed
        ):
            async with _client(server.port) as (session, _):
                assert await _bind(session, system_id, password, kind) == status, system_id
                await session.wait_closed()  # a refused bind ends the connection
        async with _client(server.port) as (first, _), _client(server.port) as (second, _):
            assert await _bind(first, "rx", "pw", c.BIND_RECEIVER) == 0
            assert await _bind(second, "rx", "pw", c.BIND_RECEIVER) == c.ESME_RBINDFAIL
            assert await _bind(first, "rx", "pw", c.BIND_RECEIVER) == c.ESME_RALYBND
            resp = await first.request(_submit())  # a receiver may not submit
            assert isinstance(resp, SubmitSmResp) and resp.status == c.ESME_RINVBNDSTS


@pytest.mark.parametrize("before", [True, False])
async def test_the_dispatcher_is_woken_before_or_after_the_commit(
    store: Store, before: bool
) -> None:
    """`wake_before_commit` (SQLite, dispatcher in this process): a message in one PDU wakes
    the dispatcher as it is queued, so its claim joins the commit; a concatenated one, and
    every message without it, once the (last part's) commit is done."""
    rows_at_wake: list[int] = []

    def orders() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(text('SELECT count(*) FROM "order"')).scalar_one())

    options: dict[str, Any] = {
        "on_accepted": lambda: rows_at_wake.append(orders()),
        "wake_before_commit": before,
    }
    async with _server(store, **options) as server, _client(server.port) as (session, _):
        assert await _bind(session, "demo", "demo", c.BIND_TRANSCEIVER) == 0
        whole = await session.request(_submit())
        assert isinstance(whole, SubmitSmResp) and whole.status == 0
        for seq in (1, 2):
            udh = bytes((5, 0, 3, 7, 2, seq))
            part = replace(_submit(), short_message=udh + b"part", esm_class=0x40)
            resp = await session.request(part)
            assert isinstance(resp, SubmitSmResp) and resp.status == 0
    # before: the whole message's row is not committed yet when the dispatcher is woken
    assert rows_at_wake == ([0, 2] if before else [1, 2])


async def test_protocol_basics(store: Store) -> None:
    async with _server(store) as server, _client(server.port) as (session, _):
        early = await session.request(_submit())
        assert isinstance(early, SubmitSmResp) and early.status == c.ESME_RINVBNDSTS
        assert await _bind(session, "demo", "demo", c.BIND_TRANSCEIVER) == 0
        assert isinstance(await session.request(EnquireLink(0)), EnquireLinkResp)
        nack = await session.request(UnknownPdu(0x00000099, 0))
        assert isinstance(nack, GenericNack) and nack.status == c.ESME_RINVCMDID
        any_source = await session.request(_submit(source="4915559999999"))
        assert isinstance(any_source, SubmitSmResp) and any_source.status == 0  # demo: any
        landline = await session.request(_submit(dest="49301234567"))
        assert isinstance(landline, SubmitSmResp) and landline.status == c.ESME_RINVDSTADR
        ok = await session.request(_submit())
        assert isinstance(ok, SubmitSmResp) and ok.status == 0
        body = ok.message_id.encode() + b"\0\x01\x01" + b"4915550000001\0"
        query = await session.request(UnknownPdu(c.QUERY_SM, 0, 0, body))
        assert isinstance(query, UnknownPdu) and query.status == 0
        assert query.body.startswith(ok.message_id.encode() + b"\0\0") and query.body[-2] == 1
        unknown = await session.request(UnknownPdu(c.QUERY_SM, 0, 0, b"NOPE.1\0\x01\x01x\0"))
        assert unknown.status == c.ESME_RINVMSGID
        cancel_body = b"\0" + ok.message_id.encode() + b"\0\x01\x01x\0\x01\x01y\0"
        cancelled = await session.request(UnknownPdu(c.CANCEL_SM, 0, 0, cancel_body))
        assert cancelled.status == 0
        again = await session.request(UnknownPdu(c.CANCEL_SM, 0, 0, cancel_body))
        assert again.status == c.ESME_RCANCELFAIL
        final = await session.request(UnknownPdu(c.QUERY_SM, 0, 0, body))
        assert isinstance(final, UnknownPdu) and final.body[-2] == 8  # REJECTED
        replace = await session.request(UnknownPdu(c.REPLACE_SM, 0, 0, b""))
        assert replace.status == c.ESME_RREPLACEFAIL
        assert isinstance(await session.request(Unbind(0)), UnbindResp)
        await session.wait_closed()


async def test_window_and_sender_ids(store: Store) -> None:
    async with _server(store) as server:
        run_sync(store.engine, lambda conn: add_account(
            conn, "tx", "demo@example.com", "pw", networks=("127.0.0.1",), window=2,
            senders=("ACME",)))  # fmt: skip
        async with _client(server.port) as (session, writer):
            assert await _bind(session, "tx", "pw", c.BIND_TRANSMITTER) == 0
            wrong = await session.request(_submit(source="OTHER"))
            assert isinstance(wrong, SubmitSmResp) and wrong.status == c.ESME_RINVSRCADR
            # five submit_sm in one write: two fit the window, three are throttled
            statuses = _statuses(session)
            writer.write(b"".join(encode(_submit(source="ACME"), 100 + i) for i in range(5)))
            await writer.drain()
            for _ in range(500):
                if len(statuses) >= 5:
                    break
                await asyncio.sleep(0.01)
            assert sorted(statuses) == [0, 0, c.ESME_RTHROTTLED, c.ESME_RTHROTTLED,
                                        c.ESME_RTHROTTLED]  # fmt: skip


def _statuses(session: SmppSession) -> list[int]:
    """The statuses of the submit_sm_resp to requests written past the session (seq >= 100)."""
    seen: list[int] = []
    original = session._dispatch

    def spy(command_id: int, status: int, seq: int, body: bytes) -> None:
        if command_id == c.SUBMIT_SM_RESP and seq >= 100:
            seen.append(status)
        original(command_id, status, seq, body)

    session._dispatch = spy  # type: ignore[method-assign]
    return seen


async def test_smpp_over_tls(store: Store, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    settings = SmppServerSettings(enabled=True, port=0, tls_cert=cert_file, tls_key=key_file)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with _server(store, settings) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="127.0.0.1"
        )
        session = SmppSession(reader, writer, _nothing, response_timeout=5.0)
        task = asyncio.create_task(session.run())
        try:
            assert await _bind(session, "demo", "demo", c.BIND_TRANSCEIVER) == 0
            ok = await session.request(_submit())
            assert isinstance(ok, SubmitSmResp) and ok.status == 0 and ok.message_id
        finally:
            await session.close()
            task.cancel()
        # a plaintext client gets no SMPP answer from the TLS port: the connection ends
        async with _client(server.port) as (plain, _):
            with pytest.raises(SessionError):
                await _bind(plain, "demo", "demo", c.BIND_TRANSCEIVER)


@asynccontextmanager
async def _writes_held(store: Store) -> AsyncIterator[None]:
    """Another connection holds what an insert into "order" needs (SQLite's write lock,
    PostgreSQL's table lock) until the block ends: a commit meanwhile waits."""
    holder = open_engine(store.engine.url.render_as_string(hide_password=False))
    with holder.connect() as conn, conn.begin():  # SQLite: BEGIN IMMEDIATE
        if holder.dialect.name == "postgresql":
            conn.execute(text('LOCK TABLE "order" IN EXCLUSIVE MODE'))
        yield
    holder.dispose()


async def test_stop_answers_the_submit_in_flight_then_unbinds(store: Store) -> None:
    """A client bound while the server stops gets the answer to the submit_sm whose commit
    was under way (its message stored), then an `unbind` (our session answers it and
    records "peer unbound"), and a submit_sm after the stop began gets ESME_RSYSERR.
    Before, the server dropped the connection: the stored message went unanswered."""
    async with _server(store) as server, _client(server.port) as (session, _):
        assert await _bind(session, "demo", "demo", c.BIND_TRANSCEIVER) == 0
        async with _writes_held(store):
            in_flight = asyncio.create_task(session.request(_submit(dest="491701230001")))
            await asyncio.sleep(0.3)  # read and handled: its commit waits for the lock
            assert not in_flight.done()
            stopping = asyncio.create_task(server.stop())
            await asyncio.sleep(0.1)
            late = await session.request(_submit(dest="491701230002"))
            assert isinstance(late, SubmitSmResp) and late.status == c.ESME_RSYSERR
            assert not session.closed
        answer = await asyncio.wait_for(in_flight, 10)
        assert isinstance(answer, SubmitSmResp) and answer.status == 0 and answer.message_id
        await asyncio.wait_for(session.wait_closed(), 10)
        assert session.close_reason == "peer unbound"
        await asyncio.wait_for(stopping, 10)
    with store.engine.connect() as conn:
        stored = conn.execute(text('SELECT recipient FROM "order"')).scalars().all()
    assert stored == ["+491701230001"]


async def test_a_submit_sm_written_just_before_unbind_gets_its_answer(store: Store) -> None:
    """A client may unbind at any time; a one-shot script writes submit_sm and unbind
    together. The message is stored and will be sent, so the client gets its
    submit_sm_resp with the message id, then the unbind_resp, then the close (a submit_sm
    after the unbind is not taken: ESME_RINVBNDSTS). Before, the unbind was answered and
    the connection closed while the commit was under way."""
    async with _server(store) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

        async def read_pdu() -> Pdu:
            head = await asyncio.wait_for(reader.readexactly(16), 10)
            return decode(head + await reader.readexactly(int.from_bytes(head[:4]) - 16))

        writer.write(encode(Bind(c.BIND_TRANSCEIVER, 0, "demo", "demo"), 1))
        assert (await read_pdu()).status == 0
        async with _writes_held(store):
            writer.write(encode(_submit(dest="491701230003"), 2) + encode(Unbind(0), 3))
            writer.write(encode(_submit(dest="491701230004"), 4))
            await asyncio.sleep(0.3)  # all read: the first commit waits for the lock
        late, submit_resp, unbind_resp = [await read_pdu() for _ in range(3)]
        assert await reader.read() == b""  # then the server closes
        writer.close()
    assert isinstance(late, SubmitSmResp) and late.sequence == 4
    assert late.status == c.ESME_RINVBNDSTS
    assert isinstance(submit_resp, SubmitSmResp) and submit_resp.sequence == 2
    assert submit_resp.status == 0 and submit_resp.message_id
    assert isinstance(unbind_resp, UnbindResp) and unbind_resp.sequence == 3
    with store.engine.connect() as conn:
        stored = conn.execute(text('SELECT recipient FROM "order"')).scalars().all()
    assert stored == ["+491701230003"]


async def test_stop_closes_a_connection_never_bound_without_unbind(store: Store) -> None:
    async with _server(store) as server, _client(server.port) as (session, _):
        await asyncio.sleep(0.1)  # accepted
        await asyncio.wait_for(server.stop(), 10)
        await asyncio.wait_for(session.wait_closed(), 10)
        assert session.close_reason == "peer closed the connection"
