"""An SMSC peer in another language, run as a child process and driven over JSON lines.

The scripts (`node_smpp/smsc.js` on the npm `smpp` package, `perl_smpp/smsc.pl` on
Debian's Net::SMPP) listen on 127.0.0.1 port 0, accept every bind, answer every
submit_sm with a numeric id (and a receipt when registered_delivery asks for one),
report every PDU the bridge sends as decoded by their library, and send deliver_sm /
alert_notification / enquire_link on request. See the scripts' headers for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ScriptSmsc:
    """The SMSC process and what it saw."""

    name = "script SMSC"

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self._argv = argv
        self._cwd = cwd
        self.port = 0
        self.events: list[dict[str, Any]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv,
            cwd=self._cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        listening = await self.wait_for_event(lambda e: e["event"] == "listening", within=20)
        self.port = int(listening["port"])

    async def stop(self) -> None:
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

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))
                self._changed.set()
        self.events.append({"event": "exited"})
        self._changed.set()

    # --- waiting --------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], object], within: float = 10.0) -> None:
        async def _wait() -> None:
            while not predicate():
                if any(e["event"] == "exited" for e in self.events):
                    raise AssertionError(f"the {self.name} exited")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    async def wait_for_event(
        self, match: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> dict[str, Any]:
        await self.wait_until(lambda: any(match(e) for e in self.events), within)
        return next(e for e in self.events if match(e))

    # --- what the bridge sent -------------------------------------------------------------

    def received(self, command: str) -> list[dict[str, Any]]:
        """Every PDU with this command name the bridge sent (decoded by the peer's library)."""
        pdus = [e["pdu"] for e in self.events if e["event"] == "pdu"]
        return [p for p in pdus if p["command"] == command]

    @property
    def submits(self) -> list[dict[str, Any]]:
        return self.received("submit_sm")

    @property
    def binds(self) -> int:
        return sum(1 for e in self.events if e["event"] == "bind")

    # --- what we make it send -------------------------------------------------------------

    async def _command(self, op: str, **fields: Any) -> int:
        assert self._proc is not None and self._proc.stdin is not None
        cid = next(self._ids)
        self._proc.stdin.write((json.dumps({"id": cid, "op": op, **fields}) + "\n").encode())
        await self._proc.stdin.drain()
        return cid

    async def request(self, op: str, within: float = 10.0, **params: Any) -> dict[str, Any]:
        """Send a request PDU on the newest session; its response PDU (decoded)."""
        cid = await self._command(op, params=params)
        reply = await self.wait_for_event(
            lambda e: e.get("id") == cid and e["event"] in ("reply", "error"), within
        )
        if reply["event"] == "error":
            raise AssertionError(f"{self.name}: {reply['message']}")
        return dict(reply["pdu"])

    async def deliver_sm(self, **params: Any) -> int:
        """Send a deliver_sm; the bridge's command_status."""
        return int((await self.request("deliver_sm", **params))["command_status"])

    async def send_only(self, op: str, **params: Any) -> int:
        """Send a request that has no response (alert_notification); its sequence number."""
        cid = await self._command(op, params=params)
        sent = await self.wait_for_event(lambda e: e.get("id") == cid and e["event"] == "sent")
        return int(sent["sequence_number"])

    async def set(self, **options: Any) -> None:
        cid = await self._command("set", **options)
        await self.wait_for_event(lambda e: e.get("id") == cid and e["event"] == "done")

    async def drop(self) -> None:
        """Close every connection (an SMSC restart, as the bridge sees it)."""
        cid = await self._command("drop")
        await self.wait_for_event(lambda e: e.get("id") == cid and e["event"] == "done")
