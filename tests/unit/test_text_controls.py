"""Control characters decoded from outside input are dropped where the text comes in
(bridge/text/controls.py): mail bodies and header values, MO and submit_sm texts,
receipts, directory names; settings with one are refused with the character named."""

from __future__ import annotations

import pytest

from bridge.smpp.mo import decode_mo
from bridge.smpp.receipt import parse_receipt
from bridge.tenants.policy import PolicyError, check_setting
from bridge.text.charset import decode_header_value
from bridge.text.controls import drop_controls, first_control, one_line
from bridge.text.mime import extract
from dirsync.csv_source import parse_csv

CONTROLS = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
C1 = "".join(chr(c) for c in range(0x7F, 0xA0))


def test_every_control_character_goes_line_breaks_and_tabs_stay_in_texts() -> None:
    assert drop_controls(f"a{CONTROLS}b{C1}c\td\ne\r\nf") == "abc\td\ne\r\nf"
    assert one_line(f"a{CONTROLS}b\tc\nd\re") == "ab c d e"
    assert (
        drop_controls("Grüße 😀 a\u200db \u202eok") == "Grüße 😀 a\u200db \u202eok"
    )  # formats stay


def test_first_control_with_and_without_line_breaks() -> None:
    assert first_control("ok") is None and first_control("a\tb") == 1
    assert first_control("a\tb", allow_breaks=True) is None
    assert first_control("a\tb\x00", allow_breaks=True) == 3


def _mail(head: bytes, body: bytes, cte: bytes = b"quoted-printable") -> bytes:
    return (
        b"From: a@example.com\r\nTo: +491701234567@eu.rsms.net\r\n" + head + b"MIME-Version: 1.0"
        b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
        + cte
        + b"\r\n\r\n"
        + body
    )


def test_a_mails_body_and_subject_decode_without_control_characters() -> None:
    qp = extract(_mail(b"Subject: =?utf-8?q?a=00b=1Bc?=\r\n", b"x=00y=01=1B=7F=C2=85z\r\nnext\r\n"))
    assert (qp.subject, qp.body) == ("abc", "xyz\nnext")
    b64 = extract(_mail(b"Subject: plain\x01 raw\r\n", b"aGkAdGhlcmUbIQ==\r\n", b"base64"))
    assert (b64.subject, b64.body) == ("plain raw", "hithere!")
    html = extract(
        b"From: a@example.com\r\nSubject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>one&#1;two&#27;three</p>\r\n"
    )
    assert html.body == "onetwothree"


def test_header_values_decode_without_control_characters() -> None:
    assert decode_header_value("=?utf-8?b?QUIAQwk=?=") == "ABC"  # "AB\0C\t": tab at the end
    assert decode_header_value("=?utf-8?q?A=09B?=") == "A B"
    assert decode_header_value("plain\x7fvalue") == "plainvalue"


def test_mo_texts_drop_control_characters_but_gsm7_at_signs_stay() -> None:
    assert decode_mo(0x08, "Yes\0 3pm\x1b ✓".encode("utf-16-be")) == ("Yes 3pm ✓", "ucs2")
    assert decode_mo(0x03, b"caf\xe9\x00!") == ("café!", "gsm7")
    assert decode_mo(0x04, b"\x00\x01AB") == ("AB", "gsm7")
    assert decode_mo(0x00, b"\x00 at \x00") == ("@ at @", "gsm7")  # GSM-7 0x00 is "@"
    assert decode_mo(0x00, b"line1\nline2\rx") == ("line1\nline2\rx", "gsm7")


def test_a_receipt_ending_in_a_nul_as_a_c_string_is_read_and_kept_without_it() -> None:
    text = b"id:7001 sub:001 dlvrd:001 submit date:2612041200 done date:2612041201 stat:DELIVRD"
    receipt = parse_receipt("smsc", esm_class=0x04, tlvs=(), short_message=text + b" err:000\0")
    assert receipt is not None
    assert receipt.message_id == "7001" and receipt.error_code == "000"
    assert receipt.raw == (text + b" err:000").decode()


@pytest.mark.parametrize("name", ["cost_centre", "sender_id", "notify_address", "quiet_hours"])
def test_a_setting_with_a_control_character_is_refused_naming_it(name: str) -> None:
    with pytest.raises(PolicyError, match=r"control character U\+0000 at position 3|not a valid"):
        check_setting(name, "ab\x00c", "user")


def test_a_line_break_is_allowed_only_where_a_setting_separates_or_matches_text() -> None:
    assert check_setting("subject_separator", "\n", "user") == "\n"
    assert check_setting("end_markers", ["--\nSent from"], "user") == ("--\nSent from",)
    with pytest.raises(PolicyError, match="U\\+000A at position 5"):
        check_setting("cost_centre", "4711\nx", "user")
    with pytest.raises(PolicyError, match="end_markers: control character U\\+001B"):
        check_setting("end_markers", ["ok", "\x1b"], "user")


def test_a_directory_name_with_tabs_and_controls_is_one_clean_line() -> None:
    csv = (
        "external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled\n"
        "1,anna@example.com,,,Anna\tM\x00\x1bller,,47\x0711,,yes\n"
        "#END,1\n"
    )
    [user], problems = parse_csv(csv, name="users.csv", region="DE")
    assert user.display_name == "Anna Mller"
    assert user.cost_centre is None and "cannot be shown" in problems[0].message
