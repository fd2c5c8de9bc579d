"""Errors of the REST API as application/problem+json (RFC 9457), with the SMTP replies' texts.

A `Reject` becomes a problem whose `detail` is the text of the SMTP reply of the same
kind (`bridge.errors.REPLIES`) and whose `smtp` member is the reply's code and enhanced
status code, so a message refused by mail and by the API reads the same. The HTTP status
follows from the SMTP reply: a 5xx (change the request) is 422, a rate limit 429 with
Retry-After, our own temporary faults (storage, a full queue) 503 with Retry-After.
Faults of the request's shape (not JSON, a missing field) are 400; no or a bad key 401.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.responses import JSONResponse

from bridge.errors import REPLIES, Reject

MEDIA_TYPE: Final = "application/problem+json"
TYPE_BASE: Final = "urn:mailsms:problem:"
RETRY_AFTER: Final = {"rate_limited": 60, "queue_full": 30, "storage_failure": 30}


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def http_status(kind: str) -> int:
    """The HTTP status for an SMTP reply kind."""
    code = REPLIES[kind].code
    if kind == "rate_limited":
        return 429
    if code >= 500:
        return 422
    if kind == "too_many_recipients":
        return 422
    return 503  # 4xx: our side cannot take it now


def from_reply(kind: str, **values: object) -> JSONResponse:
    """The problem for the SMTP reply `kind` (its text, its codes)."""
    r = REPLIES[kind]
    status = http_status(kind)
    retry = RETRY_AFTER.get(kind, 30) if status in (429, 503) else None
    if kind == "rate_limited" and "per day" in str(values.get("detail", "")):
        retry = 3600
    return problem(
        status,
        kind,
        kind.replace("_", " ").capitalize(),
        r.text.format(**values) if values else r.text,
        retry_after=retry,
        smtp=f"{r.code} {r.status}",
    )


def from_reject(rej: Reject) -> JSONResponse:
    return from_reply(rej.kind, **rej.values)


def bad_request(detail: str) -> JSONResponse:
    return problem(400, "bad_request", "Bad request", detail)


def not_found(what: str) -> JSONResponse:
    return problem(404, "not_found", "Not found", f"{what} does not exist for this API key")
