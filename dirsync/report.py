"""Report one run: the summary line, the plan listing, and the admin mail (templates/).

The mail uses `templates/dirsync_report.{txt,html}` (the HTML extends `base.html`),
is built by `bridge.notices.mime` and goes straight to the configured SMTP relay through
the mailer's SMTP client (`bridge.notices.smtp_client`), so a run whose database is
unusable can still report its failure. With `smtp_starttls` the relay is a hop of TLS
level `verify`: STARTTLS is required and the relay's certificate chain and host name are
checked (against `smtp_ca_file`, else the system's CAs) before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from bridge import packaged
from bridge.notices import mime
from bridge.notices.smtp_client import DeliveryDeferred, DeliveryError, SmtpClient
from bridge.notices.transport_table import Hop, TlsLevel, TransportTable
from bridge.tenants.sync_status import SYNC_FAILURES, SyncRunStatus
from dirsync.config import ReportConfig
from dirsync.model import ChangeKind, Plan

TEMPLATES = packaged.TEMPLATES
MAIL_LIST_LIMIT = 200  # lines per section in the mail; the run record keeps up to DETAIL_LIMIT
DETAIL_LIMIT = 1000
SMTP_TIMEOUT = 30.0  # seconds per step of the SMTP session


@dataclass(slots=True)
class Outcome:
    """How one run ended."""

    customer: str
    source: str
    status: SyncRunStatus
    message: str = ""
    plan: Plan | None = None
    run_id: int | None = None
    seconds: float = 0.0
    deleted: int = 0
    retired: int = 0
    exit_code: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def all_counts(self) -> dict[str, int]:
        counts = self.plan.counts() if self.plan is not None else {}
        counts.update(self.counts)
        if self.retired:
            counts["deleted"] = self.deleted
            counts["retired"] = self.retired
        return counts


def summary_line(o: Outcome) -> str:
    """The one log line per run."""
    counts = " ".join(f"{k}={v}" for k, v in o.all_counts().items())
    line = f"dirsync customer={o.customer} source={o.source} status={o.status}"
    if counts:
        line += " " + counts
    line += f" in {o.seconds:.2f}s"
    if o.run_id is not None:
        line += f" run={o.run_id}"
    if o.status in SYNC_FAILURES and o.message:
        line += f": {o.message}"
    return line


def plan_lines(plan: Plan, limit: int | None = None) -> list[str]:
    """The change report: adds, updates (before → after), disables, deletes, then problems."""
    lines: list[str] = []
    for kind in (ChangeKind.ADD, ChangeKind.UPDATE, ChangeKind.DISABLE, ChangeKind.DELETE):
        changes = plan.of_kind(kind)
        shown = changes if limit is None else changes[:limit]
        lines.extend(c.describe() for c in shown)
        if len(shown) < len(changes):
            lines.append(f"… and {len(changes) - len(shown)} more {kind.value}s")
    problems = plan.problems if limit is None else plan.problems[:limit]
    lines.extend(f"problem {p.describe()}" for p in problems)
    if len(problems) < len(plan.problems):
        lines.append(f"… and {len(plan.problems) - len(problems)} more problems")
    return lines


def print_plan(plan: Plan, out: TextIO) -> None:
    for line in plan_lines(plan):
        out.write(line + "\n")


def should_mail(cfg: ReportConfig, o: Outcome) -> bool:
    if not cfg.mail_to:
        return False
    failed = o.status in SYNC_FAILURES
    if cfg.when == "failure":
        return failed
    if cfg.when == "changes":
        return failed or o.status == SyncRunStatus.APPLIED or bool(o.plan and o.plan.problems)
    return o.status != SyncRunStatus.DRY_RUN


def render(o: Outcome, templates: Path = TEMPLATES) -> tuple[str, str, str]:
    """(subject, text, html) of the admin report."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["sender_name"] = "Directory sync"  # base.html's header
    context = _context(o)
    subject = f"dirsync {o.customer}: {o.status}"
    if o.status in (SyncRunStatus.APPLIED, SyncRunStatus.UNCHANGED) and o.plan is not None:
        c = context["counts"]
        subject += f" (+{c['added']} ~{c['updated']} -{c['disabled']})"
    text = env.get_template("dirsync_report.txt").render(context)
    html = env.get_template("dirsync_report.html").render(context)
    return subject, text, html


def _context(o: Outcome) -> dict[str, Any]:
    plan = o.plan or Plan()
    sections: list[tuple[str, Sequence[str]]] = []
    for kind, title in (
        (ChangeKind.ADD, "Added"),
        (ChangeKind.UPDATE, "Updated"),
        (ChangeKind.DISABLE, "Disabled (not in the directory any more)"),
        (ChangeKind.DELETE, "Deleted after the retention period"),
    ):
        changes = plan.of_kind(kind)
        lines = [c.describe() for c in changes[:MAIL_LIST_LIMIT]]
        if len(changes) > MAIL_LIST_LIMIT:
            lines.append(f"… and {len(changes) - MAIL_LIST_LIMIT} more")
        if lines:
            sections.append((title, lines))
    problems = [p.describe() for p in plan.problems[:MAIL_LIST_LIMIT]]
    if len(plan.problems) > MAIL_LIST_LIMIT:
        problems.append(f"… and {len(plan.problems) - MAIL_LIST_LIMIT} more")
    return {
        "customer": o.customer,
        "source": o.source,
        "status": o.status,
        "message": o.message,
        "summary": summary_line(o),
        "counts": {**Plan().counts(), **o.all_counts()},
        "sections": sections,
        "problems": problems,
        "run_id": o.run_id,
        "seconds": f"{o.seconds:.2f}",
    }


async def send_mail(cfg: ReportConfig, o: Outcome, templates: Path = TEMPLATES) -> None:
    """Send the report to each of `mail_to` through the relay; DeliveryError if it did not
    reach one of them, HeaderError if `mail_from` or `mail_to` is not a mail address."""
    subject, text, html = render(o, templates)
    head = mime.head(
        ("", cfg.mail_from),
        [("", address) for address in cfg.mail_to],
        subject,
        domain=cfg.mail_from.rpartition("@")[2],
        auto_submitted=mime.AutoSubmitted.GENERATED,
    )
    data = mime.alternative(head, text, html)
    client = relay_client(cfg)
    failed: list[tuple[str, DeliveryError]] = []
    try:
        for to in head.to:  # over one session, kept from one recipient to the next
            try:
                await client.send(data, head.sender.address, to.address)
            except DeliveryError as exc:
                failed.append((to.address, exc))
    finally:
        await client.close()
    if failed:
        reason = "; ".join(f"<{address}>: {exc}" for address, exc in failed)
        raise DeliveryDeferred(reason) from failed[0][1]


def relay_client(cfg: ReportConfig) -> SmtpClient:
    """The mailer's SMTP client with one hop, the relay: TLS level `verify` with
    `smtp_starttls` (STARTTLS required, certificate chain and host name checked), else
    `none`; no login."""
    table = TransportTable(
        (),
        relay=Hop(cfg.smtp_host, cfg.smtp_port),
        tls=TlsLevel.VERIFY if cfg.smtp_starttls else TlsLevel.NONE,
        ca_file=cfg.smtp_ca_file,
    )
    return SmtpClient(table, ehlo_name=cfg.ehlo_name, timeout=SMTP_TIMEOUT)


def append_log(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
