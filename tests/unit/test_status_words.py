"""The status enums agree with the SQL written out by hand and with the receipt states."""

from __future__ import annotations

from bridge.mt.receipt_states import is_final_part_state
from bridge.mt.status import FINAL_ORDER_STATUSES, OPEN_ORDER_STATUSES, OrderStatus, PartState
from bridge.mt.tables import OPEN_ORDERS
from bridge.values import ReceiptState


def test_open_orders_predicate_names_the_open_statuses() -> None:
    # the partial index ix_order_open and the claim use this literal text
    words = ", ".join(f"'{s}'" for s in OPEN_ORDER_STATUSES)
    assert f"status IN ({words})" == OPEN_ORDERS


def test_open_and_final_order_statuses_are_apart() -> None:
    assert not FINAL_ORDER_STATUSES & set(OPEN_ORDER_STATUSES)
    assert OrderStatus.SUBMITTED not in FINAL_ORDER_STATUSES
    assert OrderStatus.HELD not in FINAL_ORDER_STATUSES


def test_a_part_takes_every_receipt_state() -> None:
    assert {s.value for s in ReceiptState} == {s.value for s in PartState} - {"submitted"}
    for state in ReceiptState:
        part = PartState(state.value)
        assert part.is_final == state.is_final == is_final_part_state(part)
    assert not PartState.SUBMITTED.is_final
    assert not is_final_part_state(PartState.SUBMITTED)
