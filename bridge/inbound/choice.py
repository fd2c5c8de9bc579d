"""Which customer and which actions an inbound SMS gets: number, sharing mode and keyword.

Pure code. Candidates are the number rows whose number equals the destination, else the
prefix rows the destination starts with (longest first); numbers are compared in one
spelling (`canonical_number`: `4915550000001`, `004915550000001` and `+4915550000001`
are one number). Among them a matching keyword wins (keyword-shared numbers), then the
customer of the reply assignment (dynamic sharing), then a dedicated or prefix row. A
matching keyword's actions replace the number's default actions.

A message on a shared number (`keyword` or `dynamic`) that matches no keyword and no
live assignment belongs to nobody in particular: it goes to the number's own fallback,
the row marked `takes_unmatched` (its default actions), else the operator's mailbox
(`[inbound] postmaster`) — never to whichever customer happens to be first, because a
customer must not read another customer's conversation. An unconfigured destination
gets dynamic SMS2Mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.inbound.config import Action, KeywordConfig, Sms2MailAction
from bridge.inbound.keywords import first_word, matches
from bridge.inbound.status import InboundRoute
from bridge.smpp.address import canonical_number

SHARED = frozenset({"keyword", "dynamic"})


@dataclass(frozen=True, slots=True)
class NumberRow:
    """One configured inbound number as routing needs it."""

    id: int
    number: str
    customer_id: int
    sharing: str
    fallback: tuple[str, ...]
    actions: tuple[Action, ...]
    keywords: tuple[KeywordConfig, ...]
    takes_unmatched: bool = False  # shared number: this customer gets what matches nobody


@dataclass(frozen=True, slots=True)
class Choice:
    """The routing decision for one message."""

    row: NumberRow | None  # None: the destination is not configured (or nobody's, see below)
    customer_id: int | None
    keyword: str  # the matched keyword ("" for the default actions)
    actions: tuple[Action, ...]
    unmatched: bool = False  # a shared number, and neither a keyword nor an assignment matched
    route: InboundRoute = InboundRoute.NUMBER  # how the customer was found (stored on the row)

    @property
    def fallback(self) -> tuple[str, ...]:
        return self.row.fallback if self.row else ()


UNCONFIGURED_ACTIONS: tuple[Action, ...] = (Sms2MailAction(),)
# To the operator's mailbox: no row, no customer, no addresses -> [inbound] postmaster.
OPERATOR_ACTIONS: tuple[Action, ...] = (Sms2MailAction(mode="static"),)


def _digits(number: str) -> str:
    return canonical_number(number).removeprefix("+")


def serves(number: str, sharing: str, destination: str) -> bool:
    """Does a configured number (a prefix when `sharing` is "prefix") take `destination`?"""
    if sharing == "prefix":
        return _digits(destination).startswith(_digits(number))
    return canonical_number(number) == canonical_number(destination)


def candidates(rows: tuple[NumberRow, ...], destination: str) -> tuple[NumberRow, ...]:
    exact = tuple(r for r in rows if serves(r.number, "exact", destination))
    if exact:
        return exact
    prefixed = [
        r for r in rows if r.sharing == "prefix" and serves(r.number, "prefix", destination)
    ]
    prefixed.sort(key=lambda r: (-len(_digits(r.number)), r.id))
    return tuple(prefixed)


def _keyword(row: NumberRow, word: str) -> KeywordConfig | None:
    for kw in row.keywords:
        if matches(word, kw.keyword, kw.aliases):
            return kw
    return None


def choose(
    rows: tuple[NumberRow, ...], destination: str, text: str, assigned_customer: int | None
) -> Choice:
    """The number row, customer and actions for a message `text` to `destination`."""
    found = candidates(rows, destination)
    if not found:
        route = InboundRoute.UNCONFIGURED if assigned_customer is None else InboundRoute.REPLY
        return Choice(None, assigned_customer, "", UNCONFIGURED_ACTIONS, route=route)
    word = first_word(text)
    for row in found:
        kw = _keyword(row, word)
        if kw is not None:
            return Choice(row, row.customer_id, kw.keyword, kw.actions, route=InboundRoute.KEYWORD)
    chosen = next((r for r in found if r.customer_id == assigned_customer), None)
    if chosen is not None and chosen.sharing in SHARED:
        return Choice(chosen, chosen.customer_id, "", chosen.actions, route=InboundRoute.REPLY)
    if chosen is None:
        chosen = next((r for r in found if r.sharing not in SHARED), None)
    if chosen is not None:
        return Choice(chosen, chosen.customer_id, "", chosen.actions)
    owner = next((r for r in found if r.takes_unmatched), None)
    if owner is not None:
        return Choice(
            owner,
            owner.customer_id,
            "",
            owner.actions,
            unmatched=True,
            route=InboundRoute.UNMATCHED,
        )
    return Choice(None, None, "", OPERATOR_ACTIONS, unmatched=True, route=InboundRoute.OPERATOR)
