"""The portal's pure rules: the lockout's growing delay, redirect targets, what a viewer sees."""

from __future__ import annotations

from bridge.portal.base import safe_next
from bridge.portal.status import FREE_FAILURES, MAX_LOCK_SECONDS, Role, lock_seconds
from bridge.portal.viewer import Viewer


def test_the_lock_doubles_after_the_free_failures_up_to_the_cap() -> None:
    delays = [lock_seconds(n) for n in range(1, FREE_FAILURES + 5)]
    assert delays[: FREE_FAILURES - 1] == [0] * (FREE_FAILURES - 1)
    assert delays[FREE_FAILURES - 1 :] == [2, 4, 8, 16, 32]
    assert lock_seconds(100) == MAX_LOCK_SECONDS


def test_only_portal_paths_of_this_site_are_redirect_targets() -> None:
    good = ["/portal/", "/portal/report?status=failed&user=a%40b"]
    bad = ["", None, "//evil.example/portal/", "https://evil.example/portal/", "/api/v1/",
           "/portal", "/\\evil.example/portal/", "javascript:alert(1)",
           "/portal/\\..\\x"]  # fmt: skip
    assert [safe_next(t) for t in good] == good
    assert {safe_next(t) for t in bad} == {"/portal/"}


def test_a_customer_admin_sees_its_own_customer_whatever_it_asks_for() -> None:
    admin = Viewer(1, "anna", Role.CUSTOMER_ADMIN, 7, "acme", "t")
    ops = Viewer(2, "ops", Role.OPERATOR, None, None, "t")
    assert admin.scope(8) == 7 and admin.scope(None) == 7
    assert admin.may_see(7) and not admin.may_see(8) and not admin.may_see(None)
    assert ops.scope(8) == 8 and ops.scope(None) is None and ops.may_see(8)
