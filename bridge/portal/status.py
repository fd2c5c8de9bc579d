"""The portal's pure values: roles, and the growing delay after failed logins."""

from __future__ import annotations

import enum
from typing import Final


class Role(enum.StrEnum):
    """What a portal account may see: every customer, or its own customer only."""

    OPERATOR = "operator"
    CUSTOMER_ADMIN = "customer_admin"


# The first failures cost nothing; from then on each failure doubles the wait, up to a cap.
FREE_FAILURES: Final = 3
MAX_LOCK_SECONDS: Final = 900


def lock_seconds(failures: int) -> int:
    """Seconds an account stays locked after its `failures`-th failed login in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(MAX_LOCK_SECONDS, 2 ** (failures - FREE_FAILURES + 1)))
