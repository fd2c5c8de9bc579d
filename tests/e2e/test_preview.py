"""Preview without sending: `mailsms preview` and mail to preview+<number>@domain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosmtplib
from typer.testing import CliRunner

from bridge.cli import app
from bridge.sandbox.smsc import read_inbox
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

MAIL = (
    "Yes, I\u2019ll be there at 3 \u2014 see you\u2026 {ok}\n\n-- \nAlice\nSent from my iPhone\n\n"
    "On Mon, Bob wrote:\n> Are you coming?\n"
)


def test_cli_preview_shows_cleaning_encoding_replacements_and_parts(tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(make_mail(body=MAIL))
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "b.db"}"\n[sandbox]\nenabled = true\n'
    )
    runner = CliRunner()
    result = runner.invoke(app, ["preview", str(eml), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "Encoding:  GSM-7" in result.output  # typography replaced by default
    assert "On Mon, Bob wrote:" in result.output.split("Removed by the cleaning rules:")[1]
    assert "Part 1/1:\nYes, I'll be there at 3 - see you... {ok}" in result.output

    result = runner.invoke(
        app, ["preview", str(eml), "-c", str(config), "--set", "replacement=ucs2"]
    )
    assert result.exit_code == 0, result.output
    assert "Encoding:  UCS-2" in result.output
    assert "Part 1/1:\nYes, I\u2019ll be there at 3 \u2014 see you\u2026 {ok}" in result.output

    result = runner.invoke(
        app,
        [
            "preview",
            str(eml),
            "-c",
            str(config),
            "--set",
            "replacement=smart",
            "--set",
            "max_parts=1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Encoding:  GSM-7, 43 septets" in result.output
    assert "\u2019 -> '" in result.output and "\u2026 -> ..." in result.output

    result = runner.invoke(
        app, ["preview", str(eml), "-c", str(config), "--set", "replacement=reject"]
    )
    assert "would REFUSE this mail (bad_encoding)" in result.output

    long_mail = tmp_path / "long.eml"
    long_mail.write_bytes(make_mail(body="word " * 70))
    result = runner.invoke(app, ["preview", str(long_mail), "-c", str(config)])
    assert "Parts:     3" in result.output and "Part 3/3:" in result.output


async def test_preview_mail_comes_back_and_nothing_is_submitted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail(
                "demo@example.com", ["preview+491701234567@eu.rsms.net"], make_mail(body=MAIL)
            )
        [notice] = await wait_for(lambda: maildir_messages(settings.mailer.maildir))
        assert notice["Subject"].startswith("SMS preview for +491701234567: 1 part, GSM-7")
        assert notice["In-Reply-To"] == "<original-1@client.example>"
        html = notice.get_body(("html",)).get_content()
        assert "nothing was sent" in html and "On Mon, Bob wrote:" in html
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        assert conn.execute('SELECT count(*) FROM "order"').fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM mail").fetchone() == (1,)
    assert read_inbox(settings.sandbox.inbox) == []
