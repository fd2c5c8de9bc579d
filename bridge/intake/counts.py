"""Counts per client address or login, in one block of memory that the processes of a
bridge can share.

The doors' limits — connections per address and per minute (`ConnectionLimiter`), AUTH
failures per address and per login (`AuthGuard`) — count in a `CountTable`. With one
process the block is the process's own. With `[server] processes = N` the parent makes
the SMTP door's tables before the fork (`CountTable.make(shared=True)`: an anonymous
shared mapping and a process lock), so every process taking SMTP counts in the same
table: the kernel spreads one client's connections over the processes (SO_REUSEPORT),
and a limit holds for the bridge, not N times over.

Layout: a header (a count for the whole table: the connections open in total), then
buckets of `WAYS` slots; a key lives in the bucket its 16-byte BLAKE2b digest names, in
any of its slots (the bucket's digests side by side, for one search). A slot holds the
digest, `held` (connections open, verifications running: never dropped while above 0),
the end of a lockout, when the slot was last used, and the key's times (new connections,
failures) within the table's `horizon`, counted in `PERIODS` periods of a sixtieth of
it each: a time counts for the horizon, less at most one period (a connection for 59 to
60 s of a minute), and a slot's size does not grow with a limit. A slot whose `held` is
0, whose lockout is over and whose times are past holds nothing and is free. A new key
takes a free slot of its bucket, else the least recently used slot not held and not
locked out (its times are forgotten: a client whose bucket thousands of others share is
counted afresh), else one held by nothing but a lockout, else none: the door refuses
for now (`TableFull`).

Every look and change happens under the table's lock, taken for at most `LOCK_WAIT`
seconds: a process stopped while it held the lock (SIGSTOP) does not hang the others'
event loops; they refuse for now (`TableBusy`). Times are `time.monotonic()`, the same
clock in every process of a host. Pure code but for the lock and the memory.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import struct
import threading
from typing import Protocol

from bridge.errors import TemporaryFailure

WAYS = 8  # slots per bucket
PERIODS = 60  # the periods a horizon is counted in
LOCK_WAIT = 2.0  # seconds a process waits for the lock before refusing for now
_HEADER = struct.Struct("<q")  # the table's own count (connections open in total)
_HEADER_SIZE = 64
_SLOT = struct.Struct("<16siiddq")  # digest, held, times, locked_until, used, last period
# where a slot's fields are, for reading and writing one of them
_HELD, _TIMES, _UNTIL, _USED, _LAST = 16, 20, 24, 32, 40
_I32, _F64, _I64 = struct.Struct("<i"), struct.Struct("<d"), struct.Struct("<q")
_PERIOD = struct.Struct("<qI4x")  # a period's number, the times counted in it
_PERIODS = struct.Struct("<" + "qI4x" * PERIODS)
_EMPTY = bytes(16)


class TableBusy(TemporaryFailure):
    """The table's lock was not had within `LOCK_WAIT` (another process holds it)."""


class TableFull(TemporaryFailure):
    """Every slot of the key's bucket is held: no room to count it."""


class _Lock(Protocol):
    def acquire(self, block: bool = ..., /, timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


class CountTable:
    """Counts per key (a client's address block, a login): see the module."""

    def __init__(
        self,
        keys: int,
        horizon: float,
        *,
        lock: _Lock | None = None,
        memory: mmap.mmap | None = None,
    ) -> None:
        """Room for at least `keys` keys; a time counts for `horizon` seconds (less at
        most a sixtieth). `memory` and `lock`: a shared block and a process lock
        (`shared`), else the process's own."""
        if keys < 1 or horizon <= 0:
            raise ValueError("a count table needs room for a key and a horizon")
        self.horizon = horizon
        self.period = horizon / PERIODS
        self.buckets = 1 << max(0, (max(keys, WAYS) - 1) // WAYS).bit_length()
        self.slot_size = _SLOT.size + _PERIODS.size
        self._first_slot = _HEADER_SIZE + self.buckets * WAYS * 16  # after the index
        size = self.size(keys)
        self.memory = memory if memory is not None else mmap.mmap(-1, size)
        if len(self.memory) < size:
            raise ValueError(f"a count table of {keys} keys needs {size} bytes")
        self.lock: _Lock = lock if lock is not None else threading.Lock()
        self.wait = LOCK_WAIT  # seconds to wait for the lock

    @staticmethod
    def size(keys: int) -> int:
        buckets = 1 << max(0, (max(keys, WAYS) - 1) // WAYS).bit_length()
        return _HEADER_SIZE + buckets * WAYS * (16 + _SLOT.size + _PERIODS.size)

    @classmethod
    def make(cls, keys: int, horizon: float, *, shared: bool = False) -> CountTable:
        """A table of this process's, or (`shared`) one for processes forked after it: a
        shared anonymous mapping (`mmap(-1)` is MAP_SHARED) and a process lock (a
        semaphore in shared memory)."""
        if not shared:
            return cls(keys, horizon)
        memory = mmap.mmap(-1, cls.size(keys))
        return cls(keys, horizon, lock=multiprocessing.get_context("fork").Lock(), memory=memory)

    @property
    def slots(self) -> int:
        return self.buckets * WAYS

    def locked(self) -> CountTable:
        """`with table.locked():` the table, its lock held for the block (TableBusy: not
        had in time)."""
        return self

    def __enter__(self) -> CountTable:
        if not self.lock.acquire(timeout=self.wait):
            raise TableBusy("the counters shared by the bridge's processes are busy")
        return self

    def __exit__(self, *_: object) -> None:
        self.lock.release()

    # -- the table's own count (under the lock) ---------------------------------------
    def total(self) -> int:
        return int(_HEADER.unpack_from(self.memory, 0)[0])

    def add_total(self, delta: int) -> None:
        _HEADER.pack_into(self.memory, 0, max(0, self.total() + delta))

    # -- slots (under the lock) ----------------------------------------------------
    def find(
        self, key: str, now: float, *, create: bool = True, keep: tuple[int, ...] = ()
    ) -> int | None:
        """The offset of `key`'s slot (marked used at `now`); a new one when `create`
        (TableFull: none to be had), else None when the key holds nothing. `keep`: slots
        found before in the same turn of the lock, not to be given to this key even when
        they hold nothing yet."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        bucket = int.from_bytes(digest[:8], "little") & (self.buckets - 1)
        index = _HEADER_SIZE + bucket * WAYS * 16  # the bucket's digests, side by side
        first = self._first_slot + bucket * WAYS * self.slot_size
        memory = self.memory
        digests = memory[index : index + WAYS * 16]
        found = digests.find(digest)
        while found > 0 and found % 16:  # (a match across two digests: not one)
            found = digests.find(digest, found + 1)
        if found >= 0:
            offset = first + found // 16 * self.slot_size
            _F64.pack_into(memory, offset + _USED, now)
            return offset
        if not create:
            return None
        free: int | None = None
        spare: tuple[float, int] | None = None  # (used, offset): not held, not locked
        locked: tuple[float, int] | None = None  # (used, offset): not held, but locked out
        for way in range(WAYS):
            offset = first + way * self.slot_size
            if offset in keep:
                continue
            _, held, _, until, used, _ = _SLOT.unpack_from(memory, offset)
            if digests[way * 16 : way * 16 + 16] == _EMPTY or self._idle(offset, now):
                free = offset
                break
            if held <= 0:
                if until <= now:
                    if spare is None or used < spare[0]:
                        spare = (used, offset)
                elif locked is None or used < locked[0]:
                    locked = (used, offset)
        chosen = free if free is not None else (spare or locked or (0.0, None))[1]
        if chosen is None:
            raise TableFull("no room to count a new client: every slot of its bucket is held")
        way = (chosen - first) // self.slot_size
        memory[index + way * 16 : index + way * 16 + 16] = digest
        _SLOT.pack_into(memory, chosen, digest, 0, 0, 0.0, now, int(now // self.period))
        _PERIODS.pack_into(memory, chosen + _SLOT.size, *([0, 0] * PERIODS))
        return chosen

    def _idle(self, offset: int, now: float) -> bool:
        _, held, _, until, _, _ = _SLOT.unpack_from(self.memory, offset)
        return held <= 0 and until <= now and self.count(offset, now) == 0

    def held(self, offset: int) -> int:
        return int(_I32.unpack_from(self.memory, offset + _HELD)[0])

    def add_held(self, offset: int, delta: int) -> int:
        held = max(0, self.held(offset) + delta)
        _I32.pack_into(self.memory, offset + _HELD, held)
        return held

    def locked_until(self, offset: int) -> float:
        return float(_F64.unpack_from(self.memory, offset + _UNTIL)[0])

    def lock_until(self, offset: int, until: float) -> None:
        _F64.pack_into(self.memory, offset + _UNTIL, until)

    def count(self, offset: int, now: float) -> int:
        """The key's times within the horizon: the count as of the last period seen, less
        the periods that left the window since."""
        memory, period = self.memory, int(now // self.period)
        (times,), (last,) = (
            _I32.unpack_from(memory, offset + _TIMES),
            _I64.unpack_from(memory, offset + _LAST),
        )
        if period <= last:  # (an earlier one: none, one clock for every process)
            return int(times)
        if period - last >= PERIODS:
            times = 0
        else:
            periods = offset + _SLOT.size
            for gone in range(last - PERIODS + 1, period - PERIODS + 1):
                counted, count = _PERIOD.unpack_from(memory, periods + (gone % PERIODS) * 16)
                if counted == gone:
                    times -= count
        _I32.pack_into(memory, offset + _TIMES, times)
        _I64.pack_into(memory, offset + _LAST, period)
        return int(times)

    def add_time(self, offset: int, now: float) -> None:
        """Count one more time, `now`."""
        times = self.count(offset, now) + 1  # the window moved to now's period first
        period = int(now // self.period)
        at = offset + _SLOT.size + (period % PERIODS) * _PERIOD.size
        counted, count = _PERIOD.unpack_from(self.memory, at)
        _PERIOD.pack_into(self.memory, at, period, count + 1 if counted == period else 1)
        _I32.pack_into(self.memory, offset + _TIMES, times)  # (the period: set by `count`)

    def used_slots(self, now: float) -> int:
        """Slots that hold something (for tests and the bound's check)."""
        count = 0
        for index in range(self.slots):
            offset = self._first_slot + index * self.slot_size
            if self.memory[offset : offset + 16] != _EMPTY and not self._idle(offset, now):
                count += 1
        return count
