"""The REST API's preview shows what a message costs at the customer's `price_per_part`."""

from __future__ import annotations

from pathlib import Path

from bridge.db.store import run_sync
from bridge.provision.apply import change_setting
from tests.e2e.test_api import api

TWO_PARTS = "x" * 200  # GSM-7, 2 parts


async def test_the_preview_costs_parts_times_the_price_per_part(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        store = a.bridge.store
        assert store is not None
        run_sync(store.engine, change_setting, "customer", "demo", "price_per_part", "0.075 EUR")
        r = await a.http.post(
            "/api/v1/messages/preview",
            json={"to": ["+491701234567", "+491701234568"], "text": TWO_PARTS},
            headers=a.demo,
        )
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["parts"] == 2 and p["orders"] == 2
        assert p["cost"] == {
            "amount": "0.300",
            "currency": "EUR",
            "price_per_part": "0.075",
            "parts": 4,
        }
        # A customer without a price gets no cost, rather than a made-up one.
        r = await a.http.post(
            "/api/v1/messages/preview", json={"to": ["+491701234567"], "text": "hi"}, headers=a.acme
        )
        assert r.status_code == 200 and r.json()["cost"] is None
        # A text the rules refuse costs nothing: it would not be sent.
        r = await a.http.post(
            "/api/v1/messages/preview",
            json={"to": ["+491701234567"], "text": "y" * 2000, "max_parts": 1},
            headers=a.demo,
        )
        assert r.json()["refused"] is not None and r.json()["cost"] is None
        # The price is the operator's and the customer's: a user's own value is ignored.
        run_sync(
            store.engine, change_setting, "user", "demo@example.com", "price_per_part", "0 EUR"
        )
        r = await a.http.post(
            "/api/v1/messages/preview", json={"to": ["+491701234567"], "text": "hi"}, headers=a.demo
        )
        assert r.json()["cost"]["amount"] == "0.075"
