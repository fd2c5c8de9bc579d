"""How an inbound SMS found its customer (`Choice.route`, stored on the row, shown by the API)."""

from __future__ import annotations

from bridge.inbound.choice import NumberRow, choose
from bridge.inbound.status import InboundRoute
from tests.unit.test_inbound_rules import KW, _row


def test_each_way_of_routing_is_named() -> None:
    dedicated = _row(1, "+4915550000001", 1, "dedicated")
    prefix = _row(4, "+49155500", 4, "prefix")
    shared_a = _row(2, "12345", 2, "keyword", KW)
    shared_b = _row(3, "12345", 3, "dynamic")
    owner = _row(5, "12345", 5, "dynamic", takes_unmatched=True)

    def route(
        rows: tuple[NumberRow, ...], to: str, text: str, assigned: int | None
    ) -> tuple[int | None, InboundRoute]:
        c = choose(rows, to, text, assigned)
        return c.customer_id, c.route

    assert route((dedicated,), "+4915550000001", "hi", None) == (1, InboundRoute.NUMBER)
    assert route((dedicated,), "+4915550000001", "hi", 1) == (1, InboundRoute.NUMBER)
    assert route((prefix,), "+4915550012", "x", None) == (4, InboundRoute.NUMBER)
    assert route((shared_a, shared_b), "12345", "pizza", None) == (2, InboundRoute.KEYWORD)
    assert route((shared_a, shared_b), "12345", "hello", 3) == (3, InboundRoute.REPLY)
    assert route((shared_a, shared_b, owner), "12345", "hello", None) == (
        5,
        InboundRoute.UNMATCHED,
    )
    assert route((shared_a, shared_b), "12345", "hello", None) == (None, InboundRoute.OPERATOR)
    assert route((), "+4900000", "x", 7) == (7, InboundRoute.REPLY)
    assert route((), "+4900000", "x", None) == (None, InboundRoute.UNCONFIGURED)
