"""Per-customer templates: a sandboxed Jinja environment per customer, its folder before ours.

With `customer_templates = "/etc/mailsms/templates"`, a customer named "acme" overrides
any template by putting a file of the same name in `/etc/mailsms/templates/acme/`.
Every environment is an `ImmutableSandboxedEnvironment` (a template cannot reach Python
internals nor mutate what it is given) with autoescaping for `.html` and `.xml`. A
customer's environment (and inline texts such as an auto-reply's) is a
`LimitedEnvironment`: each render has a time and an output-size limit (`limits.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bridge.notices.limits import LimitedEnvironment, TemplateLimits

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _options(loader: BaseLoader | None) -> dict[str, Any]:
    return {
        "loader": loader,
        "autoescape": select_autoescape(
            enabled_extensions=("html", "xml"), default_for_string=False
        ),
        "undefined": StrictUndefined,
        "keep_trailing_newline": True,
    }


def _named(env: ImmutableSandboxedEnvironment, names: Mapping[str, Any]) -> Any:
    env.globals.update(names)
    return env


class Templates:
    """Template environments: the bridge's own, or a customer's overriding it."""

    def __init__(
        self,
        base: Path,
        customer_root: Path | None = None,
        limits: TemplateLimits | None = None,
        *,
        sender_name: str = "SMS Bridge",
    ) -> None:
        self.base = base
        self.customer_root = customer_root
        self.limits = limits or TemplateLimits()
        # Known to every template (base.html shows it in the header): the configured name.
        self.names: dict[str, Any] = {"sender_name": sender_name}
        self.default: ImmutableSandboxedEnvironment = _named(
            ImmutableSandboxedEnvironment(**_options(FileSystemLoader(str(base)))), self.names
        )
        self.strings = LimitedEnvironment(self.limits, **_options(None))
        self._cache: dict[str, ImmutableSandboxedEnvironment] = {}

    def env(self, customer: str | None = None) -> ImmutableSandboxedEnvironment:
        """The environment for `customer` (the default one without an override folder)."""
        if not customer or self.customer_root is None or not _SAFE_NAME.fullmatch(customer):
            return self.default
        folder = self.customer_root / customer
        if not folder.is_dir():
            return self.default
        env = self._cache.get(customer)
        if env is None:
            loader = ChoiceLoader([FileSystemLoader(str(folder)), FileSystemLoader(str(self.base))])
            env = _named(LimitedEnvironment(self.limits, **_options(loader)), self.names)
            self._cache[customer] = env
        return env

    @staticmethod
    def run(template: Template, context: Mapping[str, Any]) -> str:
        """Render `template`, within the limits when it is a customer's."""
        env = template.environment
        if isinstance(env, LimitedEnvironment):
            return env.render(template, context)
        return template.render(context)

    def render(self, name: str, context: Mapping[str, Any], customer: str | None = None) -> str:
        return self.run(self.env(customer).get_template(name), context)

    def render_string(self, source: str, context: Mapping[str, Any]) -> str:
        """A short template given inline (e.g. an auto-reply text), never autoescaped."""
        return self.run(self.strings.from_string(source), context)
