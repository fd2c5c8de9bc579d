"""The stop list as a CSV download through the REST API, scoped to the key's customer."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.e2e.test_api import _problem, api


async def test_the_stop_list_exports_as_csv_for_its_customer_only(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        for msisdn, service in (("+491701234567", None), ("+491701234568", "+4915550000009")):
            body = {"msisdn": msisdn, **({"service": service} if service else {})}
            r = await a.http.post("/api/v1/stoplist", json=body, headers=a.demo)
            assert r.status_code == 201, r.text
        r = await a.http.post("/api/v1/stoplist", json={"msisdn": "+491709999999"}, headers=a.acme)
        assert r.status_code == 201

        r = await a.http.get("/api/v1/stoplist", params={"format": "csv"}, headers=a.demo)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == 'attachment; filename="stoplist.csv"'
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["msisdn", "service", "origin", "created_at"]
        assert [row[:3] for row in rows[1:]] == [
            ["+491701234567", "", "api"],
            ["+491701234568", "+4915550000009", "api"],
        ]
        assert all(row[3].endswith("+00:00") for row in rows[1:])

        acme = await a.http.get("/api/v1/stoplist", params={"format": "csv"}, headers=a.acme)
        assert [row[0] for row in csv.reader(io.StringIO(acme.text))] == [
            "msisdn",
            "+491709999999",
        ]
        # JSON stays the default; anything else is a 400 that names the choices.
        assert len((await a.http.get("/api/v1/stoplist", headers=a.demo)).json()["entries"]) == 2
        r = await a.http.get("/api/v1/stoplist", params={"format": "xlsx"}, headers=a.demo)
        assert "json (the default) or csv" in _problem(r, 400, "bad_request")["detail"]
        r = await a.http.get("/api/v1/stoplist", params={"format": "csv"})
        _problem(r, 401, "unauthorized")
