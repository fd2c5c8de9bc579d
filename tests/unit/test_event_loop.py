"""`[server] event_loop`: Python's own loop by default, uvloop when asked for; "uvloop"
without it installed stops the start with a sentence."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from bridge.app import loop_factory
from bridge.errors import ConfigError
from bridge.settings import ServerSettings


def test_asyncio_is_the_default_and_pythons_own_loop() -> None:
    assert ServerSettings().event_loop == "asyncio"
    assert loop_factory("asyncio") is None


def test_uvloop_runs_on_uvloop() -> None:
    factory = loop_factory("uvloop")
    assert factory is uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)


def test_uvloop_without_it_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    with pytest.raises(ConfigError, match=r"uvloop is not installed; install it \(pip install"):
        loop_factory("uvloop")
