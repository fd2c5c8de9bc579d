"""A session built from the remembered lookups is the session aiosmtpd's own __init__ builds."""

from __future__ import annotations

import asyncio
import dataclasses
import types
import weakref
from pathlib import Path
from typing import Any

import aiosmtpd
import trustme

from bridge.intake.listener import tls_context
from bridge.intake.server import AIOSMTPD_KNOWN, BridgeSMTP, Shared
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import tls_settings
from tests.smtp_probe import RawSmtp


def _shape(value: Any, session: object) -> Any:
    """A value with the session it belongs to named, comparable across two sessions."""
    if value is session:
        return "<session>"
    if isinstance(value, types.MethodType):
        return ("method", value.__func__, _shape(value.__self__, session))
    if isinstance(value, types.FunctionType):  # the guard around each command
        cells = tuple(_shape(c.cell_contents, session) for c in value.__closure__ or ())
        return ("function", value.__qualname__, cells, dict(vars(value)))
    if isinstance(value, dict):
        return (type(value), [(k, _shape(v, session)) for k, v in value.items()])
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # aiosmtpd's _AuthMechAttr
        return (type(value), tuple(_shape(v, session) for v in value))
    if isinstance(value, asyncio.StreamReader):
        return ("reader", value._limit, value._loop)  # type: ignore[attr-defined]
    if isinstance(value, weakref.ref):
        return ("weakref", _shape(value(), session))
    if isinstance(value, asyncio.Future):
        return ("future", value.done(), value.get_loop())
    return value


def _state(session: BridgeSMTP) -> dict[str, Any]:
    state = {name: _shape(value, session) for name, value in vars(session).items()}
    if isinstance(state.get("_stream_reader_wr"), tuple):  # the reader is the session's own
        assert session._stream_reader_wr() is session._strong_reader  # type: ignore[attr-defined]
    return state


def _sessions(settings: Settings, handler: Any, shared: Shared) -> tuple[BridgeSMTP, BridgeSMTP]:
    """A session by aiosmtpd's __init__ and one from the lookups it left, as the listener
    makes them."""
    smtp = settings.smtp
    options: dict[str, Any] = {
        "hostname": smtp.hostname,
        "ident": "mailsms ESMTP",
        "data_size_limit": smtp.data_size_limit,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "tls_context": tls_context(smtp),
        "require_starttls": False,
        "auth_require_tls": True,
        "timeout": smtp.timeout,
        "command_call_limit": smtp.command_call_limit,
    }
    fresh = dataclasses.replace(shared, lookups=None)
    by_aiosmtpd = BridgeSMTP(handler, shared=fresh, **options)
    if aiosmtpd.__version__ != AIOSMTPD_KNOWN:
        # another release: nothing is remembered, every session is aiosmtpd's own (to use
        # the lookups again, compare `_init_known` with its __init__ and raise the constant)
        assert fresh.lookups is None
    else:
        assert fresh.lookups is not None  # remembered from that session
    return by_aiosmtpd, BridgeSMTP(handler, shared=fresh, **options)


async def _compare(settings: Settings) -> None:
    async with running_bridge(settings) as (bridge, _):
        slow, fast = _sessions(settings, bridge.handler, bridge._shared)  # type: ignore[arg-type]
        assert _state(fast) == _state(slow)
        assert fast._auth_methods.keys() and fast._smtp_methods.keys() >= {"HELP", "DATA"}


async def test_a_session_from_the_lookups_equals_aiosmtpds(tmp_path: Path) -> None:
    await _compare(make_settings(tmp_path))


async def test_a_tls_session_from_the_lookups_equals_aiosmtpds(tmp_path: Path) -> None:
    await _compare(tls_settings(tmp_path, trustme.CA()))


async def test_help_answers_alike_in_the_first_session_and_the_next(tmp_path: Path) -> None:
    """HELP reads aiosmtpd's syntax marks: the first session (aiosmtpd's __init__) and the
    next ones (the lookups) answer the same."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        answers = []
        for _ in range(3):
            client = await RawSmtp.connect(*ep.smtp)
            await client.read_reply()
            await client.command("EHLO probe")
            answers.append([await client.command(f"HELP {c}") for c in ("MAIL", "DATA", "")])
            await client.command("QUIT")
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0].startswith("250 Syntax: MAIL FROM: <address>"), answers[0]
    assert answers[0][1].strip() == "250 Syntax: DATA", answers[0]
