"""The receipt a concatenated message asked for, whichever of its parts asked.

Clients set `registered_delivery` on one part of a long message only, and not the same
one: Kannel (tests/e2e/test_kannel_customer.py) sends the first part with 0x11 and the
rest with 0; other clients ask on the last part, or on every part. A receipt asked on any
part is asked for the message (`bridge.smpp_server.submit.message_receipt_wish`), for a
message whose parts all came as for one whose missing parts made it a failed order.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import db_rows, running_bridge, wait_for
from tests.peers.raw_smpp import Client

PHONE = b"491701234567"
SENDER = b"4915550000001"

# name -> each part's registered_delivery (None: the part is never sent)
MESSAGES: dict[str, tuple[int | None, ...]] = {
    "first part asks (Kannel)": (0x11, 0, 0),
    "last part asks": (0, 0, 1),
    "middle part asks": (0, 1, 0),
    "every part asks": (1, 1, 1),
    "no part asks": (0, 0, 0),
    "failures only, delivered": (2, 0, 0),
    "incomplete, the last part came and asked": (0, None, 1),
    "incomplete, no part that came asked": (0, None, 0),
}
RECEIPTED = {
    "first part asks (Kannel)",
    "last part asks",
    "middle part asks",
    "every part asks",
    "incomplete, the last part came and asked",
}


def _submit(ref: int, seq: int, total: int, registered_delivery: int) -> bytes:
    udh = bytes((5, 0, 3, ref, total, seq))
    text = f"part {seq} of message {ref}".encode()
    return (
        b"\0"
        + bytes((1, 1))
        + SENDER
        + b"\0"
        + bytes((1, 1))
        + PHONE
        + b"\0"
        + bytes((0x40, 0, 0))
        + b"\0\0"
        + bytes((registered_delivery, 0, 0, 0, len(udh) + len(text)))
        + udh
        + text
    )


async def test_a_receipt_asked_on_any_part_is_sent_once(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0, part_wait=1.0)
    )
    database = settings.database_url
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        reader, writer = await asyncio.open_connection(*ep.smpp)
        client = Client(reader, writer)
        client.start()
        answer = await client.request(0x09, b"demo\0demo\0\0\x34\x00\x00\0")
        assert answer is not None and answer[:2] == (0x80000009, 0), answer
        ids: dict[str, str] = {}
        for ref, (name, wishes) in enumerate(MESSAGES.items(), start=1):
            for seq, wish in enumerate(wishes, start=1):
                if wish is None:
                    continue
                answer = await client.request(0x04, _submit(ref, seq, len(wishes), wish))
                assert answer is not None and answer[1] == 0, (name, answer)
                ids[name] = answer[2].rstrip(b"\0").decode()

        def final() -> int:
            quoted = ", ".join(f"'{i}'" for i in ids.values())
            rows = db_rows(database, f'SELECT status FROM "order" WHERE id IN ({quoted})')
            return len([r for r in rows if r.status in ("delivered", "failed")])

        await wait_for(lambda: final() == len(MESSAGES), within=20, every=0.1)

        def receipted() -> list[str]:
            return [
                body.split(b"id:", 1)[1].split(b" ", 1)[0].decode()
                for command_id, _, _, body in client.seen
                if command_id == 0x05 and b"id:" in body
            ]

        want = sorted(ids[n] for n in RECEIPTED)
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: sorted(receipted()) == want, within=10, every=0.1)
        await asyncio.sleep(1)  # no other receipt comes
        names = {i: n for n, i in ids.items()}
        assert sorted(names[i] for i in receipted()) == sorted(RECEIPTED)
        await client.close()
