"""`[server] event_loop`: "auto" runs on uvloop where it is installed, else on Python's own
loop; "uvloop" without it stops the start with a sentence."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from bridge.app import loop_factory
from bridge.errors import ConfigError
from bridge.settings import ServerSettings


def test_auto_is_the_default_and_runs_on_uvloop_where_it_is_installed() -> None:
    assert ServerSettings().event_loop == "auto"
    factory = loop_factory("auto")
    assert factory is uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
    assert loop_factory("uvloop") is uvloop.new_event_loop


def test_asyncio_is_pythons_own_loop() -> None:
    assert loop_factory("asyncio") is None


def test_without_uvloop_auto_falls_back_and_uvloop_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert loop_factory("auto") is None
    with pytest.raises(ConfigError, match=r"uvloop is not installed; install it \(pip install"):
        loop_factory("uvloop")
