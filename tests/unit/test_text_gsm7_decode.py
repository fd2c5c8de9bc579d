"""decode_gsm7's one-call path (no ESC octet) gives what the octet-by-octet reading gives."""

from __future__ import annotations

import random

import pytest

from bridge.text import decode_gsm7
from bridge.text.shift_tables import BASIC_TABLE, EXTENSION_TABLE, locking_table, single_table

ESC = 0x1B


def _octet_by_octet(
    data: bytes, single_shift: int | None = None, locking_shift: int | None = None
) -> str:
    """The reading every octet in turn (the reference: ESC pairs, top bit ignored)."""
    basic = locking_table(locking_shift) if locking_shift else BASIC_TABLE
    ext = single_table(single_shift) if single_shift else EXTENSION_TABLE
    out: list[str] = []
    escaped = False
    for octet in data:
        code = octet & 0x7F
        if escaped:
            escaped = False
            out.append(" " if code == ESC else (ext.get(code) or basic[code]))
        elif code == ESC:
            escaped = True
        else:
            out.append(basic[code])
    return "".join(out)


_SHIFTS = [(None, None), (1, 1), (2, None), (3, 3), (None, 3), (7, 9), (0, 0)]


@pytest.mark.parametrize(("single", "locking"), _SHIFTS)
def test_every_octet_and_pair_reads_as_octet_by_octet(
    single: int | None, locking: int | None
) -> None:
    cases = [bytes([a, b]) for a in range(256) for b in range(256)]
    cases += [b"", bytes(range(256)), bytes(range(255, -1, -1))]
    rng = random.Random(18)
    for _ in range(3000):  # longer payloads, with and without ESC octets (0x1B, 0x9B)
        octets = rng.choices(range(256), k=rng.randint(1, 200))
        cases.append(bytes(o for o in octets if rng.random() < 0.5 or o & 0x7F != ESC))
        cases.append(bytes(octets))
    no_esc = 0
    for data in cases:
        want = _octet_by_octet(data, single, locking)
        assert decode_gsm7(data, single_shift=single, locking_shift=locking) == want, data
        no_esc += b"\x1b" not in data and b"\x9b" not in data
    assert no_esc > 60_000  # the one-call path is what most cases took
