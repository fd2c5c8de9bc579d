"""A customer's SMS gateway we did not write in front of the bridge: Jasmin
(tests/peers/jasmin.py) binds as an SMPP client (ESME) to the bridge's SMPP server
(docs/smpp_server.md) with the demo account, and the customer's applications speak
Jasmin's HTTP API.

MT: HTTP `/send` → Jasmin's SMPP client connector → the bridge's SMPP server → the
sandbox SMSC (the phone); the bridge's receipt goes back to Jasmin as deliver_sm and
Jasmin calls the application's `dlr-url`. MO: the phone texts a bridge number whose
inbound action is `smpp` for the demo account → deliver_sm to Jasmin's connector →
Jasmin's MO route → its HTTP connector → the application.

Jasmin's habits as an ESME (0.11.0, connector defaults unless said), as seen on the wire
in its connector log (`stack.log(cid)`, DEBUG):

* one bind per connector, `bind_transceiver` with an empty system_type, addr_ton 0,
  addr_npi 0, interface version 0x34;
* every submit_sm has esm_class 0x03 (store-and-forward mode; plus UDHI with a UDH),
  source TON 2 (national) / NPI 1 whatever the number looks like, destination TON 1 /
  NPI 1 with the `to` exactly as the application wrote it (`+49...` here), and
  `registered_delivery` 1 on every part when `dlr-level` is 1..3. The bridge takes the
  national-TON sender `4915550000001` as the canonical `+4915550000001` (the demo account
  allows any sender, `*`) and sends its receipt to the addresses, TON and NPI Jasmin
  sent, swapped;
* Jasmin answers /send at once with its own UUID and maps the bridge's message id
  (submit_sm_resp) to it: the receipt's `receipted_message_id` must be that id exactly
  (`dlr_msgid 0`: no base conversion), else Jasmin logs DLRMapNotFound and the
  application never hears. With `dlr-level 3` the `dlr-url` gets two POST forms per
  message: level 1 (`message_status ESME_ROK`, from the submit_sm_resp) and level 2
  (`message_status DELIVRD`, `id_smsc` = our order id, and, a Jasmin quirk, `connector`
  = our id too);
* texts: `coding=0` content is encoded by Jasmin to unpacked GSM 03.38 octets (`€`, `[`
  ... as two-septet escapes) before it measures them; `coding=8` content is taken as the
  raw UCS-2 (UTF-16BE) octets the application sent; over 160 octets (GSM) or 140 (UCS-2)
  it splits into parts of 153/67 with an 8-bit-reference concatenation UDH (the HTTP
  API's `long_content_split udh`) and sends all parts at once. The bridge answers each
  part with the id of the whole and makes one order, one SMS on the phone, one receipt;
* enquire_link every `elink_interval` seconds (30 by default; 1 here, so that every test
  sees some answered); when the connection ends (the bridge unbinds on stop and Jasmin
  answers; it still logs "Connection lost" as an ERROR, as for any end) it reconnects
  after `con_loss_delay` (10 s by default; 1 here) and binds again, and what the
  application sent meanwhile waits in Jasmin (retried every
  `submit_retrial_delay_smppc_not_ready`, 1 s here) and goes out after the bind;
* an MO goes to the HTTP connector as a POST form (`from`, `to` without `+`,
  `origin-connector`, `content` as raw octets, `binary` as hex, and `coding` as the raw
  data_coding octet, "\\x00"/"\\x08", not digits: a 0.11.0 quirk), which must be answered
  `ACK/Jasmin`, else Jasmin retries. A long MO, which the bridge sends as parts with a
  UDH, is joined by Jasmin and posted once.

Every test also checks that the bridge logged no warning or error while Jasmin used it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.sandbox.phone import SandboxSms, read_inbox, send_mo
from bridge.settings import Settings
from bridge.smpp.mo import decode_mo
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for
from tests.peers.jasmin import (
    JasminStack,
    add_http_user,
    add_smpp_client,
    connector_status,
    route_mo_to_http,
    route_mt_of_user,
    throwaway_jasmin,
)
from tests.peers.net import free_port

PHONE = "+491701234567"
NUMBER = "+4915550000009"  # the bridge's number with the inbound action smpp (demo)
SENDER = "4915550000001"  # the application's `from`; Jasmin sends it with TON 2
APP_PASSWORD = "apppw"

NUMBERS = f"""
[[customer]]
name = "demo"

[[number]]
number = "{NUMBER}"
customer = "demo"

[[number.actions]]
type = "smpp"
system_id = "demo"
"""


@dataclass
class Receiver:
    """The application's HTTP endpoint: every form Jasmin posted, by path."""

    port: int = 0
    posts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def got(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [form for p, form in self.posts if p == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: bytes) -> None:
            url = urllib.parse.urlsplit(self.path)
            # latin-1 both ways: the octets as sent (Jasmin posts UCS-2 content raw)
            form = urllib.parse.parse_qs(
                url.query + "&" + body.decode("latin-1"), encoding="latin-1"
            )
            with got.lock:
                got.posts.append((url.path, {k: v[0] for k, v in form.items()}))
            reply = b"ACK/Jasmin"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_POST(self) -> None:
            self._record(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        def do_GET(self) -> None:
            self._record(b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(autouse=True)
def bridge_quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever Jasmin does as a client, the bridge logs no warning, error or traceback."""
    with caplog.at_level(logging.INFO, logger="bridge"):
        yield
    loud = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.name.startswith("bridge") and (r.levelno >= logging.WARNING or r.exc_info)
    ]
    assert loud == []


@pytest.fixture(scope="module")
def jasmin() -> Iterator[JasminStack]:
    with throwaway_jasmin() as stack:
        yield stack


def _settings(tmp_path: Path, port: int) -> Settings:
    return make_settings(tmp_path, smpp_server=SmppServerSettings(enabled=True, port=port))


def _rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(sql).fetchall()


@asynccontextmanager
async def customer_gateway(
    jasmin: JasminStack, receiver: Receiver, cid: str, port: int, order: int
) -> AsyncIterator[str]:
    """Jasmin's user `cid` (3 to 25 of A-Za-z0-9_-) sending by HTTP, its MT routed to the
    connector `cid` bound to the bridge's SMPP server on `port` as demo/demo, the
    connector's MO thrown to `/mo/<cid>`; `order`: of its MT and MO routes (one per test,
    Jasmin replaces a route of the same order). Yields the user name once the connector
    is bound; the connector is stopped at the end (users and routes stay: harmless)."""

    def setup() -> None:
        add_http_user(jasmin, cid, APP_PASSWORD, f"g{cid}")
        add_smpp_client(
            jasmin, cid, port, "demo", "demo", elink_interval=1, con_loss_delay=1, con_fail_delay=1
        )
        route_mt_of_user(jasmin, cid, cid, order)
        route_mo_to_http(jasmin, cid, receiver.url(f"/mo/{cid}"), order)

    await asyncio.to_thread(setup)
    try:
        await bound(jasmin, cid)
        yield cid
    finally:
        await asyncio.to_thread(_stop_connector, jasmin, cid)


def _stop_connector(jasmin: JasminStack, cid: str) -> None:
    with jasmin.jcli() as jcli:
        jcli.run(f"smppccm -0 {cid}")


async def bound(
    jasmin: JasminStack, cid: str, state: str = "BOUND_TRX", within: float = 30
) -> None:
    """Wait until the connector `cid` is in `state` (with "": in any other state than bound)."""

    def there(now: str) -> bool:
        return now == state if state else now != "BOUND_TRX"

    deadline = asyncio.get_running_loop().time() + within
    while not there(last := await asyncio.to_thread(connector_status, jasmin, cid)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"{cid} is {last}, not {state or 'unbound'}:\n{jasmin.log(cid)[-3000:]}"
            )
        await asyncio.sleep(0.2)


def assert_clean_session(log: str) -> None:
    """Jasmin's connector log: its enquire_link answered, and every PDU the bridge sent
    it (responses and deliver_sm) with status ESME_ROK, no generic_nack."""
    received = re.findall(r"SMPP Client received PDU \[command: CommandId\.(\w+), .*?(\w+)\]", log)
    assert received, log[-3000:]
    assert {status for _, status in received} == {"ESME_ROK"}, received
    assert "generic_nack" not in {command for command, _ in received}, received
    assert "enquire_link_resp" in {command for command, _ in received}, received


def http_send(jasmin: JasminStack, user: str, **params: str | bytes) -> str:
    """POST to Jasmin's /send; the message id it answered (`Success "<id>"`)."""
    data = urllib.parse.urlencode({"username": user, "password": APP_PASSWORD, **params})
    url = f"http://127.0.0.1:{jasmin.http_port}/send"
    with urllib.request.urlopen(url, data.encode("ascii"), timeout=20) as resp:
        answer = resp.read().decode()
    assert answer.startswith('Success "') and answer.endswith('"'), answer
    message_id: str = answer[len('Success "') : -1]
    return message_id


async def send(jasmin: JasminStack, receiver: Receiver, user: str, text: str, **more: str) -> str:
    """Send `text` to PHONE from SENDER as `user`, asking for every DLR level."""
    coding = more.pop("coding", "0")
    content: str | bytes = text.encode("utf-16-be") if coding == "8" else text
    return await asyncio.to_thread(
        http_send,
        jasmin,
        user,
        to=PHONE,
        content=content,
        coding=coding,
        **{"from": SENDER},
        dlr="yes",
        **{"dlr-url": receiver.url(f"/dlr/{user}"), "dlr-level": "3", "dlr-method": "POST"},
        **more,
    )


async def phone_gets(settings: Settings, count: int) -> list[SandboxSms]:
    inbox = settings.sandbox.config().inbox_path
    got: list[SandboxSms] = await wait_for(
        lambda: (sms := read_inbox(inbox, to=PHONE)) and len(sms) >= count and sms, within=30
    )
    return got


async def test_mt_through_jasmin_reaches_the_phone_and_the_dlr_the_application(
    tmp_path: Path, jasmin: JasminStack, receiver: Receiver
) -> None:
    port = free_port()
    settings = _settings(tmp_path, port)
    texts = {
        "gsm": "Preis 5€ [Tür] {a|b} ~^\\ ok",
        "ucs2": "Grüße aus Köln 🙂 Привет",
        # 202 septets (€ is an escape, two): Jasmin sends two parts with a UDH
        "long": " ".join(f"{i:03d}" for i in range(50)) + " €",
    }
    async with (
        running_bridge(settings),
        customer_gateway(jasmin, receiver, "app_mt", port, 10) as user,
    ):
        ids = {
            "gsm": await send(jasmin, receiver, user, texts["gsm"]),
            "ucs2": await send(jasmin, receiver, user, texts["ucs2"], coding="8"),
            "long": await send(jasmin, receiver, user, texts["long"]),
        }
        await phone_gets(settings, 3)
        await asyncio.sleep(1)  # nothing more comes
        got = read_inbox(settings.sandbox.config().inbox_path, to=PHONE)
        assert sorted(s.text for s in got) == sorted(texts.values())
        by_text = {s.text: s for s in got}
        assert by_text[texts["gsm"]].encoding == "gsm7"
        assert by_text[texts["ucs2"]].encoding == "ucs2"
        assert by_text[texts["long"]].parts == 2
        assert {s.source for s in got} == {"+" + SENDER}

        orders = _rows(
            tmp_path,
            'SELECT o.text, c.name, u.address FROM "order" o JOIN user u ON u.id = o.user_id '
            "JOIN customer c ON c.id = u.customer_id",
        )
        assert sorted(orders) == sorted((t, "demo", "demo@example.com") for t in texts.values())

        # every order answered once at each level, the final one DELIVRD with our order id
        order_ids = {str(t): str(i) for t, i in _rows(tmp_path, 'SELECT text, id FROM "order"')}
        dlr_path = f"/dlr/{user}"

        def final() -> list[dict[str, str]]:
            return [d for d in receiver.got(dlr_path) if d.get("level") == "2"]

        await wait_for(lambda: len(final()) >= 3, within=30)
        await asyncio.sleep(1.5)  # no duplicate comes
        for name, jasmin_id in ids.items():
            forms = [d for d in receiver.got(dlr_path) if d["id"] == jasmin_id]
            assert [(d["level"], d["message_status"]) for d in forms] == [
                ("1", "ESME_ROK"),
                ("2", "DELIVRD"),
            ], (name, forms)
            assert forms[1]["id_smsc"] == order_ids[texts[name]], (name, forms)
            assert (forms[1]["sub"], forms[1]["dlvrd"], forms[1]["err"]) == ("001", "001", "000")
        assert len(receiver.got(dlr_path)) == 6
        assert "DLRMapNotFound" not in jasmin.log("messages")

        # on the wire (Jasmin's connector log): four submit_sm, the long text's two parts
        # with a UDH, each answered with the message id of its whole message
        log = jasmin.log(user)
        resp_ids = re.findall(r"submit_sm_resp, .*?\nmessage_id: b'([^']*)'", log, re.S)
        assert resp_ids == [order_ids[texts[n]] for n in ("gsm", "ucs2", "long", "long")]
        submits = re.findall(r"Sending PDU: PDU \[command: CommandId\.submit_sm,.*?\n\]", log, re.S)
        assert len(submits) == 4
        assert all("source_addr_ton: <AddrTon.NATIONAL" in pdu for pdu in submits)
        assert all("SMSC_DELIVERY_RECEIPT_REQUESTED" in pdu for pdu in submits)
        assert ["UDHI_INDICATOR_SET" in pdu for pdu in submits] == [False, False, True, True]
        assert_clean_session(log)
        # our receipts: to the addresses, TON and NPI Jasmin sent, swapped (docs/smpp_server.md)
        receipts = re.findall(r"received PDU \[command: CommandId\.deliver_sm,.*?\n\]", log, re.S)
        assert [re.findall(r"receipted_message_id: b'([^']*)'", r) for r in receipts] == [
            [order_ids[texts[n]]] for n in ("gsm", "ucs2", "long")
        ]
        for pdu in receipts:
            assert "type: EsmClassType.SMSC_DELIVERY_RECEIPT" in pdu, pdu
            assert "source_addr_ton: <AddrTon.INTERNATIONAL" in pdu, pdu
            assert f"source_addr: b'{PHONE}'" in pdu, pdu
            assert "dest_addr_ton: <AddrTon.NATIONAL" in pdu, pdu
            assert f"destination_addr: b'{SENDER}'" in pdu, pdu


async def test_mo_to_an_smpp_number_reaches_the_application_through_jasmin(
    tmp_path: Path, jasmin: JasminStack, receiver: Receiver
) -> None:
    port = free_port()
    settings = _settings(tmp_path, port)
    texts = ["Ja, 15 Uhr passt [ok] 5€", "Привет, до встречи 🙂", "lang " * 40]
    async with (
        running_bridge(settings) as (bridge, ep),
        customer_gateway(jasmin, receiver, "app_mo", port, 20) as user,
    ):
        assert bridge.store is not None and ep.sandbox is not None
        run_sync(bridge.store.engine, apply_numbers, parse_numbers(NUMBERS))
        for text in texts:
            await send_mo(*ep.sandbox, PHONE, NUMBER, text, Path("x"))
        mo_path = f"/mo/{user}"
        await wait_for(lambda: len(receiver.got(mo_path)) >= len(texts), within=30)
        await asyncio.sleep(1.5)  # no duplicate comes
        forms = receiver.got(mo_path)
        assert [(f["from"], f["to"], f["origin-connector"]) for f in forms] == [
            (PHONE.lstrip("+"), NUMBER.lstrip("+"), user)
        ] * len(texts)
        # Jasmin posts each MO in an HTTP request of its own: they may arrive in any order
        # (the order the bridge delivered them in is checked in Jasmin's log below).
        by_text = {decode_mo(ord(f["coding"]), bytes.fromhex(f["binary"]), ())[0]: f for f in forms}
        assert sorted(by_text) == sorted(texts)
        # Jasmin 0.11.0 posts `coding` as the raw data_coding octet, not as digits
        assert [by_text[t]["coding"] for t in texts] == ["\x00", "\x08", "\x00"]
        assert all(f["content"].encode("latin-1").hex() == f["binary"] for f in forms)
        # the long one came as two deliver_sm with a UDH; Jasmin posted it joined, once
        log = jasmin.log(user)
        delivers = re.findall(r"received PDU \[command: CommandId\.deliver_sm,.*?\n\]", log, re.S)
        assert ["UDHI_INDICATOR_SET" in pdu for pdu in delivers] == [False, False, True, True]
        assert_clean_session(log)


async def test_jasmin_rebinds_after_a_bridge_restart_and_sends_on(
    tmp_path: Path, jasmin: JasminStack, receiver: Receiver
) -> None:
    """The bridge stops under a bound Jasmin and comes back on the same port (same
    database): Jasmin reconnects and binds again by itself; what the application sent
    meanwhile (Jasmin holds it, retrying while its connector is not bound) and after goes
    through, in order; the first message's receipt is not sent again."""
    port = free_port()
    settings = _settings(tmp_path, port)
    first_bridge = AsyncExitStack()
    await first_bridge.enter_async_context(running_bridge(settings))
    try:
        async with customer_gateway(jasmin, receiver, "app_rs", port, 30) as user:
            dlr_path = f"/dlr/{user}"
            before = await send(jasmin, receiver, user, "before the restart")
            await wait_for(lambda: len(receiver.got(dlr_path)) == 2, within=30)
            await first_bridge.aclose()
            await bound(jasmin, user, state="", within=15)  # Jasmin saw the bridge go
            meanwhile = await send(jasmin, receiver, user, "while the bridge is down")
            await asyncio.sleep(2)  # Jasmin retries it (submit_retrial_delay_smppc_not_ready)
            async with running_bridge(settings):
                await bound(jasmin, user, within=30)
                await phone_gets(settings, 2)  # the held one first, then the next
                after = await send(jasmin, receiver, user, "after the restart")
                got = await phone_gets(settings, 3)
                await wait_for(lambda: len(receiver.got(dlr_path)) >= 6, within=30)
                await asyncio.sleep(1.5)  # no duplicate comes
            assert [s.text for s in got] == [
                "before the restart",
                "while the bridge is down",
                "after the restart",
            ]
            assert [(d["id"], d["level"], d["message_status"]) for d in receiver.got(dlr_path)] == [
                (before, "1", "ESME_ROK"),
                (before, "2", "DELIVRD"),
                (meanwhile, "1", "ESME_ROK"),
                (meanwhile, "2", "DELIVRD"),
                (after, "1", "ESME_ROK"),
                (after, "2", "DELIVRD"),
            ]
            log = jasmin.log(user)
            assert log.count("Bind succeeded") == 2, log[-4000:]
            # each stop of the bridge unbound Jasmin first, and Jasmin answered
            pdus = r"(?:received PDU|Sending PDU: PDU) \[command: CommandId\.(unbind(?:_resp)?),"
            assert re.findall(pdus, log) == ["unbind", "unbind_resp"] * 2, log[-4000:]
            assert_clean_session(log)
    finally:
        await first_bridge.aclose()
