"""Pure: the exclusion list: users dirsync neither creates, changes nor disables."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Exact addresses, exact stable ids, and regular expressions searched in addresses."""

    addresses: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = field(default=())

    @classmethod
    def build(
        cls, addresses: Iterable[str] = (), ids: Iterable[str] = (), patterns: Iterable[str] = ()
    ) -> Exclusions:
        return cls(
            addresses=frozenset(a.strip().lower() for a in addresses),
            ids=frozenset(i.strip().lower() for i in ids),
            patterns=tuple(re.compile(p, re.IGNORECASE) for p in patterns),
        )

    def matches(self, external_id: str, *addresses: str) -> bool:
        if external_id.lower() in self.ids:
            return True
        for addr in addresses:
            a = addr.lower()
            if a in self.addresses or any(p.search(a) for p in self.patterns):
                return True
        return False
