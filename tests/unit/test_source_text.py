"""Our source files' docstrings are text: no control character and no unpaired surrogate.

A docstring that shows an escape (`"\\u0000"`, `"\\ud800"`) must write its backslash
twice (or be a raw string): written once, Python reads the escape and the docstring
holds the character itself. For a NUL that is only a wrong text; for a surrogate,
Python 3.13.0 refuses the file (`UnicodeEncodeError` at import: its compiler cleans
docstrings as UTF-8), and `bridge.files` did exactly that, so the bridge did not start
there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("bridge", "dirsync", "tests", "bench", "examples")
# peers' own code and virtual environments live under tests/peers: not ours
SKIP = re.compile(r"(^|/)(venv|\.venv|node_modules|__pycache__)(/|$)")
NOT_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def _sources() -> list[Path]:
    found = [
        p
        for top in TOPS
        for p in sorted((ROOT / top).rglob("*.py"))
        if not SKIP.search(p.relative_to(ROOT).as_posix())
    ]
    assert len(found) > 300, "the walk found too few files: wrong root?"
    return found


def _docstrings(tree: ast.Module) -> list[tuple[int, str]]:
    nodes = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    out = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=False)
        if doc is not None:
            line = node.body[0].lineno if node.body else 1
            out.append((line, doc))
    return out


def test_no_docstring_holds_a_control_character_or_a_surrogate() -> None:
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for line, doc in _docstrings(tree):
            for m in NOT_TEXT.finditer(doc):
                bad.append(f"{path.relative_to(ROOT)}:{line}: U+{ord(m.group()):04X}")
    assert not bad, "write the escape's backslash twice:\n" + "\n".join(bad)


@pytest.mark.parametrize("doc", ['"""a `\\ud800` here"""', '"""a NUL: \\x00"""'])
def test_the_check_finds_an_escape_written_once(doc: str) -> None:
    tree = ast.parse(doc)
    assert [NOT_TEXT.search(d) is not None for _, d in _docstrings(tree)] == [True]
