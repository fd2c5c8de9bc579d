"""The tenants file (`mailsms apply tenants.toml`) and list CSVs: read and validated, no database.

Pure code apart from reading the files it is given. Every setting is checked with
`check_setting` at its level and every number normalised to E.164, so an invalid
file is refused as a whole with one line per problem, before anything is written.

    [[customers]]
    name = "acme"
    settings = { sender_id = "ACME", default_country = "DE" }
    [[customers.profiles]]
    name = "sales"
    settings = { priority = "express" }
    [[customers.users]]
    address = "anna@acme.example"
    profile = "sales"
    settings = { notify = "all" }
    [[customers.lists]]
    name = "team"
    fields = ["city"]
    members = [{ msisdn = "+491701234567", first_name = "Anna", fields = { city = "Berlin" } }]
    # or: members_csv = "team.csv"  (relative to this file)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.errors import InputError
from bridge.files import UnreadableFile, read_text, read_toml
from bridge.intake.addresses import normalise_msisdn
from bridge.lists.store import Member
from bridge.mail_address import MailAddress
from bridge.tenants.policy import PolicyError, check_setting
from bridge.text.controls import one_line

NUMBER_COLUMNS = ("msisdn", "number", "mobile", "phone")
LIST_NAME = r"^[a-z][a-z0-9._-]{0,63}$"  # a list is mailed as <name>@<domain>


class TenantsError(InputError, ValueError):
    """The file is not valid; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]))
        self.problems = problems


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberSpec(_Spec):
    msisdn: str
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, str] = Field(default_factory=dict)


class ListSpec(_Spec):
    name: str = Field(pattern=LIST_NAME)
    description: str = ""
    fields: list[str] = Field(default_factory=list)
    members: list[MemberSpec] | None = None
    members_csv: str | None = None


class ProfileSpec(_Spec):
    name: str = Field(min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)


class UserSpec(_Spec):
    address: MailAddress
    display_name: str = ""
    profile: str | None = None
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


class CustomerSpec(_Spec):
    name: str = Field(min_length=1)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    profiles: list[ProfileSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(default_factory=list)
    lists: list[ListSpec] = Field(default_factory=list)


class TenantsSpec(_Spec):
    customers: list[CustomerSpec] = Field(default_factory=list)


def _check_settings(where: str, settings: dict[str, Any], level: str, problems: list[str]) -> None:
    for name, value in settings.items():
        try:
            check_setting(name, value, level)  # stored as written: a re-apply compares equal
        except PolicyError as exc:
            problems.append(f"{where}.settings: {exc}")


def parse_members_csv(text: str, default_country: str, where: str = "CSV") -> list[Member]:
    """Members from a CSV with a header row (msisdn/number/mobile/phone, first_name, …);
    TenantsError with one line per bad row when any row is bad."""
    members, problems = read_members_csv(text, default_country, where)
    if problems:
        raise TenantsError(problems)
    return members


def read_members_csv(
    text: str, default_country: str, where: str = "CSV"
) -> tuple[list[Member], list[str]]:
    """The good rows' members and one problem line per bad row (the portal imports the
    good ones and shows the rest); TenantsError when the file has no number column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    number_col = next((c for c in NUMBER_COLUMNS if c in header), None)
    if number_col is None:
        raise TenantsError([f"{where}: no number column (one of {', '.join(NUMBER_COLUMNS)})"])
    problems: list[str] = []
    members: list[Member] = []
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise TenantsError([f"{where} line {reader.line_num}: not CSV: {exc}"]) from None
    for line, raw in enumerate(rows, start=2):
        # cells past the header's columns (key None) have no name: ignored; names and
        # fields are one line of text (a tab or line break a space, no control character)
        row = {
            one_line(k).strip().lower(): one_line(v or "").strip()
            for k, v in raw.items()
            if k is not None
        }
        msisdn = normalise_msisdn(row.get(number_col, ""), default_country)
        if msisdn is None:
            problems.append(f"{where} line {line}: {row.get(number_col)!r} is not a mobile number")
            continue
        extra = {
            k: v
            for k, v in row.items()
            if k not in (number_col, "first_name", "last_name") and k and v
        }
        members.append(
            Member(msisdn, row.get("first_name", ""), row.get("last_name", ""), extra or {})
        )
    return members, problems


def _members(
    spec: ListSpec, base: Path, country: str, where: str, problems: list[str]
) -> list[Member] | None:
    if spec.members_csv is not None:
        path = base / spec.members_csv
        try:
            return parse_members_csv(read_text(path), country, str(path))
        except UnreadableFile as exc:
            problems.append(f"{where}.members_csv: {exc}")
        except TenantsError as exc:
            problems.extend(exc.problems)
        return None
    if spec.members is None:
        return None
    out = []
    for m in spec.members:
        msisdn = normalise_msisdn(m.msisdn, country)
        if msisdn is None:
            problems.append(f"{where}.members: {m.msisdn!r} is not a mobile number")
            continue
        out.append(Member(msisdn, m.first_name, m.last_name, dict(m.fields)))
    return out


def load_tenants(
    path: Path, *, default_country: str
) -> tuple[TenantsSpec, dict[tuple[str, str], list[Member] | None]]:
    """The validated file and each list's members ((customer, list) → members or None)."""
    try:
        data = read_toml(path)
    except UnreadableFile as exc:
        raise TenantsError([str(exc)]) from None
    try:
        spec = TenantsSpec.model_validate(data)
    except ValidationError as exc:
        raise TenantsError(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems: list[str] = []
    members: dict[tuple[str, str], list[Member] | None] = {}
    for c in spec.customers:
        where = f"customers[{c.name}]"
        _check_settings(where, c.settings, "customer", problems)
        # national numbers in list CSVs: the customer's country, else the bridge's default
        country = str(c.settings.get("default_country") or default_country)
        names = {p.name for p in c.profiles}
        for p in c.profiles:
            _check_settings(f"{where}.profiles[{p.name}]", p.settings, "profile", problems)
        for u in c.users:
            _check_settings(f"{where}.users[{u.address}]", u.settings, "user", problems)
            if u.profile is not None and u.profile not in names:
                problems.append(f"{where}.users[{u.address}]: no profile {u.profile!r} in file")
        for lst in c.lists:
            lw = f"{where}.lists[{lst.name}]"
            members[(c.name, lst.name)] = _members(lst, path.parent, country, lw, problems)
    if problems:
        raise TenantsError(problems)
    return spec, members
