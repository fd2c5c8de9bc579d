"""Random bits for mail ids from the OS's CSPRNG, drawn in blocks rather than per mail.

`os.urandom` is a system call that releases the GIL; called once per mail on the event
loop it hands the interpreter to the database thread and waits to get it back. One
draw of 3 KiB serves 1,024 mails. A forked process starts with an empty pool (and a
fresh lock): with the parent's bytes, `[server] processes` children would give the same
ids in the same millisecond.
"""

from __future__ import annotations

import os
import threading

_BLOCK = 3 * 1024


class _Pool:
    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop what was drawn (in a forked child: the parent's bytes are not ours)."""
        self._buf, self._pos = b"", 0
        self._lock = threading.Lock()

    def bits24(self) -> int:
        with self._lock:
            if self._pos + 3 > len(self._buf):
                self._buf, self._pos = os.urandom(_BLOCK), 0
            value = int.from_bytes(self._buf[self._pos : self._pos + 3], "big")
            self._pos += 3
            return value


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def random24() -> int:
    """24 random bits (each value drawn once, never reused)."""
    return _pool.bits24()
