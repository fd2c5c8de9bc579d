"""Log fields from the context: text lines as they always were, JSON lines with the ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import logcontext
from bridge.errors import ConfigError
from bridge.settings import load_settings

Captured = tuple[logging.Logger, io.StringIO, logging.Handler]


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logcontext.ContextFilter())
    logger = logging.getLogger("test.logcontext")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)


def test_text_lines_are_unchanged_by_the_fields(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(logcontext.formatter("text"))
    with logcontext.fields(mail_id="ABC", session="s1"):
        logger.info("ABC: accepted")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    test\.logcontext: ABC: accepted\n",
        stream.getvalue(),
    )


def test_json_lines_carry_the_fields_set_around_them(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(logcontext.formatter("json"))
    with logcontext.fields(session="s1", customer="acme"):
        with logcontext.fields(order_id="ABC.1", mail_id="ABC", smsc="a"):
            logger.info("order %s submitted", "ABC.1")
        logger.warning("after the order")
    logger.info("outside")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "order ABC.1 submitted" and first["level"] == "INFO"
    assert first["logger"] == "test.logcontext" and first["time"].endswith("+00:00")
    assert {k: first[k] for k in logcontext.FIELDS if k in first} == {
        "session": "s1",
        "customer": "acme",
        "order_id": "ABC.1",
        "mail_id": "ABC",
        "smsc": "a",
    }
    assert second["session"] == "s1" and "order_id" not in second
    assert not set(logcontext.FIELDS) & set(third)


async def test_each_task_keeps_its_own_fields(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(logcontext.formatter("json"))

    async def session(name: str) -> None:
        logcontext.set_fields(session=name)
        await asyncio.sleep(0.01)
        logger.info("line of %s", name)

    await asyncio.gather(session("one"), session("two"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {(line["message"], line["session"]) for line in lines} == {
        ("line of one", "one"),
        ("line of two", "two"),
    }
    assert logcontext.current() == {}  # the tasks' fields stayed in the tasks


def test_log_format_is_text_or_json(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('log_format = "json"\n[sandbox]\nenabled = true\n', encoding="utf-8")
    assert load_settings(path, environ={}).log_format == "json"
    assert load_settings(None, environ={}).log_format == "text"
    path.write_text('log_format = "xml"\n[sandbox]\nenabled = true\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(path, environ={})
