"""A REST API request's text as a mail: written directly, byte for byte what the mail
library writes, and read as `extract` reads those bytes."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.api.messages import as_mail
from bridge.text.mime import extract


def _library(text: str) -> tuple[bytes, object]:
    """The mail as the library builds it, and what the text engine reads back from it."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = ""
    message.set_content(text, charset="utf-8", cte="base64")
    raw = bytes(message)
    return raw, extract(raw)


# Every character but lone surrogates (the API's JSON reader refuses them), line breaks of
# every kind (CR, LF, CRLF, and what str.splitlines also takes) and controls weighted in.
_TEXT = st.lists(
    st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from(["\r\n", "\r", "\n", "\u2028", "\x85", "\x0b", "\x00", " ", "\t"]),
    ),
    min_size=1,
    max_size=400,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_the_mail_is_the_librarys_and_reads_as_extract_reads_it(text: str) -> None:
    assert as_mail(text) == _library(text)


def test_long_text_base64_lines_and_multi_byte_characters() -> None:
    for text in ["x" * 10_000, "äöü€😀" * 700, "line\r\n" * 600, "ab" * 28 + "ü"]:
        raw, mail = as_mail(text)
        assert (raw, mail) == _library(text)
        assert all(len(line) <= 76 for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))


def test_what_the_text_engine_gets() -> None:
    raw, mail = as_mail("Build 7 finished\r\n\r\nall green ✓")
    assert raw.startswith(b'Subject:\r\nContent-Type: text/plain; charset="utf-8"\r\n')
    assert mail.body == "Build 7 finished\n\nall green ✓"
    assert mail.subject == "" and mail.attachments == 0 and mail.message_id is None
