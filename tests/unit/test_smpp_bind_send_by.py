"""A send the claim's end cuts takes no token of the bind's or the SMSC's rate."""

from __future__ import annotations

import asyncio

import pytest

from bridge.smpp.pdu import EnquireLink, Pdu
from bridge.smpp.session import NoTimeLeft
from bridge.smpp.stats import BindStats
from bridge.smpp.throttle import TokenBucket
from bridge.transports.smpp import SmppConfig
from bridge.transports.smpp_bind import SmppBind


async def _no_requests(pdu: Pdu) -> Pdu | None:
    raise AssertionError("no request is handled here")


def test_wait_takes_no_token() -> None:
    bucket = TokenBucket(2.0)
    assert bucket.wait(10.0) == 0.0
    assert bucket.reserve(10.0) == 0.0
    assert bucket.wait(10.0) == pytest.approx(0.5)
    assert bucket.wait(10.0) == pytest.approx(0.5)  # asking again takes nothing either
    assert bucket.reserve(10.0) == pytest.approx(0.5)


async def test_a_send_past_its_send_by_time_leaves_the_rates_untouched() -> None:
    """The token would come after the send-by time: NoTimeLeft, and the next send waits
    for the token it would have waited for anyway, not for one more (each cut send used
    to reserve a token of the bind's and the SMSC's bucket that no SMS used)."""
    config = SmppConfig(name="s", host="127.0.0.1", port=1, system_id="b", rate=1.0, smsc_rate=1.0)
    smsc = TokenBucket(config.smsc_rate)
    bind = SmppBind(config, "s#1", _no_requests, BindStats(), smsc)
    now = asyncio.get_running_loop().time()
    bind.bucket.reserve(now)
    smsc.reserve(now)  # the next token of each is a second away
    for _ in range(3):
        with pytest.raises(NoTimeLeft):
            await bind.send(EnquireLink(0), send_by=now + 0.2)
    later = asyncio.get_running_loop().time()
    assert bind.bucket.wait(later) <= 1.0
    assert smsc.wait(later) <= 1.0
