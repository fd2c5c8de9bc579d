"""The `mailsms report` commands: find orders (table or CSV), the monthly report, the purge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from bridge.cli.common import ConfigOpt, fail, open_database, read_settings
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.jobs import describe, purge_all
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.reports import store as report_sql
from bridge.reports.monthly_run import generate_monthly, mail_monthly, report_recipients
from bridge.reports.order_report import month_bounds, parse_when, to_csv, to_table

app = typer.Typer(help="Reports: orders, the monthly report, retention.", no_args_is_help=True)

Opt = typer.Option


@app.command("orders")
def report_orders(
    since: Annotated[
        str | None, Opt(help="From (UTC): 2026-10-01, '2026-10-01 08:00' or 7d / 12h ago.")
    ] = None,
    until: Annotated[str | None, Opt(help="Before (UTC), same forms as --since.")] = None,
    month: Annotated[str | None, Opt(help="A whole month, YYYY-MM (instead of --since).")] = None,
    customer: Annotated[str | None, Opt(help="Only this customer.")] = None,
    profile: Annotated[str | None, Opt(help="Only this service (profile).")] = None,
    user: Annotated[str | None, Opt(help="Only this user (address).")] = None,
    recipient: Annotated[str | None, Opt(help="Only this number (E.164).")] = None,
    status: Annotated[str | None, Opt(help="Only this status (e.g. failed, delivered).")] = None,
    cost_centre: Annotated[str | None, Opt("--cost-centre", help="Only this cost centre.")] = None,
    mail: Annotated[str | None, Opt(help="Only the orders of this mail id.")] = None,
    fmt: Annotated[str, Opt("--format", help="table or csv.")] = "table",
    limit: Annotated[int | None, Opt(help="At most this many rows.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List the orders that match every filter, oldest first (default period: all kept)."""
    if fmt not in ("table", "csv"):
        fail("--format: expected table or csv")
    start: datetime | None = None
    end: datetime | None = None
    try:
        if month:
            start, end = month_bounds(month)
        start = parse_when(since) if since else start
        end = parse_when(until) if until else end
    except ValueError as exc:
        fail(f"period: {exc}")
    filters = report_sql.OrderFilter(
        since=start,
        until=end,
        customer=customer,
        profile=profile,
        user=user,
        recipient=recipient,
        status=status,
        cost_centre=cost_centre,
        mail_id=mail,
        limit=limit,
    )
    rows = run_sync(open_database(config, read_only=True), report_sql.query_orders, filters)
    typer.echo(to_csv(rows) if fmt == "csv" else to_table(rows), nl=False)


@app.command("monthly")
def report_monthly(
    customer: Annotated[str, Opt(help="The customer.")],
    month: Annotated[str, Opt(help="The month, YYYY-MM.")],
    regenerate: Annotated[bool, Opt(help="Count again even if archived.")] = False,
    send: Annotated[bool, Opt(help="Also mail it to the report recipients.")] = False,
    csv: Annotated[bool, Opt("--csv", help="Print the CSV instead of the summary.")] = False,
    config: ConfigOpt = None,
) -> None:
    """(Re)generate or view the monthly report of a customer."""
    settings = read_settings(config)
    engine = open_database(config)
    try:
        month_bounds(month)
    except ValueError:
        fail(f"--month: expected YYYY-MM, got {month!r}")
    cid = run_sync(engine, report_sql.customer_id, customer)
    if cid is None:
        fail(f"no customer {customer!r}; see `mailsms customer list`")
    archived = None if regenerate else run_sync(engine, report_sql.get_monthly, cid, month)
    if archived is None:
        summary, csv_text = run_sync(engine, generate_monthly, cid, customer, month, utcnow())
    else:
        summary, csv_text = archived["summary"], archived["csv"]
    if send:
        recipients = run_sync(engine, report_recipients, cid, settings.reports.monthly_recipients)
        if not recipients:
            fail("no report recipients: set [reports] monthly_recipients or report_recipients")
        run_sync(engine, mail_monthly, cid, summary, csv_text, recipients, utcnow())
        typer.echo(f"queued for {', '.join(recipients)} (sent by the running bridge)")
    if csv:
        typer.echo(csv_text, nl=False)
        return
    renderer = Renderer(DEFAULT_TEMPLATES, from_address="-", from_name="-", hostname="-")
    typer.echo(renderer.render_text("monthly_report", summary), nl=False)


@app.command("purge")
def report_purge(
    dry_run: Annotated[bool, Opt("--dry-run", help="Count only, delete nothing.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Apply the retention now (the running bridge does it daily): orders, mails and
    receipts past [reports] retention_days, inbound SMS, notices, pushes and SMPP
    deliver_sm; texts past text_retention_days."""
    r = read_settings(config).reports
    counts = run_sync(
        open_database(config),
        purge_all,
        utcnow(),
        r.retention_days,
        r.text_retention_days,
        dry_run,
    )
    verb = "would purge" if dry_run else "purged"
    typer.echo(f"{verb}: {describe(counts)}")
