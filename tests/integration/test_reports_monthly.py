"""The running bridge mails last month's report (HTML summary + CSV) to an aiosmtpd sink."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.reports.order_report import month_bounds, previous_month
from bridge.reports.settings import ReportSettings
from tests.conftest import make_settings
from tests.helpers import running_bridge, smtp_sink, wait_for
from tests.integration.reports_seed import seed


async def test_monthly_report_is_mailed_at_the_start_of_the_month(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    seed(engine, tmp_path)
    month = previous_month(utcnow())
    start, _ = month_bounds(month)
    with engine.begin() as conn:  # move the seeded orders into last month; no queued order
        conn.execute(text("DELETE FROM order_event WHERE order_id = 'M8.1'"))
        conn.execute(text("DELETE FROM \"order\" WHERE id = 'M8.1'"))
        conn.execute(text('UPDATE "order" SET created_at = :t'), {"t": start + timedelta(days=3)})
        conn.execute(text("UPDATE inbound SET received_at = :t"), {"t": start + timedelta(days=4)})
    engine.dispose()
    async with smtp_sink() as (sink, port):
        mailer = settings.mailer.model_copy(
            update={"mode": "smtp", "relay_port": port, "starttls": "off"}
        )
        reports = ReportSettings(monthly_recipients=("ops@bridge.example",))
        async with running_bridge(
            settings.model_copy(update={"mailer": mailer, "reports": reports})
        ):
            await wait_for(lambda: len(sink.envelopes) == 2, within=10.0)
    by_rcpt = {tuple(e.rcpt_tos): m for e, m in zip(sink.envelopes, sink.messages(), strict=True)}
    assert set(by_rcpt) == {("ops@bridge.example",), ("acme-boss@acme.example",)}
    msg = by_rcpt[("ops@bridge.example",)]
    assert msg["Subject"] == f"SMS report {month} for acme: 3 sent, 6 parts, 5 failed"
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "sales" in html and "4711" in html and "9000" in html
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == f"sms-report-acme-{month}.csv"
    lines = attachment.get_content().splitlines()
    assert lines[0] == "service,cost_centre,user,orders,sent,parts,failed,received"
    assert "sales,4711,anna@acme.example,3,2,4,1,1" in lines
