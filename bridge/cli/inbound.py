"""`mailsms inbound apply|list`, `stoplist add|remove|list|export` and `templates render`:
inbound numbers, the stop list, and notice templates with sample data."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from bridge.cli.common import ConfigOpt, fail, open_database, read_settings
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.inbound import actions_store as stop_sql
from bridge.inbound.admin import NumbersApplyError, apply_numbers, customer_id, list_numbers
from bridge.inbound.config import NumbersError, parse_numbers
from bridge.intake.addresses import classify_number
from bridge.notices.limits import TemplateLimits
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer

CustomerOpt = Annotated[str, typer.Option("--customer", help="The customer (see `customer list`).")]

inbound_app = typer.Typer(help="Inbound numbers, keywords and actions.", no_args_is_help=True)
stop_app = typer.Typer(help="The stop list (numbers that opted out).", no_args_is_help=True)
templates_app = typer.Typer(help="Notice templates.", no_args_is_help=True)

SAMPLES: dict[str, dict[str, Any]] = {
    "sms2mail": {
        "inbound_id": 1,
        "source": "+491701234567",
        "destination": "+4915550000001",
        "text": "Yes, 3pm works <b>fine</b>",
        "keyword": "",
        "customer": "demo",
        "received_at": "2026-01-01 12:00:00 UTC",
        "reply_to": "+491701234567@eu.rsms.net",
        "from_name": "SMS from +491701234567",
        "order_id": "ABC.1",
        "original_text": "Can we meet tomorrow?",
        "original_subject": "Meeting",
        "in_reply_to": "<original@example.com>",
        "to_name": "Demo User",
        "others": ["colleague@example.com"],
        "routed_by": "dynamic",
    },
    "push_failed": {
        "push_id": 1,
        "url": "https://crm.example.com/sms",
        "error": "HTTP 503",
        "attempts": 9,
        "inbound_id": 1,
        "customer": "demo",
        "created_at": "2026-01-01 12:00:00 UTC",
    },
    "list_export": {
        "customer": "demo",
        "list": "news",
        "mode": "changes",
        "since": "2026-01-01 06:00 UTC",
        "members": 2,
        "joined": 1,
        "left": 1,
        "rows": [
            {"msisdn": "+491701234567", "status": "member"},
            {"msisdn": "+491701234568", "status": "left"},
        ],
        "more": 0,
        "attachments": [],
    },
}


def _stop_number(number: str, config: Path | None) -> str:
    """The stop list's spelling of NUMBER (E.164; national with [defaults] default_country)."""
    found = classify_number(number, read_settings(config).defaults.default_country)
    if found is None:
        fail(f"{number!r} is not a phone number; write it internationally, e.g. +491701234567")
    return found[0]


def _customer(engine: Engine, name: str) -> int:
    cid = run_sync(engine, customer_id, name)
    if cid is None:
        fail(f"no customer {name!r}; see `mailsms customer list`")
    return cid


@inbound_app.command("apply")
def inbound_apply(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Make the numbers in the database match FILE (numbers.toml); idempotent."""
    try:
        spec = parse_numbers(file.read_text(encoding="utf-8"))
        report = run_sync(open_database(config), apply_numbers, spec, dry_run)
    except (NumbersError, NumbersApplyError) as exc:
        fail(f"{file}: {exc}")
    prefix = "would be " if dry_run else ""
    for word, items in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        for item in items:
            typer.echo(f"{prefix}{word}: {item}")
    if not (report.added or report.changed or report.removed):
        typer.echo("nothing to change")


@inbound_app.command("list")
def inbound_list(config: ConfigOpt = None) -> None:
    """List the inbound numbers with their customer, sharing, actions and keywords."""
    rows = run_sync(open_database(config), list_numbers)
    if not rows:
        typer.echo("no inbound numbers (see `mailsms inbound apply`)")
    for r in rows:
        typer.echo(
            f"{r.number:<16} {r.customer:<12} {r.sharing:<9} actions={','.join(r.actions)}"
            f" keywords={','.join(r.keywords) or '-'} fallback={','.join(r.fallback) or '-'}"
        )


@stop_app.command("add")
def stop_add(
    number: str,
    customer: CustomerOpt,
    service: Annotated[str, typer.Option(help="Only for this inbound number.")] = "",
    config: ConfigOpt = None,
) -> None:
    """Put NUMBER on a customer's stop list (mail to it is refused at RCPT)."""
    engine = open_database(config)
    cid = _customer(engine, customer)
    number = _stop_number(number, config)
    added = run_sync(engine, stop_sql.add_stop, cid, number, service, utcnow(), "cli")
    typer.echo(f"{number}: {'added' if added else 'already on the stop list'}")


@stop_app.command("remove")
def stop_remove(number: str, customer: CustomerOpt, config: ConfigOpt = None) -> None:
    """Take NUMBER off a customer's stop list (every service)."""
    engine = open_database(config)
    number = _stop_number(number, config)
    removed = run_sync(engine, stop_sql.remove_stop, _customer(engine, customer), number, None)
    typer.echo(f"{number}: {removed} entr{'y' if removed == 1 else 'ies'} removed")


@stop_app.command("list")
def stop_list(
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    config: ConfigOpt = None,
) -> None:
    """List stop-list entries (customer `*`: an opt-out that applies to every customer)."""
    engine = open_database(config)
    cid = _customer(engine, customer) if customer else None
    rows = run_sync(engine, stop_sql.list_stops, cid)
    if not rows:
        typer.echo("the stop list is empty")
    for r in rows:
        typer.echo(
            f"{r.msisdn:<16} {r.customer:<12} {r.service or '(all)':<16} "
            f"{r.origin:<4} {r.created_at:%Y-%m-%d %H:%M}"
        )


@stop_app.command("export")
def stop_export(
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the stop list as CSV to standard output."""
    engine = open_database(config)
    cid = _customer(engine, customer) if customer else None
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["msisdn", "customer", "service", "origin", "created_at"])
    for r in run_sync(engine, stop_sql.list_stops, cid):
        writer.writerow([r.msisdn, r.customer, r.service, r.origin, r.created_at.isoformat()])


@templates_app.command("render")
def templates_render(
    name: str,
    sample: Annotated[bool, typer.Option("--sample", help="Use built-in sample data.")] = True,
    customer: Annotated[str, typer.Option(help="Render with this customer's overrides.")] = "",
    html: Annotated[bool, typer.Option("--html", help="Print the whole MIME mail.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Render notice template NAME (sms2mail, list_export, push_failed, …) with sample data."""
    settings = read_settings(config)
    if name not in SAMPLES:
        fail(f"no sample for {name!r}; known: {', '.join(sorted(SAMPLES))}")
    context = dict(SAMPLES[name])
    if customer:
        context["customer"] = customer
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address=settings.mailer.from_address,
        from_name=settings.mailer.from_name,
        hostname=settings.smtp.hostname,
        customer_templates=settings.inbound.customer_templates,
        template_limits=TemplateLimits(
            settings.inbound.template_timeout, settings.inbound.template_max_chars
        ),
    )
    message = renderer.render(name, "demo@example.com", context)
    if html:
        typer.echo(message.as_string())
        return
    typer.echo(f"Subject: {message['Subject']}\nFrom: {message['From']}\n")
    body = message.get_body(("plain",))
    typer.echo(body.get_content() if body is not None else "")
