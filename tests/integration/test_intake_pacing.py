"""Flow control at the door, on a real bridge and a real SMTP client: while the bridge's
process is saturated (here by threads hashing outside the GIL, real CPU work in the same
process), a new mail waits before its MAIL is answered and is counted; when the process is
idle, nothing waits."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path

import aiosmtplib

from bridge.intake.pacing import usable_cpus
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge


def _hog(stop: threading.Event) -> None:
    data = b"\0" * (4 << 20)  # hashlib lets go of the GIL for data this large
    while not stop.is_set():
        hashlib.sha256(data).digest()


async def test_a_saturated_process_makes_new_mail_wait_and_an_idle_one_does_not(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "smtp": settings.smtp.model_copy(update={"in_flow_busy": 0.25, "in_flow_delay": 0.6})
        }
    )
    async with running_bridge(settings) as (bridge, ep):
        paced = bridge.metrics.intake_paced
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
            await asyncio.sleep(0.6)  # idle since the first mail: no pause for the next
            await smtp.sendmail("demo@example.com", ["+491701234568@eu.rsms.net"], make_mail())
            assert paced._value.get() == 0

            stop = threading.Event()
            hogs = [threading.Thread(target=_hog, args=(stop,)) for _ in range(usable_cpus())]
            for hog in hogs:
                hog.start()
            try:
                await asyncio.sleep(1.0)  # the load, read at the next MAIL, is the hogs' CPU
                started = time.monotonic()
                await smtp.mail("demo@example.com")
                waited = time.monotonic() - started
            finally:
                stop.set()
                for hog in hogs:
                    hog.join()
            assert paced._value.get() == 1
            assert bridge.metrics.intake_paced_seconds._value.get() > 0.1
            assert waited > 0.1, waited
            await smtp.rset()
