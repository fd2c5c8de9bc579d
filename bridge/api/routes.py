"""The REST API's routes (`/api/v1`): authentication by API key, then send, status, inbound,
stop list, push template.

Every route but the OpenAPI document needs `Authorization: Bearer <key>`; the key
decides the customer (every query is scoped to it) and the user whose policy applies.
Errors are application/problem+json (`bridge.api.problems`); a storage fault is a 503
with Retry-After, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.api import problems
from bridge.api.keys import KeyRow, check_token
from bridge.api.messages import (
    BadRequest,
    IdempotencyMismatch,
    MessageService,
    Sent,
    read_request,
)
from bridge.api.openapi import document
from bridge.api.queries import MAX_LIMIT, CancelResult, OrderFilter, cancel, get_order, list_orders
from bridge.db.clock import utcnow
from bridge.db.core import MAX_ROW_ID
from bridge.db.store import Store
from bridge.errors import InputError, Reject, StorageUnavailable
from bridge.files import UnreadableFile, parse_json
from bridge.inbound.actions_store import add_stop, list_stops, remove_stop
from bridge.inbound.customer_list import InboundFilter, list_inbound
from bridge.intake.addresses import classify_number
from bridge.intake.backpressure import Backpressure
from bridge.intake.pacing import Door, Pacer
from bridge.metrics import Metrics
from bridge.mt.status import OrderStatus
from bridge.push.template import PushTemplate, PushTemplateError, parse_template, preview
from bridge.push.templates_store import get_template, remove_template, set_template
from bridge.smpp.address import canonical_number
from bridge.spreadsheet import csv_line
from bridge.text.controls import control_in

log = logging.getLogger("bridge.api")

PREFIX: Final = "/api/v1"
MAX_BODY: Final = 64 * 1024


class BodyTooLarge(InputError):
    """The request's body is larger than MAX_BODY (413)."""


STOPLIST_CSV_HEADER: Final = ("msisdn", "service", "origin", "created_at")
Handler = Callable[[Request, KeyRow], Awaitable[Response]]


class Api:
    """The API's handlers over one store; `routes()` is what the HTTP app mounts."""

    def __init__(
        self,
        service: MessageService,
        metrics: Metrics | None = None,
        backpressure: Backpressure | None = None,
        on_accepted: Callable[[], None] = lambda: None,
        pacer: Pacer | None = None,
    ) -> None:
        self.service = service
        self.store: Store = service.store
        self.metrics = metrics or Metrics.unregistered()
        self.backpressure = backpressure
        self.on_accepted = on_accepted
        self.pacer = pacer  # a new send's pause while this process is saturated

    def routes(self) -> list[BaseRoute]:
        guard = self._guard
        return [
            Route(f"{PREFIX}/openapi.json", self.openapi, methods=["GET"]),
            Route(f"{PREFIX}/messages", guard(self.send), methods=["POST"]),
            Route(f"{PREFIX}/messages", guard(self.list), methods=["GET"]),
            Route(f"{PREFIX}/messages/preview", guard(self.preview), methods=["POST"]),
            Route(f"{PREFIX}/messages/{{id}}", guard(self.get), methods=["GET"]),
            Route(f"{PREFIX}/messages/{{id}}", guard(self.cancel), methods=["DELETE"]),
            Route(f"{PREFIX}/inbound", guard(self.inbound), methods=["GET"]),
            Route(f"{PREFIX}/push-template", guard(self.template_get), methods=["GET"]),
            Route(f"{PREFIX}/push-template", guard(self.template_put), methods=["PUT"]),
            Route(f"{PREFIX}/push-template", guard(self.template_delete), methods=["DELETE"]),
            Route(
                f"{PREFIX}/push-template/preview", guard(self.template_preview), methods=["POST"]
            ),
            Route(f"{PREFIX}/stoplist", guard(self.stoplist), methods=["GET"]),
            Route(f"{PREFIX}/stoplist", guard(self.stop_add), methods=["POST"]),
            Route(f"{PREFIX}/stoplist/{{msisdn}}", guard(self.stop_remove), methods=["DELETE"]),
        ]

    # --- authentication, the common faults -------------------------------------------------

    def _guard(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _unauthorized("send the API key as 'Authorization: Bearer <key>'")
            try:
                key = await self.store.read(check_token, token.strip())
                if key is None:
                    return _unauthorized(
                        "the API key is unknown or revoked; create one with `mailsms api-key add`"
                    )
                ip = request.client.host if request.client else ""
                if not key.allows(ip):
                    return problems.problem(
                        403,
                        "client_not_allowed",
                        "Client not allowed",
                        f"API key {key.name!r} may not be used from {ip}; use it from one of "
                        "its networks or ask your administrator",
                    )
                found = control_in(
                    [*request.query_params.multi_items(), *request.path_params.items()]
                )
                if found is not None:  # it would reach a query (PostgreSQL: no NUL in text)
                    return problems.bad_request(f"parameter {found.sentence()}")
                return await handler(request, key)
            except Reject as rej:
                return problems.from_reject(rej)
            except BodyTooLarge as exc:
                return problems.problem(
                    413,
                    "body_too_large",
                    "Body too large",
                    f"{exc}; send one message request of at most {MAX_BODY // 1024} KB",
                )
            except BadRequest as exc:
                return problems.bad_request(str(exc))
            except IdempotencyMismatch as exc:
                return problems.problem(
                    422,
                    "idempotency_key_reused",
                    "Idempotency-Key reused",
                    f"Idempotency-Key {exc}: used before for a different request; use a new "
                    "key for a new message",
                )
            except StorageUnavailable as exc:
                log.error("%s %s: storage unavailable: %s", request.method, request.url.path, exc)
                return problems.problem(  # for any request, not only a send: no word of mail
                    503,
                    "storage_failure",
                    "Storage failure",
                    "the database is not available at the moment; nothing was changed, try "
                    "again later",
                    retry_after=problems.RETRY_AFTER["storage_failure"],
                )

        return endpoint

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(document())

    # --- messages ---------------------------------------------------------------------------

    async def _body(self, request: Request) -> Any:
        """The request's JSON body, read up to MAX_BODY: a larger one is refused (413) as
        soon as its length says so or its bytes pass the mark, not read whole first."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            raise BodyTooLarge(f"the body is larger than {MAX_BODY} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise BodyTooLarge(f"the body is larger than {MAX_BODY} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return parse_json(raw)
        except UnreadableFile as exc:
            raise BadRequest(f"the body is not JSON ({exc}); send application/json") from None

    async def send(self, request: Request, key: KeyRow) -> Response:
        if self.pacer is not None:
            await self.pacer.pause(Door.API)
        body = read_request(await self._body(request), self.service.max_recipients)
        idem = request.headers.get("idempotency-key")
        if idem is not None and not 1 <= len(idem) <= 255:
            raise BadRequest("Idempotency-Key: 1 to 255 characters, e.g. a UUID")
        ip = request.client.host if request.client else ""
        earlier = await self.service.replay(key, body, idem)
        if earlier is not None:
            return self._sent(key, earlier)
        mail, _ = await self.service.build(key, body, ip)
        reserved = len(mail.mail.orders)  # list members included
        if self.backpressure is not None:
            busy = self.backpressure.reserve(reserved)
            if busy is not None:
                raise Reject("queue_full", detail=busy)
        try:
            sent = await self.service.commit(key, body, mail, idem)
        except BaseException:
            if self.backpressure is not None:
                self.backpressure.settle(reserved, committed=False)
            raise
        if self.backpressure is not None:
            self.backpressure.settle(reserved, committed=not sent.replayed)
        return self._sent(key, sent)

    def _sent(self, key: KeyRow, sent: Sent) -> Response:
        orders = sent.body.get("orders", [])
        if not sent.replayed:
            log.info(
                "%s: API key %s (%s) to=%s orders=%d accepted",
                sent.body["mail_id"],
                key.name,
                key.customer,
                ",".join(o["to"] for o in orders),
                len(orders),
            )
            self.metrics.mails_accepted.inc()
            self.metrics.orders_accepted.inc(len(orders))
            customer = self.metrics.customer(key.customer)
            self.metrics.customer_orders.labels(customer).inc(len(orders))
            self.on_accepted()
        location = f"{PREFIX}/messages/{orders[0]['id']}" if orders else None
        headers = {"Location": location} if location else {}
        if sent.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(sent.body, status_code=sent.status, headers=headers)

    async def preview(self, request: Request, key: KeyRow) -> Response:
        body = read_request(await self._body(request), self.service.max_recipients)
        ip = request.client.host if request.client else ""
        return JSONResponse(await self.service.preview(key, body, ip))

    async def get(self, request: Request, key: KeyRow) -> Response:
        order_id = request.path_params["id"]
        found = await self.store.read(get_order, key.customer_id, order_id)
        if found is None:
            return problems.not_found(f"message {order_id}")
        return JSONResponse(found)

    async def list(self, request: Request, key: KeyRow) -> Response:
        f = _filter(request)
        rows = await self.store.read(list_orders, key.customer_id, f)
        more = len(rows) == f.limit
        return JSONResponse({"messages": rows, "next": rows[-1]["id"] if more else None})

    async def cancel(self, request: Request, key: KeyRow) -> Response:
        order_id = request.path_params["id"]
        done = await self.store.call(cancel, key.customer_id, order_id, utcnow())
        if done is CancelResult.NOT_FOUND:
            return problems.not_found(f"message {order_id}")
        if done is CancelResult.TOO_LATE:
            return problems.problem(
                409,
                "not_cancellable",
                "Not cancellable",
                f"message {order_id} was handed to the SMSC already or is final; "
                "only queued, deferred or held messages can be cancelled",
            )
        found = await self.store.read(get_order, key.customer_id, order_id)
        return JSONResponse(found)

    # --- inbound SMS -----------------------------------------------------------------------

    async def inbound(self, request: Request, key: KeyRow) -> Response:
        f = _inbound_filter(request)
        rows = await self.store.read(list_inbound, key.customer_id, f)
        more = len(rows) == f.limit
        return JSONResponse({"inbound": rows, "next": str(rows[-1]["id"]) if more else None})

    # --- the push template -----------------------------------------------------------------

    async def _template(self, request: Request) -> PushTemplate | Response:
        try:
            return parse_template(await self._body(request))
        except PushTemplateError as exc:
            return problems.problem(
                422,
                "invalid_push_template",
                "Invalid push template",
                f"the push template is not valid: {exc}",
                errors=list(exc.problems),
            )

    async def template_get(self, request: Request, key: KeyRow) -> Response:
        found = await self.store.read(get_template, key.customer_id)
        return JSONResponse({"template": found.as_data() if found is not None else None})

    async def template_put(self, request: Request, key: KeyRow) -> Response:
        template = await self._template(request)
        if isinstance(template, Response):
            return template
        await self.store.call(set_template, key.customer_id, template, utcnow())
        log.info("push template of %s set through API key %s", key.customer, key.name)
        return JSONResponse({"template": template.as_data(), "preview": preview(template)})

    async def template_delete(self, request: Request, key: KeyRow) -> Response:
        if not await self.store.call(remove_template, key.customer_id):
            return problems.not_found("a push template")
        return Response(status_code=204)

    async def template_preview(self, request: Request, key: KeyRow) -> Response:
        template = await self._template(request)
        if isinstance(template, Response):
            return template
        return JSONResponse(preview(template))

    # --- the stop list ----------------------------------------------------------------------

    async def stoplist(self, request: Request, key: KeyRow) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise BadRequest("format: json (the default) or csv")
        rows = await self.store.read(list_stops, key.customer_id)
        if fmt == "csv":
            lines = [csv_line(STOPLIST_CSV_HEADER)]
            for r in rows:
                lines.append(csv_line([r.msisdn, r.service, r.origin, r.created_at.isoformat()]))
            return Response(
                "".join(lines),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="stoplist.csv"'},
            )
        return JSONResponse(
            {
                "entries": [
                    {
                        "msisdn": r.msisdn,
                        "service": r.service or None,
                        "origin": r.origin,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in rows
                ]
            }
        )

    async def _number(self, key: KeyRow, text: str) -> str:
        t = await self.service.transaction(key, "")
        found = classify_number(text, t.policy.default_country)
        if found is None:
            raise BadRequest(f"{text!r} is not a phone number; write it as +491701234567")
        return found[0]

    async def stop_add(self, request: Request, key: KeyRow) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("msisdn"), str):
            raise BadRequest('the body must be {"msisdn": "+491701234567"}')
        service = body.get("service") or ""
        if not isinstance(service, str):
            raise BadRequest("'service': the inbound number the entry is for, or leave it out")
        msisdn = await self._number(key, body["msisdn"])
        added = await self.store.call(add_stop, key.customer_id, msisdn, service, utcnow(), "api")
        return JSONResponse(
            {"msisdn": msisdn, "service": service or None, "added": added},
            status_code=201 if added else 200,
        )

    async def stop_remove(self, request: Request, key: KeyRow) -> Response:
        msisdn = await self._number(key, request.path_params["msisdn"])
        removed = await self.store.call(remove_stop, key.customer_id, msisdn, None)
        if not removed:
            return problems.not_found(f"stop list entry {msisdn}")
        return Response(status_code=204)


def _unauthorized(detail: str) -> Response:
    response = problems.problem(401, "unauthorized", "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="mailsms"'
    return response


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: an ISO 8601 time, e.g. 2026-12-01T00:00:00Z") from None
    if at.tzinfo is None:
        raise BadRequest(f"{name}: give the time zone, e.g. 2026-12-01T00:00:00Z")
    try:
        return at.astimezone(UTC)  # the database compares UTC times
    except OverflowError:  # 9999-12-31T23:59:59-12:00 is past the calendar's end in UTC
        raise BadRequest(f"{name}: a time between the years 1 and 9999 in UTC") from None


def _limit(request: Request) -> int:
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: 1 to {MAX_LIMIT}")
    return limit


def _filter(request: Request) -> OrderFilter:
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in set(OrderStatus):
        raise BadRequest(f"status: one of {', '.join(s.value for s in OrderStatus)}")
    limit = _limit(request)
    return OrderFilter(
        since=_time(request, "since"),
        until=_time(request, "until"),
        recipient=q.get("recipient") or None,
        status=status,
        cost_centre=q.get("cost_centre") or None,
        user=q.get("user") or None,
        limit=limit,
        after=q.get("after") or None,
    )


def _inbound_filter(request: Request) -> InboundFilter:
    q = request.query_params
    after = q.get("after") or None
    if after is not None and not (after.isascii() and after.isdigit() and int(after) < MAX_ROW_ID):
        raise BadRequest("after: the `next` of the previous page (a number)")
    source, destination = q.get("from") or None, q.get("to") or None
    return InboundFilter(
        since=_time(request, "since"),
        until=_time(request, "until"),
        source=canonical_number(source) if source else None,
        destination=canonical_number(destination) if destination else None,
        limit=_limit(request),
        after=int(after) if after is not None else None,
    )
