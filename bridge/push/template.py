"""A customer's push template: which fields a status or inbound push carries, named how, in
which order and format (JSON, XML or key=value) -- data, never code.

Pure code. A template is an ordered list of fields per kind of push (`status`: an MT
order's final status; `inbound`: an MO SMS). Each field is either one of the push's
default fields by its canonical name (`{"field": "order_id"}`), optionally renamed
(`{"field": "order_id", "name": "id"}`), or a custom field with a constant value
(`{"name": "source", "value": "mailsms"}`). A default field left out is not sent. A
kind without fields keeps today's body. `parse_template` checks everything and names
every fault with the way to fix it; `render` builds the body, escaping each value for
the format, so neither SMS text nor a template can break it.

    format = "xml"
    [status]
    root = "orderStatus"
    fields = [{field = "order_id", name = "id"}, {field = "status"},
              {name = "system", value = "erp-7"}]
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from bridge.errors import InputError
from bridge.push.body import CONTENT_TYPES


class PushKind(enum.StrEnum):
    STATUS = "status"  # an MT order's final status (the customer's status_push target)
    INBOUND = "inbound"  # an MO SMS (an inbound number's push action)


# The default fields of each kind, in today's order: what a template may pick from.
DEFAULT_FIELDS: Final[dict[PushKind, tuple[str, ...]]] = {
    PushKind.STATUS: (
        "type",
        "order_id",
        "mail_id",
        "status",
        "recipient",
        "sender_id",
        "parts",
        "error",
        "final_at",
        "cost_centre",
    ),
    PushKind.INBOUND: ("type", "id", "from", "to", "text", "keyword", "customer", "received_at"),
}
DEFAULT_ROOT: Final = {PushKind.STATUS: "order_status", PushKind.INBOUND: "inbound_sms"}
FORMATS: Final = ("json", "xml", "kv")
MAX_FIELDS: Final = 50
MAX_NAME: Final = 64
MAX_VALUE: Final = 1000
MAX_TEMPLATE_BYTES: Final = 16 * 1024
# An XML element name that is also a plain JSON key and form field name.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NAME_RULE = (
    "use letters, digits, '_', '-' and '.', starting with a letter or '_' "
    f"(at most {MAX_NAME} characters; not starting with 'xml')"
)

Value = str | int | float | bool


class PushTemplateError(InputError, ValueError):
    """A push template is not valid; the message lists every fault and how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One field of a body: a default field (`field`) or a custom one (`value`), as `name`."""

    name: str
    field: str | None = None  # the default field's canonical name; None: a custom field
    value: Value | None = None  # a custom field's constant value


@dataclass(frozen=True, slots=True)
class KindTemplate:
    root: str  # the XML root element
    fields: tuple[TemplateField, ...]


@dataclass(frozen=True, slots=True)
class PushTemplate:
    format: str
    kinds: Mapping[PushKind, KindTemplate]

    def as_data(self) -> dict[str, Any]:
        """The template as stored and shown (what `parse_template` reads back)."""
        data: dict[str, Any] = {"format": self.format}
        for kind, t in self.kinds.items():
            fields: list[dict[str, Any]] = []
            for f in t.fields:
                if f.field is None:
                    fields.append({"name": f.name, "value": f.value})
                elif f.name == f.field:
                    fields.append({"field": f.field})
                else:
                    fields.append({"field": f.field, "name": f.name})
            data[kind.value] = {"root": t.root, "fields": fields}
        return data


def _check_name(where: str, name: Any, problems: list[str]) -> str | None:
    """`name` if it is a valid field name, else None (and the problem noted)."""
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: a name is text; {_NAME_RULE}")
        return None
    if len(name) > MAX_NAME or not _NAME.fullmatch(name) or name.lower().startswith("xml"):
        problems.append(f"{where}: {name!r} is not a valid field name; {_NAME_RULE}")
        return None
    return name


def _field(kind: PushKind, where: str, entry: Any, problems: list[str]) -> TemplateField | None:
    known = DEFAULT_FIELDS[kind]
    if not isinstance(entry, dict):
        problems.append(
            f'{where}: write {{field = "{known[1]}"}}, {{field = "{known[1]}", name = "id"}} '
            'or {name = "source", value = "mailsms"}'
        )
        return None
    unknown = sorted(set(entry) - {"field", "name", "value"})
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; use field, name, value")
        return None
    if "field" in entry and "value" in entry:
        problems.append(
            f"{where}: either a default field (field, optionally name) or a custom field "
            "(name and value), not both"
        )
        return None
    if "field" in entry:
        field = entry["field"]
        if field not in known:
            problems.append(
                f"{where}: {field!r} is not a default field of a {kind.value} push; "
                f"known: {', '.join(known)} (or add a custom field with name and value)"
            )
            return None
        name = _check_name(where, entry.get("name", field), problems)
        return TemplateField(name, field=field) if name is not None else None
    if "value" not in entry:
        problems.append(
            f"{where}: a custom field needs a value (name = ..., value = ...); a default "
            f"field needs field = one of {', '.join(known)}"
        )
        return None
    value = entry["value"]
    if not isinstance(value, str | int | float) or (isinstance(value, float) and value != value):
        problems.append(f"{where}: value: text, a number or true/false")
        return None
    if isinstance(value, str) and len(value) > MAX_VALUE:
        problems.append(f"{where}: value: at most {MAX_VALUE} characters")
        return None
    name = _check_name(where, entry.get("name"), problems)
    return TemplateField(name, value=value) if name is not None else None


def _kind(kind: PushKind, data: Any, problems: list[str]) -> KindTemplate | None:
    where = kind.value
    if not isinstance(data, dict):
        problems.append(f"{where}: a table with `fields` (and optionally `root`)")
        return None
    unknown = sorted(set(data) - {"fields", "root"})
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; use fields, root")
    root = _check_name(f"{where}.root", data.get("root", DEFAULT_ROOT[kind]), problems)
    entries = data.get("fields")
    if not isinstance(entries, list) or not entries:
        problems.append(
            f"{where}.fields: a list of at least one field; leave [{where}] out to keep "
            f"today's {where} body"
        )
        return None
    if len(entries) > MAX_FIELDS:
        problems.append(f"{where}.fields: at most {MAX_FIELDS} fields")
        return None
    fields: list[TemplateField] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        found = _field(kind, f"{where}.fields[{i}]", entry, problems)
        if found is None:
            continue
        if found.name in seen:
            first = seen[found.name]
            problems.append(
                f"{where}.fields[{i}]: the name {found.name!r} is used by fields[{first}] "
                "already; give each field its own name"
            )
            continue
        seen[found.name] = i
        fields.append(found)
    if root is None or len(fields) != len(entries):
        return None
    return KindTemplate(root, tuple(fields))


def parse_template(data: Any) -> PushTemplate:
    """The checked template from parsed TOML or JSON data, or PushTemplateError (every fault)."""
    if not isinstance(data, dict):
        raise PushTemplateError(
            [
                'a push template is a table: format = "json" | "xml" | "kv", and [status] '
                "and/or [inbound] with fields"
            ]
        )
    if len(json.dumps(data, default=str)) > MAX_TEMPLATE_BYTES:
        raise PushTemplateError([f"the template is larger than {MAX_TEMPLATE_BYTES} bytes"])
    problems: list[str] = []
    unknown = sorted(set(data) - {"format", *PushKind})
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; use format, status, inbound")
    fmt = data.get("format", "json")
    if fmt not in FORMATS:
        problems.append(f"format: one of {', '.join(FORMATS)}, not {fmt!r}")
    if not any(kind in data for kind in PushKind):
        problems.append(
            "give [status] and/or [inbound] with fields: a template without them changes nothing"
        )
    kinds: dict[PushKind, KindTemplate] = {}
    for kind in PushKind:
        if kind in data:
            found = _kind(kind, data[kind], problems)
            if found is not None:
                kinds[kind] = found
    if problems:
        raise PushTemplateError(problems)
    return PushTemplate(str(fmt), kinds)


def status_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The default fields of a status push from its context (as `bridge.push.status`)."""
    names = DEFAULT_FIELDS[PushKind.STATUS][1:]
    return {"type": "order_status", **{f: context.get(f, "") for f in names}}


def inbound_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The default fields of an inbound push from its context (as templates/push/body.*)."""
    return {
        "type": "inbound_sms",
        "id": context.get("inbound_id"),
        "from": context.get("source", ""),
        "to": context.get("destination", ""),
        "text": context.get("text", ""),
        "keyword": context.get("keyword", ""),
        "customer": context.get("customer", ""),
        "received_at": context.get("received_at", ""),
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def render(
    template: PushTemplate, kind: PushKind, values: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The body and content type of a `kind` push by the template; None: the kind keeps
    today's body (the template has no fields for it)."""
    t = template.kinds.get(kind)
    if t is None:
        return None
    pairs = [(f.name, values.get(f.field) if f.field is not None else f.value) for f in t.fields]
    if template.format == "xml":
        inner = "".join(f"<{k}>{escape(_text(v))}</{k}>" for k, v in pairs)
        body = f'<?xml version="1.0" encoding="utf-8"?><{t.root}>{inner}</{t.root}>'
    elif template.format == "kv":
        body = urlencode([(k, _text(v)) for k, v in pairs])
    else:
        body = json.dumps(dict(pairs), ensure_ascii=False)
    return body, CONTENT_TYPES[template.format]


# What `preview` fills the fields with.
SAMPLES: Final[dict[PushKind, dict[str, Any]]] = {
    PushKind.STATUS: status_values(
        {
            "order_id": "7QK3A1B2C3D4E.1",
            "mail_id": "7QK3A1B2C3D4E",
            "status": "delivered",
            "recipient": "+491701234567",
            "sender_id": "ACME",
            "parts": 1,
            "error": "",
            "final_at": "2026-12-01T09:00:05+00:00",
            "cost_centre": "4711",
        }
    ),
    PushKind.INBOUND: inbound_values(
        {
            "inbound_id": 4711,
            "source": "+491701234567",
            "destination": "+4915550000001",
            "text": "Yes, 3pm is fine <3",
            "keyword": "",
            "customer": "acme",
            "received_at": "2026-12-01 09:00:00 UTC",
        }
    ),
}


def preview(template: PushTemplate) -> dict[str, Any]:
    """Each kind's body with sample values: {"status": {...} | None, "inbound": ...}.

    None for a kind the template leaves to today's body.
    """
    out: dict[str, Any] = {}
    for kind in PushKind:
        found = render(template, kind, SAMPLES[kind])
        out[kind.value] = None if found is None else {"content_type": found[1], "body": found[0]}
    return out
