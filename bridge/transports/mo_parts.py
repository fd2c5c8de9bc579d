"""Where MO parts wait for their siblings: in memory (tests, tools) or in the store (the bridge).

`MemoryMoParts` implements `MoPartStore` without persistence; the running bridge hands
the SMPP transport `bridge.inbound.mo_store.StoreMoParts` instead, so parts already
acknowledged to the SMSC survive a restart. `join_parts` turns the parts of one message
into (payload runs, missing seqs) for decoding, in seq order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bridge.values import MoKey, MoPart


def complete(parts: Sequence[MoPart], total: int) -> tuple[MoPart, ...] | None:
    """The parts in seq order when every seq 1..total is present (last copy wins)."""
    by_seq = {p.seq: p for p in parts}
    if any(i not in by_seq for i in range(1, total + 1)):
        return None
    return tuple(by_seq[i] for i in range(1, total + 1))


def join_parts(parts: Sequence[MoPart]) -> tuple[list[bytes], list[int]]:
    """Contiguous payload runs (joined, in seq order) and the seqs missing between them."""
    if not parts:
        return [], []
    total = parts[0].total
    by_seq = {p.seq: p.payload for p in parts}
    runs: list[bytes] = []
    missing: list[int] = []
    current: list[bytes] = []
    for i in range(1, total + 1):
        if i in by_seq:
            current.append(by_seq[i])
        else:
            missing.append(i)
            if current:
                runs.append(b"".join(current))
                current = []
            runs.append(b"")  # the gap
    if current:
        runs.append(b"".join(current))
    return runs, missing


class MemoryMoParts:
    """A `MoPartStore` in memory: parts are lost on restart (for tests and tools only)."""

    def __init__(self, *, max_pending: int = 10_000) -> None:
        self._max_pending = max_pending
        self._pending: dict[MoKey, tuple[float, dict[int, MoPart]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    async def add(self, part: MoPart) -> tuple[MoPart, ...] | None:
        entry = self._pending.get(part.key)
        if entry is None:
            if len(self._pending) >= self._max_pending:
                self._pending.pop(next(iter(self._pending)))
            entry = self._pending[part.key] = (time.monotonic(), {})
        entry[1][part.seq] = part
        return complete(list(entry[1].values()), part.total)

    async def discard(self, key: MoKey) -> None:
        self._pending.pop(key, None)

    async def expired(self, transport: str, older_than: float) -> list[tuple[MoPart, ...]]:
        limit = time.monotonic() - older_than
        return [
            tuple(sorted(parts.values(), key=lambda p: p.seq))
            for key, (first, parts) in self._pending.items()
            if key[0] == transport and first <= limit
        ]
