"""Every REST API route, with odd ids, odd query values and odd JSON bodies, on SQLite and
on PostgreSQL: always a problem document (4xx with a sentence) or a success, never a 500
or a 503 (a 503 says "try again later": for a request that can never succeed, a client
would try again for ever). The routes come from the API's own OpenAPI document, so a
route added later is tried too.

Found so far: `?after=` beyond what a row id can hold (SQLite: 500, PostgreSQL: 503),
`?since=` past the calendar's end in UTC (503 on both), a `%00` in a filter (503 on
PostgreSQL, which cannot compare a NUL); JSON nested deeper than the parser's stack
(500), an unpaired surrogate escape `\\ud800` in a string (which no database can store)
and NaN/Infinity, which are not JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from typing import Any

from tests.e2e.test_api import api

ODD_IDS = ("99999999999999999999999", "-1", "0", "abc", "%00", "M1%1B.1", "x" * 300)
ODD_QUERIES: tuple[dict[str, str], ...] = (
    {"after": "99999999999999999999", "limit": "0"},
    {"after": "9" * 400, "limit": "99999999999999999999"},
    {"since": "9999-12-31T23:59:59-12:00", "until": "0001-01-01T00:00:00+14:00"},
    {"since": "2026-13-45", "until": "yesterday", "status": "nonsense"},
    {"cost_centre": "4711\x00", "user": "a\x1b@example.com", "recipient": "+49\x00170"},
    {"from": "+" + "9" * 400, "to": "'\"; --", "keyword": "%", "format": "xlsx"},
    {"after": "x" * 5000, "recipient": "9" * 5000},
)
ODD_BODIES: tuple[Any, ...] = (
    None,
    [],
    "text",
    {"to": ["+491701234567"], "text": "x", "validity": "99999999999999999999d"},
    {"to": ["+491701234567"], "text": "x", "send_at": "9999-12-31T23:59:59-12:00"},
    {"to": ["+491701234567"], "text": "x", "max_parts": 99999999999999999999},
    {"to": ["9" * 400], "text": "\x00" * 10},
    {"msisdn": "+49170\x001234567"},
    {"format": "json", "status": {"fields": [{"name": "\x00", "value": "text"}]}},
)
# Bodies no JSON encoder writes: JSON's grammar at its limits, and what Python's parser
# accepts beyond it (NaN, an unpaired surrogate escape).
RAW_BODIES: tuple[bytes, ...] = (
    b"[" * 5_000 + b"]" * 5_000,  # nested deeper than the parser's stack, within MAX_BODY
    b'{"to": ["+491701234567"], "text": "\\ud800 alone"}',
    b'{"to": ["+491701234567"], "text": "x", "cost_centre": "\\udfff"}',
    b'{"msisdn": "+491701234567\\ud83d"}',
    b'{"format": "json", "status": {"fields": [{"name": "\\udc80", "value": "text"}]}}',
    b"NaN",
    b'{"to": ["+491701234567"], "text": "x", "max_parts": Infinity, "validity": NaN}',
    b'{"format": "json", "status": {"fields": [{"name": "n", "value": NaN}]}}',
    b'{"msisdn": -Infinity, "members": [NaN]}',
    b"\xff\xfe{}",
    b'{"to": ["+491701234567"], "text": "x"}' + b" " * 10 + b"garbage",
)


async def test_no_route_answers_5xx_to_odd_ids_queries_or_bodies(
    tmp_path: Path, bridge_database: str
) -> None:
    async with api(tmp_path, database_url=bridge_database) as a:
        document = (await a.http.get("/api/v1/openapi.json")).json()
        routes = {path: sorted(m.upper() for m in ops) for path, ops in document["paths"].items()}
        assert len(routes) >= 8 and sum(map(len, routes.values())) >= 12
        tried = 0
        for route, methods in routes.items():
            params = re.findall(r"{([a-z_]+)}", route)
            for value in ODD_IDS if params else ("",):
                path = "/api/v1" + re.sub(r"{[a-z_]+}", value, route)
                for method in methods:
                    queries = ODD_QUERIES if method in ("GET", "DELETE") else ({},)
                    bodies = ODD_BODIES if method in ("POST", "PUT") else (None,)
                    for query, body in itertools.product(queries, bodies):
                        headers = {**a.demo, "Idempotency-Key": f"odd-{tried}"}
                        r = await a.http.request(
                            method, path, headers=headers, params=query, json=body
                        )
                        tried += 1
                        assert r.status_code < 500, (method, path, query, body, r.text[:500])
                        assert "Traceback" not in r.text, (method, path)
                for raw in RAW_BODIES if set(methods) & {"POST", "PUT"} else ():
                    for method in sorted(set(methods) & {"POST", "PUT"}):
                        headers = {
                            **a.demo,
                            "Idempotency-Key": f"odd-{tried}",
                            "Content-Type": "application/json",
                        }
                        r = await a.http.request(method, path, headers=headers, content=raw)
                        tried += 1
                        assert r.status_code < 500, (method, path, raw[:80], r.text[:500])
                        assert "Traceback" not in r.text, (method, path)
        assert tried > 150


async def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    """A body larger than the API takes was read whole into memory before its size was
    looked at (a key holder's 2 GB upload in one process with the SMTP door). It is
    refused with 413 when its Content-Length says so, and a chunked one as soon as its
    bytes pass the mark — here one whose end never comes."""
    async with api(tmp_path) as a:
        host, port = a.http.base_url.host, a.http.base_url.port
        assert port is not None
        auth = a.demo["Authorization"].encode()
        for framing in (b"Content-Length: 100000000\r\n", b"Transfer-Encoding: chunked\r\n"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
                b"Content-Type: application/json\r\n" + framing + b"\r\n"
            )
            chunk = b"x" * 16_384
            body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") if b"chunked" in framing else chunk
            for _ in range(8):  # 128 KB, twice the limit, and no end
                writer.write(body)
            await writer.drain()
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413 "), head
            writer.close()
