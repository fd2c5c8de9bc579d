"""Log fields from the context: the mail, order, notice, SMTP session, customer, SMSC of a line.

The edges set them (`fields(...)`): the SMTP session for every line of a session, the
intake for the mail and its customer, dispatch for the order and its SMSC, the mailer
for the notice. They live in context variables, so each asyncio task (an SMTP session,
one order's submit, one notice's delivery) carries its own and a line logged anywhere
below picks them up. `configure(level, fmt)` sets up the root logger: "text" is the
plain line it always was, "json" is one JSON object per line with the fields that are
set (python-json-logger).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

FIELDS: Final = ("mail_id", "order_id", "notice_id", "session", "customer", "smsc")
_VARS: Final = {name: ContextVar[str | None](f"log_{name}", default=None) for name in FIELDS}

TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# With [server] processes > 1: which process wrote the line.
TEXT_FORMAT_PID: Final = "%(asctime)s %(levelname)-7s [%(process)d] %(name)s: %(message)s"
LogFormat = Literal["text", "json"]


def set_fields(**values: str | None) -> None:
    """Set fields for the rest of the current task (an unknown name is a programming error)."""
    for name, value in values.items():
        _VARS[name].set(value)


@contextmanager
def fields(**values: str | None) -> Iterator[None]:
    """Set fields for the lines logged inside the block, then restore the previous ones."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    """The fields set here and now."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Put the context's fields on each record (as attributes, for the JSON formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def formatter(fmt: LogFormat, with_pid: bool = False) -> logging.Formatter:
    """`with_pid`: each line names the process that wrote it (text; JSON: field `process`)."""
    if fmt == "json":
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s" + (" %(process)d" if with_pid else ""),
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )
    return logging.Formatter(TEXT_FORMAT_PID if with_pid else TEXT_FORMAT)


def configure(
    level: str, fmt: LogFormat, stream: TextIO | None = None, *, with_pid: bool = False
) -> logging.Handler:
    """Log to stderr (or `stream`) in `fmt` at `level`, as `logging.basicConfig` does.

    Like basicConfig, it leaves a root logger alone that already has handlers (a host
    that embeds the bridge chose its own). Returns the handler it made.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt, with_pid))
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level, handlers=[handler])
    return handler
