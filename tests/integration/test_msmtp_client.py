"""A mail client we did not write, msmtp (Debian's package), sends to our listener: every
mail of the text corpus, and a ~50 KB mail as Outlook sends a short one, whose style sheet
has lines that begin with a dot. Each gives what the same bytes give sent by aiosmtplib
(to another number, so that neither is taken for a copy of the other): the same SMS text,
or the same refusal. msmtp pipelines MAIL, its RCPTs and DATA where PIPELINING is offered,
as our listener does after EHLO: its dialogue shows the group and the replies in order."""

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


async def test_msmtp_pipelines_a_mail_to_two_numbers(tmp_path: Path) -> None:
    """msmtp uses the PIPELINING we offer: MAIL, both RCPTs and DATA go out before a reply
    is read (its `--debug` dialogue), the replies come back in order, and the mail gives
    two orders."""
    assert shutil.which("msmtp"), "msmtp is missing: scripts/test-deps.sh installs it"
    numbers = ["+491701230002@eu.rsms.net", "+491701230003@eu.rsms.net"]
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        msmtp = await asyncio.create_subprocess_exec(
            "msmtp",
            "--debug",
            "--host=127.0.0.1",
            f"--port={ep.smtp[1]}",
            "--auth=off",
            "--tls=off",
            "--from=demo@example.com",
            "--",
            *numbers,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(msmtp.communicate(b"Subject: hi\r\n\r\nHello\r\n"), 30)
    assert msmtp.returncode == 0, err
    dialogue = [line for line in out.decode().splitlines() if line[:4] in ("--> ", "<-- ")]
    assert "<-- 250-PIPELINING" in dialogue, dialogue
    at = dialogue.index("--> MAIL FROM:<demo@example.com>")
    assert dialogue[at : at + 8] == [
        "--> MAIL FROM:<demo@example.com>",
        *(f"--> RCPT TO:<{n}>" for n in numbers),
        "--> DATA",
        "<-- 250 2.1.0 Sender ok",
        "<-- 250 2.1.5 Recipient ok",
        "<-- 250 2.1.5 Recipient ok",
        "<-- 354 End data with <CR><LF>.<CR><LF>",
    ], dialogue
    assert sorted(_texts(tmp_path / "bridge.db")) == numbers
