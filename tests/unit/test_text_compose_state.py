"""The compose stages' copies of their state equal dataclasses.replace's."""

from __future__ import annotations

import itertools
from dataclasses import replace

from bridge.text.compose import _State

STATES = [
    _State("s", "b"),
    _State("", "", "t", ("x",), "subject"),
    _State("Re: a", "body\n", "text", ("sig", "quote"), "subject_body"),
]
VALUES = ["", "new", " x \n"]


def test_each_copy_changes_only_what_it_names() -> None:
    for state, value in itertools.product(STATES, VALUES):
        assert state.with_subject(value) == replace(state, subject=value)
        assert state.with_body(value, ("r",)) == replace(state, body=value, removed=("r",))
        assert state.with_text(value) == replace(state, text=value)
        for source in ("none", "subject", "body", "subject_body"):
            assert state.with_text(value, source) == replace(state, text=value, source=source)
