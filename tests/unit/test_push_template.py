"""Push templates (pure): what is accepted, every refusal says how to fix it, bodies escape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import pytest

from bridge.push.status import status_body
from bridge.push.template import (
    MAX_FIELDS,
    SAMPLES,
    PushKind,
    PushTemplateError,
    parse_template,
    preview,
    render,
)

STATUS = {
    "order_id": "A.1",
    "mail_id": "A",
    "status": "delivered",
    "recipient": "+491701234567",
    "sender_id": "ACME",
    "parts": 2,
    "error": "",
    "final_at": "2026-12-01T09:00:00+00:00",
    "cost_centre": "4711",
}
TEMPLATE: dict[str, Any] = {
    "format": "json",
    "status": {
        "fields": [
            {"field": "status", "name": "state"},
            {"name": "system", "value": "erp-7"},
            {"field": "order_id", "name": "id"},
            {"field": "parts"},
            {"name": "billable", "value": True},
        ]
    },
}


def _values() -> dict[str, Any]:
    return dict(SAMPLES[PushKind.STATUS], **STATUS)


def test_fields_renamed_reordered_custom_added_defaults_left_out() -> None:
    t = parse_template(TEMPLATE)
    body, content_type = render(t, PushKind.STATUS, _values()) or ("", "")
    assert content_type == "application/json"
    assert list(json.loads(body).items()) == [
        ("state", "delivered"),
        ("system", "erp-7"),
        ("id", "A.1"),
        ("parts", 2),
        ("billable", True),
    ]
    assert render(t, PushKind.INBOUND, SAMPLES[PushKind.INBOUND]) is None  # today's body
    assert parse_template(t.as_data()) == t  # stored and read back the same


def test_xml_and_kv_escape_values_and_keep_the_order() -> None:
    values = {**_values(), "status": '<delivered> & "done"'}
    xml = parse_template(
        {**TEMPLATE, "format": "xml", "status": {**TEMPLATE["status"], "root": "r"}}
    )
    body, content_type = render(xml, PushKind.STATUS, values) or ("", "")
    root = ElementTree.fromstring(body)
    assert content_type == "application/xml" and root.tag == "r"
    assert [(e.tag, e.text) for e in root] == [
        ("state", '<delivered> & "done"'),
        ("system", "erp-7"),
        ("id", "A.1"),
        ("parts", "2"),
        ("billable", "true"),
    ]
    kv = parse_template({**TEMPLATE, "format": "kv"})
    body, content_type = render(kv, PushKind.STATUS, values) or ("", "")
    assert content_type == "application/x-www-form-urlencoded"
    assert parse_qsl(body)[0] == ("state", '<delivered> & "done"')


def test_every_default_field_in_todays_order_is_todays_body() -> None:
    fields = [{"field": f} for f in ("type", *STATUS)]
    t = parse_template({"status": {"fields": fields}})
    assert render(t, PushKind.STATUS, _values()) == status_body("json", STATUS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a push template is a table"),
        ({"format": "yaml", "status": TEMPLATE["status"]}, "format: one of json, xml, kv"),
        ({"format": "json"}, "give [status] and/or [inbound]"),
        ({"status": {"fields": []}}, "leave [status] out to keep today's status body"),
        (
            {"status": {"fields": [{"field": "colour"}]}},
            "'colour' is not a default field of a status push; known: type, order_id",
        ),
        (
            {"inbound": {"fields": [{"field": "order_id"}]}},
            "known: type, id, from, to, text",
        ),
        ({"status": {"fields": [{"field": "status", "name": "1st"}]}}, "not a valid field name"),
        ({"status": {"fields": [{"name": "a b", "value": "x"}]}}, "not a valid field name"),
        ({"status": {"fields": [{"name": "xmlns", "value": "x"}]}}, "not starting with 'xml'"),
        ({"status": {"root": "my root", "fields": [{"field": "status"}]}}, "status.root"),
        (
            {"status": {"fields": [{"field": "status"}, {"field": "order_id", "name": "status"}]}},
            "status.fields[1]: the name 'status' is used by fields[0] already",
        ),
        ({"status": {"fields": [{"name": "x"}]}}, "a custom field needs a value"),
        ({"status": {"fields": [{"field": "status", "value": 1}]}}, "not both"),
        ({"status": {"fields": [{"name": "x", "value": [1]}]}}, "text, a number or true/false"),
        ({"status": {"fields": [{"name": "x", "value": "v" * 1001}]}}, "at most 1000 characters"),
        ({"status": {"fields": [{"field": "status", "as": "x"}]}}, "unknown key(s) as"),
        ({"status": {"fields": ["status"]}}, 'write {field = "order_id"}'),
        (
            {"status": {"fields": [{"name": f"f{i}", "value": i} for i in range(MAX_FIELDS + 1)]}},
            f"at most {MAX_FIELDS} fields",
        ),
        ({"status": {"fields": [{"name": "x", "value": "v" * 1000}] * 20}}, "larger than"),
    ],
)
def test_refusals_say_how_to_fix_it(data: Any, message: str) -> None:
    with pytest.raises(PushTemplateError) as info:
        parse_template(data)
    assert message in str(info.value)


def test_every_fault_is_listed_at_once() -> None:
    with pytest.raises(PushTemplateError) as info:
        parse_template(
            {
                "format": "csv",
                "status": {"fields": [{"field": "nope"}, {"name": "a b", "value": 1}]},
            }
        )
    assert len(info.value.problems) == 3


def test_preview_renders_each_kind_with_sample_values() -> None:
    shown = preview(parse_template({"format": "kv", "inbound": {"fields": [{"field": "from"}]}}))
    assert shown["status"] is None
    assert shown["inbound"] == {
        "content_type": "application/x-www-form-urlencoded",
        "body": "from=%2B491701234567",
    }
