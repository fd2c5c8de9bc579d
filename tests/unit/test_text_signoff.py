"""Sign-off blocks (Outlook signatures without "-- "): found at the end, never inside text."""

from __future__ import annotations

import pytest

from bridge.text import signoff
from bridge.text.clean import CleanRules, clean

TEXT = "Bitte Rückruf unter 0171 2345678 - dringend."


@pytest.mark.parametrize(
    "block",
    [
        "Best regards\nPeter",
        "Best regards,\n\nPeter Brown\nHead of Logistics\nACME Ltd.\nPhone: +44 20 7946 0000\n"
        "www.acme.example",
        "Kind regards / Mit freundlichen Grüßen\nKarl Meier",
        "Mit freundlichen Grüßen\n\nKarl Meier\nLeitstand Nord\n\nACME Logistik GmbH\n"
        "Hafenstraße 12 | 20457 Hamburg\nTel. +49 40 1234567 | Fax +49 40 1234568\n"
        "Mobil: 0171 2345678\nkarl.meier@acme.example\n"
        "Sitz der Gesellschaft: Hamburg, Registergericht: Amtsgericht Hamburg, HRB 12345\n"
        "Geschäftsführer: Max Muster, Erika Muster",
        "Mit freundlichem Gruß\ni.A. Karl Meier",
        "Viele Grüße aus Hamburg\nJan",
        "Gruß Jan",
        "LG\nAnna",
        "MfG\nIhr SAP-System",
        "Freundliche Grüße\n\nIhr Logistik-Team",
        "Cordialement,\n\nJean Dupont\nResponsable logistique\nACME France SAS\n"
        "12 rue de la Paix, 75002 Paris\nTél. : +33 1 23 45 67 89",
        "Bien à vous,\nMarie",
        "Met vriendelijke groet,\n\nJan de Vries\nTeamleider Magazijn\nT +31 20 123 4567",
        "Saludos cordiales,\nJuan García\nJefe de almacén",
        "Un saludo,\nLucía",
        "Cordiali saluti\nMario Rossi",
        "Atenciosamente,\nJoão Silva",
        "Med vänliga hälsningar\nAnna Svensson\n070-000 00 00",
        "Med venlig hilsen\nAnders Andersen",
        "Pozdrawiam,\nJan Kowalski",
        "Thanks,\nJohn\nSenior Manager, Supply Chain\nM: +1 555 010 0000",
        "Danke und Gruß\nKarl",
        "Thank you.\nBest regards",
        "Mit freundlichen Grüßen\n__________________\nKarl Meier\nLeitstand Nord",
    ],
)
def test_sign_off_blocks_are_cut(block: str) -> None:
    body = f"{TEXT}\n\n{block}\n"
    assert clean(body, CleanRules()).text == TEXT
    start = signoff.find(body.rstrip())
    assert start is not None and body[start:].strip() == block.strip()


def test_sign_off_switch_keeps_the_block() -> None:
    body = f"{TEXT}\n\nMit freundlichen Grüßen\nKarl Meier"
    assert clean(body, CleanRules(sign_off=False)).text == body


def test_the_earliest_closing_of_a_stack_starts_the_block() -> None:
    body = f"{TEXT}\n\nThanks\n\nBest regards\nJan Meier\nACME"
    assert clean(body, CleanRules()).text == TEXT


@pytest.mark.parametrize(
    "text",
    [
        "Danke!",
        "Thanks!",
        "Thanks, see you at 6.",
        "Regards to Bob, the truck is on time.",
        "Viele Grüße\nJan\n\nPS: Tor 4 bleibt zu.",
        "Gruß\nJan\nBin in 10 Minuten da.",
        "Best regards\nJan\nWhere is the truck?",
        "Mit freundlichen Grüßen\nKarl Meier\nBitte rufen Sie mich zurück, es ist dringend.",
        "Thanks\nLager 3 ist voll",
        "Danke\nheute kein Versand",
        "Danke für die schnelle Hilfe.",
        "Thanks for the quick fix.",
        "Merci pour tout, à demain.",
    ],
)
def test_closing_words_before_real_text_are_not_a_sign_off(text: str) -> None:
    body = f"{TEXT}\n\n{text}"
    assert clean(body, CleanRules()).text == body


def test_sign_off_is_searched_near_the_end_only() -> None:
    far = "Mit freundlichen Grüßen\nKarl Meier\n" + "\n".join(f"Zeile {n}." for n in range(30))
    assert signoff.find(far) is None
