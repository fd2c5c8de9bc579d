"""A short-lived cache of known envelope senders, so that MAIL rarely waits for the database.

A known sender's row is reused for `SENDER_TTL` seconds: a change to a user, its
customer or its profile (disabled, new settings) takes effect for new mails within that
time. Unknown senders are not cached, so a user just added can send at once.
"""

from __future__ import annotations

import time

from bridge.db.store import Store
from bridge.mail_address import match_key
from bridge.tenants.senders import Sender, find_sender

SENDER_TTL = 5.0  # seconds
MAX_ENTRIES = 10_000


class SenderCache:
    def __init__(self, store: Store, ttl: float = SENDER_TTL) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Sender]] = {}

    async def find(self, address: str) -> Sender | None:
        """The sender for `address` (see `find_sender`), at most `ttl` seconds old."""
        key = match_key(address)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        sender = await self.store.read(find_sender, address)
        if sender is None:
            self._entries.pop(key, None)
            return None
        if len(self._entries) >= MAX_ENTRIES:  # bounded: drop the expired, else all
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.ttl}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = (now, sender)
        return sender
