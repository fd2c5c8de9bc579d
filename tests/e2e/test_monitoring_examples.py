"""examples/monitoring: the alert rules and the dashboard use only metrics the bridge exports.

No promtool here: the rules file is read as YAML and checked for the shape Prometheus
wants; every `mailsms_*` name in a rule or a panel must be one that a running bridge's
/metrics names (a counter's `_total`, a histogram's `_bucket`/`_count`/`_sum`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bridge.http.settings import HttpSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "monitoring" / "mailsms-alerts.yml"
DASHBOARD = ROOT / "examples" / "monitoring" / "mailsms-dashboard.json"
NAME = re.compile(r"\bmailsms_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    return exprs


async def _exported(tmp_path: Path) -> set[str]:
    settings = make_settings(tmp_path, http=HttpSettings(enabled=True, listen="127.0.0.1:0"))
    async with running_bridge(settings) as (_, ep):
        assert ep.http is not None
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://{ep.http[0]}:{ep.http[1]}/metrics")).text
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_the_rules_have_the_shape_prometheus_loads() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]


def test_the_alerts_the_operator_needs_are_there() -> None:
    exprs = {r["alert"]: r["expr"] for r in _rules()}
    assert "mailsms_queue_depth" in exprs["MailsmsQueueGrowing"]
    assert "mailsms_oldest_due_order_seconds" in exprs["MailsmsOldestOrderWaiting"]
    assert "mailsms_smpp_bind_up" in exprs["MailsmsNoSmscBind"]
    assert "mailsms_receipts_total" in exprs["MailsmsReceiptsNotArriving"]
    assert "mailsms_notices_total" in exprs["MailsmsNoticesFailing"]
    expiry = "mailsms_tls_certificate_expiry_timestamp_seconds"
    assert expiry in exprs["MailsmsTlsCertificateExpiring"]
    assert expiry in exprs["MailsmsTlsCertificateExpired"]


async def test_every_metric_the_examples_use_is_exported(tmp_path: Path) -> None:
    exported = await _exported(tmp_path)
    used = {n for r in _rules() for n in NAME.findall(r["expr"])}
    used |= {n for e in _dashboard_exprs() for n in NAME.findall(e)}
    assert len(used) >= 20
    assert used - exported == set()
    # and the dashboard shows most of what there is
    assert len({n for e in _dashboard_exprs() for n in NAME.findall(e)}) >= 20
