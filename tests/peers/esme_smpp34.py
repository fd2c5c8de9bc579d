"""An ESME on the smpp34 package's Client (Rust core, asyncio API), behind `EsmeDriver`.

smpp34 answers deliver_sm (always ESME_ROK) and enquire_link in its core and sends its
own enquire_link on a timer, with no call for one; it reads a refused bind_resp as no
answer and reports "bind timed out" after `connect_timeout`. Those results are `None`
here (see tests/peers/smpp_tap.py for the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import smpp34

from tests.peers.esme import (
    BindResult,
    BindType,
    Delivery,
    SubmitResult,
    Unsupported,
    address,
    presplit,
)

_BIND_TYPES = {
    BindType.TRANSCEIVER: "TRX",
    BindType.TRANSMITTER: "TX",
    BindType.RECEIVER: "RX",
}


@dataclass(eq=False)
class Smpp34Esme:
    host: str
    port: int
    connect_timeout: float = 2.0
    name: str = "smpp34"
    deliveries: list[Delivery] = field(default_factory=list)
    binds: list[BindResult] = field(default_factory=list)
    submits: list[SubmitResult] = field(default_factory=list)
    disconnected: bool = False
    _client: Any = None
    _session: Any = None
    _reader: asyncio.Task[None] | None = None

    async def bind(self, bind_type: BindType, system_id: str, password: str) -> BindResult:
        self._client = smpp34.Client(
            self.host,
            self.port,
            system_id,
            password,
            bind_type=_BIND_TYPES[bind_type],
            connect_timeout_ms=int(self.connect_timeout * 1000),
        )
        try:
            self._session = await self._client.connect()
        except (smpp34.SmppError, OSError) as exc:
            result = BindResult(None, f"refused or unanswered: {exc}")
        else:
            self.disconnected = False
            self._reader = asyncio.create_task(self._read())
            result = BindResult(0, f"bound as {self._session.system_id}")
        self.binds.append(result)
        return result

    async def _read(self) -> None:
        while True:
            event = await self._session.next()
            if isinstance(event, smpp34.Disconnected):
                self.disconnected = True
                return
            self.deliveries.append(
                Delivery(
                    source=event.source_addr,
                    destination=event.destination_addr,
                    esm_class=event.esm_class,
                    data_coding=event.data_coding,
                    short_message=bytes(event.short_message),
                    tlvs=tuple((t.tag, bytes(t.value)) for t in event.tlvs),
                    answered=None,  # the core acknowledged it; the library does not say how
                )
            )

    async def submit(
        self, source: str, destination: str, text: str, *, ucs2: bool = False, receipt: bool = True
    ) -> list[SubmitResult]:
        src, src_ton, src_npi = address(source)
        dst, dst_ton, dst_npi = address(destination)
        results: list[SubmitResult] = []
        for segment in presplit(text, ucs2=ucs2):
            resp = await self._session.submit_sm(
                dst,
                segment.short_message,
                source_addr=src,
                source_addr_ton=src_ton,
                source_addr_npi=src_npi,
                dest_addr_ton=dst_ton,
                dest_addr_npi=dst_npi,
                esm_class=segment.esm_class,
                data_coding=segment.data_coding,
                registered_delivery=1 if receipt else 0,
            )
            results.append(SubmitResult(int(resp.command_status), resp.message_id or ""))
        self.submits.extend(results)
        return results

    async def answer_deliveries_with(self, status: int) -> None:
        raise Unsupported("smpp34's core answers every deliver_sm itself with ESME_ROK")

    async def enquire_link(self) -> int | None:
        """smpp34 has no call for it (its core sends them on a timer): None."""
        return None

    async def unbind(self) -> int | None:
        await self._session.unbind()
        return None  # the library does not return the unbind_resp status

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.stop()

    def report(self) -> dict[str, Any]:
        return {
            "client": self.name,
            "binds": [(b.status, b.detail) for b in self.binds],
            "submits": [(s.status, s.message_id) for s in self.submits],
            "deliveries": [d.as_dict() for d in self.deliveries],
            "disconnected": self.disconnected,
        }
