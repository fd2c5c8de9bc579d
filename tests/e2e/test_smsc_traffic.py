"""Traffic that must not hold up other traffic: a silent SMSC, and a long code's sending rate.

The whole bridge against fault peers. A silent SMSC keeps its own orders waiting for
their responses, but another SMSC's order is submitted at once. A long-code sender's
SMS leave at its configured rate (measured at the peer: the rate can only make the
spread longer, so the lower bound holds on a busy machine), while an alphanumeric
sender's SMS are not slowed by it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import aiosmtplib

from bridge.smpp.pdu import SubmitSm
from bridge.tenants.admin import DEMO_NUMBER, add_customer, add_user
from tests.e2e.test_smpp_faults import send, settings_for, statuses
from tests.helpers import make_mail, running_bridge, wait_for
from tests.peers.smpp_fault import Faults, running_fault_smsc

_mail_ids = itertools.count(1)


async def test_a_silent_smsc_does_not_stall_another_smscs_orders(tmp_path: Path) -> None:
    routes = (
        '[[routes]]\nprefix = "+43"\ntransports = ["fast"]\n'
        '[[routes]]\nprefix = ""\ntransports = ["silent"]\n'
    )
    async with (
        running_fault_smsc(Faults(silent=1_000_000)) as silent,
        running_fault_smsc() as fast,
    ):
        s = settings_for(
            tmp_path,
            {"silent": silent.port, "fast": fast.port},
            routes=routes,
            per_smsc={"silent": {"response_timeout": 30.0}},  # silent for the whole test
        )
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, [f"+4917012345{n:02d}" for n in range(12)])  # > its window
            await silent.wait_until(lambda: len(silent.submits) == 10)  # its window is full
            await send(ep.smtp, ["+436641234567"])
            await fast.wait_until(lambda: len(fast.submits) == 1, within=1.0)
            await wait_for(lambda: "delivered" in statuses(tmp_path).values(), within=5)
            assert len(silent.submits) == 10  # the silent SMSC's other orders wait their turn
    status = statuses(tmp_path)
    assert sorted(status.values()).count("delivered") == 1
    assert all(v in ("queued", "deferred") for v in status.values() if v != "delivered")


async def test_a_long_code_sends_at_its_rate_and_an_alphanumeric_sender_is_not_slowed(
    tmp_path: Path,
) -> None:
    rate = 4.0  # SMS/s for the long code (about 1 in production; faster here to keep it short)
    async with running_fault_smsc() as peer:
        s = settings_for(tmp_path, {"a": peer.port}, long_code_rate=rate)
        async with running_bridge(s) as (bridge, ep):
            assert bridge.store is not None
            shop = {"sender_id": "Shop", "access": {"networks": ["127.0.0.0/8"]}}
            await bridge.store.call(add_customer, "shop", shop)
            await bridge.store.call(add_user, "ops@shop.example", "shop")
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                for sender in ["demo@example.com"] * 10 + ["ops@shop.example"] * 10:
                    to = f"+4917012{next(_mail_ids):05d}"
                    mail = make_mail(to, "Hello", sender, message_id=f"<rate-{to}@client>")
                    await smtp.sendmail(sender, [f"{to}@eu.rsms.net"], mail)
            await peer.wait_until(lambda: len(_firsts(peer.submits)) == 20, within=20)
    # A submit's first time at the peer: on a busy machine a response can come too late,
    # and the order is submitted again (unknown outcome); the rate holds for first sends.
    times = {"long": [], "alpha": []}  # type: dict[str, list[float]]
    for n in _firsts(peer.submits).values():
        pdu, at = peer.submits[n], peer.submit_times[n]
        times["long" if pdu.source_addr == DEMO_NUMBER.lstrip("+") else "alpha"].append(at)
    assert len(times["long"]) == len(times["alpha"]) == 10
    # Ten SMS at `rate` per second: nine intervals of 1/rate at least.
    assert times["long"][-1] - times["long"][0] >= 9 / rate - 0.1
    # The alphanumeric sender's mails came after the long code's, yet all of them left
    # before the long code's were through.
    assert max(times["alpha"]) < times["long"][-1]


def _firsts(submits: list[SubmitSm]) -> dict[str, int]:
    """The index of each destination's first submit_sm."""
    firsts: dict[str, int] = {}
    for n, pdu in enumerate(submits):
        firsts.setdefault(pdu.destination_addr, n)
    return firsts
