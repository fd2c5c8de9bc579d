"""What a receipt does to its part and its order: states only ever move forward.

Pure code. A part's state goes submitted → (enroute | accepted | unknown) → a final
state, and a final state never changes. An order is delivered when every part is
delivered, undeliverable at the first part that finally failed, and otherwise stays
submitted; an order that is already final never changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.mt.status import OrderStatus, PartState

_RANK: dict[str, int] = {
    PartState.SUBMITTED: 0,
    PartState.ENROUTE: 1,
    PartState.ACCEPTED: 1,
    PartState.UNKNOWN: 1,
}
FINAL_FAILURES = frozenset(
    {PartState.EXPIRED, PartState.DELETED, PartState.UNDELIVERABLE, PartState.REJECTED}
)


def is_final_part_state(state: str) -> bool:
    return state not in _RANK


def next_part_state(current: str, received: str) -> str:
    """The part's state after a receipt saying `received` (never a step backwards)."""
    if is_final_part_state(current):
        return current
    if is_final_part_state(received):
        return received
    return received if _RANK[received] >= _RANK[current] else current


def order_outcome(part_states: Iterable[str], expected_parts: int) -> OrderStatus | None:
    """Delivered, undeliverable, or None while the order is still under way."""
    states = list(part_states)
    if any(s in FINAL_FAILURES for s in states):
        return OrderStatus.UNDELIVERABLE
    if len(states) >= expected_parts and all(s == PartState.DELIVERED for s in states):
        return OrderStatus.DELIVERED
    return None
