"""A mail client we did not write, msmtp (Debian's package), sends to our listener: every
mail of the text corpus, and a ~50 KB mail as Outlook sends a short one, whose style sheet
has lines that begin with a dot. Each gives what the same bytes give sent by aiosmtplib
(to another number, so that neither is taken for a copy of the other): the same SMS text,
or the same refusal."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from pathlib import Path

import aiosmtplib
import pytest

from tests.conftest import make_settings
from tests.helpers import outlook_mail, running_bridge

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
BY_LIBRARY = "+491701230001@eu.rsms.net"
BY_MSMTP = "+491701230002@eu.rsms.net"
_REPLY = re.compile(r"server message: (\d{3})")


def _mails() -> list[tuple[str, bytes]]:
    corpus = [(p.stem, p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]
    return [*corpus, ("outlook_50kb_style_sheet", outlook_mail())]


def _texts(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute('SELECT recipient, text FROM "order" ORDER BY id').fetchall()
    return {f"{recipient}@eu.rsms.net": text for recipient, text in rows}


async def _by_library(port: int, raw: bytes) -> str:
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            await smtp.sendmail("demo@example.com", [BY_LIBRARY], raw)
    except aiosmtplib.SMTPResponseException as exc:
        return str(exc.code)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return str(exc.recipients[0].code)
    return "250"


async def _by_msmtp(port: int, raw: bytes) -> str:
    msmtp = await asyncio.create_subprocess_exec(
        "msmtp",
        "--host=127.0.0.1",
        f"--port={port}",
        "--auth=off",
        "--tls=off",
        "--from=demo@example.com",
        "--",
        BY_MSMTP,
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(msmtp.communicate(raw), 30)
    if msmtp.returncode == 0:
        return "250"
    found = _REPLY.search(err.decode(errors="replace"))
    assert found, err  # a refusal by the server, not a fault of the client
    return found[1]


@pytest.mark.parametrize(("name", "raw"), _mails(), ids=[name for name, _ in _mails()])
async def test_msmtp_gives_what_the_library_gives(tmp_path: Path, name: str, raw: bytes) -> None:
    assert shutil.which("msmtp"), "msmtp is missing: scripts/test-deps.sh installs it"
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        by_library = await _by_library(ep.smtp[1], raw)
        by_msmtp = await _by_msmtp(ep.smtp[1], raw)
    assert by_msmtp == by_library
    texts = _texts(tmp_path / "bridge.db")
    assert texts.get(BY_MSMTP) == texts.get(BY_LIBRARY)
    assert (BY_MSMTP in texts) == (by_msmtp == "250")
    if name == "outlook_50kb_style_sheet":  # each dot-led line lost its one added dot
        assert texts[BY_MSMTP] == "Pump P-101 pressure high, please check.\n.\n.."
