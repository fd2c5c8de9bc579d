"""HTML → readable plain text for SMS (html2text, links as "text (url)", no markup residue)."""

from __future__ import annotations

import re

import html2text

_LINK = re.compile(r"\[([^\]\n]*)\]\(<?([^)\s>]*)>?(?: \"[^\"]*\")?\)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>|~])")
_HEADING = re.compile(r"^ {0,3}#{1,6} +", re.M)
_HR = re.compile(r"^ *(?:\* *){3,}$|^ *(?:- *){3,}$", re.M)
_STYLE = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.I | re.S)
_COND = re.compile(r"<!--\[if.*?<!\[endif\]-->", re.I | re.S)
_BLANKS = re.compile(r"\n{3,}")
_CELL_END = re.compile(r"(</t[dh]\s*>)", re.I)
_LIST_INDENT = re.compile(r"^  ( *[-*] )", re.M)


def _converter() -> html2text.HTML2Text:
    h = html2text.HTML2Text()
    h.body_width = 0
    h.unicode_snob = True
    h.ignore_images = True
    h.ignore_emphasis = True
    h.ignore_tables = True
    h.single_line_break = True
    h.inline_links = True
    h.use_automatic_links = False
    h.protect_links = False
    h.wrap_links = False
    h.skip_internal_links = True
    h.ul_item_mark = "-"
    h.mark_code = False
    return h


def _link(m: re.Match[str]) -> str:
    text, url = m.group(1).strip(), m.group(2).strip()
    bare = url.removeprefix("mailto:").removeprefix("tel:")
    if not url or url.startswith("#") or bare == text or url == text:
        return text
    if not text:
        return bare
    return f"{text} ({bare})"


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: paragraphs and line breaks kept, markup dropped."""
    html = _CELL_END.sub(r"\1&nbsp;", _COND.sub("", _STYLE.sub("", html)))
    text = _converter().handle(html)
    text = _LINK.sub(_link, text)
    text = _HEADING.sub("", text)
    text = _HR.sub("", text)
    text = _LIST_INDENT.sub(r"\1", text)
    text = _ESCAPE.sub(r"\1", text)
    lines = [line.rstrip() for line in text.replace("\u00a0", " ").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
