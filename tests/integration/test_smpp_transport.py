"""SmppTransport against real SMSC peers over TCP: smpp34's Server and our sandbox."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from bridge.sandbox.smsc import SandboxConfig, SandboxSmsc
from bridge.smpp import constants as c
from bridge.transports.base import TransportPermanentFailure, TransportTemporaryFailure
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms, ReceiptState
from tests.peers.smpp34_peer import RecordingInbox, running_smpp34_peer

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


@dataclass
class Peer:
    """What the shared tests need from either SMSC."""

    kind: str
    port: int
    system_id: str
    password: str
    submitted_parts: Callable[[], list[bytes]]
    wait_until: Callable[..., object]


def config(port: int, **kw: object) -> SmppConfig:
    base: dict[str, object] = {
        "name": "smsc-a",
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


@pytest.fixture(params=["smpp34", "sandbox"])
async def peer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Peer]:
    if request.param == "smpp34":
        async with running_smpp34_peer() as p:
            yield Peer(
                "smpp34",
                p.port,
                "bridge",
                "sandbox",
                lambda: [ev.short_message for ev in p.submits],
                p.wait_until,
            )
    else:
        sandbox = SandboxSmsc(
            SandboxConfig(inbox_path=tmp_path / "inbox.jsonl", port=0, receipt_delay=0.0)
        )
        await sandbox.start()
        try:
            yield Peer(
                "sandbox",
                sandbox.port,
                "bridge",
                "sandbox",
                lambda: [sms.text.encode() for sms in sandbox.delivered],
                sandbox.wait_until,
            )
        finally:
            await sandbox.stop()


@pytest.fixture
async def started() -> AsyncIterator[list[SmppTransport]]:
    transports: list[SmppTransport] = []
    yield transports
    for t in transports:
        await t.stop()


async def start(t: SmppTransport, inbox: RecordingInbox, started: list[SmppTransport]) -> None:
    started.append(t)
    await t.start(inbox)
    assert await t.wait_bound(5.0), t.last_error


async def test_single_submit_and_receipt(peer: Peer, started: list[SmppTransport]) -> None:
    inbox = RecordingInbox()
    t = SmppTransport(config(peer.port))
    await start(t, inbox, started)
    result = await t.submit(OutboundSms("o-1", "+4915112345678", "Bridge", "Hello @ home", "gsm7"))
    assert result.transport == "smsc-a"
    assert len(result.message_ids) == 1 and result.message_ids[0]
    await inbox.wait_until(lambda: len(inbox.receipts) == 1)
    receipt = inbox.receipts[0]
    assert receipt.message_id == result.message_ids[0]
    assert receipt.state is ReceiptState.DELIVERED
    assert receipt.transport == "smsc-a"


async def test_three_part_udh_submit(peer: Peer, started: list[SmppTransport]) -> None:
    inbox = RecordingInbox()
    t = SmppTransport(config(peer.port))
    await start(t, inbox, started)
    text = "".join(f"{i:03d} " for i in range(100))[:400]  # 400 septets -> 3 parts
    result = await t.submit(OutboundSms("o-3", "+4915112345678", "+4930123456", text, "gsm7"))
    assert len(result.message_ids) == 3 and len(set(result.message_ids)) == 3
    await inbox.wait_until(lambda: len(inbox.receipts) == 3)
    assert {r.message_id for r in inbox.receipts} == set(result.message_ids)
    if peer.kind == "smpp34":
        parts = peer.submitted_parts()
        assert [p[:3] for p in parts] == [b"\x05\x00\x03"] * 3
        assert {p[3] for p in parts} == {parts[0][3]}  # one reference for all parts
        assert [p[4:6] for p in parts] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]
        assert b"".join(p[6:] for p in parts) == text.encode("ascii")
    else:
        assert peer.submitted_parts() == [text.encode()]


async def test_ucs2_submit(peer: Peer, started: list[SmppTransport]) -> None:
    inbox = RecordingInbox()
    t = SmppTransport(config(peer.port))
    await start(t, inbox, started)
    result = await t.submit(OutboundSms("o-u", "+4915112345678", "Bridge", "Привет 😀", "ucs2"))
    assert len(result.message_ids) == 1
    await inbox.wait_until(lambda: len(inbox.receipts) == 1)


async def test_rejections_map_to_our_errors(started: list[SmppTransport]) -> None:
    async with running_smpp34_peer() as p:
        p.reject["4915100000058"] = c.ESME_RTHROTTLED
        p.reject["4915100000014"] = c.ESME_RMSGQFUL
        p.reject["4915100000011"] = c.ESME_RINVDSTADR
        t = SmppTransport(config(p.port, throttle_pause_min=0.01, throttle_pause_max=0.04))
        await start(t, RecordingInbox(), started)
        with pytest.raises(TransportTemporaryFailure) as temp:
            await t.submit(OutboundSms("o-t", "+4915100000058", "Bridge", "hi", "gsm7"))
        assert temp.value.code == c.ESME_RTHROTTLED
        assert temp.value.kind == "throttled" and temp.value.retry_after
        # the same PDU was offered three times (throttle_retries = 2), then the order defers
        assert [ev.destination_addr for ev in p.submits].count("4915100000058") == 3
        with pytest.raises(TransportTemporaryFailure) as full:
            await t.submit(OutboundSms("o-q", "+4915100000014", "Bridge", "hi", "gsm7"))
        assert full.value.code == c.ESME_RMSGQFUL
        assert t.reports()[0].throttled == 6
        with pytest.raises(TransportPermanentFailure) as perm:
            await t.submit(OutboundSms("o-p", "+4915100000011", "Bridge", "hi", "gsm7"))
        assert perm.value.code == c.ESME_RINVDSTADR
        assert "o-p" in perm.value.reason
        # the bind survived all of it
        ok = await t.submit(OutboundSms("o-ok", "+4915112345678", "Bridge", "hi", "gsm7"))
        assert ok.message_ids


async def test_not_bound_is_a_quick_temporary_failure(started: list[SmppTransport]) -> None:
    from tests.peers.net import free_port

    t = SmppTransport(config(free_port(), bind_wait=0.1))  # nobody listens there
    started.append(t)
    await t.start(RecordingInbox())
    with pytest.raises(TransportTemporaryFailure, match="not bound"):
        await t.submit(OutboundSms("o-n", "+4915112345678", "Bridge", "hi", "gsm7"))


async def test_mo_parts_last_first_from_smpp34_are_reassembled(
    started: list[SmppTransport],
) -> None:
    """smpp34 (an independent encoder) pushes a 3-part MO, last part first, mixed IE orders."""
    import smpp34

    async with running_smpp34_peer() as p:
        inbox = RecordingInbox()
        t = SmppTransport(config(p.port))
        await start(t, inbox, started)
        await p.wait_until(lambda: len(p.esmes) == 1)
        esme = next(iter(p.esmes.values()))
        text = "€" + "x" * 151 + "{" + "y" * 150 + "}end"  # ESC pairs at part boundaries
        septets = text.replace("€", "\x1be").replace("{", "\x1b(").replace("}", "\x1b)")
        raw = septets.encode("ascii")
        chunks = [raw[:152], raw[152:304], raw[304:]]
        udhs = [
            bytes([0x08, 0x24, 0x01, 0x00, 0x00, 0x03, 0x42, 0x03, 0x01]),  # [0x24, 0x00]
            bytes([0x05, 0x00, 0x03, 0x42, 0x03, 0x02]),
            bytes([0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x42, 0x03, 0x03]),
        ]
        for i in (2, 0, 1):
            resp = await esme.deliver_sm(
                "12345",
                udhs[i] + chunks[i],
                source_addr="4915112345678",
                source_addr_ton=1,
                source_addr_npi=1,
                dest_addr_ton=0,
                esm_class=0x40,
                data_coding=0,
            )
            assert resp.command_status == smpp34.ESME_ROK  # type: ignore[attr-defined]
        await inbox.wait_until(lambda: len(inbox.messages) == 1)
        mo = inbox.messages[0]
        assert (mo.source, mo.destination, mo.parts, mo.encoding) == (
            "+4915112345678",
            "12345",
            3,
            "gsm7",
        )
        assert mo.text == text


async def test_mo_from_smpp34_in_national_and_unknown_ton_is_e164(
    started: list[SmppTransport],
) -> None:
    """smpp34 (an independent encoder) sends TON 2 national and TON 0 sources."""
    async with running_smpp34_peer() as p:
        inbox = RecordingInbox()
        t = SmppTransport(config(p.port, country="DE"))
        await start(t, inbox, started)
        await p.wait_until(lambda: len(p.esmes) == 1)
        esme = next(iter(p.esmes.values()))
        for source, ton in (("1701234567", 2), ("00491701234567", 0), ("SHOP", 5)):
            resp = await esme.deliver_sm(
                "4915550000001",
                b"hi",
                source_addr=source,
                source_addr_ton=ton,
                source_addr_npi=1,
                dest_addr_ton=0,
                data_coding=0,
            )
            assert resp.command_status == 0
        await inbox.wait_until(lambda: len(inbox.messages) == 3)
        assert [(m.source, m.destination) for m in inbox.messages] == [
            ("+491701234567", "+4915550000001"),
            ("+491701234567", "+4915550000001"),
            ("SHOP", "+4915550000001"),
        ]


@asynccontextmanager
async def _tls_in_front_of(port: int, context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS terminator (what an SMSC's TLS port or stunnel does) in front of a plain SMPP
    port on 127.0.0.1; yields its own port."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))

    server = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_the_bind_runs_over_tls_and_checks_the_smscs_certificate(
    tmp_path: Path, started: list[SmppTransport]
) -> None:
    """`tls = true`: submit and receipt over TLS, the SMSC's certificate checked against
    `tls_ca_file`; a certificate of another CA is no bind, and the error says why."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    sandbox = SandboxSmsc(
        SandboxConfig(inbox_path=tmp_path / "inbox.jsonl", port=0, receipt_delay=0.0)
    )
    await sandbox.start()
    try:
        async with _tls_in_front_of(sandbox.port, server_context) as tls_port:
            inbox = RecordingInbox()
            t = SmppTransport(config(tls_port, tls=True, tls_ca_file=str(ca_file)))
            await start(t, inbox, started)
            result = await t.submit(OutboundSms("o-t", "+4915112345678", "Bridge", "Hi", "gsm7"))
            await inbox.wait_until(lambda: len(inbox.receipts) == 1)
            assert inbox.receipts[0].message_id == result.message_ids[0]
            assert [sms.text for sms in sandbox.delivered] == ["Hi"]

            untrusted = SmppTransport(
                config(tls_port, name="smsc-b", tls=True, tls_ca_file=str(other_ca))
            )
            started.append(untrusted)
            await untrusted.start(RecordingInbox())
            assert not await untrusted.wait_bound(1.0)
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error, untrusted.last_error
    finally:
        await sandbox.stop()
