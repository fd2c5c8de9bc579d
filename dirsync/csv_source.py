"""Read users from the fixed-format CSV import file (`mailsms dirsync --csv users.csv`).

The format (docs/dirsync.md): UTF-8, comma-separated, this exact header row

    external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled

one row per user, and a last line `#END,<number of user rows>` so that a truncated
file is rejected instead of disabling everyone after the cut. `aliases` holds extra
sender addresses separated by spaces or semicolons; `enabled` is yes/no (empty = yes);
an empty `external_id` makes the lower-cased e-mail the id (a mail change is then a
new user). Values are mapped and validated exactly like directory values.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from bridge.errors import InputError
from bridge.files import UnreadableFile, read_text
from bridge.text.controls import one_line
from dirsync.mapping import (
    COST_CENTRE_PROBLEM,
    MAX_DISPLAY_NAME,
    SENDER_ID_RE,
    clean_address,
    mobile_problem,
    normalise_mobile,
    usable_cost_centre,
)
from dirsync.model import Problem, SourceUser

COLUMNS = (
    "external_id",
    "email",
    "aliases",
    "mobile",
    "display_name",
    "sender_id",
    "cost_centre",
    "profile",
    "enabled",
)
END_RE = re.compile(r"^#END,(\d+)\s*$")
TRUE = {"", "yes", "y", "true", "1", "enabled"}
FALSE = {"no", "n", "false", "0", "disabled"}


class CsvFormatError(InputError):
    """The file does not follow the format; nothing is imported. One line for the admin."""


def read_csv(path: Path, *, region: str | None) -> tuple[list[SourceUser], list[Problem]]:
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise CsvFormatError(str(exc)) from None
    return parse_csv(text, name=path.name, region=region)


def parse_csv(
    text: str, *, name: str, region: str | None
) -> tuple[list[SourceUser], list[Problem]]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise CsvFormatError(f"{name}: empty file")
    end = END_RE.match(lines[-1])
    if end is None:
        raise CsvFormatError(
            f"{name}: the last line must be #END,<rows>; the file may be truncated"
        )
    rows = list(csv.reader(io.StringIO("\n".join(lines[:-1]) + "\n"), strict=True))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != COLUMNS:
        raise CsvFormatError(f"{name}: line 1 must be the header {','.join(COLUMNS)}")
    body = rows[1:]
    if int(end.group(1)) != len(body):
        raise CsvFormatError(
            f"{name}: #END says {end.group(1)} rows but the file has {len(body)}; nothing imported"
        )
    users: list[SourceUser] = []
    problems: list[Problem] = []
    for number, row in enumerate(body, start=2):
        ref = f"{name} line {number}"
        if len(row) != len(COLUMNS):
            raise CsvFormatError(f"{ref}: expected {len(COLUMNS)} columns, found {len(row)}")
        user = _row(
            ref, dict(zip(COLUMNS, (c.strip() for c in row), strict=True)), region, problems
        )
        if user is not None:
            users.append(user)
    return users, problems


def _row(
    ref: str, r: dict[str, str], region: str | None, problems: list[Problem]
) -> SourceUser | None:
    address = clean_address(r["email"])
    if address is None:
        held = r["external_id"] or None  # this user is in the file: its row is kept as it is
        also = "; its user is left unchanged" if held else ""
        problems.append(
            Problem(ref, f"invalid e-mail {r['email']!r}; row skipped{also}", held_id=held)
        )
        return None
    keep: set[str] = set()
    aliases: set[str] = set()
    for value in re.split(r"[;\s]+", r["aliases"]):
        if not value:
            continue
        alias = clean_address(value)
        if alias is None:
            problems.append(Problem(ref, f"invalid alias {value!r} ignored"))
        elif alias != address:
            aliases.add(alias)
    mobile = None
    if r["mobile"]:
        mobile = normalise_mobile(r["mobile"], region)
        if mobile is None:
            problems.append(Problem(ref, mobile_problem(r["mobile"])))
            keep.add("mobile")
    sender_id = r["sender_id"] or None
    if sender_id is not None and not SENDER_ID_RE.match(sender_id):
        problems.append(Problem(ref, f"invalid sender ID {sender_id!r}; left unchanged"))
        sender_id = None
        keep.add("sender_id")
    cost_centre = r["cost_centre"] or None
    if cost_centre is not None and not usable_cost_centre(cost_centre):
        problems.append(Problem(ref, COST_CENTRE_PROBLEM))
        cost_centre = None
        keep.add("cost_centre")
    flag = r["enabled"].lower()
    enabled = flag not in FALSE
    if flag not in TRUE | FALSE:
        problems.append(
            Problem(ref, f"enabled must be yes or no, got {r['enabled']!r}; left unchanged")
        )
        keep.add("enabled")
    return SourceUser(
        external_id=r["external_id"] or address,
        address=address,
        aliases=frozenset(aliases),
        display_name=one_line(r["display_name"])[:MAX_DISPLAY_NAME],
        mobile=mobile,
        sender_id=sender_id,
        cost_centre=cost_centre,
        profile=r["profile"] or None,
        enabled=enabled,
        ref=ref,
        keep=frozenset(keep),
    )
