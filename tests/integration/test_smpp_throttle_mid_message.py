"""Throttling in the middle of a long SMS (SmppTransport against the fault SMSC).

A throttling answer says the part was not taken. The first part is tried
`throttle_retries` times more, then the order is deferred; a later part waits on, since
its message's first parts are at the SMSC, until the order's validity (or
`MID_MESSAGE_WAIT`, or the order's claim: `until`) runs out: then the order fails naming
those parts, and nothing is sent again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.smpp import constants as c
from bridge.transports.base import TransportPermanentFailure, TransportTemporaryFailure
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms
from tests.peers.smpp34_peer import RecordingInbox
from tests.peers.smpp_fault import Faults, running_fault_smsc

LONG = "x" * 400  # three parts


def _config(port: int, **changes: Any) -> SmppConfig:
    values: dict[str, Any] = {"throttle_pause_min": 0.05, "throttle_pause_max": 0.1, **changes}
    return SmppConfig(name="a", port=port, system_id="b", stats_interval=0, **values)


def _sms(validity: float | None = None) -> OutboundSms:
    return OutboundSms("o.1", "+491701234567", "+4915550000001", LONG, "gsm7", validity=validity)


async def test_a_later_part_waits_out_the_throttling() -> None:
    async with running_fault_smsc(Faults(receipts=False, throttle=5, throttle_after=1)) as peer:
        transport = SmppTransport(_config(peer.port))
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            result = await transport.submit(_sms())
        finally:
            await transport.stop()
    assert result.message_ids == tuple(peer.given_ids)
    assert [p.short_message[5] for p in peer.submits] == [1] + [2] * 6 + [3]
    assert len({p.short_message[3] for p in peer.submits}) == 1  # one message


async def test_past_the_validity_the_order_fails_and_nothing_goes_again() -> None:
    async with running_fault_smsc(Faults(receipts=False, throttle=10**6, throttle_after=1)) as peer:
        transport = SmppTransport(_config(peer.port))
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            with pytest.raises(TransportPermanentFailure) as failed:
                await transport.submit(_sms(validity=0.5))
            sent = len(peer.submits)
        finally:
            await transport.stop()
    assert failed.value.kind == "throttled" and failed.value.code == c.ESME_RTHROTTLED
    assert f"parts 1-1 accepted as {peer.given_ids[0]}" in failed.value.reason
    assert [p.short_message[5] for p in peer.submits] == [1] + [2] * (sent - 1)
    assert len(peer.given_ids) == 1


async def test_a_throttled_first_part_defers_the_order() -> None:
    async with running_fault_smsc(Faults(receipts=False, throttle=3)) as peer:
        transport = SmppTransport(_config(peer.port))
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            with pytest.raises(TransportTemporaryFailure) as deferred:
                await transport.submit(_sms())
        finally:
            await transport.stop()
    assert deferred.value.kind == "throttled" and deferred.value.retry_after
    assert "3 times" in deferred.value.reason
    assert peer.given_ids == []


async def test_the_claim_cuts_the_wait_a_part_goes_only_while_its_answer_fits() -> None:
    # the claim ends 2 s from now: with response_timeout 0.5 s the last part goes by 1.5 s
    async with running_fault_smsc(Faults(receipts=False, throttle=10**6, throttle_after=1)) as peer:
        transport = SmppTransport(_config(peer.port, response_timeout=0.5))
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            loop = asyncio.get_running_loop()
            until = loop.time() + 2.0
            with pytest.raises(TransportPermanentFailure) as failed:
                await transport.submit(_sms(), until=until)
            ended = loop.time()
        finally:
            await transport.stop()
    assert ended <= until
    assert peer.submit_times[-1] <= until - 0.5
    assert failed.value.kind == "throttled"
    assert f"parts 1-1 accepted as {peer.given_ids[0]}" in failed.value.reason
    assert len(peer.given_ids) == 1


async def test_a_throttled_first_part_is_not_sent_past_the_claim() -> None:
    # the bind's pause (at least 1 s) would end after the claim's send-by time: deferred
    async with running_fault_smsc(Faults(receipts=False, throttle=10**6)) as peer:
        config = _config(
            peer.port, response_timeout=0.5, throttle_pause_min=1.0, throttle_pause_max=2.0
        )
        transport = SmppTransport(config)
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            until = asyncio.get_running_loop().time() + 1.2
            with pytest.raises(TransportTemporaryFailure) as deferred:
                await transport.submit(_sms(), until=until)
        finally:
            await transport.stop()
    assert deferred.value.kind == "throttled" and deferred.value.retry_after
    assert len(peer.submits) == 1 and peer.given_ids == []


async def test_no_part_goes_when_the_claim_ends_before_an_answer_could_come() -> None:
    async with running_fault_smsc(Faults(receipts=False)) as peer:
        transport = SmppTransport(_config(peer.port, response_timeout=5.0))
        await transport.start(RecordingInbox())
        try:
            assert await transport.wait_bound(5)
            until = asyncio.get_running_loop().time() + 4.0
            with pytest.raises(TransportTemporaryFailure) as deferred:
                await transport.submit(_sms(), until=until)
        finally:
            await transport.stop()
    assert deferred.value.kind == "claim-ends"
    assert peer.submits == []
