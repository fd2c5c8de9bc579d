"""What else happens when an order is submitted or becomes final: the steps other domains add.

An order's own rows (status, parts, history) are mt's. What other domains do about it
(status mail, DSN, list report, status push, reply assignment) is not decided here: the
composition (`bridge.outcomes.steps.STEPS`) hands mt a `Steps` value listing those
steps, and mt runs them, in order, in the same transaction as the order's change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

# (conn, order ids, now) -> how many notices (mails) it queued
OnFinal = Callable[[Connection, Sequence[str], datetime], int]
OnSubmitted = Callable[[Connection, Sequence[str], datetime], None]  # (conn, order ids, now)


@dataclass(frozen=True, slots=True)
class Steps:
    """The steps run when orders are submitted and when an order becomes final."""

    final: tuple[OnFinal, ...] = ()
    submitted: tuple[OnSubmitted, ...] = ()

    def run_final(self, conn: Connection, order_ids: Sequence[str], now: datetime) -> int:
        """The final steps of orders that became final in this transaction, in one call each;
        returns how many notices they queued (the mailer is woken only when there are some)."""
        if not order_ids:
            return 0
        return sum(step(conn, order_ids, now) for step in self.final)

    def run_submitted(self, conn: Connection, order_ids: Sequence[str], now: datetime) -> None:
        if order_ids:
            for step in self.submitted:
                step(conn, order_ids, now)
