"""The portal's translations: gettext catalogs shipped in the package, English built in.

Every string a page shows goes through gettext (`{% trans %}` and `_()` in templates,
`Pages._()` in code), so a catalog `bridge/locale/<lang>/LC_MESSAGES/mailsms.mo` translates
the portal; `[portal] language` picks it. English is the source text: without a catalog
the pages show it unchanged.
"""

from __future__ import annotations

import gettext
from typing import Final

import jinja2

from bridge.packaged import LOCALE, TEMPLATES

Translations = gettext.NullTranslations
DOMAIN: Final = "mailsms"


def N_(message: str) -> str:  # gettext's name for it, which babel extracts
    """A message to translate later, at render time (a label in a table of values): marked
    so that `make messages` puts it in the catalog, returned unchanged."""
    return message


def translations(language: str) -> Translations:
    """The catalog for `language` (English, the source text, when none is shipped)."""
    return gettext.translation(DOMAIN, localedir=LOCALE, languages=[language], fallback=True)


def environment(tr: Translations) -> jinja2.Environment:
    """The Jinja environment of the portal's templates (autoescaped, gettext installed)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / "portal"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(tr, newstyle=True)  # type: ignore[attr-defined]
    return env
