"""The OpenAPI 3.1 document of `/api/v1`, written by hand next to the routes it describes.

tests/e2e/test_api.py checks that every route the API mounts is in it with its method.
"""

from __future__ import annotations

from typing import Any

from bridge import __version__
from bridge.inbound.status import InboundRoute, InboundStatus
from bridge.mt.status import OrderStatus
from bridge.push.template import DEFAULT_FIELDS, FORMATS, MAX_FIELDS, PushKind

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_STR = {"type": "string"}
_STATUSES = [s.value for s in OrderStatus]
_TIME = {"type": "string", "format": "date-time"}


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or _STR}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_.-]*$"


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


_OPTIONS: dict[str, Any] = {
    "sender_id": {"type": "string", "description": "Sender ID (alphanumeric or number)."},
    "priority": {"type": "string", "enum": ["normal", "express"]},
    "validity": {"type": "string", "description": "How long to try, e.g. 2h, 1d, 3600."},
    "encoding": {"type": "string", "enum": ["auto", "gsm7", "ucs2"]},
    "replacement": {"type": "string", "description": "Character replacement policy."},
    "max_parts": {"type": "integer", "minimum": 1},
    "notify": {"type": "string", "description": "Status mails: none, failure, all."},
    "cost_centre": {"type": "string"},
    "send_at": {"type": "string", "description": "ISO time, e.g. 2026-12-01T09:00+01:00."},
    "flash": {"type": "boolean"},
}


def document() -> dict[str, Any]:
    """The document served at /api/v1/openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailsms REST API",
            "version": __version__,
            "description": "Send SMS, read their status, keep the stop list. The same policy, "
            "text engine, stop list and rate limits as mail to <number>@<domain>. "
            "Errors are application/problem+json (RFC 9457) with the SMTP replies' texts.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/messages": {
                "post": {
                    "summary": "Send one text to one or more numbers (201 after the commit).",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "description": "A retry with the same key gets the first answer; "
                            "nothing is sent twice.",
                            "schema": _STR,
                        }
                    ],
                    "requestBody": {"required": True, "content": _json("MessageRequest")},
                    "responses": {
                        "201": {"description": "Committed.", "content": _json("Sent")},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                        "403": _PROBLEM,
                        "413": _PROBLEM,
                        "422": _PROBLEM,
                        "429": _PROBLEM,
                        "503": _PROBLEM,
                    },
                },
                "get": {
                    "summary": "The customer's messages, newest first, filtered and paged.",
                    "parameters": [
                        _q(
                            "since",
                            "Created at or after (ISO time with zone).",
                            {"type": "string", "format": "date-time"},
                        ),
                        _q(
                            "until",
                            "Created before (ISO time with zone).",
                            {"type": "string", "format": "date-time"},
                        ),
                        _q("recipient", "E.164 number, e.g. +491701234567."),
                        _q("status", "Order status.", {"type": "string", "enum": _STATUSES}),
                        _q("user", "The sending user's address."),
                        _q("cost_centre", "Cost centre."),
                        _q("limit", "Page size (1-500, default 50).", {"type": "integer"}),
                        _q("after", "The last id of the previous page (its `next`)."),
                    ],
                    "responses": {
                        "200": {"description": "A page.", "content": _json("MessagePage")},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                    },
                },
            },
            "/messages/preview": {
                "post": {
                    "summary": "Dry run: parts, encoding, replacements, cost; nothing is sent.",
                    "requestBody": {"required": True, "content": _json("MessageRequest")},
                    "responses": {
                        "200": {"description": "The preview.", "content": _json("Preview")},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                        "422": _PROBLEM,
                    },
                },
            },
            "/messages/{id}": {
                "get": {
                    "summary": "One message: status, parts, history.",
                    "parameters": [_ID],
                    "responses": {
                        "200": {"description": "The message.", "content": _json("Message")},
                        "401": _PROBLEM,
                        "404": _PROBLEM,
                    },
                },
                "delete": {
                    "summary": "Cancel a message not yet handed to the SMSC.",
                    "parameters": [_ID],
                    "responses": {
                        "200": {"description": "Cancelled.", "content": _json("Message")},
                        "401": _PROBLEM,
                        "404": _PROBLEM,
                        "409": _PROBLEM,
                    },
                },
            },
            "/inbound": {
                "get": {
                    "summary": "The SMS the customer's numbers and keywords received, newest "
                    "first, filtered and paged.",
                    "parameters": [
                        _q("since", "Received at or after (ISO time with zone).", _TIME),
                        _q("until", "Received before (ISO time with zone).", _TIME),
                        _q("from", "The texter's number, e.g. +491701234567."),
                        _q("to", "The customer's number it was sent to."),
                        _q("limit", "Page size (1-500, default 50).", {"type": "integer"}),
                        _q("after", "The last id of the previous page (its `next`)."),
                    ],
                    "responses": {
                        "200": {"description": "A page.", "content": _json("InboundPage")},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                    },
                },
            },
            "/push-template": {
                "get": {
                    "summary": "The customer's push template (null: today's bodies).",
                    "responses": {
                        "200": {"description": "The template.", "content": _json("TemplateAnswer")},
                        "401": _PROBLEM,
                    },
                },
                "put": {
                    "summary": "Check and store the push template; pushes queued from now on "
                    "use it. The answer previews it.",
                    "requestBody": {"required": True, "content": _json("PushTemplate")},
                    "responses": {
                        "200": {"description": "Stored.", "content": _json("TemplateAnswer")},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                        "422": _PROBLEM,
                    },
                },
                "delete": {
                    "summary": "Remove the push template: pushes get today's bodies again.",
                    "responses": {
                        "204": {"description": "Removed."},
                        "401": _PROBLEM,
                        "404": _PROBLEM,
                    },
                },
            },
            "/push-template/preview": {
                "post": {
                    "summary": "The status and inbound bodies a template makes, with sample "
                    "values; nothing is stored.",
                    "requestBody": {"required": True, "content": _json("PushTemplate")},
                    "responses": {
                        "200": {
                            "description": "Each kind's body (null: today's).",
                            "content": _json("TemplatePreview"),
                        },
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                        "422": _PROBLEM,
                    },
                },
            },
            "/stoplist": {
                "get": {
                    "summary": "The customer's stop list (format=csv: a CSV download).",
                    "parameters": [
                        _q(
                            "format",
                            "json (default) or csv: a header line, then msisdn, service, "
                            "origin, created_at per entry.",
                            {"type": "string", "enum": ["json", "csv"]},
                        )
                    ],
                    "responses": {
                        "200": {
                            "description": "Entries.",
                            "content": {
                                **_json("StopList"),
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                    },
                },
                "post": {
                    "summary": "Add a number (mail and API to it are refused from now on).",
                    "requestBody": {"required": True, "content": _json("StopEntryRequest")},
                    "responses": {
                        "201": {"description": "Added."},
                        "200": {"description": "Was on the list already."},
                        "400": _PROBLEM,
                        "401": _PROBLEM,
                    },
                },
            },
            "/stoplist/{msisdn}": {
                "delete": {
                    "summary": "Take a number off the stop list (every entry of it).",
                    "parameters": [
                        {"name": "msisdn", "in": "path", "required": True, "schema": _STR}
                    ],
                    "responses": {
                        "204": {"description": "Removed."},
                        "401": _PROBLEM,
                        "404": _PROBLEM,
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1."}},
                },
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `mailsms api-key add`.",
                }
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details.",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
            "schemas": {
                "MessageRequest": {
                    "type": "object",
                    "required": ["to", "text"],
                    "additionalProperties": False,
                    "properties": {
                        "to": {
                            "type": "array",
                            "items": _STR,
                            "minItems": 1,
                            "description": "Numbers, or names of the customer's distribution "
                            "lists (`team` or `team@<domain>`).",
                        },
                        "text": {"type": "string", "minLength": 1},
                        **_OPTIONS,
                    },
                },
                "Sent": {
                    "type": "object",
                    "properties": {
                        "mail_id": _STR,
                        "orders": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": _STR,
                                    "to": _STR,
                                    "status": _STR,
                                    "parts": {"type": "integer"},
                                },
                            },
                        },
                    },
                },
                "Message": {
                    "type": "object",
                    "properties": {
                        "id": _STR,
                        "to": _STR,
                        "sender_id": _STR,
                        "status": {"type": "string", "enum": _STATUSES},
                        "parts": {"type": "integer"},
                        "encoding": _STR,
                        "text": _STR,
                        "part_states": {"type": "array", "items": {"type": "object"}},
                        "history": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "MessagePage": {
                    "type": "object",
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Message"},
                        },
                        "next": {"type": ["string", "null"]},
                    },
                },
                "Preview": {
                    "type": "object",
                    "properties": {
                        "text": _STR,
                        "encoding": _STR,
                        "parts": {"type": "integer"},
                        "part_texts": {"type": "array", "items": _STR},
                        "replaced": {"type": "array", "items": {"type": "object"}},
                        "refused": {"type": ["object", "null"]},
                        "lists": {"type": "array", "items": {"type": "object"}},
                        "orders": {"type": "integer"},
                        "cost": {
                            "type": ["object", "null"],
                            "description": "parts x orders x the customer's price_per_part; "
                            "null without a price.",
                            "properties": {
                                "amount": _STR,
                                "currency": _STR,
                                "price_per_part": _STR,
                                "parts": {"type": "integer"},
                            },
                        },
                    },
                },
                "InboundPage": {
                    "type": "object",
                    "properties": {
                        "inbound": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Inbound"},
                        },
                        "next": {"type": ["string", "null"]},
                    },
                },
                "Inbound": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "from": _STR,
                        "to": _STR,
                        "text": _STR,
                        "parts": {"type": "integer"},
                        "received_at": _TIME,
                        "status": {
                            "type": "string",
                            "enum": [s.value for s in InboundStatus],
                        },
                        "route": {
                            "type": "string",
                            "enum": [r.value for r in InboundRoute],
                            "description": "How the SMS found the customer.",
                        },
                        "keyword": {"type": ["string", "null"]},
                    },
                },
                "PushTemplate": {
                    "type": "object",
                    "description": "Per kind of push, the body's fields in order: a default "
                    "field (optionally renamed) or a custom field with a constant value.",
                    "additionalProperties": False,
                    "properties": {
                        "format": {"type": "string", "enum": list(FORMATS)},
                        **{
                            kind.value: {"$ref": "#/components/schemas/KindTemplate"}
                            for kind in PushKind
                        },
                    },
                },
                "KindTemplate": {
                    "type": "object",
                    "required": ["fields"],
                    "additionalProperties": False,
                    "properties": {
                        "root": {"type": "string", "description": "The XML root element."},
                        "fields": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_FIELDS,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "field": {
                                        "type": "string",
                                        "description": "A default field: status: "
                                        + ", ".join(DEFAULT_FIELDS[PushKind.STATUS])
                                        + "; inbound: "
                                        + ", ".join(DEFAULT_FIELDS[PushKind.INBOUND])
                                        + ".",
                                    },
                                    "name": {
                                        "type": "string",
                                        "pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$",
                                    },
                                    "value": {"type": ["string", "number", "boolean"]},
                                },
                            },
                        },
                    },
                },
                "TemplateAnswer": {
                    "type": "object",
                    "properties": {
                        "template": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/PushTemplate"},
                                {"type": "null"},
                            ]
                        },
                        "preview": {"$ref": "#/components/schemas/TemplatePreview"},
                    },
                },
                "TemplatePreview": {
                    "type": "object",
                    "properties": {
                        kind.value: {
                            "type": ["object", "null"],
                            "properties": {"content_type": _STR, "body": _STR},
                        }
                        for kind in PushKind
                    },
                },
                "StopList": {
                    "type": "object",
                    "properties": {"entries": {"type": "array", "items": {"type": "object"}}},
                },
                "StopEntryRequest": {
                    "type": "object",
                    "required": ["msisdn"],
                    "properties": {"msisdn": _STR, "service": _STR},
                },
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": _STR,
                        "title": _STR,
                        "status": {"type": "integer"},
                        "detail": _STR,
                        "smtp": {"type": "string", "description": "The SMTP reply's codes."},
                    },
                },
            },
        },
    }
