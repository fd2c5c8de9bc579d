"""Limits on rendering a customer's template: time, output size, size of the values it builds.

The sandbox keeps a template away from Python internals, but a customer's template could
still loop for hours (`{% for a in range(99999) %}{% for b in range(99999) %}…`) or build
huge strings (`'x' * 10**9`, `'a'.ljust(10**9)`, doubling with `~` in a loop).
`LimitedEnvironment` bounds every render of its templates (`render`):

* time: a deadline checked on every line of this environment's template code (a trace
  function in the rendering thread, during the render only) and on every call;
* output: counted as it is generated;
* values: results of `*`, `**`, `+`, `%`, `~`, calls and filters longer than the output
  limit are refused, and so are widths that would build one (`ljust(10**9)`,
  `center(10**9)`, `'{:>999999999}'.format(x)`, `replace('', …)`) before they are built.

Going over a limit raises `TemplateLimitError` (a jinja2 `SecurityError`).
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from jinja2 import Environment, Template
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat, EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bridge.errors import InputError

_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d*))?")
_BRACE_FIELD = re.compile(r"\{[^{}]*\}")
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate"})
_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class TemplateLimitError(SecurityError, InputError):
    """A template went over its time or size limit; the message says which."""


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    seconds: float = 5.0  # wall time of one render
    max_chars: int = 5_000_000  # characters of output, and of any value built on the way


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


class _Generator(CodeGenerator):
    """Compiles `a ~ b` to a size-checked join."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.bounded(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """A sandboxed environment whose renders (`render`) are bounded by `limits`."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: TemplateLimits, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self._deadline = threading.local()  # per rendering thread
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}

    # -- the checks ---------------------------------------------------------------------

    def tick(self) -> None:
        deadline = getattr(self._deadline, "at", None)
        if deadline is not None and time.monotonic() > deadline:
            raise TemplateLimitError(
                f"template render took longer than {self.limits.seconds:g} s; it was stopped"
            )

    def bounded(self, value: Any) -> Any:
        if _size(value) > self.limits.max_chars:
            raise TemplateLimitError(
                f"a template value grew beyond {self.limits.max_chars} characters"
            )
        return value

    def _width(self, *numbers: object) -> None:
        for n in numbers:
            if isinstance(n, int) and not isinstance(n, bool) and abs(n) > self.limits.max_chars:
                raise TemplateLimitError(f"width {n} is beyond {self.limits.max_chars} characters")

    def _format_widths(self, fmt: str, pattern: re.Pattern[str]) -> None:
        for match in pattern.finditer(fmt):
            self._width(*(int(d) for d in re.findall(r"\d+", match.group(0))))

    def _replace(self, text: object, old: object, new: object) -> None:
        if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
            grows = len(new) - len(old)
            if grows > 0:
                count = len(text) + 1 if not old else text.count(old)
                if len(text) + grows * count > self.limits.max_chars:
                    raise TemplateLimitError(
                        f"replace would grow a value beyond {self.limits.max_chars} characters"
                    )

    def _bounded_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def bounded_filter(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            values = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
            if name in _WIDTH_FILTERS:
                self._width(*values, *kwargs.values())
            elif name == "replace" and len(values) >= 3:
                self._replace(values[0], values[1], values[2])
            elif name == "format" and values and isinstance(values[0], str):
                self._format_widths(values[0], _PERCENT_WIDTH)
            return self.bounded(func(*args, **kwargs))

        return bounded_filter

    # -- the sandbox's hooks ------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and isinstance(n, int):
                    self._width(_size(seq) * n)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > 4 * 8192:
                raise TemplateLimitError(f"{left} ** {right} is too large a number")
        elif operator == "%" and isinstance(left, str):
            self._format_widths(left, _PERCENT_WIDTH)
        elif operator == "+":
            self._width(_size(left) + _size(right))
        return self.bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.tick()
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if isinstance(owner, str) and name in ("format", "format_map"):
            __self._format_widths(owner, _BRACE_FIELD)
        elif isinstance(owner, str) and name == "replace" and len(args) >= 2:
            __self._replace(owner, args[0], args[1])
        elif (isinstance(owner, str) and name in _STR_WIDTH_METHODS) or (
            name == "generate_lorem_ipsum"
        ):
            __self._width(*args, *kwargs.values())
        return __self.bounded(super().call(__context, __obj, *args, **kwargs))

    # -- rendering ----------------------------------------------------------------------

    def render(self, template: Template, context: Mapping[str, Any]) -> str:
        """`template.render(context)` within the time and size limits."""
        limits = self.limits
        previous = sys.gettrace()
        self._deadline.at = time.monotonic() + limits.seconds

        def line(frame: FrameType, event: str, arg: object) -> Any:
            self.tick()
            return line

        def calls(frame: FrameType, event: str, arg: object) -> Any:
            if frame.f_globals.get("environment") is self:  # this environment's template code
                self.tick()
                return line
            return None

        out: list[str] = []
        total = 0
        sys.settrace(calls)
        try:
            for chunk in template.generate(context):
                total += len(chunk)
                if total > limits.max_chars:
                    raise TemplateLimitError(
                        f"template output is longer than {limits.max_chars} characters"
                    )
                out.append(chunk)
        finally:
            sys.settrace(previous)
            self._deadline.at = None
        return "".join(out)
