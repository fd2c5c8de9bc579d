"""The destination rules (A1, A2) hold at every door: a premium-rate number, a short code and
a run of consecutive numbers are refused by mail (RCPT), by the REST API (a message request
and its preview) and by the SMPP server (`submit_sm`), for an account whose access rules do
not allow them (the defaults), and nothing is stored for them. A mobile number goes
through at each door, so each refusal is the rule's and not the door's.
"""

from __future__ import annotations

from pathlib import Path

from bridge.db.store import run_sync
from bridge.smpp_server.accounts import set_limits
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.e2e.test_api import api
from tests.e2e.test_smpp_server_odd_input import Submit, _bind
from tests.helpers import db_rows, running_bridge
from tests.security.common import greeted

PREMIUM = "+499001234567"  # German premium rate (0900)
SHORT_CODE = "11880"  # a German directory-enquiry short code
MOBILE = "+491701234567"
RUN = [f"+49170123456{d}" for d in range(5)]  # the access rules refuse a run of 5
ESME_RINVDSTADR = 0x0B


async def test_smtp_refuses_each_at_rcpt(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        premium = await c.command(f"RCPT TO:<{PREMIUM}@eu.rsms.net>")
        short = await c.command(f"RCPT TO:<{SHORT_CODE}@eu.rsms.net>")
        run = [await c.command(f"RCPT TO:<{n}@eu.rsms.net>") for n in RUN]
        await c.close()
    assert premium.startswith("550 5.7.1") and "premium-rate" in premium, premium
    assert short.startswith("550 5.7.1") and "short code" in short, short
    assert [a[:3] for a in run] == ["250"] * 4 + ["550"], run
    assert "consecutive numbers" in run[4], run[4]


async def test_the_rest_api_refuses_each_in_a_request_and_its_preview(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        answers = {}
        for name, to in (("premium", [PREMIUM]), ("short code", [SHORT_CODE]), ("run", RUN)):
            for route in ("/api/v1/messages", "/api/v1/messages/preview"):
                r = await a.http.post(route, json={"to": to, "text": "hi"}, headers=a.demo)
                answers[name, route] = (r.status_code, r.json().get("type", ""), r.text)
        ok = await a.http.post(
            "/api/v1/messages", json={"to": [MOBILE], "text": "hi"}, headers=a.demo
        )
        orders = db_rows(a.settings.database_url, 'SELECT recipient FROM "order"')
    expected = {"premium": "premium_refused", "short code": "short_code_refused"}
    expected["run"] = "sequential_refused"
    for (name, route), (status, kind, body) in answers.items():
        assert status == 422 and kind.endswith(expected[name]), (name, route, body)
        assert "ask your administrator" in body, body
    assert ok.status_code == 201, ok.text
    assert orders == [(MOBILE,)], orders


async def test_the_smpp_server_refuses_a_premium_number_and_a_short_code(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, smpp_server=SmppServerSettings(enabled=True, port=0, part_wait=1.0)
    )
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None
        run_sync(bridge.store.engine, lambda c: set_limits(c, "demo", throughput=10_000))
        client = await _bind(*ep.smpp)
        answers = {}
        for dest in (PREMIUM, SHORT_CODE, MOBILE):
            ton = 1 if dest.startswith("+") else 0
            submit = Submit(dest_ton=ton, dest=dest.lstrip("+").encode())
            answers[dest] = await client.request(0x04, submit.body())
        await client.close()
        orders = db_rows(settings.database_url, 'SELECT recipient FROM "order"')
    statuses = {dest: None if a is None else a[1] for dest, a in answers.items()}
    assert statuses == {PREMIUM: ESME_RINVDSTADR, SHORT_CODE: ESME_RINVDSTADR, MOBILE: 0}
    assert orders == [(MOBILE,)], orders
