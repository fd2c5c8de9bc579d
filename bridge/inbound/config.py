"""The numbers file (`mailsms inbound apply numbers.toml`): customers, numbers, keywords, actions.

Pure code: TOML text → validated, frozen models, or `NumbersError` naming the key.
Actions are a tagged union on `type`; a number's `actions` run for every message unless a
keyword matches, whose `actions` replace them. The stored form of a number is `config`
(actions, keywords and `takes_unmatched` as plain JSON), parsed back with
`parse_actions` / `parse_keywords`. Numbers are kept in one spelling (`+` and digits;
`0049…` and bare international digits are rewritten), because incoming destinations
arrive in E.164 whatever the SMSC sent; a national spelling (`0155…`) is refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.errors import InputError
from bridge.files import UnreadableFile, parse_toml
from bridge.mail_address import MailAddress, OptionalMailAddress
from bridge.push.target import STORED, PushAction
from bridge.smpp.address import canonical_number

Sharing = Literal["dedicated", "prefix", "keyword", "dynamic"]
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NUMBER = re.compile(r"^\+?\d{3,17}$")


class NumbersError(InputError, ValueError):
    """The numbers file is invalid; the message names the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sms2MailAction(_Model):
    type: Literal["sms2mail"] = "sms2mail"
    mode: Literal["dynamic", "static"] = "dynamic"
    to: tuple[MailAddress, ...] = ()


class AutoReplyAction(_Model):
    type: Literal["autoreply"] = "autoreply"
    text: str = ""  # a Jinja template string; empty: templates/autoreply.txt
    min_interval: float | None = None  # seconds; default [inbound] autoreply_interval


class ListAction(_Model):
    type: Literal["list"] = "list"
    list: str
    op: Literal["join", "leave"] = "join"


class StopAction(_Model):
    type: Literal["stop", "start"] = "stop"


class SmppAction(_Model):
    """SMS to SMPP: the message goes to this SMPP account's bind as deliver_sm."""

    type: Literal["smpp"] = "smpp"
    system_id: Annotated[str, Field(min_length=1, max_length=15)]


Action = Annotated[
    Sms2MailAction | AutoReplyAction | ListAction | StopAction | PushAction | SmppAction,
    Field(discriminator="type"),
]
_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


class KeywordConfig(_Model):
    keyword: str
    aliases: tuple[str, ...] = ()
    actions: tuple[Action, ...]


class NumberConfig(_Model):
    number: str
    customer: str
    sharing: Sharing = "dedicated"
    fallback: tuple[MailAddress, ...] = ()
    actions: tuple[Action, ...] = (Sms2MailAction(),)
    keyword: tuple[KeywordConfig, ...] = ()
    # shared number: messages that match no keyword and no reply assignment come here
    takes_unmatched: bool = False

    @field_validator("number")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        value = value.strip()
        if not _NUMBER.fullmatch(value):
            raise ValueError(f"number {value!r}: expected digits, e.g. +4915550000001")
        if value.startswith("0") and not value.startswith("00"):
            raise ValueError(
                f"number {value!r}: write it internationally, e.g. +4915550000001 "
                "(incoming numbers are compared in international form)"
            )
        return canonical_number(value)

    @model_validator(mode="after")
    def _check(self) -> NumberConfig:
        if self.sharing == "keyword" and not self.keyword:
            raise ValueError(f"number {self.number}: sharing = 'keyword' needs [[number.keyword]]")
        if self.takes_unmatched and self.sharing not in ("keyword", "dynamic"):
            raise ValueError(
                f"number {self.number}: takes_unmatched is for shared numbers "
                "(sharing = 'keyword' or 'dynamic')"
            )
        return self

    def stored(self) -> dict[str, Any]:
        """The JSON kept in `inbound_number.config`."""
        stored: dict[str, Any] = {
            "actions": [a.model_dump(mode="json") for a in self.actions],
            "keywords": [k.model_dump(mode="json") for k in self.keyword],
        }
        if self.takes_unmatched:
            stored["takes_unmatched"] = True
        return stored


class ListConfig(_Model):
    name: str
    export_to: tuple[MailAddress, ...] = ()
    export_at: str = "06:00"
    export_mode: Literal["full", "changes"] = "changes"
    only_if_changed: bool = True

    @model_validator(mode="after")
    def _time(self) -> ListConfig:
        if not _TIME.fullmatch(self.export_at):
            raise ValueError(f"list {self.name}: export_at expects HH:MM (UTC)")
        return self


class CustomerConfig(_Model):
    name: str
    postmaster: OptionalMailAddress = ""
    admin: OptionalMailAddress = ""
    stop_scope: Literal["global", "service"] = "global"
    status_push: PushAction | None = None  # where MT order statuses are pushed
    list: tuple[ListConfig, ...] = ()


class NumbersFile(_Model):
    customer: tuple[CustomerConfig, ...] = ()
    number: tuple[NumberConfig, ...] = ()


def parse_numbers(text: str) -> NumbersFile:
    """Parse and validate a numbers file."""
    try:
        data = parse_toml(text)
    except UnreadableFile as exc:
        raise NumbersError(str(exc)) from None
    try:
        parsed = NumbersFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise NumbersError(f"{key}: {str(err['msg']).removeprefix('Value error, ')}") from None
    seen = {(n.number, n.customer) for n in parsed.number}
    if len(seen) != len(parsed.number):
        raise NumbersError("number: the same number is listed twice for one customer")
    owners = [n.number for n in parsed.number if n.takes_unmatched]
    twice = sorted({n for n in owners if owners.count(n) > 1})
    if twice:
        raise NumbersError(
            f"number {twice[0]}: takes_unmatched is set for more than one customer; "
            "unmatched messages must have one owner"
        )
    return parsed


def parse_actions(data: Any) -> tuple[Action, ...]:
    """Actions as stored (JSON) back into models (taken as stored: see `STORED`)."""
    return tuple(_ACTIONS.validate_python(data or [], context=STORED))


def parse_keywords(data: Any) -> tuple[KeywordConfig, ...]:
    return tuple(KeywordConfig.model_validate(k, context=STORED) for k in data or [])
