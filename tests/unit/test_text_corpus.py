"""Every corpus mail in tests/data/corpus yields its expected SMS text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.text.clean import CleanRules
from bridge.text.compose import ComposeRules
from bridge.text.pipeline import SmsPolicy, bench_corpus, render

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
MAILS = sorted(CORPUS.glob("*.eml"))


def _meta(eml: Path) -> dict[str, Any]:
    path = eml.with_suffix(".json")
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _rules(meta: dict[str, Any]) -> ComposeRules:
    kwargs = dict(meta.get("compose", {}))
    if "clean" in kwargs:
        clean: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in kwargs["clean"].items()
        }
        kwargs["clean"] = CleanRules(**clean)
    return ComposeRules(**kwargs)


def test_corpus_is_not_empty() -> None:
    assert len(MAILS) >= 15


@pytest.mark.parametrize("eml", MAILS, ids=[m.stem for m in MAILS])
def test_corpus_mail(eml: Path) -> None:
    meta = _meta(eml)
    expected = eml.with_suffix(".txt").read_text(encoding="utf-8").removesuffix("\n")
    rendered = render(eml.read_bytes(), _rules(meta), SmsPolicy(**meta.get("policy", {})))
    assert rendered.plan.text == expected
    if "encoding" in meta:
        assert rendered.plan.encoding == meta["encoding"]
    if "parts" in meta:
        assert rendered.plan.parts == meta["parts"]
    assert rendered.mail.attachments == meta.get("attachments", 0)


def test_bench_corpus_runs() -> None:
    result = bench_corpus([m.read_bytes() for m in MAILS], rounds=1)
    assert result.mails == len(MAILS) and result.rejected == 0 and result.per_second > 0
