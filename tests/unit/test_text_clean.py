"""Cleaning rules and the compose stages."""

from __future__ import annotations

import pytest

from bridge.text.clean import Cleaned, CleanRules, clean
from bridge.text.compose import STAGES, ComposeRules, compose
from bridge.text.mime import MailText

ALL = CleanRules(end_markers=("##", "$$"), strip_strings=("[EXTERNAL]",))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Call me.\n\nOn Mon, 3 Nov 2025, Bob <b@x.example> wrote:\n> q", "Call me."),
        ("Ruf an.\n\nAm 03.11.2025 um 10:12 schrieb Bob <b@x.example>:\n> q", "Ruf an."),
        ("D'accord.\n\nLe lun. 3 nov. 2025 à 10:12, Bob a écrit :\n> q", "D'accord."),
        ("Sí.\n\nEl lun, 3 nov 2025 a las 10:12, Bob escribió:\n> q", "Sí."),
        ("OK\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\n\nq", "OK"),
        ("OK\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\n\nq", "OK"),
        ("OK\n\nVon: Bob <b@x.example>\nGesendet: Montag\nAn: Karl\nBetreff: AW: x\n\nq", "OK"),
        ("OK\n________________________________\nFrom: Bob\nSent: Monday\nTo: Karl\n\nq", "OK"),
        ("OK\n\nDe : Bob\nEnvoyé : lundi\nÀ : Karl\n\nq", "OK"),
        ("Server down.\n-- \nAlice\nACME", "Server down."),
        ("Alarm\n\nSent from my iPhone", "Alarm"),
        ("Alarm\n\nVon meinem iPhone gesendet", "Alarm"),
        ("Alarm\n\nEnvoyé de mon iPhone", "Alarm"),
        ("Alarm\n\nGet Outlook for Android", "Alarm"),
        ("Alarm\n\nGesendet von Mail für Windows", "Alarm"),
        ("Text ## intern", "Text"),
        ("Text $$ intern", "Text"),
        ("[EXTERNAL] Text", "Text"),
        ("a\n> quoted\nb", "a\nb"),
        ("a   \n\n\n\nb  c", "a\n\nb c"),
        ("Tor zu.\n\nCONFIDENTIALITY NOTICE: secret stuff", "Tor zu."),
        (
            "Tor zu.\n\n-----\nThis e-mail is confidential and intended only for the addressee.",
            "Tor zu.",
        ),
    ],
)
def test_rules(body: str, expected: str) -> None:
    assert clean(body, ALL).text == expected


def test_bottom_posting_keeps_the_answer() -> None:
    result = clean("On Mon, Bob wrote:\n> question?\n\nanswer", ALL)
    assert result.text == "answer"
    assert result.removed == ("On Mon, Bob wrote:\n> question?",)


def test_quote_rules_never_leave_nothing() -> None:
    assert clean("> all quoted", ALL).text == "> all quoted"
    assert clean("On Mon, Bob wrote:\n> all quoted", ALL).text == "> all quoted"


@pytest.mark.parametrize(
    "body",
    [
        "-- \nonly a signature",
        "Sent from my iPhone",
        "Mit freundlichen Grüßen\nKarl Meier\nLeitstand Nord\nTel. +49 30 1234567",
        "Best regards,\nPeter",
    ],
)
def test_a_body_that_is_only_a_signature_is_empty(body: str) -> None:
    assert clean(body, ALL).text == ""


def test_disclaimer_only_near_the_bottom_and_words_in_text_kept() -> None:
    body = "Confidential matters: see below.\n\nFrom: the warehouse, status ok\n\nthanks"
    assert clean(body, ALL).text == body


def test_each_rule_can_be_switched_off() -> None:
    off = CleanRules(
        quotes=False,
        quoted_lines=False,
        signature=False,
        mobile_signature=False,
        disclaimers=False,
        sign_off=False,
        whitespace=False,
    )
    body = "x  \n\n\n-- \nsig\nSent from my iPhone\n> q\nOn Mon, Bob wrote:\n\nRegards\nBob\n"
    assert clean(body, off) == Cleaned(body, ())


def _mail(subject: str, body: str) -> MailText:
    return MailText(subject, body, None, "a@b.example", None, None, 0, 0)


def test_subject_policies() -> None:
    assert compose(_mail("Re: AW: Alarm", "Body")).text == "Body"
    assert compose(_mail("Re: AW: Alarm", "Body"), ComposeRules(subject="subject")).text == "Alarm"
    both = ComposeRules(subject="subject_body", separator=" - ")
    assert compose(_mail("AW: Alarm", "Body"), both).text == "Alarm - Body"
    assert compose(_mail("Alarm", "Alarm\nmore"), both).text == "Alarm\nmore"
    keep = ComposeRules(subject="subject", strip_subject_prefixes=False)
    assert compose(_mail("WG: Alarm", ""), keep).text == "WG: Alarm"


def test_empty_body_falls_back_to_subject() -> None:
    composed = compose(_mail("Auftrag 4711 freigegeben", "  \n"))
    assert composed.text == "Auftrag 4711 freigegeben" and composed.source == "subject"
    composed = compose(_mail("Server down", "Sent from my iPhone"))
    assert composed.text == "Server down" and composed.source == "subject"
    composed = compose(_mail("Re: Tor 4", "-- \nKarl Meier\nLeitstand Nord"))
    assert composed.text == "Tor 4" and composed.source == "subject"
    assert compose(_mail("", "")).source == "none"


def test_stage_list_is_explicit() -> None:
    assert [name for name, _ in STAGES] == [
        "subject_prefixes",
        "clean",
        "subject_policy",
        "whitespace",
    ]
