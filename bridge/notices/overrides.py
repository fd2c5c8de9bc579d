"""Per-customer templates: a sandboxed Jinja environment per customer, its folder before ours.

With `customer_templates = "/etc/mailsms/templates"`, a customer named "acme" overrides
any template by putting a file of the same name in `/etc/mailsms/templates/acme/`.
Every environment is an `ImmutableSandboxedEnvironment` (a template cannot reach Python
internals nor mutate what it is given) with autoescaping for `.html` and `.xml`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _env(loader: BaseLoader, names: Mapping[str, Any]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(names)
    return env


class Templates:
    """Template environments: the bridge's own, or a customer's overriding it."""

    def __init__(
        self,
        base: Path,
        customer_root: Path | None = None,
        *,
        sender_name: str = "SMS Bridge",
    ) -> None:
        self.base = base
        self.customer_root = customer_root
        # Known to every template (base.html shows it in the header): the configured name.
        self.names: dict[str, Any] = {"sender_name": sender_name}
        self.default = _env(FileSystemLoader(str(base)), self.names)
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
            env = _env(
                ChoiceLoader([FileSystemLoader(str(folder)), FileSystemLoader(str(self.base))]),
                self.names,
            )
            self._cache[customer] = env
        return env

    def render(self, name: str, context: Mapping[str, Any], customer: str | None = None) -> str:
        return self.env(customer).get_template(name).render(context)

    def render_string(self, source: str, context: Mapping[str, Any]) -> str:
        """A short template given inline (e.g. an auto-reply text), never autoescaped."""
        return self.default.from_string(source).render(context)
