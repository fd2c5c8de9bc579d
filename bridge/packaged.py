"""Files the bridge reads at run time, found inside the installed `bridge` package.

The notice templates are kept in the repository's top-level `templates/`; the package
holds them as `bridge/templates` (a link in the source tree, real files in a wheel,
see `[tool.setuptools.package-data]`), so a checkout, an editable install and a wheel
install all find them here. Nothing reads a path relative to the checkout or to the
current directory. `missing()` names what an incomplete installation lacks, so
`mailsms serve` refuses to start instead of holding every notice later.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final


def _in_package(name: str) -> Path:
    # A package imported from the file system (every pip install) gives a real path.
    return Path(str(resources.files("bridge").joinpath(name)))


TEMPLATES: Final = _in_package("templates")
EXAMPLE_CONFIG: Final = _in_package("example.toml")
MIGRATIONS: Final = _in_package("db/migrations")
LOCALE: Final = _in_package("locale")
DH_PARAMS: Final = _in_package("intake/ffdhe2048.pem")  # RFC 7919's 2048-bit group

# One file per kind of runtime file: when one of these is absent, its folder was not shipped.
_PROBES: Final = (
    TEMPLATES / "base.html",
    TEMPLATES / "status.txt",
    TEMPLATES / "push" / "body.json",
    TEMPLATES / "portal" / "base.html",
    EXAMPLE_CONFIG,
    DH_PARAMS,
    MIGRATIONS / "env.py",
    MIGRATIONS / "versions" / "0001_initial_schema.py",
)


def missing() -> list[Path]:
    """The runtime files this installation lacks (empty when it is complete)."""
    return [p for p in _PROBES if not p.is_file()]
