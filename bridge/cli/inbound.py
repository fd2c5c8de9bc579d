"""`mailsms inbound apply|list|messages|lists|members`, `stoplist add|remove|list|export` and
`templates render`: inbound numbers, the received SMS (unroutable ones too), keyword lists
and their members, the stop list, and notice templates with sample data."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from bridge.cli.common import ConfigOpt, fail, open_database, read_file, read_settings
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.inbound import actions_store as stop_sql
from bridge.inbound.admin import NumbersApplyError, apply_numbers, customer_id, list_numbers
from bridge.inbound.config import NumbersError, parse_numbers
from bridge.inbound.listing import STATUSES, list_messages
from bridge.intake.addresses import classify_number
from bridge.keyword_lists.store import all_lists, members
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
        spec = parse_numbers(read_file(file))
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


def _since(value: str | None) -> datetime | None:
    """--since: an ISO date or date-time (UTC when it names no offset)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--since {value!r}: expected a date or date-time like 2026-12-01 or 2026-12-01T09:00")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@inbound_app.command("messages")
def inbound_messages(
    status: Annotated[
        str | None,
        typer.Option(help=f"Only SMS in this status ({', '.join(STATUSES)})."),
    ] = None,
    number: Annotated[
        str | None,
        typer.Option(
            help="Only SMS from this phone or to this inbound number (national numbers read "
            "with [defaults] default_country; a short code as written)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only SMS received at or after this time (ISO, UTC by default)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    config: ConfigOpt = None,
) -> None:
    """List received SMS (MO), newest first, with their status: notified, unroutable (nobody
    to give it to), limited (over [inbound] mo_limit, no action run), held (an error, see
    the reason) or received (not yet routed)."""
    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    found = number
    if number is not None:  # E.164 when it reads as a phone number, else as given (short code)
        spelled = classify_number(number, read_settings(config).defaults.default_country)
        found = spelled[0] if spelled is not None else number.strip()
    engine = open_database(config)
    rows = run_sync(
        engine, list_messages, status=status, number=found, since=_since(since), limit=limit
    )
    if not rows:
        typer.echo("no inbound SMS match")
    for r in rows:
        text = r.text.replace("\n", " ")
        text = text if len(text) <= 60 else text[:59] + "…"
        why = f"  ({r.error.strip().splitlines()[-1][:100]})" if r.error.strip() else ""
        answer = f" reply-to={r.order_id}" if r.order_id else ""
        typer.echo(
            f"{r.id:<6} {r.received_at:%Y-%m-%d %H:%M:%S} {r.status:<10} {r.source:<16} -> "
            f"{r.destination:<16} parts={r.parts}{answer} {text!r}{why}"
        )


@inbound_app.command("lists")
def inbound_lists(
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    config: ConfigOpt = None,
) -> None:
    """List the keyword lists (senders join and leave by SMS) with their member counts."""
    engine = open_database(config)
    lists = [x for x in run_sync(engine, all_lists) if customer is None or x.customer == customer]
    if not lists:
        typer.echo("no keyword lists (see `mailsms inbound apply`)")
    for x in lists:
        rows = run_sync(engine, members, x.id)
        joined = sum(1 for m in rows if m.status == "member")
        exported = f"{x.last_export_at:%Y-%m-%d %H:%M}" if x.last_export_at else "never"
        typer.echo(
            f"{x.customer:<12} {x.name:<16} members={joined} left={len(rows) - joined} "
            f"export={x.export_mode}@{x.export_at} to={','.join(x.export_to) or '-'} "
            f"last export={exported}"
        )


@inbound_app.command("members")
def inbound_members(
    name: Annotated[str, typer.Argument(help="The keyword list (see `mailsms inbound lists`).")],
    customer: CustomerOpt,
    everyone: Annotated[
        bool, typer.Option("--all", help="Also numbers that left the list.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """List the numbers on keyword list NAME (joined by SMS), with when they joined."""
    engine = open_database(config)
    found = [x for x in run_sync(engine, all_lists) if x.customer == customer and x.name == name]
    if not found:
        _customer(engine, customer)
        fail(f"customer {customer} has no keyword list {name!r}; see `mailsms inbound lists`")
    rows = [m for m in run_sync(engine, members, found[0].id) if everyone or m.status == "member"]
    if not rows:
        typer.echo(f"{name}: no members")
    for m in rows:
        typer.echo(
            f"{m.msisdn:<16} {m.status:<7} joined {m.joined_at:%Y-%m-%d %H:%M} "
            f"changed {m.changed_at:%Y-%m-%d %H:%M}"
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
