"""Who is looking: the logged-in account a page is rendered for, and what it may see."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.portal.status import Role


@dataclass(frozen=True, slots=True)
class Viewer:
    """The account behind a request. A customer admin sees one customer, an operator all."""

    account_id: int
    username: str
    role: Role
    customer_id: int | None  # the customer admin's customer; None for an operator
    customer: str | None  # its name
    csrf_token: str

    @property
    def operator(self) -> bool:
        return self.role is Role.OPERATOR

    def may_see(self, customer_id: int | None) -> bool:
        """Whether rows of `customer_id` may be shown (an operator: any; else its own)."""
        return self.operator or (customer_id is not None and customer_id == self.customer_id)

    def scope(self, chosen: int | None) -> int | None:
        """The customer a page shows: a customer admin's own, whatever was asked for;
        an operator's choice (None: all customers)."""
        return chosen if self.operator else self.customer_id
