"""The portal's strings go through gettext, and the committed catalog template is current.

What these tests check, and what they do not:

1. `bridge/locale/mailsms.pot` holds exactly the messages babel extracts today with
   babel.cfg and the Makefile's keywords (`make messages` was run after the last change).
2. Every template under templates/portal/, read as Jinja tokens: the literal markup
   outside `{{ }}`/`{% %}` has no visible words (text nodes, and the aria-label, title,
   alt and placeholder attributes and button values) except the product name
   "mailsms"; and no string constant is printed directly (`{{ "Sent" }}`, also in
   `a if b else "x"` and `a or "x"`). Not seen: a constant assigned with `{% set %}`
   and printed later, or words that arrive as data from Python.
3. The pages this test renders (dashboard, archive, one report, preview with a result,
   login, 400 and 404 pages) served with a pseudo-translation that wraps every message
   in ⟦ ⟧: every visible text node and labelling attribute is inside a wrapped
   message or is data (numbers, dates, the account, customer and user names of the
   test), so strings made in Python for a page (`pages._`) are checked there too.
   Text the user typed (textarea, pre) is left out; pages of other areas are not
   rendered here.
"""

from __future__ import annotations

import gettext
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jinja2
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import nodes

from bridge.http.app import build_app
from bridge.http.server import HttpServer
from bridge.http.settings import HttpSettings
from bridge.portal.i18n import environment
from bridge.portal.pages.settings import shown
from bridge.portal.settings import PortalSettings
from bridge.portal.web import Portal
from bridge.tenants.policy import SETTING_NAMES
from tests.portal.harness import PASSWORD, PortalRun, hidden_fields, login, portal

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "portal"
POT = ROOT / "bridge" / "locale" / "mailsms.pot"
LABELLING = ("aria-label", "title", "alt", "placeholder")
ALLOWED = {"mailsms"}  # the product's name
LETTER = re.compile(r"[^\W\d_]")
OPEN, CLOSE = "⟦", "⟧"


def extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "NavItem": (2,)}  # as `make messages` (-k NavItem:2)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_catalog_template_is_current() -> None:
    with POT.open("rb") as f:
        catalog = read_po(f)
    in_pot = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    now = extracted()
    assert now - in_pot == set(), "new strings: run `make messages` and commit the .pot"
    assert in_pot - now == set(), "strings gone: run `make messages` and commit the .pot"
    assert {"Dashboard", "Report archive", "Preview", "Stop list"} <= in_pot  # the menu too


class Visible(HTMLParser):
    """Visible text nodes and labelling attributes of an HTML page (or template)."""

    SKIP: ClassVar = {"textarea", "pre", "code", "script", "style"}  # code: literal syntax

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        a = dict(attrs)
        self.found += [a[k] or "" for k in LABELLING if k in a]
        if tag == "input" and a.get("type") in ("submit", "button"):  # a <button> shows its
            self.found.append(a.get("value") or "")  # content; its value is only sent

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.found.append(data.strip())


def visible(html: str) -> list[str]:
    parser = Visible()
    parser.feed(html)
    return parser.found


def words_left(text: str, data: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    inner = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")  # innermost first: a message
    while inner.search(text):  # may hold another (a field's name in an error sentence)
        text = inner.sub(" ", text)
    for token in sorted(data | ALLOWED, key=len, reverse=True):
        text = text.replace(token, " ")
    return text if LETTER.search(text) else ""


def literal_markup(env: jinja2.Environment, source: str) -> str:
    """The template's literal markup, each {{ }} / {% %} / {# #} as one § (text inside
    {% trans %} blocks is gettext's, so it counts as translated)."""
    out: list[str] = []
    in_trans = False
    last = ""
    for _line, kind, value in env.lex(source):
        if kind == "name" and last == "block_begin":
            in_trans = value == "trans" or (in_trans and value != "endtrans")
        if kind in ("variable_begin", "block_begin", "comment_begin"):
            out.append("§")
        elif kind == "data" and not in_trans:
            out.append(value)
        if kind != "whitespace":
            last = kind
    return "".join(out).replace("§", " ")


def printed_constants(node: nodes.Node) -> list[str]:
    """String constants an Output prints directly (not through _() or a call)."""

    def shown(expr: nodes.Node) -> list[str]:
        if isinstance(expr, nodes.Const):
            return [expr.value] if isinstance(expr.value, str) else []
        if isinstance(expr, nodes.CondExpr):
            return shown(expr.expr1) + (shown(expr.expr2) if expr.expr2 else [])
        if isinstance(expr, nodes.Or | nodes.And):
            return shown(expr.left) + shown(expr.right)
        if isinstance(expr, nodes.Concat):
            return [s for n in expr.nodes for s in shown(n)]
        if isinstance(expr, nodes.Filter) and expr.node is not None:
            return shown(expr.node)
        return []

    return [s for out in node.find_all(nodes.Output) for n in out.nodes
            if not isinstance(n, nodes.TemplateData) for s in shown(n)]  # fmt: skip


TEMPLATE_FILES = sorted(TEMPLATES.glob("*.html"))


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=[p.name for p in TEMPLATE_FILES])
def test_no_template_shows_a_word_outside_gettext(path: Path) -> None:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    source = path.read_text(encoding="utf-8")
    left = [w for t in visible(literal_markup(env, source)) if (w := words_left(t))]
    assert left == [], f"{path.name}: words outside gettext: {left}"
    constants = [c for c in printed_constants(env.parse(source)) if LETTER.search(c)]
    assert constants == [], f"{path.name}: string constants printed without _(): {constants}"


def test_the_template_checks_catch_untranslated_words() -> None:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    for bad in (
        "<p>Hello {{ name }}</p>",
        '<nav aria-label="Main">{{ _("x") }}</nav>',
        '<input type="submit" value="Send">',
        '<button type="submit">Send</button>',
    ):
        assert [t for t in visible(literal_markup(env, bad)) if words_left(t)], bad
    for good in (
        '<p>{{ _("Hello") }} {{ name }}</p>',
        "<p>{% trans %}Hello{% endtrans %}</p>",
        '<button name="action" value="release">{{ _("Release") }}</button>',
        "<p>{{ _('Send the header') }} <code>Authorization: Bearer</code></p>",
    ):
        assert not [t for t in visible(literal_markup(env, good)) if words_left(t)], good
    for bad in ('{{ "Sent" }}', '{{ a or "none" }}', '{{ "yes" if a else "no" }}'):
        assert printed_constants(env.parse(bad)), bad
    assert not printed_constants(env.parse('{{ _("Sent") }} {{ a == "gsm7" }}'))


class Pseudo(gettext.NullTranslations):
    """Every message wrapped in ⟦ ⟧, so untranslated text stands out; every message asked
    for is kept in `asked`, to be found in the catalog template."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def gettext(self, message: str) -> str:
        self.asked.add(message)
        return f"{OPEN}{message}{CLOSE}"

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        self.asked.add(singular)
        return f"{OPEN}{singular if n == 1 else plural}{CLOSE}"


def pseudo_portal(run: PortalRun, tr: Pseudo) -> HttpServer:
    """The portal over the running bridge's database, with the pseudo-translation `tr`."""
    assert run.bridge.store is not None
    web = Portal(
        run.bridge.store,
        PortalSettings(demo_password=PASSWORD),
        https=False,
        defaults=run.settings.defaults.model_dump(),
    )
    web.pages.translations = tr
    web.pages.env = environment(tr)
    return HttpServer(HttpSettings(enabled=True, listen="127.0.0.1:0"), build_app(web.routes()))


async def test_rendered_pages_show_only_translated_words_and_data(tmp_path: Path) -> None:
    # The test's data: accounts, customers, a user, the default sender ID.
    data = {"ops", "acme-admin", "admin", "acme", "demo", "demo@example.com", "MailSMS"}
    data |= {"Demo User"}  # the demo user's display name
    async with portal(tmp_path) as run:
        # The settings page shows each setting's name and value (as `settings show` prints
        # it, "(none)" for an empty list among them): data, not words.
        values = run.settings.defaults.model_dump().values()
        data |= set(SETTING_NAMES) | {shown(v) for v in values} | {str(v) for v in values}
        tr = Pseudo()
        server = pseudo_portal(run, tr)
        host, port = await server.start()
        try:
            pages: dict[str, str] = {}
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as web:
                pages["login"] = (await web.get("/portal/login")).text
                fields = hidden_fields(pages["login"])
                r = await web.post(
                    "/portal/login", data={"username": "ops", "password": "wrong!", **fields}
                )
                pages["login failed"] = r.text
                csrf = await login(web, "ops")
                for path in (
                    "/portal/",
                    "/portal/?customer=acme",
                    "/portal/archive",
                    "/portal/archive/1",
                    "/portal/archive/999999",
                    "/portal/?since=never",
                    "/portal/preview",
                    "/portal/report?status=nothing&to=never&recipient=alice",
                    "/portal/inbound",
                    "/portal/users?customer=demo",
                    "/portal/users/1?customer=demo&done=enabled",
                    "/portal/settings?customer=demo&done=set",
                    "/portal/numbers?customer=demo",
                    "/portal/stoplist?customer=demo&done=added",
                    "/portal/lists?customer=demo&done=created",
                    "/portal/accounts?done=added",
                    "/portal/access?customer=demo&done=rules",
                    "/portal/api-keys?customer=demo&done=revoked",
                    "/portal/held",
                ):
                    r = await web.get(path)
                    assert r.status_code in (200, 400, 404), path
                    pages[path] = r.text
                r = await web.post(
                    "/portal/preview",
                    data={"csrf": csrf, "text": "“Quotes” 5 € – ok\n\n-- \nDemo"},
                    files={"eml": ("", b"", "application/octet-stream")},
                )
                pages["preview result"] = r.text
                r = await web.post(
                    "/portal/archive/1/resend", data={"csrf": csrf}
                )  # no recipients: the page with the error
                pages["resend refused"] = r.text
                pages["csrf refused"] = (await web.post("/portal/archive/1/resend")).text
        finally:
            await server.stop()
    assert "Replaced characters" in pages["preview result"]
    assert "SMS report for" in pages["/portal/archive/1"]
    problems: dict[str, list[Any]] = {}
    for name, html in pages.items():
        left = [t for t in visible(html) if words_left(t, data)]
        if left:
            problems[name] = left
    assert problems == {}, problems
    # A message made in Python and translated at render time (a label from a table of
    # values, an error sentence) is one a translator must find in the catalog.
    assert tr.asked - extracted() == set(), "mark them with N_() or _(), then `make messages`"
