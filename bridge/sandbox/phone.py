"""The sandbox's phone side: the SMS a phone received (inbox file) and typing an MO on a phone.

`read_inbox` reads the JSON-lines inbox the sandbox SMSC writes; `send_mo` binds as the
special system_id "phone" and submits text that the sandbox delivers to the bridge as
MO. Both are the CLI's helpers (`mailsms sandbox inbox|send`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from bridge.errors import PermanentFailure
from bridge.smpp import constants as c
from bridge.smpp.address import source_address
from bridge.smpp.pdu import Bind, GenericNack, Pdu, SubmitSm, SubmitSmResp, Tlv, Unbind
from bridge.smpp.session import SessionError, SmppSession

PHONE_SYSTEM_ID: Final = "phone"


class SandboxError(PermanentFailure):
    """A sandbox helper could not do what was asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class SandboxSms:
    """One SMS as the destination phone shows it."""

    destination: str
    source: str
    text: str
    parts: int
    encoding: str
    received_at: datetime
    message_ids: tuple[str, ...] = ()


def _norm(number: str) -> str:
    return number.strip().replace(" ", "").lstrip("+")


def read_inbox(path: Path, to: str | None = None) -> list[SandboxSms]:
    """The SMS in the sandbox inbox file (oldest first), only those to `to` when given."""
    if not path.exists():
        return []
    out: list[SandboxSms] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                d = json.loads(line)
                sms = SandboxSms(
                    destination=str(d["destination"]),
                    source=str(d["source"]),
                    text=str(d["text"]),
                    parts=int(d["parts"]),
                    encoding=str(d["encoding"]),
                    received_at=datetime.fromisoformat(d["time"]),
                    message_ids=tuple(str(x) for x in d.get("message_ids", ())),
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line or a hand edit: skip it
            if to is None or _norm(sms.destination) == _norm(to):
                out.append(sms)
    return out


async def send_mo(
    host: str, port: int, source: str, destination: str | None, text: str, inbox_path: Path
) -> str:
    """Type `text` on phone `source` and send it; without `destination`, reply to the last
    sender of an SMS to `source` (like a phone's Reply button). Returns the message id."""
    if destination is None:
        received = read_inbox(inbox_path, to=source)
        if not received:
            raise SandboxError(
                f"phone {source} has received no SMS in {inbox_path}, so there is nothing to "
                "reply to; give the destination (the bridge's number or sender id) explicitly"
            )
        destination = received[-1].source
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10.0)
    except (OSError, TimeoutError) as exc:
        raise SandboxError(f"cannot reach the sandbox SMSC at {host}:{port}: {exc}") from exc

    async def refuse(pdu: Pdu) -> Pdu | None:
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    session = SmppSession(reader, writer, refuse, name="phone", response_timeout=30.0)
    reader_task = asyncio.create_task(session.run())
    try:
        bind = await session.request(Bind(c.BIND_TRANSMITTER, 0, PHONE_SYSTEM_ID, ""))
        if bind.status != c.ESME_ROK:
            raise SandboxError(f"the sandbox refused the phone bind: {c.status_name(bind.status)}")
        src = source_address(source)
        dst = source_address(destination)
        resp = await session.request(
            SubmitSm(
                0,
                src.addr,
                dst.addr,
                b"",
                source_addr_ton=src.ton,
                source_addr_npi=src.npi,
                dest_addr_ton=dst.ton,
                dest_addr_npi=dst.npi,
                data_coding=0x08,
                tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, text.encode("utf-16-be")),),
            )
        )
        if resp.status == c.ESME_RSYSERR:
            raise SandboxError("no bridge is bound to the sandbox SMSC to receive the SMS")
        if resp.status == c.ESME_RX_T_APPN:
            raise SandboxError("the bridge answered ESME_RX_T_APPN: it could not store the SMS")
        if resp.status != c.ESME_ROK or not isinstance(resp, SubmitSmResp):
            raise SandboxError(f"the SMS was refused: {c.status_name(resp.status)}")
        with contextlib.suppress(SessionError):
            await session.request(Unbind(0), response_timeout=2.0)
        return resp.message_id
    except SessionError as exc:
        raise SandboxError(f"the sandbox SMSC did not answer: {exc}") from exc
    finally:
        await session.close()
        reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader_task
