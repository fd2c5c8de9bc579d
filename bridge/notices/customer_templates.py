"""Per-customer templates: a sandboxed Jinja environment per customer, its folder before ours.

With `customer_templates = "/etc/mailsms/templates"`, a customer named "acme" overrides
any template by putting a file of the same name in `/etc/mailsms/templates/acme/`.
Every environment is an `ImmutableSandboxedEnvironment` (a template cannot reach Python
internals nor mutate what it is given) with autoescaping for `.html` and `.xml`. A
customer's environment (and inline texts such as an auto-reply's) is a
`LimitedEnvironment`: each render has a time and an output-size limit (`limits.py`).

Template files are checked at most every `RECHECK` seconds (`RecheckingLoader`): an edited,
added or removed file is used from the first render after that. Jinja alone would stat a
template's file on every lookup (a template's parent, `{% extends "base.html" %}`, is
looked up on every render) and never notice a file added before it in the search.
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bridge.notices.limits import LimitedEnvironment, TemplateLimits

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RECHECK = 5.0  # seconds between checks whether a template's file changed
Clock = Callable[[], float]


class RecheckingLoader(FileSystemLoader):
    """Jinja's file loader over `folders` (the first that has a template's file wins),
    whose templates are compared with the folders at most every `recheck` seconds: a file
    edited, added to an earlier folder or removed is used from the first lookup after that
    (Jinja's own check sees an edit only, and on every lookup)."""

    def __init__(self, folders: Sequence[Path], *, recheck: float = RECHECK, clock: Clock) -> None:
        super().__init__([str(folder) for folder in folders])
        self.recheck = recheck
        self.clock = clock

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, unchanged = super().get_source(environment, template)
        checked = self.clock()

        def uptodate() -> bool:
            nonlocal checked
            now = self.clock()
            if now - checked < self.recheck:
                return True
            checked = now  # two threads at once at worst both look: harmless
            return unchanged() and self._first(template) == filename

        return source, filename, uptodate

    def _first(self, template: str) -> str | None:
        """The file `get_source` would read for `template` now."""
        pieces = split_template_path(template)
        for folder in self.searchpath:
            filename = posixpath.join(folder, *pieces)
            if os.path.isfile(filename):
                return os.path.normpath(filename)
        return None


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
        clock: Clock = time.monotonic,
    ) -> None:
        self.base = base
        self.clock = clock
        self.customer_root = customer_root
        self.limits = limits or TemplateLimits()
        # Known to every template (base.html shows it in the header): the configured name.
        self.names: dict[str, Any] = {"sender_name": sender_name}
        self.default: ImmutableSandboxedEnvironment = _named(
            ImmutableSandboxedEnvironment(**_options(self._loader(base))), self.names
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
            loader = self._loader(folder, self.base)
            env = _named(LimitedEnvironment(self.limits, **_options(loader)), self.names)
            self._cache[customer] = env
        return env

    def _loader(self, *folders: Path) -> RecheckingLoader:
        return RecheckingLoader(folders, clock=self.clock)

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
