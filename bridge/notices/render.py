"""Notice rendering: a Jinja template pair (.txt + .html, plus .subject) into one e-mail.

Templates live in `templates/` (a base layout and one pair per notice kind) and run
in a sandboxed Jinja environment with autoescaping for HTML, so customer templates
cannot reach Python internals and SMS text cannot inject markup. Notices about a mail
carry `In-Reply-To`/`References` to its Message-ID (so they thread under it) and
`Auto-Submitted: auto-replied` (so auto-responders do not answer them). Every header
value comes through `headers` (checked addresses, cleaned names and subjects).

Compiled templates are kept per (customer, name) and checked against their files at most
every `RECHECK` seconds (Jinja would stat every file on every render): an edited template
is used from the next render after at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Template

from bridge import packaged
from bridge.notices import fastmime, headers
from bridge.notices.customer_templates import Templates
from bridge.notices.limits import TemplateLimits

DEFAULT_TEMPLATES = packaged.TEMPLATES  # inside the installed package
RECHECK = 5.0  # seconds between checks whether a template's file changed
SUBJECT_LIMIT = 250  # characters of a rendered subject


class Renderer:
    def __init__(
        self,
        templates: Path,
        *,
        from_address: str,
        from_name: str,
        hostname: str,
        customer_templates: Path | None = None,
        template_limits: TemplateLimits | None = None,
    ) -> None:
        self.templates = Templates(
            templates, customer_templates, template_limits, sender_name=from_name
        )
        self.env = self.templates.default
        self.from_address = from_address
        self.from_name = from_name
        self.hostname = hostname
        self._compiled: dict[tuple[str, str], tuple[Template, float]] = {}

    def template(self, customer: str, name: str) -> Template:
        """The compiled template `name` for `customer` (its override or ours)."""
        key = (customer, name)
        now = time.monotonic()
        hit = self._compiled.get(key)
        if hit is not None and now - hit[1] < RECHECK:
            return hit[0]
        template = self.templates.env(customer).get_template(name)  # checks the file
        self._compiled[key] = (template, now)
        return template

    def render_text(self, kind: str, context: Mapping[str, Any]) -> str:
        """Only the plain-text body of a notice (for the terminal)."""
        return self.env.get_template(f"{kind}.txt").render(context)

    def _bodies(self, kind: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
        customer = str(context.get("customer") or "")
        run = self.templates.run  # a customer's template within its time and size limits
        subject = run(self.template(customer, f"{kind}.subject"), context).strip()
        text = run(self.template(customer, f"{kind}.txt"), context)
        html = run(self.template(customer, f"{kind}.html"), context)
        return headers.text(subject, SUBJECT_LIMIT), text, html

    def render(self, kind: str, recipient: str, context: Mapping[str, Any]) -> EmailMessage:
        return self._message(recipient, context, *self._bodies(kind, context))

    def render_bytes(self, kind: str, recipient: str, context: Mapping[str, Any]) -> bytes:
        """`render(...).as_bytes()`, built directly when the headers are simple (cheaper)."""
        subject, text, html = self._bodies(kind, context)
        fast = None if context.get("attachments") else self._fast(recipient, context, subject)
        if fast is not None:
            data = fastmime.alternative(fast, text, html)
            if data is not None:
                return data
        return self._message(recipient, context, subject, text, html).as_bytes()

    def _head(self, recipient: str, context: Mapping[str, Any]) -> _Head:
        """The checked and cleaned header values of a notice (one place for every kind)."""
        sender = headers.checked_mailbox(
            context.get("from_name") or self.from_name, self.from_address
        )
        to = headers.checked_mailbox(context.get("to_name") or "", recipient)
        reply_to = headers.mail_address(str(context.get("reply_to") or ""))
        original = headers.msg_ids(context.get("in_reply_to"))[:1]
        references = (headers.msg_ids(context.get("references")) or original) if original else []
        return _Head(sender, to, reply_to, "".join(original), " ".join(references))

    def _fast(
        self, recipient: str, context: Mapping[str, Any], subject: str
    ) -> list[tuple[str, str]] | None:
        """The headers `_message` would write, when each is plain ASCII as given."""
        head = self._head(recipient, context)
        sender = fastmime.simple_address(head.sender.name, head.sender.address)
        to = fastmime.simple_address(head.to.name, head.to.address)
        if sender is None or to is None:
            return None
        fields = [
            ("From", sender),
            ("To", to),
            ("Subject", subject),
            ("Date", formatdate(localtime=False)),
            ("Message-ID", make_msgid(domain=self.hostname)),
            ("Auto-Submitted", "auto-replied"),
        ]
        if head.reply_to:
            if fastmime.simple_address("", head.reply_to) is None:
                return None
            fields.append(("Reply-To", head.reply_to))
        if head.in_reply_to:
            fields.append(("In-Reply-To", head.in_reply_to))
            fields.append(("References", head.references))
        return fields

    def _message(
        self, recipient: str, context: Mapping[str, Any], subject: str, text: str, html: str
    ) -> EmailMessage:
        head = self._head(recipient, context)
        msg = EmailMessage()
        msg["From"] = head.sender.formatted()
        msg["To"] = head.to.formatted()
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.hostname)
        msg["Auto-Submitted"] = "auto-replied"
        if head.reply_to:
            msg["Reply-To"] = head.reply_to
        if head.in_reply_to:
            msg["In-Reply-To"] = head.in_reply_to
            msg["References"] = head.references
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        for att in context.get("attachments") or ():
            maintype, _, subtype = str(att["mimetype"]).partition("/")
            msg.add_attachment(
                str(att["content"]).encode(), maintype, subtype, filename=str(att["filename"])
            )
        return msg


@dataclass(frozen=True, slots=True)
class _Head:
    sender: headers.Mailbox
    to: headers.Mailbox
    reply_to: str | None
    in_reply_to: str
    references: str
