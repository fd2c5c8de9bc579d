"""The daily list export: at each list's time (UTC) mail its members or changes as CSV + HTML.

A list is due when its scheduled time today has passed and it was not exported since.
With `only_if_changed`, a day without joins or leaves sends nothing (but counts as done).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

from sqlalchemy import Connection

from bridge.keyword_lists import store as list_sql
from bridge.keyword_lists.status import MemberStatus
from bridge.keyword_lists.store import ListRow, MemberRow
from bridge.notices.queue import queue_notice


def scheduled_before(now: datetime, at: str) -> datetime:
    """The latest moment at `at` (HH:MM UTC) that is not after `now`."""
    hour, minute = (int(x) for x in at.split(":"))
    today = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
    return today if today <= now else today - timedelta(days=1)


def is_due(lst: ListRow, now: datetime) -> bool:
    if not lst.export_to:
        return False
    slot = scheduled_before(now, lst.export_at)
    return lst.last_export_at is None or lst.last_export_at < slot


def to_csv(rows: list[MemberRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["msisdn", "status", "joined_at", "changed_at"])
    for r in rows:
        writer.writerow([r.msisdn, r.status, r.joined_at.isoformat(), r.changed_at.isoformat()])
    return out.getvalue()


def export_due(conn: Connection, now: datetime) -> int:
    """Queue the export mail of every due list; returns how many mails were queued."""
    queued = 0
    for lst in list_sql.all_lists(conn):
        if not is_due(lst, now):
            continue
        everyone = list_sql.members(conn, lst.id)
        since = lst.last_export_at
        changes = [m for m in everyone if since is None or m.changed_at > since]
        list_sql.mark_exported(conn, lst.id, now)
        if lst.only_if_changed and not changes:
            continue
        rows = changes if lst.export_mode == "changes" else everyone
        context = {
            "customer": lst.customer,
            "list": lst.name,
            "mode": lst.export_mode,
            "since": since.strftime("%Y-%m-%d %H:%M UTC") if since else "",
            "members": sum(1 for m in everyone if m.status == MemberStatus.MEMBER),
            "joined": sum(1 for m in changes if m.status == MemberStatus.MEMBER),
            "left": sum(1 for m in changes if m.status == MemberStatus.LEFT),
            "rows": [{"msisdn": r.msisdn, "status": r.status} for r in rows[:50]],
            "more": max(0, len(rows) - 50),
            "attachments": [
                {
                    "filename": f"{lst.name}-{now:%Y-%m-%d}.csv",
                    "mimetype": "text/csv",
                    "content": to_csv(rows),
                }
            ],
        }
        for address in lst.export_to:
            queue_notice(conn, "list_export", address, context, now, customer=lst.customer)
            queued += 1
    return queued
