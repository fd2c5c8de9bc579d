"""CSV cells a spreadsheet will not run: the one rule for every CSV the bridge hands out.

A cell starting with = + - @, a tab or a carriage return is read as a formula by
spreadsheet programs (CSV injection); such a cell gets a leading '. An E.164 number
(`+` and digits only) is the exception: digits cannot make a formula, and a quote would
spoil every number for re-import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Final

FORMULA: Final = ("=", "+", "-", "@", "\t", "\r")
_E164: Final = re.compile(r"\+[0-9]{1,17}")


def safe_cell(value: str) -> str:
    """`value` as a cell no spreadsheet runs."""
    if value.startswith(FORMULA) and not _E164.fullmatch(value):
        return "'" + value
    return value


def csv_line(cells: Iterable[str]) -> str:
    """One CSV line (CRLF) of safe cells."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def safe_csv(text: str) -> str:
    """A whole CSV text again, with every cell made safe."""
    return "".join(csv_line(row) for row in csv.reader(io.StringIO(text)))
