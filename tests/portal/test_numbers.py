"""The numbers-and-keywords page over HTTP: what each number does, scoping, no secrets shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.files import parse_toml
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import NumbersError, NumbersFile, parse_numbers
from bridge.push.target import STORED
from tests.portal.harness import PortalRun, login, portal

NUMBERS = """
[[customer]]
name = "demo"
postmaster = "desk@example.com"
stop_scope = "service"
[[customer.list]]
name = "news"
export_to = ["marketing@example.com"]

[[customer]]
name = "acme"
admin = "it@acme.example"

[[number]]
number = "+4915550000002"
customer = "demo"
fallback = ["desk@example.com"]
[[number.actions]]
type = "push"
url = "https://user:pa55word@crm.example.com:8443/sms?key=querysecret"
auth = "hmac"
secret = "hmacsecret"
headers = {X-Token = "headersecret"}
format = "xml"
[[number.actions]]
type = "smpp"
system_id = "demo_app"

[[number]]
number = "+4915550000005"
customer = "demo"
sharing = "keyword"
[[number.keyword]]
keyword = "INFO"
aliases = ["INFOS"]
actions = [
  {type = "autoreply", text = "Open 9-17"},
  {type = "sms2mail", mode = "static", to = ["info@example.com"]},
]
[[number.keyword]]
keyword = "NEWS"
actions = [{type = "list", list = "news"}]

[[number]]
number = "+4915550000005"
customer = "acme"
sharing = "keyword"
[[number.keyword]]
keyword = "PIZZA"
actions = [{type = "sms2mail", mode = "static", to = ["orders@acme.example"]}]

[[number]]
number = "+4915550000007"
customer = "acme"
"""


def stored_numbers() -> NumbersFile:
    """NUMBERS as a numbers table written before push targets were checked at load holds
    them: `mailsms inbound apply` refuses the URL with credentials now (and the push
    worker always did), but such a row must still show no secret."""
    with pytest.raises(NumbersError, match="credentials in the URL"):
        parse_numbers(NUMBERS)
    return NumbersFile.model_validate(parse_toml(NUMBERS), context=STORED)


def _numbers(run: PortalRun) -> None:
    assert run.bridge.store is not None
    run_sync(run.bridge.store.engine, apply_numbers, stored_numbers())


async def test_a_customer_admin_sees_its_numbers_keywords_and_actions(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        _numbers(run)
        await login(web, "admin")
        page = await web.get("/portal/numbers")
        assert page.status_code == 200
        text = page.text
        assert 'href="/portal/numbers"' in text  # in the menu now
        assert "+4915550000002" in text and "+4915550000005" in text
        assert "only the number it was sent to" in text and "desk@example.com" in text
        # the push: where and how, never a secret
        assert "HTTP push: POST https://crm.example.com:8443/sms as xml" in text
        assert "authentication: hmac" in text
        for secret in ("pa55word", "querysecret", "hmacsecret", "headersecret", "user:"):
            assert secret not in text, secret
        assert "To the SMPP account demo_app" in text
        # keywords with their aliases and actions; the default for any other text
        assert re.search(r"INFO</span> <span class=\"muted\">\(also INFOS\)", text)
        assert "Automatic reply: Open 9-17" in text and "Mail to info@example.com" in text
        assert "Join keyword list news" in text
        assert "Mail to the user who last texted the sender" in text
        assert "Shared by keyword" in text
        # its keyword list, with the daily export
        assert "changes at 06:00 UTC to marketing@example.com" in text


async def test_a_customer_admin_sees_no_other_customers_rows(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        _numbers(run)
        await login(web, "acme-admin")
        for url in ("/portal/numbers", "/portal/numbers?customer=demo"):
            text = (await web.get(url)).text
            # the shared number shows acme's keyword, not demo's
            assert "+4915550000005" in text and "PIZZA" in text and "+4915550000007" in text
            for other in ("INFO", "NEWS", "+4915550000002", "demo_app", "desk@example.com"):
                assert other not in text, other
            assert "it@acme.example" in text


async def test_an_operator_sees_every_customer_or_the_chosen_one(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        _numbers(run)
        await login(web, "ops")
        text = (await web.get("/portal/numbers")).text
        assert "PIZZA" in text and "INFO" in text and "<th>Customer</th>" in text
        text = (await web.get("/portal/numbers?customer=acme")).text
        assert "PIZZA" in text and "INFO" not in text
        assert (await web.get("/portal/numbers?customer=nobody")).status_code == 404


async def test_no_numbers_reads_as_a_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "acme-admin")
        page = await web.get("/portal/numbers")
        assert page.status_code == 200 and "No inbound numbers" in page.text
        assert "No keyword lists" in page.text
