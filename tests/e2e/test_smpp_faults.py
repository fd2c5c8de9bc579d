"""The whole bridge against misbehaving SMSCs: every order ends correct, nothing is lost.

Each test runs the real Bridge (SQLite, intake, dispatch, receipts) against the fault
peer of tests/peers/smpp_fault.py and reads the outcome and the order history from the
database. Every wait is a condition with a deadline; the sleeps are a frozen process
(a blocked event loop) and a wait to see that nothing more is sent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from pathlib import Path

import aiosmtplib

from bridge.mt.settings import RECORD_MARGIN
from bridge.settings import Settings, load_settings
from bridge.smpp import constants as c
from tests.helpers import make_mail, running_bridge, wait_for
from tests.peers.smpp_fault import Faults, mo_part, running_fault_smsc

PHONES = ["+491701234561", "+491701234562", "+491701234563"]


SMSC_DEFAULTS: dict[str, object] = {
    # Long enough that a busy machine's stall is not taken for a silent SMSC (a resend
    # would change what a test counts); the tests of a silent SMSC set a short one.
    "response_timeout": 5.0,
    "throttle_pause_min": 0.05,
    "throttle_pause_max": 0.2,
    "bind_failure_min": 0.2,
    "mo_reassembly_timeout": 60.0,
    "stats_interval": 0.5,
    "long_code_rate": 0.0,  # the demo sender is a long code; rates have their own tests
}

SILENT = 1.0  # response_timeout for a peer that does not answer


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    return repr(value)


def settings_for(
    tmp_path: Path,
    smscs: dict[str, int],
    routes: str = "",
    dispatch: dict[str, object] | None = None,
    per_smsc: dict[str, dict[str, object]] | None = None,
    **smsc: object,
) -> Settings:
    def block(name: str, port: int) -> str:
        values = {**SMSC_DEFAULTS, **smsc, **(per_smsc or {}).get(name, {})}
        extra = "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
        return f'''
[[smsc]]
name = "{name}"
port = {port}
system_id = "bridge"
password = "pw"
{extra}'''

    blocks = "".join(block(name, port) for name, port in smscs.items())
    routes = routes or f'[[routes]]\nprefix = ""\ntransports = {list(smscs)!r}\n'.replace("'", '"')
    dispatch_values = {"poll_interval": 0.1, "retry_min": 0.3, **(dispatch or {})}
    dispatch_lines = "".join(f"{k} = {toml_value(v)}\n" for k, v in dispatch_values.items())
    text = f"""
database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[smtp]
port = 0
[mailer]
mode = "maildir"
maildir = "{tmp_path / "maildir"}"
poll_interval = 0.2
[dispatch]
{dispatch_lines}
{blocks}
{routes}"""
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(sql).fetchall()


def statuses(tmp_path: Path) -> dict[str, str]:
    return {str(i): str(s) for i, s in rows(tmp_path, 'SELECT id, status FROM "order"')}


def events(tmp_path: Path) -> list[str]:
    return [str(e) for (e,) in rows(tmp_path, "SELECT event FROM order_event ORDER BY id")]


async def send(smtp_at: tuple[str, int], to: list[str], body: str = "Hello") -> None:
    async with aiosmtplib.SMTP(hostname=smtp_at[0], port=smtp_at[1]) as smtp:
        await smtp.sendmail(
            "demo@example.com", [f"{n}@eu.rsms.net" for n in to], make_mail(to[0], body)
        )


async def all_delivered(tmp_path: Path, n: int) -> None:
    await wait_for(lambda: list(statuses(tmp_path).values()) == ["delivered"] * n, within=20)


async def test_throttling_defers_and_then_delivers(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(throttle=4)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (bridge, ep),
    ):
        await send(ep.smtp, PHONES[:1])
        await all_delivered(tmp_path, 1)
        assert bridge.transports["a"].reports()[0].throttled == 4
    ev = events(tmp_path)
    assert ev.count("throttled") == 1 and "deferred" in ev  # 3 throttles in attempt 1
    assert ev.index("throttled") < ev.index("deferred") < ev.index("submitted")
    assert ev[-1] == "delivered"


async def test_throttling_mid_message_waits_and_sends_no_part_twice(tmp_path: Path) -> None:
    # part 2 of 3 throttled six times (throttle_retries is 2): it waits for the SMSC, as
    # part 1 is there already; going again from part 1 would show the phone part 1 twice
    async with (
        running_fault_smsc(Faults(throttle=6, throttle_after=1)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (bridge, ep),
    ):
        await send(ep.smtp, PHONES[:1], "Three parts. " * 32)
        await all_delivered(tmp_path, 1)
        assert bridge.transports["a"].reports()[0].throttled == 6
    seqs = [p.short_message[5] for p in peer.submits]  # the UDH's part number
    assert seqs == [1] + [2] * 7 + [3]
    assert len(peer.given_ids) == 3
    assert len({p.short_message[3] for p in peer.submits}) == 1  # one reference
    ev = events(tmp_path)
    assert "throttled" not in ev and "deferred" not in ev
    assert ev.count("submitted") == 1 and ev[-1] == "delivered"


async def test_a_long_sms_sent_again_after_a_part_went_unanswered_keeps_its_reference(
    tmp_path: Path,
) -> None:
    """Part 2 of 3 unanswered after part 1 was accepted: the outcome is unknown, and the
    order goes again from part 1, while the phone holds part 1 of the first try. The
    second try's parts carry the first try's reference (and numbering), so the phone
    puts them into the message it is assembling and drops the copy of part 1; under a
    new reference it kept the first try's part 1 as a broken message of its own."""
    async with (
        running_fault_smsc(Faults(silent=1, silent_after=1)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port}, response_timeout=SILENT)) as (
            _,
            ep,
        ),
    ):
        await send(ep.smtp, PHONES[:1], "Three parts. " * 32)
        await all_delivered(tmp_path, 1)
    udh = [(p.short_message[3], p.short_message[4], p.short_message[5]) for p in peer.submits]
    assert [seq for _, _, seq in udh] == [1, 2, 1, 2, 3]  # (reference, parts, part)
    assert len({(ref, total) for ref, total, _ in udh}) == 1, udh
    ev = events(tmp_path)
    assert "deferred" in ev and ev[-1] == "delivered"


async def test_a_window_throttled_for_one_burst_pauses_the_bind_once(tmp_path: Path) -> None:
    """An SMSC's rate limit refuses a whole window for one burst (ESME_RTHROTTLED to the
    ten submits in flight): the bind pauses once, `throttle_pause_min`, and all ten go
    out after it. Before, every answer doubled the pause: 1, 2, 4 ... 60 s for one burst."""
    phones = [f"+4917012340{n:02d}" for n in range(0, 30, 3)]  # not a run of numbers
    async with (
        running_fault_smsc(Faults(throttle=10)) as peer,
        running_bridge(
            settings_for(
                tmp_path, {"a": peer.port}, throttle_pause_min=1.0, throttle_pause_max=60.0
            )
        ) as (bridge, ep),
    ):
        await send(ep.smtp, phones)
        await wait_for(lambda: list(statuses(tmp_path).values()) == ["delivered"] * 10, within=20)
        assert bridge.transports["a"].reports()[0].throttled == 10
    assert len(peer.submits) == 20
    # the first throttled submit to the last accepted one: about one pause of 1 s
    assert peer.submit_times[-1] - peer.submit_times[0] < 10.0


async def test_no_response_is_unknown_outcome_and_resubmitted_with_marker(tmp_path: Path) -> None:
    async with running_fault_smsc(Faults(silent=1)) as peer:
        s = settings_for(
            tmp_path,
            {"a": peer.port},
            response_timeout=SILENT,
            resubmit_marker="replace_if_present",
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1])
            await all_delivered(tmp_path, 1)
    assert [p.replace_if_present_flag for p in peer.submits] == [0, 1]
    ev = events(tmp_path)
    assert "unknown-outcome" in ev and ev[-1] == "delivered"
    details = [str(d) for (d,) in rows(tmp_path, "SELECT detail FROM order_event")]
    assert any("resubmit" in d for d in details)


async def test_unknown_outcome_can_hold_for_an_operator(tmp_path: Path) -> None:
    async with running_fault_smsc(Faults(silent=1)) as peer:
        s = settings_for(tmp_path, {"a": peer.port}, response_timeout=SILENT)
        s = s.model_copy(
            update={"dispatch": s.dispatch.model_copy(update={"on_unknown_outcome": "hold"})}
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1])
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["held"], within=10)


async def test_generic_nack_defers_then_delivers(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(nack=1)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES[:1])
        await all_delivered(tmp_path, 1)
    assert "generic-nack" in events(tmp_path)


async def test_permanent_generic_nack_fails_the_order(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(nack=1, nack_status=c.ESME_RINVCMDID)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES[:1])
        await wait_for(lambda: list(statuses(tmp_path).values()) == ["failed"], within=10)


async def test_disconnect_mid_window_loses_nothing(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(drop_after=3)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES)
        await all_delivered(tmp_path, 3)
        assert peer.binds >= 2
    assert events(tmp_path).count("unknown-outcome") == 3


async def test_receipt_before_response(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(receipt_first=True)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES[:2])
        await all_delivered(tmp_path, 2)
    assert set(peer.deliver_statuses) == {0}


async def test_wrong_duplicate_and_regressing_receipts(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(wrong_receipts=True)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES[:1])
        await all_delivered(tmp_path, 1)
        await peer.wait_until(lambda: len(peer.deliver_statuses) == 6)
        await wait_for(
            lambda: rows(tmp_path, "SELECT count(*) FROM receipt WHERE status='applied'") == [(4,)]
        )
        unmatched = rows(tmp_path, "SELECT smsc_id FROM receipt WHERE status='new'")
    assert set(peer.deliver_statuses) == {0}  # every receipt acknowledged, none crashed us
    assert unmatched == [("999999",)]  # kept; orphaned after the receipt TTL
    assert rows(tmp_path, "SELECT state FROM part") == [("delivered",)]
    assert list(statuses(tmp_path).values()) == ["delivered"]


async def test_three_part_mt_is_delivered_only_with_its_third_receipt(tmp_path: Path) -> None:
    async with (
        running_fault_smsc(Faults(hold_receipts=True)) as peer,
        running_bridge(settings_for(tmp_path, {"a": peer.port})) as (_, ep),
    ):
        await send(ep.smtp, PHONES[:1], body="Three parts. " * 32)
        await wait_for(lambda: len(peer.held_receipts) == 3, within=10)
        await wait_for(lambda: list(statuses(tmp_path).values()) == ["submitted"])
        await peer.release_receipts(2)
        await wait_for(
            lambda: rows(tmp_path, "SELECT count(*) FROM part WHERE state='delivered'") == [(2,)]
        )
        assert list(statuses(tmp_path).values()) == ["submitted"]
        await peer.release_receipts(1)
        await all_delivered(tmp_path, 1)


async def test_three_part_mo_last_first_survives_a_restart(tmp_path: Path) -> None:
    text = "".join(f"{i:03d}," for i in range(110))[:440]  # 440 septets: 3 parts of 153
    raw = text.encode("ascii")
    chunks = [raw[:153], raw[153:306], raw[306:]]
    async with running_fault_smsc() as peer:
        s = settings_for(tmp_path, {"a": peer.port})
        async with running_bridge(s):
            await peer.wait_until(lambda: peer.sessions)
            assert await peer.deliver(mo_part(7, 3, 3, chunks[2])) == 0
            assert await peer.deliver(mo_part(7, 3, 1, chunks[0])) == 0
        assert rows(tmp_path, "SELECT count(*) FROM mo_part") == [(2,)]  # kept across restart
        async with running_bridge(s):
            await peer.wait_until(lambda: any(not x.closed for x in peer.sessions))
            assert await peer.deliver(mo_part(7, 3, 2, chunks[1])) == 0
            await wait_for(lambda: rows(tmp_path, "SELECT text, parts FROM inbound"))
    assert rows(tmp_path, "SELECT text, parts FROM inbound") == [(text, 3)]
    assert rows(tmp_path, "SELECT count(*) FROM mo_part") == [(0,)]


async def test_failover_to_the_next_smsc_and_skip_a_down_bind(tmp_path: Path) -> None:
    async with running_fault_smsc(Faults(throttle=100)) as a, running_fault_smsc() as b:
        s = settings_for(tmp_path, {"a": a.port, "b": b.port}, throttle_retries=0)
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1])
            await all_delivered(tmp_path, 1)
            ev = events(tmp_path)
            assert ev[:4] == ["queued", "attempt", "throttled", "failover"][: len(ev[:4])]
            assert "failover" in ev and len(b.submits) == 1
            await a.stop()  # SMSC a goes away: its bind is down, so it is skipped
            await wait_for(lambda: not a.sessions)
            await send(ep.smtp, PHONES[1:2])
            await all_delivered(tmp_path, 2)
            assert "skipped" in events(tmp_path) and len(b.submits) == 2


async def test_ton0_multipart_mo_and_an_alert_notification(tmp_path: Path) -> None:
    """Parts of one MO with TON 0 digits are joined and stored under the E.164 number;
    an alert_notification in between gets no answer and leaves the bind up."""
    raw = ("".join(f"{i:03d}," for i in range(80))[:300]).encode("ascii")
    async with running_fault_smsc() as peer:
        async with running_bridge(settings_for(tmp_path, {"a": peer.port})):
            await peer.wait_until(lambda: peer.sessions)
            part = functools.partial(mo_part, 9, 2, source_ton=0, dest_ton=0)
            assert await peer.deliver(part(1, raw[:153])) == 0
            peer.alert("491701234567", "4930123456")
            assert await peer.deliver(part(2, raw[153:])) == 0
            await wait_for(lambda: rows(tmp_path, "SELECT source, destination, parts FROM inbound"))
            assert [s.closed for s in peer.sessions] == [False]
    assert rows(tmp_path, "SELECT source, destination, parts FROM inbound") == [
        ("+491701234567", "+4930123456", 2)
    ]
    assert peer.binds == 1  # no reconnect: the alert did not upset the session


async def test_a_resubmit_never_replaces_another_message_to_the_same_number(
    tmp_path: Path,
) -> None:
    async with running_fault_smsc(Faults(hold_receipts=True)) as peer:
        s = settings_for(
            tmp_path,
            {"a": peer.port},
            response_timeout=SILENT,
            resubmit_marker="replace_if_present",
        )
        async with running_bridge(s) as (_, ep):
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                to = [f"{PHONES[0]}@eu.rsms.net"]
                first = make_mail(PHONES[0], "The meeting is at 3", message_id="<r-1@client>")
                await smtp.sendmail("demo@example.com", to, first)
                await wait_for(lambda: list(statuses(tmp_path).values()) == ["submitted"])
                peer.faults.silent = 1  # the next submit gets no answer: unknown outcome
                second = make_mail(PHONES[0], "Parking is at gate B", message_id="<r-2@client>")
                await smtp.sendmail("demo@example.com", to, second)
            await peer.wait_until(lambda: len(peer.submits) == 3)
            await wait_for(lambda: sorted(statuses(tmp_path).values()) == ["submitted"] * 2)
    # The first message still waits at the SMSC (no final receipt): a replace_if_present
    # resubmit of the second would have replaced it, so no marker is set.
    assert [p.replace_if_present_flag for p in peer.submits] == [0, 0, 0]
    details = [str(d) for (d,) in rows(tmp_path, "SELECT detail FROM order_event")]
    assert any("no replace_if_present" in d for d in details)


async def test_a_multi_part_resubmit_carries_no_replace_marker(tmp_path: Path) -> None:
    async with running_fault_smsc(Faults(silent=1)) as peer:
        s = settings_for(
            tmp_path,
            {"a": peer.port},
            response_timeout=SILENT,
            resubmit_marker="replace_if_present",
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1], body="Three parts. " * 32)
            await all_delivered(tmp_path, 1)
    # Part 1 got no answer; then all three again. With the marker, each part would
    # replace the one before it at the SMSC (same source, destination, service_type).
    assert [p.replace_if_present_flag for p in peer.submits] == [0, 0, 0, 0]


async def test_a_mid_message_wait_ends_inside_the_claims_lease(tmp_path: Path) -> None:
    """Part 2 of 3 is throttled for ever. With `lease = 8` and `response_timeout = 1` a
    part goes only until 8 - 5 (RECORD_MARGIN) - 1 = 2 s after the claim, so the order
    fails well inside its lease and no other instance can claim it (and send it again)
    while it waits. Before, the wait was 90 s whatever the lease: past it."""
    lease = 8.0
    async with running_fault_smsc(Faults(throttle=10**6, throttle_after=1)) as peer:
        s = settings_for(
            tmp_path, {"a": peer.port}, dispatch={"lease": lease}, response_timeout=1.0
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1], "Three parts. " * 32)
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["failed"], within=lease)
    seqs = [p.short_message[5] for p in peer.submits]
    assert seqs[0] == 1 and set(seqs[1:]) == {2} and len(seqs) > 3
    send_by = lease - RECORD_MARGIN - 1.0
    assert peer.submit_times[-1] - peer.submit_times[0] < send_by
    errors = [str(e) for (e,) in rows(tmp_path, 'SELECT error FROM "order"')]
    assert f"parts 1-1 accepted as {peer.given_ids[0]}" in errors[0]


async def test_a_later_part_held_up_past_the_send_by_time_fails_the_order_not_resends_it(
    tmp_path: Path,
) -> None:
    """Part 2 of 3 is throttled and waits out its pause (1 s) inside the time it has (the
    send-by time, 8 - 5 - 1 = 2 s after the claim), when the process stops for 2.5 s (a
    paused VM, a long GC; here a blocked event loop) and wakes past that time. Nothing
    is sent then (the claim may be another's), and the order fails, part 1's id named:
    it used to be deferred, and sent again from part 1, which the phone then got twice
    (and again at every later attempt while the SMSC throttled)."""
    lease = 8.0
    async with running_fault_smsc(Faults(throttle=10**6, throttle_after=1)) as peer:
        s = settings_for(
            tmp_path,
            {"a": peer.port},
            dispatch={"lease": lease},
            response_timeout=1.0,
            throttle_pause_min=1.0,
            throttle_pause_max=1.0,
        )
        async with running_bridge(s) as (bridge, ep):
            await send(ep.smtp, PHONES[:1], "Three parts. " * 32)
            # part 2's throttling answer handled: the bind waits out its pause, in time
            await wait_for(lambda: bridge.transports["a"].reports()[0].throttled >= 1)
            time.sleep(2.5)  # noqa: ASYNC251  # the whole process stops (loop, timers)
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["failed"], within=lease)
            await asyncio.sleep(1.0)  # a deferred order would go again by now (retry_min 0.3)
    seqs = [p.short_message[5] for p in peer.submits]  # part 2 again after a pause, if slow
    assert seqs[0] == 1 and set(seqs[1:]) == {2}, seqs  # part 1 once
    (error,) = [str(e) for (e,) in rows(tmp_path, 'SELECT error FROM "order"')]
    assert f"parts 1-1 accepted as {peer.given_ids[0]}" in error
    assert "not sent again, the phone would get the accepted parts twice" in error
    assert "deferred" not in events(tmp_path)


async def test_a_long_sms_its_rate_would_stop_halfway_is_deferred_before_its_first_part(
    tmp_path: Path,
) -> None:
    """At 0.5 submit_sm/s three parts take 4 s, and a claim leaves 2 s to send (lease 8,
    response_timeout 1): the order is deferred with no part sent. Before, parts 1 and 2
    went, part 3's token came too late, and the order was deferred: every later attempt
    sent parts 1 and 2 again."""
    async with running_fault_smsc() as peer:
        s = settings_for(
            tmp_path, {"a": peer.port}, dispatch={"lease": 8.0}, response_timeout=1.0, rate=0.5
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1], "Three parts. " * 32)
            await wait_for(lambda: events(tmp_path).count("deferred") >= 2, within=10)
    assert peer.submits == []
    (detail, *_) = [
        str(d) for (d,) in rows(tmp_path, "SELECT detail FROM order_event WHERE event = 'deferred'")
    ]
    assert "the last of 3 parts could go in 4.0 s (rate, pause), past the send-by time" in detail
