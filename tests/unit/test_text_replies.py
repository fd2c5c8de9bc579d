"""Replies as mail clients write them: the writer's words stay, every quote and sign-off goes."""

from __future__ import annotations

import pytest

from bridge.text.clean import CleanRules, clean

RULES = CleanRules()


def _clean(body: str) -> str:
    return clean(body, RULES).text


def test_bottom_posted_reply_keeps_greeting_and_answer() -> None:
    body = (
        "Hi Anna,\n"
        "On Mon, Nov 3, 2025 at 10:12 AM Bob Smith <bob@example.com> wrote:\n"
        "> Can you take the 6 pm truck?\n"
        ">\n"
        "> Bob\n"
        "\n"
        "Yes, I take it. Gate B.\n"
    )
    assert _clean(body) == "Hi Anna,\n\nYes, I take it. Gate B."


def test_interleaved_answers_all_stay() -> None:
    body = (
        "On Tue, Apr 29, 2025 at 4:22 PM, Tim <tim@example.com> wrote:\n\n"
        "> Truck at 6?\n>\n\nYes.\n\n> Gate B?\n\nNo, gate C.\n\n> -- Tim\n"
    )
    assert _clean(body) == "Yes.\n\nNo, gate C."


def test_quote_only_at_the_bottom_is_dropped_with_its_header() -> None:
    body = "Answer first.\n\nOn 9 Jan 2025, at 2:47, George wrote:\n\n> question\n> more\n"
    assert _clean(body) == "Answer first."


@pytest.mark.parametrize(
    "header",
    [
        "On Dec 16, 2025, at 12:47 PM, Corey Donohoe\n<reply@example.com>\nwrote:",
        "On Tue, Sep 25, 2025 at 8:59 AM, Chris Wanstrath\n<notifications@example.com>wrote:",
        "Am So., 1. Nov. 2025 um 17:22 Uhr schrieb John Doe <\njohn@example.com>:",
        "Am 03.11.2025 um 10:12 schrieb Bob Smith <bob@example.com>:",
        "Le lun. 3 nov. 2025 à 10:12, Bob <bob@example.com> a écrit :",
        "El lun, 3 nov 2025 a las 10:12, Bob (<bob@example.com>) escribió:",
        "Il giorno lun 3 nov 2025 alle ore 10:12 Bob <bob@example.com> ha scritto:",
        "Op ma 3 nov. 2025 om 10:12 schreef Bob <bob@example.com>:",
        "Em seg., 3 de nov. de 2025 às 10:12, Bob <bob@example.com> escreveu:",
        "Den 3. nov. 2025 kl. 10.12 skrev Bob <bob@example.com>:",
        "ons 3 nov. 2025 kl. 10:12 skrev Bob <bob@example.com>:",
        "Dnia 3 listopada 2025 10:12 Bob <bob@example.com> napisał(a):",
        "* Bob Smith <bob@example.com> wrote:",
        # no verb: mutt's `attribution` as users set it, with the address or a bracketed date
        "* Bob Smith <bob@example.com> [2025-11-03 10:12]:",
        "* Bob [2025-11-03]:",
        "Bob Smith <bob@example.com>:",
        "[2025-11-03 10:12] Bob:",
    ],
)
def test_attribution_forms_go_with_their_quote(header: str) -> None:
    top = f"Tor 4 ist zu.\n\n{header}\n> Ist Tor 4 offen?\n> Bob\n"
    assert _clean(top) == "Tor 4 ist zu."
    bottom = f"Hallo Bob,\n\n{header}\n> Ist Tor 4 offen?\n\nNein, Tor 4 ist zu.\n"
    assert _clean(bottom) == "Hallo Bob,\n\nNein, Tor 4 ist zu."


@pytest.mark.parametrize(
    "block",
    [
        "-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Karl\nSubject: x",
        "________________________________\nFrom: Bob <bob@example.com>\nSent: Monday\nTo: Karl",
        " ------------------------------\n\n*From:* Bob [mailto:bob@example.com]\n*Sent:* Monday",
        "________________________________\nVon: Bob <bob@example.com>\nGesendet: Montag, 3. "
        "November 2025 10:12\nAn: Karl\nBetreff: AW: Tor 4",
        "-----Ursprüngliche Nachricht-----\nVon: Bob\nGesendet: Montag\nAn: Karl",
        "De : Bob <bob@example.com>\nEnvoyé : lundi 3 novembre 2025 10:12\nÀ : Karl",
        "Van: Bob <bob@example.com>\nVerzonden: maandag 3 november 2025 10:12\nAan: Karl",
        "Da: Bob <bob@example.com>\nInviato: lunedì 3 novembre 2025 10:12\nA: Karl",
        "-----Oprindelig meddelelse-----\nFra: Bob\nSendt: 3. november 2025 10:12\nTil: Karl",
    ],
)
def test_outlook_header_blocks_and_their_separators_are_cut(block: str) -> None:
    body = f"Tor 4 ist zu.\n\n{block}\n\nIst Tor 4 offen?\n\nBob\n"
    assert _clean(body) == "Tor 4 ist zu."


def test_outlook_header_block_opening_a_mail_goes_as_a_whole() -> None:
    body = "Od: Jan <jan@example.com>\nWysłano: środa, 1 marca 2025 12:00\nTemat: Test\n\nCzesc!"
    assert _clean(body) == "Czesc!"


@pytest.mark.parametrize(
    "footer",
    [
        "_______________________________________________\nriak-users mailing list\n"
        "riak-users@lists.example.com\nhttp://lists.example.com/mailman/listinfo/riak-users",
        "_______________________________________________\nops mailing list -- ops@example.org"
        "\nTo unsubscribe send an email to ops-leave@example.org",
        "--------------------\nSie erhalten diese Nachricht über die Mailingliste "
        "lager@example.org.\nAbmelden: https://lists.example.org/lager",
    ],
)
def test_mailing_list_footers_are_removed(footer: str) -> None:
    assert _clean(f"Server backup01 is down.\n\n\n{footer}\n") == "Server backup01 is down."


def test_a_separator_without_list_words_stays() -> None:
    body = "Stand:\n\n____________\nLager 3: 12 Paletten\nLager 4: 7 Paletten"
    assert _clean(body) == body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona", None),
        ("Passt so.\n\n-- Tim", "Passt so."),
        ("will update you once I am available\n\n/John", "will update you once I am available"),
        ("Truck is late.\n\n~Anna\n", "Truck is late."),
        ("Ik gebruik de Java API.\n\n-Maarten de Jong", "Ik gebruik de Java API."),
    ],
)
def test_dash_sign_offs_are_removed(body: str, expected: str | None) -> None:
    want = expected or "Oh thanks.\n\nHaving the function would be great."
    assert _clean(body) == want


@pytest.mark.parametrize(
    "text",
    [
        "Sent from my desk, which is much easier than my phone.",
        "Bring:\n- Foil\n- Pallets",
        "Temperatur:\n-12 °C",
        "Best regards to your team, see you at 6.",
        "Grüße an alle, wir sehen uns morgen um 8 im Büro.",
        "Danke!",
        "Danke\nBin in 10 Minuten da.",
        "Thanks\nTor 4 ist zu",
        "Viele Grüße\nJan\n\nPS: Tor 4 bleibt zu.",
        "Kind regards\nJan\nCan you call me?",
        "Regards\nJan\nBitte Rückruf bis 12 Uhr",
        "Thanks for the quick fix.\nGate B is open again.",
        "Best price: 12 EUR per pallet.",
    ],
)
def test_no_false_cuts_of_real_text(text: str) -> None:
    assert _clean(text) == text


def test_mobile_signature_is_short_words_only() -> None:
    assert _clean("Alarm\n\nSent from my Verizon Wireless BlackBerry") == "Alarm"
    assert _clean("Alarm\n\nGet Outlook for iOS<https://aka.example/o0ukef>") == "Alarm"


@pytest.mark.parametrize(
    "line",
    ["Zu deiner Frage:", "Termine am 2025-11-03:", "Mail an bob@example.com:"],
)
def test_a_line_with_a_colon_above_a_quote_stays_without_an_address_or_bracketed_date(
    line: str,
) -> None:
    """Only the quote goes: an introduction of the writer's own is no attribution."""
    body = f"{line}\n> Ist Tor 4 offen?\n\nNein, Tor 4 ist zu.\n"
    assert _clean(body) == f"{line}\n\nNein, Tor 4 ist zu."
