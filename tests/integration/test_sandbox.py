"""The sandbox SMSC with our SmppTransport over TCP: inbox file, MO injection, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.sandbox.rules import make_rule, write_file
from bridge.sandbox.smsc import SandboxConfig, SandboxError, SandboxSmsc, read_inbox, send_mo
from bridge.settings import load_settings
from bridge.smpp import constants as c
from bridge.smpp.esme import Esme, EsmeSettings
from bridge.smpp.pdu import Bind, BindResp, Pdu, decode, encode
from bridge.smpp.session import SmppSession
from bridge.transports.base import TransportPermanentFailure, TransportTemporaryFailure
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms, ReceiptState
from tests.peers.smpp34_peer import RecordingInbox

PHONE = "+4915112345678"


def cfg(port: int, **kw: object) -> SmppConfig:
    base: dict[str, object] = {
        "name": "sandbox",
        "host": "127.0.0.1",
        "port": port,
        "system_id": "bridge",
        "password": "sandbox",
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "bind_failure_min": 0.2,
        "response_timeout": 5.0,
    }
    base.update(kw)
    return SmppConfig(**base)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxSmsc]:
    s = SandboxSmsc(SandboxConfig(inbox_path=tmp_path / "sub" / "inbox.jsonl", port=0))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def transports() -> AsyncIterator[list[SmppTransport]]:
    ts: list[SmppTransport] = []
    yield ts
    for t in ts:
        await t.stop()


async def bound(
    sandbox: SandboxSmsc, ts: list[SmppTransport], inbox: RecordingInbox, **kw: object
) -> SmppTransport:
    t = SmppTransport(cfg(sandbox.port, **kw))
    ts.append(t)
    await t.start(inbox)
    assert await t.wait_bound(5.0), t.last_error
    return t


async def test_mt_lands_in_inbox_file_as_the_phone_shows_it(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox()
    t = await bound(sandbox, transports, inbox)
    long_text = "Grüße aus der Zentrale: {Lager} €5 " * 8  # GSM-7 with escapes, 3 parts
    res = await t.submit(OutboundSms("o-1", PHONE, "Bridge", long_text, "gsm7"))
    await t.submit(OutboundSms("o-2", PHONE, "Bridge", "Привет 😀", "ucs2"))
    await inbox.wait_until(lambda: len(inbox.receipts) == len(res.message_ids) + 1)
    got = read_inbox(sandbox.config.inbox_path, to=PHONE)
    assert [(s.text, s.parts, s.encoding) for s in got] == [
        (long_text, len(res.message_ids), "gsm7"),
        ("Привет 😀", 1, "ucs2"),
    ]
    assert got[0].message_ids == res.message_ids
    assert got[0].source == "Bridge" and got[0].destination == PHONE
    assert read_inbox(sandbox.config.inbox_path, to="+4900") == []
    assert all(r.state is ReceiptState.DELIVERED for r in inbox.receipts)


@pytest.mark.parametrize(
    "smsc",
    [
        {"concat": "sar"},
        {"concat": "udh16"},
        {"concat": "payload"},
        {"gsm7_packed": True},
        {"gsm7_packed": True, "concat": "sar"},
        {"gsm7_packed": True, "concat": "payload"},
    ],
)
async def test_the_phone_shows_one_sms_whatever_the_transports_encoding(
    tmp_path: Path, transports: list[SmppTransport], smsc: dict[str, object]
) -> None:
    packed = bool(smsc.get("gsm7_packed", False))
    config = SandboxConfig(inbox_path=tmp_path / "i.jsonl", port=0, gsm7_packed=packed)
    s = SandboxSmsc(config)
    await s.start()
    try:
        inbox = RecordingInbox()
        t = await bound(s, transports, inbox, **smsc)
        long_text = "Hello {world} at home, price €5 @ 7. " * 8  # GSM-7 with escapes, 3 parts
        res = await t.submit(OutboundSms("o-1", PHONE, "Bridge", long_text, "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == len(res.message_ids))
        [got] = read_inbox(config.inbox_path, to=PHONE)
        assert (got.text, got.parts, got.message_ids) == (
            long_text,
            len(res.message_ids),
            res.message_ids,
        )
        if packed:  # MO goes packed too, as the transport reads it
            mo = "Ja, gern @ 5 {ok} " * 12  # two parts
            await send_mo("127.0.0.1", s.port, PHONE, "+4930123456", mo, Path("/nonexistent"))
            await inbox.wait_until(lambda: len(inbox.messages) == 1)
            assert (inbox.messages[0].text, inbox.messages[0].parts) == (mo, 2)
    finally:
        await s.stop()


@pytest.mark.parametrize(
    "text",
    [
        "Call me\r",  # 8 septets: the wanted CR ends on an octet boundary
        "x" * 153 + "abcdefgh\r",  # the last part's CR, after the UDH's fill bit
        "x" * 152 + "\r" + "y" * 40,  # a full first part would end in that CR
    ],
)
async def test_a_cr_on_an_octet_boundary_survives_packing_both_ways(
    tmp_path: Path, transports: list[SmppTransport], text: str
) -> None:
    """TS 23.038 6.1.2.3.1: a receiver drops a last CR that ends on an octet boundary
    (it is padding). The sandbox and the transport, both packing, keep a wanted one."""
    config = SandboxConfig(inbox_path=tmp_path / "i.jsonl", port=0, gsm7_packed=True)
    s = SandboxSmsc(config)
    await s.start()
    try:
        inbox = RecordingInbox()
        t = await bound(s, transports, inbox, gsm7_packed=True)
        res = await t.submit(OutboundSms("o-1", PHONE, "Bridge", text, "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == len(res.message_ids))
        [got] = read_inbox(config.inbox_path, to=PHONE)
        assert got.text == text
        await send_mo("127.0.0.1", s.port, PHONE, "+4930123456", text, Path("/nonexistent"))
        await inbox.wait_until(lambda: len(inbox.messages) == 1)
        assert inbox.messages[0].text == text
    finally:
        await s.stop()


async def test_failed_receipts(tmp_path: Path, transports: list[SmppTransport]) -> None:
    s = SandboxSmsc(SandboxConfig(inbox_path=tmp_path / "i.jsonl", port=0, receipt="failed"))
    await s.start()
    try:
        inbox = RecordingInbox()
        t = await bound(s, transports, inbox)
        await t.submit(OutboundSms("o-f", PHONE, "Bridge", "hi", "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == 1)
        assert inbox.receipts[0].state is ReceiptState.UNDELIVERABLE
    finally:
        await s.stop()


async def test_inbox_failure_answers_0x64_and_session_stays_up(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox(fail_next=1)
    t = await bound(sandbox, transports, inbox)
    await t.submit(OutboundSms("o-1", PHONE, "Bridge", "first", "gsm7"))
    await sandbox.wait_until(lambda: c.ESME_RX_T_APPN in sandbox.deliver_statuses)
    assert inbox.failures == 1 and inbox.receipts == []
    assert t.bound
    res = await t.submit(OutboundSms("o-2", PHONE, "Bridge", "second", "gsm7"))
    await sandbox.wait_until(lambda: len(sandbox.deliver_statuses) == 2)
    assert sandbox.deliver_statuses == [c.ESME_RX_T_APPN, c.ESME_ROK]
    assert [r.message_id for r in inbox.receipts] == list(res.message_ids)


async def test_mo_injection_reaches_the_inbox(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox()
    await bound(sandbox, transports, inbox)
    long_mo = "Bitte rufen Sie mich an, es geht um den Auftrag 4711. " * 6  # 3 parts
    await send_mo("127.0.0.1", sandbox.port, PHONE, "+4930123456", long_mo, Path("/nonexistent"))
    await send_mo("127.0.0.1", sandbox.port, PHONE, "12345", "Ja 👍 @home", Path("/nonexistent"))
    await inbox.wait_until(lambda: len(inbox.messages) == 2)
    first, second = inbox.messages
    assert (first.source, first.destination, first.text, first.parts) == (
        PHONE,
        "+4930123456",
        long_mo,
        3,
    )
    assert first.encoding == "gsm7"
    assert (second.destination, second.text, second.encoding) == ("12345", "Ja 👍 @home", "ucs2")


async def test_mo_inbox_failure_reaches_the_phone(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox(fail_next=1)
    await bound(sandbox, transports, inbox)
    with pytest.raises(SandboxError, match="could not store"):
        await send_mo("127.0.0.1", sandbox.port, PHONE, "12345", "hello", Path("/x"))
    await send_mo("127.0.0.1", sandbox.port, PHONE, "12345", "hello again", Path("/x"))
    assert [m.text for m in inbox.messages] == ["hello again"]


async def test_reply_without_destination_picks_the_last_sender(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox()
    t = await bound(sandbox, transports, inbox)
    path = sandbox.config.inbox_path
    with pytest.raises(SandboxError, match="nothing to reply to"):
        await send_mo("127.0.0.1", sandbox.port, PHONE, None, "hi?", path)
    await t.submit(OutboundSms("o-1", PHONE, "Alpha", "from alpha", "gsm7"))
    await t.submit(OutboundSms("o-2", "+4917000000000", "Gamma", "other phone", "gsm7"))
    await t.submit(OutboundSms("o-3", PHONE, "+4930999", "from a number", "gsm7"))
    await send_mo("127.0.0.1", sandbox.port, PHONE, None, "my reply", path)
    await inbox.wait_until(lambda: len(inbox.messages) == 1)
    assert inbox.messages[0].destination == "+4930999"
    assert inbox.messages[0].text == "my reply"


async def test_send_mo_without_bridge_is_a_clear_error(sandbox: SandboxSmsc) -> None:
    with pytest.raises(SandboxError, match="no bridge is bound"):
        await send_mo("127.0.0.1", sandbox.port, PHONE, "12345", "anyone?", Path("/x"))


async def test_wrong_password_is_a_clear_slow_retried_failure(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    t = SmppTransport(cfg(sandbox.port, password="wrong", bind_wait=1.0, bind_failure_min=30.0))
    transports.append(t)
    await t.start(RecordingInbox())
    await sandbox.wait_until(lambda: len(sandbox.bind_failures) >= 1)
    with pytest.raises(TransportTemporaryFailure, match="ESME_RINVPASWD") as err:
        await t.submit(OutboundSms("o-1", PHONE, "Bridge", "hi", "gsm7"))
    assert "password" in err.value.reason
    assert len(sandbox.bind_failures) == 1  # the next try is >= 15 s away, not every second


async def test_response_timeout_drops_and_reconnects(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox()
    t = await bound(sandbox, transports, inbox, response_timeout=0.3)
    sandbox.hold_responses()
    with pytest.raises(TransportTemporaryFailure, match=r"no response \(unknown outcome\)"):
        await t.submit(OutboundSms("o-1", PHONE, "Bridge", "lost?", "gsm7"))
    sandbox.drop_connections()  # release the held handler; the bridge already hung up
    assert await t.wait_bound(5.0)
    res = await t.submit(OutboundSms("o-2", PHONE, "Bridge", "after reconnect", "gsm7"))
    assert res.message_ids


async def test_peer_disconnect_mid_window(
    sandbox: SandboxSmsc, transports: list[SmppTransport]
) -> None:
    inbox = RecordingInbox()
    t = await bound(sandbox, transports, inbox)
    sandbox.hold_responses()
    pending = [
        asyncio.create_task(t.submit(OutboundSms(f"o-{i}", PHONE, "Bridge", "x", "gsm7")))
        for i in range(5)
    ]
    await asyncio.sleep(0)  # let the tasks send; the SMSC holds them
    sandbox.drop_connections()
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(r, TransportTemporaryFailure) for r in results), results
    assert all(
        "unknown outcome" in r.reason for r in results if isinstance(r, TransportTemporaryFailure)
    )
    assert await t.wait_bound(5.0)
    res = await t.submit(OutboundSms("o-next", PHONE, "Bridge", "works again", "gsm7"))
    assert res.message_ids


async def test_unanswered_enquire_link_reconnects() -> None:
    """A peer that binds us but never answers enquire_link: we drop it and bind again."""
    binds = 0
    two_binds = asyncio.Event()

    async def mute_after_bind(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal binds
        try:
            while True:
                header = await reader.readexactly(16)
                body = await reader.readexactly(int.from_bytes(header[:4], "big") - 16)
                pdu: Pdu = decode(header + body)
                if isinstance(pdu, Bind):
                    binds += 1
                    writer.write(encode(BindResp(pdu.command_id | c.RESP_BIT, pdu.sequence)))
                    if binds >= 2:
                        two_binds.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(mute_after_bind, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def refuse(pdu: Pdu) -> Pdu | None:
        return None

    esme = Esme(
        EsmeSettings(
            "127.0.0.1",
            port,
            "bridge",
            "pw",
            enquire_link_interval=0.05,
            enquire_link_timeout=0.1,
            reconnect_min=0.01,
            reconnect_max=0.05,
        ),
        refuse,
    )
    await esme.start()
    try:
        await asyncio.wait_for(two_binds.wait(), 5.0)
        assert "enquire_link" in esme.last_error or esme.binds >= 1
    finally:
        await esme.stop()
        server.close()
        await server.wait_closed()


async def test_rules_fail_and_delay_single_numbers_others_are_delivered(
    tmp_path: Path, transports: list[SmppTransport]
) -> None:
    """A settings rule and a rules-file rule, each for one number or prefix; the rest as usual."""
    rules_file = tmp_path / "rules.json"
    write_file(rules_file, [make_rule("+4915100000002", "expired")])
    s = SandboxSmsc(
        SandboxConfig(
            inbox_path=tmp_path / "i.jsonl",
            port=0,
            receipt_delay=0.0,
            rules=(make_rule("+4915100000001", "undeliverable"), make_rule("+49152*", "rejected")),
            rules_file=rules_file,
        )
    )
    await s.start()
    try:
        inbox = RecordingInbox()
        t = await bound(s, transports, inbox)
        ok = await t.submit(OutboundSms("o-ok", PHONE, "Bridge", "fine", "gsm7"))
        undeliv = await t.submit(OutboundSms("o-u", "+4915100000001", "Bridge", "no", "gsm7"))
        expired = await t.submit(OutboundSms("o-e", "+4915100000002", "Bridge", "late", "gsm7"))
        with pytest.raises(TransportPermanentFailure, match="ESME_RINVDSTADR"):
            await t.submit(OutboundSms("o-r", "+4915212345678", "Bridge", "refused", "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == 3)
        states = {r.message_id: r.state for r in inbox.receipts}
        assert states[ok.message_ids[0]] is ReceiptState.DELIVERED
        assert states[undeliv.message_ids[0]] is ReceiptState.UNDELIVERABLE
        assert states[expired.message_ids[0]] is ReceiptState.EXPIRED
        # Only the delivered SMS reached a phone.
        assert [m.destination for m in read_inbox(s.config.inbox_path)] == [PHONE]
    finally:
        await s.stop()


async def test_rules_file_changes_apply_to_the_next_sms(
    tmp_path: Path, transports: list[SmppTransport]
) -> None:
    rules_file = tmp_path / "var" / "rules.json"
    s = SandboxSmsc(
        SandboxConfig(
            inbox_path=tmp_path / "i.jsonl", port=0, receipt_delay=0.0, rules_file=rules_file
        )
    )
    await s.start()
    try:
        inbox = RecordingInbox()
        t = await bound(s, transports, inbox)
        await t.submit(OutboundSms("o-1", PHONE, "Bridge", "first", "gsm7"))
        write_file(rules_file, [make_rule(PHONE, "busy")])  # as `mailsms sandbox fail` does
        with pytest.raises(TransportTemporaryFailure, match="ESME_RSYSERR"):
            await t.submit(OutboundSms("o-2", PHONE, "Bridge", "second", "gsm7"))
        write_file(rules_file, [make_rule(PHONE, None, 0.5)])
        before = datetime.now(UTC)
        await t.submit(OutboundSms("o-3", PHONE, "Bridge", "third", "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == 2)
        got = read_inbox(s.config.inbox_path)
        assert [m.text for m in got] == ["first", "third"]
        assert got[1].received_at - before >= timedelta(seconds=0.5)  # the phone got it late
        rules_file.write_text("{not json", encoding="utf-8")  # a bad hand edit: ignored
        await t.submit(OutboundSms("o-4", PHONE, "Bridge", "fourth", "gsm7"))
        await inbox.wait_until(lambda: len(inbox.receipts) == 3)
        assert read_inbox(s.config.inbox_path)[-1].text == "fourth"
    finally:
        await s.stop()


async def test_stop_unbinds_each_bound_client(tmp_path: Path) -> None:
    """`mailsms sandbox serve` stopped (Ctrl-C) under a bound bridge: an `unbind`, which
    our session answers ("peer unbound"), not a dropped connection; a connection that
    never bound is only closed."""
    sandbox = SandboxSmsc(SandboxConfig(inbox_path=tmp_path / "inbox.jsonl", port=0))
    await sandbox.start()
    sessions: list[SmppSession] = []
    reading: list[asyncio.Task[None]] = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", sandbox.port)
        session = SmppSession(reader, writer, _nothing, response_timeout=5.0)
        sessions.append(session)
        reading.append(asyncio.create_task(session.run()))
    bound_one, never_bound = sessions
    resp = await bound_one.request(Bind(c.BIND_TRANSCEIVER, 0, "bridge", "sandbox"))
    assert isinstance(resp, BindResp) and resp.status == 0
    await asyncio.wait_for(sandbox.stop(), 10)
    for session in sessions:
        await asyncio.wait_for(session.wait_closed(), 10)
    await asyncio.gather(*reading)
    assert bound_one.close_reason == "peer unbound"
    assert never_bound.close_reason == "peer closed the connection"


async def _nothing(pdu: Pdu) -> Pdu | None:
    return None


def test_a_packed_sandbox_gets_a_packed_transport(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "b.db"}"\n'
        "[sandbox]\nenabled = true\ngsm7_packed = true\n",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    [smsc] = [s for s in settings.smsc if s.name == "sandbox"]
    assert smsc.gsm7_packed and settings.sandbox.config().gsm7_packed
