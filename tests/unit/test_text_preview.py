"""The preview: what would be sent, including refusals, without raising."""

from __future__ import annotations

from bridge.text.pipeline import Limits, SmsPolicy, preview

MAIL = (
    "Subject: Test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "Grüße “Max” – "
    + "x" * 200
    + "\r\n\r\nSent from my iPhone\r\n"
).encode()


def test_preview_shows_cleaning_replacement_and_split() -> None:
    p = preview(MAIL, policy=SmsPolicy(replacement="smart"))
    assert p.rejected is None
    assert p.removed == ("Sent from my iPhone",)
    assert p.encoding == "gsm7" and p.data_coding == 0
    assert ("“", '"') in p.replaced and ("–", "-") in p.replaced
    assert p.parts == 2 and len(p.part_texts) == 2
    assert "".join(p.part_texts) == p.sms_text
    assert p.split_at == (len(p.part_texts[0]),) and p.split_at[0] == 153


def test_preview_reports_refusals() -> None:
    p = preview(MAIL, policy=SmsPolicy(replacement="reject"))
    assert p.rejected is not None and p.rejected[0] == "bad_encoding"
    assert p.text.startswith("Grüße") and p.parts == 0
    p = preview(MAIL, policy=SmsPolicy(max_parts=1))
    assert p.rejected is not None and p.rejected[0] == "too_long"
    p = preview(b"Subject: \r\n\r\n \r\n")
    assert p.rejected is not None and p.rejected[0] == "no_text"


def test_preview_truncation_and_mime_limits() -> None:
    p = preview(MAIL, policy=SmsPolicy(max_parts=1, overflow="truncate"))
    assert p.truncated and p.parts == 1 and p.sms_text.endswith("...")
    nested = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(5000))
    p = preview(nested, limits=Limits())
    assert p.rejected is not None and p.rejected[0] == "too_complex"
