"""HTML → plain text for SMS: layout kept, no markup syntax added (inscriptis on an lxml tree).

The text is what a reader sees, written as plain text, never as Markdown: `<code>` and
`<pre>` are their text, struck-through text (`<s>`, `<del>`, `<strike>`, CSS line-through)
is dropped as the writer withdrew it, links are "text (url)" (the URL once, left out when
it is the text), lists are "- item" / "1. item", table cells are separated by two spaces,
images and hidden elements are left out. Quoted blocks (`<blockquote>`) become "> " lines
so the cleaning rules treat them like a plain-text quote.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_engine import Inscriptis
from inscriptis.html_properties import Display, WhiteSpace
from inscriptis.model.config import ParserConfig
from inscriptis.model.css import CssParse
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from lxml.etree import ParserError

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_BLANKS = re.compile(r"\n{3,}")
_STRUCK_STYLE = re.compile(r"text-decoration(?:-line)?\s*:[^;]*line-through", re.I)
_STRUCK_TAGS = ("s", "strike", "del")
_DROP_TAGS = ("head", "style", "script", "title", "template", "noscript")
_URL_SCHEMES = ("http://", "https://", "ftp://")
_QUOTED = "mailsms-quoted"  # a rendered <blockquote>: its "> " lines, kept as they are
_PRE_TAGS = ("pre", "xmp", "listing", "plaintext", "textarea")
_KEEP = "\ue000"  # stands for a leading space of preformatted text until the layout is done
_NBSP = "\ue001"  # a no-break space survives layout (an empty Word paragraph holds one)
_NBSP_FORMS = re.compile(r"&nbsp;|&#160;|&#x[aA]0;|\u00a0")
_LINE_END_TAGS = re.compile(
    r"<br\b[^>]*>|</(?:p|div|li|tr|h[1-6]|pre|blockquote|table)\s*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"<(?!br>)[^>]*>", re.I)
_PRE_INDENT = re.compile(r"(?<=\n)[ \t]+")
_LONE_BULLET = re.compile(r"^(?:-|\d+\.)$\n?", re.M)


def _style_without_indent(value: str, element: HtmlElement) -> None:
    """Inline CSS: display, white-space and vertical margins count; indents would add spaces."""
    for declaration in value.lower().split(";"):
        name, _, prop = declaration.partition(":")
        name, prop = name.strip(), prop.replace("!important", "").strip()
        if name == "display":
            CssParse.attr_display(prop, element)
        elif name == "white-space":
            CssParse.attr_white_space(prop, element)
        elif name in ("margin-top", "margin-bottom"):
            setattr(element, _MARGIN[name], _lines(prop))
        elif name == "margin" and prop:
            sides = prop.split()
            element.margin_before = _lines(sides[0])
            element.margin_after = _lines(sides[2] if len(sides) > 2 else sides[0])


_MARGIN = {"margin-top": "margin_before", "margin-bottom": "margin_after"}


def _lines(length: str) -> int:
    """Blank lines for a CSS length: none for zero, else one (a paragraph gap)."""
    digits = length.strip().lstrip("+").rstrip("abcdefghijklmnopqrstuvwxyz%")
    try:
        return 0 if float(digits or "0") <= 0 else 1
    except ValueError:
        return 1


def _list_start(state: Any, _attrs: dict[str, str]) -> None:
    state.li_counter.append("- ")


def _profile() -> dict[str, HtmlElement]:
    css = dict(CSS_PROFILES["strict"])
    for tag in ("ul", "ol", "menu"):
        css[tag] = HtmlElement(display=Display.block, padding_inline=0)
    css["dir"] = css["ul"]
    css["dd"] = HtmlElement(display=Display.block)
    css["dt"] = HtmlElement(display=Display.block)
    css["tt"] = HtmlElement(display=Display.inline)
    css["textarea"] = HtmlElement(display=Display.block, whitespace=WhiteSpace.pre)
    css[_QUOTED] = HtmlElement(display=Display.block, whitespace=WhiteSpace.pre)
    for tag in ("pre", "xmp", "listing"):  # as browsers show them: a paragraph of their own
        css[tag] = HtmlElement(
            display=Display.block, whitespace=WhiteSpace.pre, margin_before=1, margin_after=1
        )
    return css


def _config() -> ParserConfig:
    config = ParserConfig(
        css=_profile(),
        display_images=False,
        display_links=False,
        display_anchors=False,
        table_cell_separator="  ",
        custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
            start_tag_mapping={"ul": _list_start, "menu": _list_start, "dir": _list_start},
            end_tag_mapping={},
        ),
    )
    config.attribute_handler.attribute_mapping = {"style": _style_without_indent}
    return config


_CONFIG = _config()


def _parse(html: str) -> Any:
    """The lxml tree, or None; HTML nested deeper than the parser allows is flattened first."""
    html = _NBSP_FORMS.sub(_NBSP, _XML_DECL.sub("", html, count=1)).strip()
    if not html:
        return None
    parser = lxml.html.HTMLParser()
    try:
        root = lxml.html.document_fromstring(html, parser=parser)
    except (ParserError, ValueError):
        return None
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        # libxml2 stops at 256 levels and drops the rest: keep the text and its line breaks,
        # lose every other tag
        flat = _ANY_TAG.sub(" ", _LINE_END_TAGS.sub("<br>", html))
        try:
            root = lxml.html.document_fromstring(flat)
        except (ParserError, ValueError):
            return None
    return root


def _link_suffix(text: str, href: str) -> str:
    """ " (url)" for a link whose target the text does not already show, else ""."""
    href = href.strip()
    text = " ".join(text.split())
    if not text or not href or href.startswith("#") or href.lower().startswith("javascript:"):
        return ""
    lower = href.lower()
    bare = href
    for prefix in ("mailto:", "tel:", "callto:"):
        if lower.startswith(prefix):
            bare = href[len(prefix) :].split("?")[0]
            break
    else:
        if not lower.startswith(_URL_SCHEMES):
            return ""
    shown = text.lower().rstrip("/")
    host_path = bare.split("://", 1)[-1]
    for candidate in (bare, host_path, host_path.removeprefix("www.")):
        if candidate.lower().rstrip("/") in (shown, shown.removeprefix("www.")):
            return ""
    return f" ({bare})"


def _drop(element: Any) -> None:
    if element.getparent() is not None:
        element.drop_tree()  # the tail text stays


def _prepare(root: Any) -> None:
    """Rewrite the tree so the layout engine writes what a reader sees, as plain text."""
    for element in list(root.iter(*_DROP_TAGS)):
        _drop(element)
    for element in list(root.iter(*_STRUCK_TAGS)):
        _drop(element)
    for element in list(root.iter()):
        style = element.get("style") if isinstance(element.tag, str) else None
        if style and _STRUCK_STYLE.search(style):
            _drop(element)
    for element in root.iter("p", "div", "li"):  # Word's paragraph classes have no margins
        if element.get("class", "").startswith("Mso"):
            element.set("style", "margin:0;" + element.get("style", ""))
    for link in root.iter("a"):
        text = link.text_content()
        suffix = _link_suffix(text, link.get("href") or "")
        if not text.strip():
            continue
        if suffix:
            last = link[-1] if len(link) else None
            if last is not None:
                last.tail = (last.tail or "") + suffix
            else:
                link.text = (link.text or "") + suffix
    for pre in root.iter(*_PRE_TAGS):
        pre.text = _keep_indent(pre.text, at_line_start=True)
        for node in pre.iterdescendants():
            node.text = _keep_indent(node.text)
            node.tail = _keep_indent(node.tail)
    # innermost quotes first: each becomes a block of "> " lines the outer one quotes again
    for quote in reversed(list(root.iter("blockquote"))):
        inner = _render(quote).strip("\n")
        pre = lxml.html.Element(_QUOTED)
        pre.text = "\n".join("> " + line if line.strip() else ">" for line in inner.split("\n"))
        pre.tail = quote.tail
        parent = quote.getparent()
        if parent is not None:
            parent.replace(quote, pre)


def _keep_indent(text: str | None, *, at_line_start: bool = False) -> str | None:
    """Mark the leading spaces of preformatted lines so the final strip keeps them."""
    if not text or ("\n" not in text and not at_line_start):
        return text
    marked = _PRE_INDENT.sub(_mark, ("\n" if at_line_start else "") + text)
    return marked[1:] if at_line_start else marked


def _mark(match: re.Match[str]) -> str:
    return match.group(0).replace(" ", _KEEP).replace("\t", _KEEP * 4)


def _render(root: Any) -> str:
    return str(Inscriptis(root, _CONFIG).get_text())


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: paragraphs and line breaks kept, markup dropped."""
    root = _parse(html)
    if root is None:
        return ""
    _prepare(root)
    text = _render(root)
    # indents come from table alignment and CSS boxes, which an SMS cannot show: only the
    # writer's own indentation inside preformatted text is kept
    lines = [line.replace(_NBSP, " ").strip().replace(_KEEP, " ") for line in text.split("\n")]
    text = _LONE_BULLET.sub("", "\n".join(line.rstrip() for line in lines))
    return _BLANKS.sub("\n\n", text).strip("\n")
