"""Status mails do not look at the template files on every render: a template and its
parent (`{% extends "base.html" %}`, looked up by Jinja on every render) are compared with
their files at most every `RECHECK` seconds, and an edited file is used after that."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.notices.customer_templates import RECHECK
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from tests.helpers import STATUS_CONTEXT


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _renderer(tmp_path: Path, clock: Clock) -> tuple[Renderer, Path, Path]:
    ours = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES, ours)
    customers = tmp_path / "customers"
    (customers / "acme").mkdir(parents=True)
    renderer = Renderer(
        ours,
        from_address="bridge@example.com",
        from_name="SMS Bridge",
        hostname="h.t",
        customer_templates=customers,
        clock=clock,
    )
    return renderer, ours, customers / "acme"


def _html(renderer: Renderer, customer: str = "") -> str:
    mail = renderer.render("status", "alice@example.com", {**STATUS_CONTEXT, "customer": customer})
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    return str(html.get_content())


def _edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.stat().st_mtime
    path.write_text(change(path.read_text()))
    os.utime(path, (before + 10, before + 10))  # a changed mtime, whatever the clock's grain


@pytest.mark.parametrize("customer", ["", "acme"])
def test_renders_do_not_look_at_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, customer: str
) -> None:
    clock = Clock()
    renderer, _, _ = _renderer(tmp_path, clock)
    _html(renderer, customer)  # the first render reads the files
    env = renderer.templates.env(customer)
    read = [env.get_template(name) for name in ("status.html", "base.html")]
    looked: list[str] = []
    getmtime = os.path.getmtime

    def counted(path: str) -> float:
        looked.append(path)
        return getmtime(path)

    monkeypatch.setattr(os.path, "getmtime", counted)
    for _ in range(200):
        clock.now += RECHECK / 1_000
        _html(renderer, customer)
    assert clock.now - 1_000.0 < RECHECK
    assert looked == []  # Jinja alone: base.html's mtime on every render
    clock.now += RECHECK
    _html(renderer, customer)
    assert any(p.endswith("base.html") for p in looked), looked  # checked once due
    # found unchanged: the templates as read, not read again
    assert [env.get_template(name) for name in ("status.html", "base.html")] == read


def test_an_edited_parent_is_used_after_the_recheck(tmp_path: Path) -> None:
    clock = Clock()
    renderer, ours, _ = _renderer(tmp_path, clock)
    assert "Sent by the night shift" not in _html(renderer)
    _edit(
        ours / "base.html",
        lambda s: s.replace("This message was generated automatically", "Sent by the night shift"),
    )
    clock.now += RECHECK / 2
    assert "Sent by the night shift" not in _html(renderer)  # within the window: as read
    clock.now += RECHECK
    assert "Sent by the night shift" in _html(renderer)


def test_a_customers_edited_override_is_used_after_the_recheck(tmp_path: Path) -> None:
    clock = Clock()
    renderer, ours, acme = _renderer(tmp_path, clock)
    shutil.copy(ours / "status.html", acme / "status.html")
    assert "ACME dispatch" not in _html(renderer, "acme")
    _edit(
        acme / "status.html",
        lambda s: s.replace("{% block content %}", "{% block content %}ACME dispatch"),
    )
    clock.now += RECHECK / 2
    assert "ACME dispatch" not in _html(renderer, "acme")
    clock.now += RECHECK
    assert "ACME dispatch" in _html(renderer, "acme")
    assert "ACME dispatch" not in _html(renderer)  # another customer's mails: ours


def test_an_override_added_to_a_customers_folder_is_used_and_a_removed_one_no_longer(
    tmp_path: Path,
) -> None:
    """Jinja's own check compares the file it read only: a file added before it in the
    search (the customer's folder before ours) went unseen until a restart."""
    clock = Clock()
    renderer, ours, acme = _renderer(tmp_path, clock)
    assert "ACME dispatch" not in _html(renderer, "acme")  # acme's folder has no status.html
    html = (ours / "status.html").read_text()
    (acme / "status.html").write_text(
        html.replace("{% block content %}", "{% block content %}ACME dispatch")
    )
    clock.now += RECHECK + 1
    assert "ACME dispatch" in _html(renderer, "acme")
    (acme / "status.html").unlink()
    clock.now += RECHECK + 1
    assert "ACME dispatch" not in _html(renderer, "acme")
