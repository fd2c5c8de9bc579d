"""A customer's template renders within a time and size limit; the bridge's own are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.notices.customer_templates import Templates
from bridge.notices.limits import TemplateLimitError, TemplateLimits
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from tests.helpers import STATUS_CONTEXT

LIMITS = TemplateLimits(seconds=0.3, max_chars=100_000)

HOSTILE = {
    # no output at all, 10**10 loop turns: only the deadline stops it
    "nested_loops": (
        "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
        "longer than 0.3 s",
    ),
    "output": ("{% for i in range(100000) %}0123456789{% endfor %}", "output is longer"),
    "multiply": ("{{ 'x' * 1000000000 }}", "width"),
    "power": ("{{ 2 ** 999999999 }}", "too large"),
    "ljust": ("{{ 'a'.ljust(999999999) }}", "width"),
    "center": ("{{ 'a' | center(999999999) }}", "width"),
    "format": ("{{ '{:>999999999}'.format(1) }}", "width"),
    "percent": ("{{ '%999999999d' % 1 }}", "width"),
    "replace": ("{{ ('x' * 50000) | replace('', 'yyyy') }}", "replace"),
    "doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "grew beyond",
    ),
    "join": ("{{ range(100000) | map('string') | join('.........') }}", "grew beyond|longer than"),
}


def _templates(tmp_path: Path) -> Templates:
    folder = tmp_path / "acme"
    folder.mkdir()
    for name, (source, _) in HOSTILE.items():
        (folder / f"{name}.txt").write_text(source)
    (folder / "fine.txt").write_text(
        "Hi {{ name }}: {{ '%05d' | format(7) }} {{ '{:,}'.format(12345678901) }} "
        "{{ 'ab' * 3 }} {{ (name ~ '!') | center(12) }}{% for i in range(3) %}{{ i }}{% endfor %}"
    )
    return Templates(DEFAULT_TEMPLATES, tmp_path, LIMITS)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_customer_template_is_stopped(tmp_path: Path, name: str) -> None:
    templates = _templates(tmp_path)
    with pytest.raises(TemplateLimitError, match=HOSTILE[name][1]):
        templates.render(f"{name}.txt", {}, "acme")


def test_an_ordinary_customer_template_renders_as_before(tmp_path: Path) -> None:
    templates = _templates(tmp_path)
    out = templates.render("fine.txt", {"name": "Bob"}, "acme")
    assert out == "Hi Bob: 00007 12,345,678,901 ababab     Bob!    012"


def test_an_inline_auto_reply_text_is_limited_too(tmp_path: Path) -> None:
    templates = _templates(tmp_path)
    assert templates.render_string("Open 9-17, {{ source }}", {"source": "+49"}) == "Open 9-17, +49"
    with pytest.raises(TemplateLimitError):
        templates.render_string(HOSTILE["nested_loops"][0], {})


def test_a_customer_status_template_over_its_limit_stops_only_that_render(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "status.txt").write_text(HOSTILE["nested_loops"][0])
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="sms@bridge.example",
        from_name="SMS Bridge",
        hostname="bridge.example",
        customer_templates=tmp_path,
        template_limits=LIMITS,
    )
    with pytest.raises(TemplateLimitError):
        renderer.render_bytes("status", "a@corp.example", STATUS_CONTEXT | {"customer": "acme"})
    # the thread's tracing is restored: the next render (another customer, ours) works
    data = renderer.render_bytes("status", "a@corp.example", STATUS_CONTEXT)
    assert b"Subject:" in data
    # an override of another template of the same customer renders normally
    assert renderer.render_bytes("sms2mail", "a@corp.example", _sms2mail())


def _sms2mail() -> dict[str, object]:
    return {
        "inbound_id": 1,
        "source": "+491701234567",
        "destination": "+4915550000001",
        "text": "hello",
        "keyword": "",
        "customer": "acme",
        "received_at": "now",
        "reply_to": "+491701234567@eu.rsms.net",
        "from_name": "SMS from +491701234567",
        "others": [],
        "routed_by": "dynamic",
        "original_text": "",
        "original_subject": "",
        "order_id": "",
        "in_reply_to": "",
    }
