"""Held orders over HTTP: the SMS pumping check holds real mails' orders; a customer admin
releases, retries or refuses its own (never another customer's), a POST without the
CSRF token changes nothing, and the operator sees every customer's."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.mt.orders import record_held
from bridge.mt.tables import Order
from bridge.sandbox.smsc import read_inbox
from bridge.tenants.admin import LOOPBACK
from tests.helpers import wait_for
from tests.portal.harness import PortalRun, login, portal
from tests.portal.test_report import engine_of, orders_of, send

_order = table(Order)
# Five numbers under one prefix (+491701234…): more than the 3 allowed, so all are held.
DEMO_NUMBERS = [f"+491701234{n}0" for n in range(51, 56)]
ACME_NUMBERS = ["+491705678110", "+491705678120"]
LATER = "+491709876540"


def statuses(conn: Connection, ids: list[str]) -> dict[str, str]:
    rows = conn.execute(select(_order.c.id, _order.c.status).where(_order.c.id.in_(ids)))
    return {r.id: r.status for r in rows}


def held_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)">', html)


async def hold(run: PortalRun) -> tuple[list[str], list[str]]:
    """Held orders of demo (5) and acme (2), from mails over SMTP; their ids."""
    engine = engine_of(run)
    run_sync(engine, set_access, "demo", {"velocity_numbers": 3})
    run_sync(engine, set_access, "acme", {"velocity_numbers": 1, "networks": list(LOOPBACK)})
    demo = await send(run, "demo@example.com", DEMO_NUMBERS, "held for review")
    acme = await send(run, "anna@acme.example", ACME_NUMBERS, "acme held")
    ids = {m: run_sync(engine, orders_of, m) for m in (demo, acme)}
    assert [s for _, s in ids[demo]] == ["held"] * 5
    assert [s for _, s in ids[acme]] == ["held"] * 2
    return [i for i, _ in ids[demo]], [i for i, _ in ids[acme]]


async def test_held_orders_are_decided_by_their_own_customer_only(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo, acme = await hold(run)
        engine = engine_of(run)
        csrf = await login(web, "admin")
        page = await web.get("/portal/held")
        assert page.status_code == 200 and sorted(held_ids(page.text)) == demo
        assert "SMS pumping protection" in page.text

        # Without the CSRF token, or from another site: refused, nothing changes.
        r = await web.post("/portal/held", data={"action": "refuse", "order": demo})
        assert r.status_code == 403 and "did not come from this portal" in r.text
        r = await web.post(
            "/portal/held",
            data={"action": "refuse", "order": demo, "csrf": csrf},
            headers={"origin": "http://evil.example"},
        )
        assert r.status_code == 403
        assert set(run_sync(engine, statuses, demo).values()) == {"held"}

        # Bad requests get a sentence.
        for data, sentence in (
            ({"action": "delete", "order": demo[0]}, "Choose release, retry or refuse"),
            ({"action": "release"}, "Select at least one held order"),
            ({"action": "retry", "order": demo[0]}, "held by SMS pumping protection"),
        ):
            r = await web.post("/portal/held", data={**data, "csrf": csrf})
            assert r.status_code == 400 and sentence in r.text, data
        assert set(run_sync(engine, statuses, demo).values()) == {"held"}

        # Release one: it is sent.
        r = await web.post(
            "/portal/held", data={"action": "release", "order": demo[0], "csrf": csrf}
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/held?done=released"
        done = await web.get(r.headers["location"])
        assert "Released: the orders are queued and sent now." in done.text
        assert sorted(held_ids(done.text)) == demo[1:]
        inbox = run.settings.sandbox.inbox
        await wait_for(lambda: read_inbox(inbox, DEMO_NUMBERS[0]), within=10)
        history = (await web.get(f"/portal/orders/{demo[0]}")).text
        assert "by portal account admin" in history  # who released it
        # Refuse two: they fail for good.
        r = await web.post(
            "/portal/held", data={"action": "refuse", "order": demo[1:3], "csrf": csrf}
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/held?done=refused"
        assert run_sync(engine, statuses, demo[1:3]) == dict.fromkeys(demo[1:3], "failed")
        refused = (await web.get(f"/portal/orders/{demo[1]}")).text
        assert "refused by your administrator (SMS pumping suspected)" in refused
        # An order held after an unexpected error (as the dispatcher holds one): retried.
        later = (utcnow() + timedelta(days=1)).isoformat(timespec="minutes")
        mail_id = await send(run, "demo@example.com", [LATER], "later", X_SMS_Send_At=later)
        [(broken, status)] = run_sync(engine, orders_of, mail_id)
        assert status == "queued"
        page = await web.get(f"/portal/orders/{broken}")
        assert "Waiting:" in page.text and "scheduled (send_at)" in page.text
        error = "Traceback (most recent call last):\n  …\nRuntimeError: the disk is gone"
        run_sync(engine, record_held, broken, utcnow(), error)
        page = await web.get("/portal/held")
        assert "RuntimeError: the disk is gone" in page.text and "an error" in page.text
        assert "Traceback" not in page.text
        r = await web.post("/portal/held", data={"action": "retry", "order": broken, "csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/portal/held?done=retried"
        await wait_for(lambda: read_inbox(inbox, LATER), within=10)

        # demo's admin cannot touch acme's held orders: 404, left as they are.
        for action in ("release", "refuse"):
            r = await web.post(
                "/portal/held", data={"action": action, "order": acme[0], "csrf": csrf}
            )
            assert r.status_code == 404 and "There is no such held order" in r.text
        # ... nor by naming the customer
        r = await web.post(
            "/portal/held?customer=acme",
            data={"action": "release", "order": acme[0], "csrf": csrf},
        )
        assert r.status_code == 404
        assert set(run_sync(engine, statuses, acme).values()) == {"held"}

        # acme's admin sees its own two, and not demo's last one.
        web.cookies.clear()
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/held")
        assert sorted(held_ids(page.text)) == acme
        r = await web.post(
            "/portal/held", data={"action": "refuse", "order": demo[4], "csrf": csrf}
        )
        assert r.status_code == 404
        assert run_sync(engine, statuses, [demo[4]]) == {demo[4]: "held"}

        # The operator sees both customers' and chooses one.
        web.cookies.clear()
        csrf = await login(web, "ops")
        page = await web.get("/portal/held")
        assert sorted(held_ids(page.text)) == sorted([*demo[3:], *acme])
        page = await web.get("/portal/held", params={"customer": "acme"})
        assert sorted(held_ids(page.text)) == acme
        r = await web.post(
            "/portal/held?customer=acme",
            data={"action": "refuse", "order": acme, "csrf": csrf},
        )
        assert r.headers["location"] == "/portal/held?done=refused&customer=acme"
        assert set(run_sync(engine, statuses, acme).values()) == {"failed"}
