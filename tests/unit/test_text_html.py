"""HTML → SMS text: what a reader sees, as plain text, with no Markdown left behind."""

from __future__ import annotations

import pytest

from bridge.text.html import html_to_text
from bridge.text.pipeline import render

MARKUP_RESIDUE = set("`~*#[]|\\")


def test_code_and_strikethrough_leave_no_markdown() -> None:
    text = html_to_text("<p>Run <code>x</code> now, <s>old</s> new.</p>")
    assert text == "Run x now, new."
    assert not MARKUP_RESIDUE & set(text)


@pytest.mark.parametrize(
    "struck",
    [
        "<s>3 pm</s>",
        "<strike>3 pm</strike>",
        "<del>3 pm</del>",
        '<span style="text-decoration: line-through">3 pm</span>',
        '<span style="TEXT-DECORATION:LINE-THROUGH;color:red">3 pm</span>',
    ],
)
def test_struck_through_text_is_withdrawn(struck: str) -> None:
    assert html_to_text(f"<p>Meeting at {struck} 4 pm.</p>") == "Meeting at 4 pm."


def test_pre_keeps_the_writers_indentation_and_nothing_more() -> None:
    html = "<p>Log:</p><pre>line 1\n  indented 2\n\tTab</pre><p>end</p>"
    assert html_to_text(html) == "Log:\n\nline 1\n  indented 2\n    Tab\n\nend"


def test_tables_become_lines_without_alignment_padding() -> None:
    html = (
        "<table><tr><th>Lager</th><th>Menge</th></tr><tr><td>A1</td><td>12</td></tr>"
        "<tr><td>B2</td><td>7</td></tr></table>"
    )
    lines = html_to_text(html).split("\n")
    assert [" ".join(line.split()) for line in lines] == ["Lager Menge", "A1 12", "B2 7"]
    assert all(line == line.strip() for line in lines)


def test_lists_links_images_and_hidden_text() -> None:
    html = (
        '<div style="display:none">preheader</div>'
        "<ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>"
        '<p><a href="https://status.example.com/h3">Status</a> '
        '<a href="mailto:a@example.com">a@example.com</a> '
        '<a href="https://www.example.com/">www.example.com</a> '
        '<a href="https://example.com"><img src="logo.png" alt="Logo"></a></p>'
    )
    assert html_to_text(html) == (
        "- one\n- two\n1. first\n2. second\n\n"
        "Status (https://status.example.com/h3) a@example.com www.example.com"
    )


def test_blockquotes_become_quoted_lines() -> None:
    html = (
        "<div>Hi,</div><div>On Mon, Bob wrote:<blockquote>question<br>more"
        "<blockquote>older</blockquote></blockquote></div><div>answer</div>"
    )
    assert html_to_text(html) == "Hi,\nOn Mon, Bob wrote:\n> question\n> more\n> > older\nanswer"


def test_word_paragraphs_and_empty_paragraphs() -> None:
    html = (
        "<html><head><style><!-- p.MsoNormal {margin:0cm} --></style></head><body>"
        '<div class="WordSection1"><p class="MsoNormal">Hallo,<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<p class="MsoNormal">Halle&nbsp;3 steht.<o:p></o:p></p>'
        "<!--[if gte mso 9]><xml><o:shapedefaults/></xml><![endif]-->"
        '<p class="MsoNormal">Gr&uuml;&szlig;e<o:p></o:p></p></div></body></html>'
    )
    assert html_to_text(html) == "Hallo,\n\nHalle 3 steht.\nGrüße"


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "<!-- only a comment -->"])
def test_empty_html_is_empty_text(html: str) -> None:
    assert html_to_text(html) == ""


def test_broken_and_deep_html_does_not_fail() -> None:
    assert html_to_text("<p>a<b>b</i></div>c") == "abc"
    deep = "<div>" * 5000 + "x</div><div>y" + "</div>" * 5000
    assert html_to_text(deep) == "x\ny"
    deep_lists = "<ul><li>" * 3000 + "z"
    assert html_to_text(deep_lists) == "z"
    quotes = "<blockquote>" * 300 + "q" + "</blockquote>" * 300
    assert html_to_text(quotes).endswith("q")


def _html_mail(html: str) -> bytes:
    return (
        "From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
        + "\r\n"
    ).encode()


def test_html_mail_with_code_and_strikethrough_is_gsm7_without_residue() -> None:
    raw = _html_mail("<p>Set <code>x</code> to 5, not <s>old</s> 4. See <pre>  conf</pre></p>")
    rendered = render(raw)
    assert rendered.plan.encoding == "gsm7"
    assert "`" not in rendered.plan.text and "~" not in rendered.plan.text
    assert rendered.plan.text == "Set x to 5, not 4. See\n\n  conf"
