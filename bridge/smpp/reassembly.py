"""In-memory reassembly of concatenated MO: collect parts by (source, destination, ref, total).

Pure (no asyncio, the clock is passed in). Parts may arrive in any order and may repeat;
a message is complete when every seq 1..total is present. The caller removes the entry
only after the joined message was handed over durably (`discard`), so a redelivered last
part completes it again. Entries older than `timeout` seconds are dropped on `add`.

Known gap: partial messages live only in memory; a restart loses parts already acked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ReassemblyKey = tuple[str, str, int, int]  # source, destination, ref, total


@dataclass(frozen=True, slots=True)
class CompleteMessage:
    """All parts of one concatenated MO, payloads joined in seq order (still undecoded)."""

    key: ReassemblyKey
    data_coding: int
    payload: bytes
    parts: int


@dataclass(slots=True)
class _Pending:
    first_seen: float
    data_coding: int
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Holds partial concatenated MO until all parts are there."""

    def __init__(self, *, timeout: float = 1800.0, max_pending: int = 10_000) -> None:
        self._timeout = timeout
        self._max_pending = max_pending
        self._pending: dict[ReassemblyKey, _Pending] = {}  # insertion order = age order

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, key: ReassemblyKey, seq: int, payload: bytes, data_coding: int, now: float
    ) -> CompleteMessage | None:
        """Store one part; return the whole message once every part is present."""
        self._expire(now)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self._max_pending:
                self._pending.pop(next(iter(self._pending)))
            entry = self._pending[key] = _Pending(now, data_coding)
        entry.parts[seq] = payload
        total = key[3]
        if len(entry.parts) < total:
            return None
        if any(i not in entry.parts for i in range(1, total + 1)):
            return None
        joined = b"".join(entry.parts[i] for i in range(1, total + 1))
        return CompleteMessage(key, entry.data_coding, joined, total)

    def discard(self, key: ReassemblyKey) -> None:
        """Forget a message (after it was handed over)."""
        self._pending.pop(key, None)

    def _expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            oldest_key = next(iter(pending))
            if now - pending[oldest_key].first_seen < self._timeout:
                return
            del pending[oldest_key]
