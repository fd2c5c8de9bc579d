"""Notice rendering: a Jinja template pair (.txt + .html, plus .subject) into one e-mail.

Templates live in `templates/` (a base layout and one pair per notice kind) and run
in a sandboxed Jinja environment with autoescaping for HTML, so customer templates
cannot reach Python internals and SMS text cannot inject markup. Notices about a mail
carry `In-Reply-To`/`References` to its Message-ID (so they thread under it) and
`Auto-Submitted: auto-replied` (so auto-responders do not answer them). The message is
built by `mime` (which checks every header value).

Compiled templates are kept per (customer, name) and looked up again at most every
`RECHECK` seconds; their files (a parent's too) are checked as often (`customer_templates`):
an edited template is used from the next render after at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Template

from bridge import packaged
from bridge.notices import mime
from bridge.notices.customer_templates import RECHECK, Clock, Templates
from bridge.notices.limits import TemplateLimits

DEFAULT_TEMPLATES = packaged.TEMPLATES  # inside the installed package


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
        clock: Clock = time.monotonic,
    ) -> None:
        self.templates = Templates(
            templates, customer_templates, template_limits, sender_name=from_name, clock=clock
        )
        self.env = self.templates.default
        self.from_address = from_address
        self.from_name = from_name
        self.hostname = hostname
        self._compiled: dict[tuple[str, str], tuple[Template, float]] = {}

    def template(self, customer: str, name: str) -> Template:
        """The compiled template `name` for `customer` (its override or ours)."""
        key = (customer, name)
        now = self.templates.clock()
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
        return subject, text, html

    def render(self, kind: str, recipient: str, context: Mapping[str, Any]) -> EmailMessage:
        """The notice as an `EmailMessage` (for a preview; `render_bytes` is what is sent)."""
        subject, text, html = self._bodies(kind, context)
        head = self._head(recipient, context, subject)
        return mime.alternative_message(head, text, html, _attachments(context))

    def render_bytes(self, kind: str, recipient: str, context: Mapping[str, Any]) -> bytes:
        """The notice as the bytes of a mail (`bridge.notices.mime`)."""
        subject, text, html = self._bodies(kind, context)
        head = self._head(recipient, context, subject)
        return mime.alternative(head, text, html, _attachments(context))

    def _head(self, recipient: str, context: Mapping[str, Any], subject: str) -> mime.Head:
        """The checked header values of a notice (one place for every kind)."""
        return mime.head(
            (context.get("from_name") or self.from_name, self.from_address),
            [(context.get("to_name") or "", recipient)],
            subject,
            domain=self.hostname,
            reply_to=context.get("reply_to"),
            in_reply_to=context.get("in_reply_to"),
            references=context.get("references"),
        )


def _attachments(context: Mapping[str, Any]) -> tuple[mime.Attachment, ...]:
    return tuple(
        mime.Attachment(str(a["filename"]), str(a["mimetype"]), str(a["content"]))
        for a in context.get("attachments") or ()
    )
