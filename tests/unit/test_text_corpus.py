"""Every corpus mail in tests/data/corpus yields its expected SMS text."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mailparser_reply import EmailReplyParser

from bridge.text.clean import CleanRules
from bridge.text.compose import ComposeRules, compose
from bridge.text.mime import extract
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
    assert len(MAILS) >= 35


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


def sign_off_cuts() -> tuple[list[str], list[str], list[str]]:
    """Corpus mails whose sign-off was cut, cut without being expected, expected but kept."""
    cut, false_cuts, misses = [], [], []
    for eml in MAILS:
        meta = _meta(eml)
        rules = _rules(meta)
        mail = extract(eml.read_bytes())
        off = replace(rules, clean=replace(rules.clean, sign_off=False))
        was_cut = compose(mail, rules).text != compose(mail, off).text
        expected = bool(meta.get("sign_off", False))
        if was_cut:
            cut.append(eml.stem)
        if was_cut and not expected:
            false_cuts.append(eml.stem)
        if expected and not was_cut:
            misses.append(eml.stem)
    return cut, false_cuts, misses


def test_sign_off_detection_on_the_whole_corpus() -> None:
    cut, false_cuts, misses = sign_off_cuts()
    assert false_cuts == [] and misses == []
    assert len(cut) >= 15  # the measurement covers many signatures, in several languages


def test_a_reply_parser_agrees_every_quote_header_is_gone() -> None:
    """Second opinion: each reply header mail-parser-reply finds is absent from our text."""
    parser = EmailReplyParser(languages=["en", "de", "fr", "es", "nl", "it", "pl", "sv", "da"])
    checked = 0
    for eml in MAILS:
        meta = _meta(eml)
        mail = extract(eml.read_bytes())
        ours = compose(mail, _rules(meta)).text
        for reply in parser.read(mail.body).replies[1:]:
            first_line = reply.headers.strip().split("\n")[0].strip()
            if first_line:
                checked += 1
                assert first_line not in ours, (eml.stem, first_line)
    assert checked >= 10
