"""The `mailsms notices` command: what the mailer did with the bridge's mails, and why.

Lists the newest notices (status mails, DSNs, SMS2Mail, reports …) with their status,
attempts and the last reply of the relay, and counts all notices per kind and status:
a notice the relay refused permanently shows here as `failed` with the refusal.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import ConfigOpt, open_database
from bridge.db.store import run_sync
from bridge.notices import queue as notice_sql
from bridge.notices.status import NoticeStatus

STATUSES = "queued, deferred, sent, failed, held"


def notices(
    status: Annotated[
        str | None, typer.Option(help=f"Only notices in this status ({STATUSES}).")
    ] = None,
    order: Annotated[str | None, typer.Option(help="Only the notices about this order id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    config: ConfigOpt = None,
) -> None:
    """List recent notices with the relay's last reply, and count them per kind and status."""
    engine = open_database(config)
    counts = run_sync(engine, notice_sql.count_notices)
    totals: dict[str, int] = {}
    for (_, state), count in counts.items():
        totals[state] = totals.get(state, 0) + count
    typer.echo(
        "notices: " + (", ".join(f"{n} {state}" for state, n in sorted(totals.items())) or "none")
    )
    for (kind, state), count in sorted(counts.items()):
        typer.echo(f"  {kind:<15} {state:<9} {count}")
    rows = run_sync(engine, notice_sql.list_notices, status, limit, order)
    if rows:
        typer.echo("")
    for n in rows:
        when = n["sent_at"] or n["next_attempt_at"]
        typer.echo(
            f"{n['id']:<8} {n['kind']:<15} {n['status']:<9} attempts={n['attempts']:<3} "
            f"{when:%Y-%m-%d %H:%M:%S} <{n['recipient']}>"
            + (f" order={n['order_id']}" if n["order_id"] else "")
        )
        if n["error"] and n["status"] != NoticeStatus.SENT:
            typer.echo(f"         {n['error'].splitlines()[-1][:300]}")
