"""Throttling in the middle of a long SMS (SmppTransport against the fault SMSC).

A throttling answer says the part was not taken. The first part is tried
`throttle_retries` times more, then the order is deferred; a later part waits on, since
its message's first parts are at the SMSC, until the order's validity (or
`MID_MESSAGE_WAIT`) runs out: then the order fails naming those parts, and nothing is sent
again.
"""

from __future__ import annotations

import pytest

from bridge.smpp import constants as c
from bridge.transports.base import TransportPermanentFailure, TransportTemporaryFailure
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms
from tests.peers.smpp34_peer import RecordingInbox
from tests.peers.smpp_fault import Faults, running_fault_smsc

LONG = "x" * 400  # three parts


def _config(port: int) -> SmppConfig:
    return SmppConfig(
        name="a",
        port=port,
        system_id="b",
        stats_interval=0,
        throttle_pause_min=0.05,
        throttle_pause_max=0.1,
    )


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
