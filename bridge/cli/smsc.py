"""`mailsms smsc stats`: every SMPP bind's counters as each bridge process last stored them."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer

from bridge.cli.common import ConfigOpt, open_database
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.transports.bind_stats import list_binds

app = typer.Typer(help="The SMSC binds: their statistics.", no_args_is_help=True)


@app.command("stats")
def smsc_stats(
    smsc: Annotated[str | None, typer.Option("--smsc", help="Only this SMSC's binds.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Per-bind SMPP statistics of every bridge process on this database: state, window in
    use, submit_sm/s, submitted, throttled, rejected, timeouts, connections lost, receipts
    and MO since the process started. Each running `mailsms serve` stores a snapshot every
    [[smsc]] stats_interval (60 s by default); `age` says how old it is."""
    rows = run_sync(open_database(config), list_binds, smsc)
    if not rows:
        typer.echo(
            "no bind statistics stored yet (each `mailsms serve` stores them every stats_interval)"
        )
    now = utcnow()
    for row in rows:
        updated = row.updated_at
        if updated.tzinfo is None:  # SQLite hands back naive UTC
            updated = updated.replace(tzinfo=UTC)
        age = (now - updated).total_seconds()
        typer.echo(f"{row.instance:<24} age {age:.0f} s  {row.report.line()}")
