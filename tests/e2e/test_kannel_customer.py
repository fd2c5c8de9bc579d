"""Kannel in front of the bridge: a customer's bearerbox + smsbox (Debian's kannel 1.4.5,
tests/peers/kannel.py) bound to the bridge's SMPP server with the demo account; the
application speaks Kannel's sendsms HTTP interface (GET /cgi-bin/sendsms) and gets
Kannel's `dlr-url` and `sms-service` calls.

Kannel's habits as an ESME, as seen in its SMPP connection log (PDU dumps, log-level 0):

* `transceiver-mode = true`: one bind_transceiver. Its default (`false`) is two binds:
  in 1.4.5 two `group = smsc` of the same `smsc-id`, one with `port` (bind_transmitter)
  and one with `receive-port` (bind_receiver); both in one group is refused at start
  ("Usage of both in one group is deprecated"). Receipts and MO come on the receiver
  bind. system_type `VMA` here, interface version 0x34;
* `source-addr-autodetect` (its default): `+4915550000001` goes as TON 1 / NPI 1
  without the `+`; the bridge's receipt goes back to those addresses, swapped;
* `msg-id-type` unset (its default): message ids are C strings on both sides, and our
  `<mail id>.1` ids match. With ANY value set (0x00 ... 0x03), Kannel reads an id that
  is not all digits as a hex number, up to its first non-hex character (`strtoll(id,
  16)`) on the submit_sm_resp and the receipt alike: our ids begin with the time, so
  messages sent in the same minutes often read as the same number, and Kannel matches
  the receipts to its stored DLRs by that number (the first stored one wins): the
  application's `%F` is not our id, and a receipt can be reported for the wrong
  message. docs/smpp_server.md tells Kannel admins to leave `msg-id-type` out;
  test_msg_id_type_set_misreads_the_ids shows it;
* `dlr-mask=31`: registered_delivery 0x11 (receipt and intermediate notification), on
  the FIRST part of a long message only (the other parts: 0); the bridge takes a
  receipt asked on any part as asked for the message. The `dlr-url` is called with type
  8 (the submit_sm_resp: "SMSC accepted") and then type 1 (our receipt, `stat:DELIVRD`);
* texts: `charset=UTF-8` text is sent GSM 03.38 (data_coding 0) when it fits, `coding=2`
  as UCS-2 (data_coding 8); long texts are split with an 8-bit-reference UDH
  (`concatenation = true` of the sendsms-user);
* MO: joined from its parts by bearerbox (`sms-combine-concatenated-mo`), passed to the
  sms-service's `get-url` as octets (`%a`) with its coding (`%c`) and charset (`%C`);
* enquire_link every `enquire-link-interval` (2 s here); when the bridge stops, Kannel
  answers its unbind, reconnects every `reconnect-delay` (1 s here) and binds again;
  what the application sent meanwhile waits in bearerbox's queue and goes after the bind.

Every test also checks that the bridge logged no warning or error while Kannel used it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.sandbox.phone import SandboxSms, read_inbox, send_mo
from bridge.settings import Settings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for
from tests.peers.kannel import Kannel, SmscGroup, UrlLog, throwaway_kannel, url_log
from tests.peers.net import free_port

PHONE = "+491701234567"
SENDER = "+4915550000001"
NUMBER = "+4915550000009"  # the bridge's number with the inbound action smpp (demo)

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

TEXTS = {
    "latin": "Grüße aus Köln, 5€ [ok]",
    "ucs2": "Привет 🙂 Grüße",
    # 202 characters: Kannel splits it in two parts with a UDH
    "long": " ".join(f"{i:03d}" for i in range(50)) + " Ä",
}


@pytest.fixture
def calls() -> Iterator[UrlLog]:
    with url_log() as log:
        yield log


@pytest.fixture(autouse=True)
def bridge_quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever Kannel does as a client, the bridge logs no warning, error or traceback."""
    with caplog.at_level(logging.INFO, logger="bridge"):
        yield
    loud = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.name.startswith("bridge") and (r.levelno >= logging.WARNING or r.exc_info)
    ]
    assert loud == []


def _settings(tmp_path: Path, port: int) -> Settings:
    return make_settings(tmp_path, smpp_server=SmppServerSettings(enabled=True, port=port))


def _order_ids(tmp_path: Path) -> dict[str, str]:
    """Each order's text -> its id (the message id of the submit_sm_resp)."""
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return {str(t): str(i) for t, i in conn.execute('SELECT text, id FROM "order"')}


@asynccontextmanager
async def kannel(smsc: SmscGroup, calls: UrlLog) -> AsyncIterator[Kannel]:
    with throwaway_kannel(smsc, calls.url("/mo")) as k:
        await online(k)
        yield k


async def online(k: Kannel, state: bool = True, within: float = 20) -> None:
    try:
        await wait_for(lambda: k.smsc_online() == state, within=within, every=0.2)
    except AssertionError:
        status = k.status()
        raise AssertionError(f"online is not {state}:\n{status}\n{k.log('smsc')[-4000:]}") from None


async def send(
    k: Kannel, calls: UrlLog, text: str, tag: str, answer: str = "0: Accepted", **more: str
) -> None:
    """The application sends `text` to PHONE, asking for every DLR type; the dlr-url
    carries `tag` and Kannel's %d (type), %F (the SMSC's message id) and %A (the reply).
    `answer`: how Kannel's answer begins (with the bridge down: "3: Queued")."""
    status, body = await asyncio.to_thread(
        k.sendsms,
        to=PHONE,
        text=text,
        charset="UTF-8",
        **{"from": SENDER, "dlr-mask": "31"},
        **{"dlr-url": calls.url("/dlr") + f"?tag={tag}&type=%d&id=%F&reply=%A"},
        **more,
    )
    assert status == 202 and body.startswith(answer), (status, body)


def dlrs(calls: UrlLog) -> list[tuple[str, str, str]]:
    return [(d["tag"], d["type"], d["id"]) for d in calls.got("/dlr")]


async def phone_gets(settings: Settings, count: int) -> list[SandboxSms]:
    inbox = settings.sandbox.config().inbox_path
    got: list[SandboxSms] = await wait_for(
        lambda: (sms := read_inbox(inbox, to=PHONE)) and len(sms) >= count and sms, within=30
    )
    return got


def mo_texts(calls: UrlLog) -> list[str]:
    """The MO texts Kannel's sms-service passed on, decoded with the charset it named."""
    out = []
    for q in calls.got("/mo"):
        charset = q["charset"] or ("UTF-16BE" if q["coding"] == "2" else "UTF-8")
        out.append(q["text"].encode("latin-1").decode(charset))
    return out


def pdus(log: str, name: str) -> list[str]:
    """The dumps of the PDUs named `name` in Kannel's SMPP log."""
    return re.findall(rf"type_name: {name}\n.*?SMPP PDU dump ends", log, re.S)


@pytest.mark.parametrize("transceiver", [True, False], ids=["transceiver", "two-binds"])
async def test_mt_dlr_and_mo_through_kannel(
    tmp_path: Path, calls: UrlLog, transceiver: bool
) -> None:
    """Latin-1 text, UCS-2 text (coding=2) and a long text (UDH) reach the phone intact;
    each message's dlr-url is called once with type 8 and once with type 1 (delivered),
    with our message id as %F; an MO to the account's number, and a long one, reach the
    sms-service, in two-bind mode on the receiver bind."""
    port = free_port()
    settings = _settings(tmp_path, port)
    smsc = SmscGroup(port, "demo", "demo", transceiver=transceiver)
    async with running_bridge(settings) as (bridge, ep), kannel(smsc, calls) as k:
        await send(k, calls, TEXTS["latin"], "latin")
        await send(k, calls, TEXTS["ucs2"], "ucs2", coding="2")
        await send(k, calls, TEXTS["long"], "long")
        got = await phone_gets(settings, 3)
        by_text = {s.text: s for s in got}
        assert sorted(by_text) == sorted(TEXTS.values()), [s.text for s in got]
        assert by_text[TEXTS["latin"]].encoding == "gsm7"
        assert by_text[TEXTS["ucs2"]].encoding == "ucs2"
        assert by_text[TEXTS["long"]].parts == 2
        assert {s.source for s in got} == {SENDER}

        await wait_for(lambda: len(dlrs(calls)) >= 6, within=20)
        await asyncio.sleep(1)  # no duplicate comes
        ids = _order_ids(tmp_path)
        assert sorted(dlrs(calls)) == sorted(
            (tag, type_, ids[text]) for tag, text in TEXTS.items() for type_ in ("8", "1")
        ), dlrs(calls)

        assert bridge.store is not None and ep.sandbox is not None
        run_sync(bridge.store.engine, apply_numbers, parse_numbers(NUMBERS))
        mo = ["Ja, 15 Uhr passt, Grüße", "Привет 🙂", " ".join(["lang"] * 40)]
        for text in mo:
            await send_mo(*ep.sandbox, PHONE, NUMBER, text, Path("x"))
        await wait_for(lambda: len(calls.got("/mo")) >= len(mo), within=20)
        await asyncio.sleep(1)  # no duplicate comes
        assert sorted(mo_texts(calls)) == sorted(mo)
        assert {(q["from"], q["to"], q["smsc"]) for q in calls.got("/mo")} == {
            (PHONE, NUMBER, "bridge")
        }
        # each text with its coding (smsbox calls the sms-service as each MO is handled:
        # three MOs sent one after the other may arrive there in any order)
        codings = dict(zip(mo_texts(calls), (q["coding"] for q in calls.got("/mo")), strict=True))
        assert [codings[text] for text in mo] == ["0", "2", "0"]

        # on the wire: the binds Kannel asked for; receipts and MO on its receiver side
        rx_log = k.log("smsc1") if not transceiver else k.log("smsc0")
        bind = "bind_transceiver" if transceiver else "bind_receiver"
        assert pdus(rx_log, bind + "_resp"), rx_log[-3000:]
        delivers = pdus(rx_log, "deliver_sm")
        assert len(delivers) == 3 + 4, len(delivers)  # 3 receipts, 2 MO + 2 parts
        if not transceiver:
            assert pdus(k.log("smsc0"), "bind_transmitter_resp")
            assert pdus(k.log("smsc0"), "deliver_sm") == []
        assert "generic_nack" not in k.log("smsc")


async def test_kannel_rebinds_after_a_bridge_restart_and_sends_on(
    tmp_path: Path, calls: UrlLog
) -> None:
    """Two-bind mode: the bridge stops under a bound Kannel (unbinding both binds) and
    comes back on the same port; Kannel binds again by itself; what the application sent
    meanwhile waits in bearerbox and goes after the bind; every message reaches the phone
    once and each dlr-url is called once per type, the first message's not again."""
    port = free_port()
    settings = _settings(tmp_path, port)
    smsc = SmscGroup(port, "demo", "demo", transceiver=False)
    first_bridge = AsyncExitStack()
    await first_bridge.enter_async_context(running_bridge(settings))
    try:
        async with kannel(smsc, calls) as k:
            await send(k, calls, "before the restart", "before")
            await wait_for(lambda: len(dlrs(calls)) == 2, within=20)
            await first_bridge.aclose()
            await online(k, False, within=10)
            await send(k, calls, "while the bridge is down", "meanwhile", "3: Queued")
            await asyncio.sleep(1.5)
            async with running_bridge(settings):
                await online(k, within=20)
                await phone_gets(settings, 2)
                await send(k, calls, "after the restart", "after")
                got = await phone_gets(settings, 3)
                await wait_for(lambda: len(dlrs(calls)) >= 6, within=20)
                await asyncio.sleep(1.5)  # no duplicate comes
            assert [s.text for s in got] == [
                "before the restart",
                "while the bridge is down",
                "after the restart",
            ]
            ids = _order_ids(tmp_path)
            assert sorted(dlrs(calls)) == sorted(
                [
                    ("before", "8", ids["before the restart"]),
                    ("before", "1", ids["before the restart"]),
                    ("meanwhile", "8", ids["while the bridge is down"]),
                    ("meanwhile", "1", ids["while the bridge is down"]),
                    ("after", "8", ids["after the restart"]),
                    ("after", "1", ids["after the restart"]),
                ]
            )
            # each bind was unbound by the bridge's stop, Kannel answered, and bound again
            for log, bind in (
                (k.log("smsc0"), "bind_transmitter"),
                (k.log("smsc1"), "bind_receiver"),
            ):
                assert len(pdus(log, bind + "_resp")) == 2, log[-3000:]
                assert len(pdus(log, "unbind_resp")) >= 1, log[-3000:]
    finally:
        await first_bridge.aclose()


async def test_msg_id_type_set_misreads_the_ids(tmp_path: Path, calls: UrlLog) -> None:
    """With `msg-id-type` set (here 0x01, "submit_sm_resp hex"; 0x00, 0x02 and 0x03 read
    our ids alike, being not all digits), Kannel does not keep our message id: it reads it
    as a hex number up to its first non-hex character, on the submit_sm_resp and on the
    receipt alike. Our ids begin with the time, so the messages of the same minutes share
    that run and read as the same number (a run of this test once saw three ids become
    96409), and Kannel matches each receipt to the first stored DLR of that number: a
    receipt can be reported for the wrong message. The reason docs/smpp_server.md tells
    Kannel admins to leave `msg-id-type` out."""
    port = free_port()
    settings = _settings(tmp_path, port)
    smsc = SmscGroup(port, "demo", "demo", msg_id_type=0x01)
    async with running_bridge(settings), kannel(smsc, calls) as k:
        for tag in ("a", "b"):
            await send(k, calls, f"message {tag}", tag)
        await phone_gets(settings, 2)
        await wait_for(lambda: len(dlrs(calls)) >= 4, within=20)
        ids = _order_ids(tmp_path)
        for tag, _, kannel_id in dlrs(calls):
            ours = ids[f"message {tag}"]
            hex_run = re.match(r"[0-9A-Fa-f]*", ours)
            assert hex_run is not None and hex_run.group(), ours
            assert kannel_id == str(int(hex_run.group(), 16)) != ours, (ours, dlrs(calls))
