"""The text engine's shortcuts give what the full work gives: the container count only when
a container type is named, header values without folding, encoded words or 8-bit bytes
returned stripped, and the cleaned body not normalised a second time."""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import pytest

from bridge.text.charset import _FOLD, decode_header_value, undo_surrogateescape
from bridge.text.clean import CleanRules, normalise_whitespace
from bridge.text.compose import ComposeRules, _State, compose
from bridge.text.controls import one_line
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import _CONTAINER, _prescan, extract

compose_module = sys.modules["bridge.text.compose"]  # (bridge.text.compose is the function)
CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
SPACES = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000\u200b"


def _mails() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


def _texts() -> list[str]:
    texts = []
    for raw in _mails():
        try:
            mail = extract(raw)
        except ValueError:
            continue
        texts += [mail.body, mail.subject]
    rng = random.Random(18)
    for size in (1, 3, 10, 60, 300):
        for _ in range(1500):
            texts.append("".join(rng.choices("ab>-" + SPACES, k=size)))
    return texts


def _prescan_by_pattern(raw: bytes, max_depth: int, max_parts: int) -> None:
    """The former form: every mail's container headers counted by the pattern."""
    limit = min(max_parts, max(max_depth, 1) * 50, 900)
    for count, _ in enumerate(_CONTAINER.finditer(raw), start=1):
        if count > limit:
            raise MimeTooComplex(
                f"the mail has more than {limit} nested MIME containers (multipart or message)"
            )


def _outcome(fn: object, *args: object) -> str | None:
    try:
        fn(*args)  # type: ignore[operator]
    except MimeTooComplex as exc:
        return str(exc)
    return None


def test_the_container_count_is_the_patterns() -> None:
    raws = _mails()
    rng = random.Random(18)
    pieces = [
        b"Content-Type: multipart/mixed\r\n",
        b"content-TYPE:\r\n\tMESSAGE/rfc822\r\n",
        b"Content-Type: text/plain\r\n",
        b"x multipart/ message/\r\n",
        b"body\r\n",
        b"CONTENT-TYPE: Multipart/Alternative\n",
    ]
    raws += [b"".join(rng.choices(pieces, k=rng.randint(0, 8))) for _ in range(3000)]
    raised = 0
    for raw, (depth, parts) in itertools.product(raws, ((20, 100), (1, 2), (0, 1))):
        want = _outcome(_prescan_by_pattern, raw, depth, parts)
        assert _outcome(_prescan, raw, depth, parts) == want, raw[:200]
        raised += want is not None
    assert raised  # the limit was reached


def _decoded_in_full(value: str | None) -> str:
    """The former form: every value unfolded and its 8-bit bytes undone before the check
    (then, as every decoded value, without control characters)."""
    if not value:
        return ""
    value = undo_surrogateescape(_FOLD.sub(" ", str(value)))
    if "=?" not in value:
        return one_line(value).strip()
    return decode_header_value(value)  # encoded words: the same code either way


def test_header_values_decode_as_in_full() -> None:
    values: list[str | None] = [None, ""]
    for raw in _mails():
        values += [value for _, value in extract(raw).headers]
    rng = random.Random(18)
    alphabet = ["a", " ", "\t", "\r\n ", "\n\t", "\r", "=?", "?=", "\udcc3\udca4", "é", "\x85"]
    values += ["".join(rng.choices(alphabet, k=rng.randint(0, 10))) for _ in range(20_000)]
    values += ["=?utf-8?q?Gr=C3=BC=C3=9Fe?=", " x\r\n y ", "caf\udce9"]
    for value in values:
        assert decode_header_value(value) == _decoded_in_full(value), repr(value)


@pytest.mark.parametrize("collapse", [True, False])
def test_normalising_twice_gives_what_once_gives(collapse: bool) -> None:
    for text in _texts():
        once = normalise_whitespace(text, collapse_spaces=collapse)
        assert normalise_whitespace(once, collapse_spaces=collapse) == once, repr(text)


def _whitespace_always(state: _State, rules: ComposeRules) -> _State:
    """The former whitespace stage: the text normalised whatever it came from."""
    if not rules.clean.whitespace:
        return state.with_text(state.text.strip())
    collapse = rules.clean.collapse_spaces
    return state.with_text(normalise_whitespace(state.text, collapse_spaces=collapse))


def test_compose_gives_what_the_stage_that_always_normalises_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mails = []
    for raw in _mails():
        try:
            mails.append(extract(raw))
        except ValueError:
            continue
    rules = [
        ComposeRules(
            subject=mode,
            separator=separator,
            clean=CleanRules(whitespace=ws, collapse_spaces=collapse),
        )
        for mode in ("body", "subject", "subject_body")
        for separator in ("\n", " -  ", "\n \n\n")
        for ws, collapse in ((True, True), (True, False), (False, True))
    ]
    fast = [compose(mail, r) for mail in mails for r in rules]
    stages = tuple(
        (name, _whitespace_always if name == "whitespace" else stage)
        for name, stage in compose_module.STAGES
    )
    monkeypatch.setattr(compose_module, "STAGES", stages)
    assert [compose(mail, r) for mail in mails for r in rules] == fast
    assert sum(c.source == "body" for c in fast) > 50  # the shortcut was taken
