"""An ESME on the npm `smpp` package's client (node-smpp), behind `EsmeDriver`.

`tests/peers/node_smpp/esme.js` runs the client in a node process and talks JSON lines
(see its header). It uses the same pinned npm package as the node SMSC peer
(`node_smpp/package-lock.json`, installed into the git-ignored `node_modules` by
`scripts/test-deps.sh` or on first use). Every deliver_sm is reported as node-smpp
decoded it, with the octets of short_message as received.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.peers.esme import BindResult, BindType, Delivery, SubmitResult, address
from tests.peers.node_smpp import NODE_DIR, ensure_installed

_TLVS = {"receipted_message_id": 0x001E, "message_state": 0x0427}


def _tlv_value(name: str, value: Any) -> bytes:
    if name == "message_state":
        return bytes((int(value),))
    return str(value).encode("ascii")


def _delivery(pdu: dict[str, Any], answered: int) -> Delivery:
    return Delivery(
        source=str(pdu.get("source_addr", "")),
        destination=str(pdu.get("destination_addr", "")),
        esm_class=int(pdu.get("esm_class", 0)),
        data_coding=int(pdu.get("data_coding", 0)),
        short_message=bytes.fromhex(str(pdu.get("raw_short_message", ""))),
        tlvs=tuple(
            (tag, _tlv_value(name, pdu[name])) for name, tag in _TLVS.items() if name in pdu
        ),
        answered=answered,
    )


@dataclass(eq=False)
class NodeEsme:
    host: str
    port: int
    name: str = "node-smpp"
    deliveries: list[Delivery] = field(default_factory=list)
    binds: list[BindResult] = field(default_factory=list)
    submits: list[SubmitResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        ensure_installed()
        self._proc = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            "esme.js",
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        await self._wait_event(lambda e: e["event"] == "ready", 20)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                self.events.append(event)
                if event["event"] == "deliver_sm":
                    self.deliveries.append(_delivery(event["pdu"], int(event["answered"])))
                self._changed.set()
        self.events.append({"event": "exited"})
        self._changed.set()

    async def _wait_event(
        self, match: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> dict[str, Any]:
        async def _wait() -> dict[str, Any]:
            while True:
                found = next((e for e in self.events if match(e)), None)
                if found is not None:
                    return found
                if any(e["event"] == "exited" for e in self.events):
                    raise AssertionError("the node ESME exited")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), within)

    async def _call(self, op: str, within: float = 10.0, **fields: Any) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        cid = next(self._ids)
        self._proc.stdin.write((json.dumps({"id": cid, "op": op, **fields}) + "\n").encode())
        await self._proc.stdin.drain()
        reply = await self._wait_event(lambda e: e.get("id") == cid, within)
        if reply["event"] == "error":
            raise AssertionError(f"node ESME: {reply['message']}")
        return reply

    # --- EsmeDriver -----------------------------------------------------------------------

    async def bind(self, bind_type: BindType, system_id: str, password: str) -> BindResult:
        reply = await self._call(
            "bind",
            host=self.host,
            port=self.port,
            bind_type=str(bind_type),
            system_id=system_id,
            password=password,
        )
        status = int(reply["status"])
        result = (
            BindResult(None, str(reply.get("message", "")))
            if status < 0
            else BindResult(status, "bound" if status == 0 else "refused")
        )
        self.binds.append(result)
        return result

    async def submit(
        self, source: str, destination: str, text: str, *, ucs2: bool = False, receipt: bool = True
    ) -> list[SubmitResult]:
        def addr(number: str) -> dict[str, Any]:
            digits, ton, npi = address(number)
            return {"addr": digits, "ton": ton, "npi": npi}

        reply = await self._call(
            "submit",
            source=addr(source),
            destination=addr(destination),
            text=text,
            ucs2=ucs2,
            receipt=receipt,
        )
        results = [SubmitResult(int(r["status"]), str(r["message_id"])) for r in reply["results"]]
        self.submits.extend(results)
        return results

    async def answer_deliveries_with(self, status: int) -> None:
        await self._call("answer", status=status)

    async def enquire_link(self) -> int | None:
        return int((await self._call("enquire_link"))["status"])

    async def unbind(self) -> int | None:
        return int((await self._call("unbind"))["status"])

    async def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def report(self) -> dict[str, Any]:
        return {
            "client": self.name,
            "binds": [(b.status, b.detail) for b in self.binds],
            "submits": [(s.status, s.message_id) for s in self.submits],
            "deliveries": [d.as_dict() for d in self.deliveries],
            "seen": [
                (e["command"], e["command_status"], e["sequence_number"])
                for e in self.events
                if e["event"] == "pdu"
            ],
        }


@contextlib.asynccontextmanager
async def node_esme(host: str, port: int) -> AsyncIterator[NodeEsme]:
    esme = NodeEsme(host, port)
    try:
        await esme.start()
        yield esme
    finally:
        await esme.close()
