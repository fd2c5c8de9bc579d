"""A mail client we did not write, mutt (Debian's package), with its own MIME habits: it
takes the first charset of `send_charset` (us-ascii, iso-8859-1, utf-8) that holds the
text, sends it 8bit (BODY=8BITMIME) or, with `allow_8bit` unset, quoted-printable, marks
every body `Content-Disposition: inline`, writes `format=flowed` when asked, attaches a
file as an `attachment` part, and replies with "On <date>, <name> wrote:", "> " lines,
In-Reply-To/References and its own "-- " signature.

Mail2SMS: mutt in batch mode (`mutt -n -F muttrc`, the body from a file on stdin) sends to
our listener. Each mail gives the SMS text it should, and the text the same bytes give sent
by aiosmtplib to another number; the bytes are mutt's own, caught by first pointing the
same command at an SMTP sink. Reply by mail: an SMS from the phone reaches the user as
SMS2Mail; mutt itself opens the user's Maildir and replies (its `<reply>` and
`<send-message>` functions, typed by `push` on a pseudo-terminal of its own; the editor is
a script writing the answer), and only the answer is texted back, from the number the phone
wrote to: with mutt's own attribution, a German one, and one without a verb (name, address,
bracketed date), under the quote or above it."""

from __future__ import annotations

import asyncio
import email
import fcntl
import mailbox
import os
import pty
import re
import select
import shutil
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import aiosmtplib
import pytest

from bridge.sandbox.smsc import read_inbox, send_mo
from tests.conftest import make_settings
from tests.helpers import running_bridge, smtp_sink, wait_for

BY_LIBRARY = "+491701230001@eu.rsms.net"
BY_MUTT = "+491701230002@eu.rsms.net"
PHONE = "+491701234567"
NUMBER = "+4915550000001"  # the demo customer's sender number
MISSING = "mutt is missing: scripts/test-deps.sh (run by `make test`) installs it"

# A user's ~/.muttrc. `charset` as a UTF-8 locale sets it, `send_charset` and `allow_8bit`
# at mutt's defaults, written out; `include`, `reply_to` and `fast_reply` give the answers
# a user gives mutt's questions on a reply (include the mail, reply to its Reply-To), so
# none is asked. The listener on loopback offers no STARTTLS. `record`: mutt's copy of each
# mail it sends (fcc), a Maildir like the spool file. The editor is set by the reply test.
# `abort_unmodified = no`: the scripted editor writes the draft within milliseconds, and
# mutt tells an unmodified draft by its mtime's second alone. It sets the draft's mtime a
# second back first when it equals the clock's second (time(2)), but the kernel's
# fine-grained file times (Linux 6.13 and later) can put the mtime a second ahead of
# time(2): the edited draft then has the first mtime again and the reply is dropped as
# unmodified (about one write in 300 here). The test reads what was sent instead.
MUTTRC = """\
set charset = "utf-8"
set send_charset = "us-ascii:iso-8859-1:utf-8"
set allow_8bit = yes
set include = yes
set reply_to = yes
set fast_reply = yes
set from = "demo@example.com"
set realname = "Alice Example"
set use_from = yes
set hostname = "client.example"
set smtp_url = "smtp://127.0.0.1:{port}/"
set ssl_starttls = no
set ssl_force_tls = no
set mbox_type = Maildir
set spoolfile = "~/Mail"
set record = "~/sent"
set copy = yes
set signature = "~/.signature"
set abort_unmodified = no
"""
SIGNATURE = "Alice Example\nPlant Operations, Werk Nord\n"


@dataclass(frozen=True)
class Case:
    body: str
    sms: str  # the exact SMS text
    headers: dict[str, str]  # of mutt's text part, exactly as sent
    wire: bytes  # a piece of the mail exactly as sent
    settings: str = ""  # muttrc lines of the case
    attachment: str | None = None  # a text file attached with -a
    subject: str = "Werk Nord"


LONG_SUBJECT = (
    "Störung an Linie 4, Ersatzteil 12 € und ein sehr langer Betreff der umgebrochen wird"
)

CASES = {
    "ascii": Case(
        "Hello from mutt: pump P-101 is back online.\n",
        "Hello from mutt: pump P-101 is back online.",
        {"Content-Type": "text/plain; charset=us-ascii", "Content-Disposition": "inline"},
        b"\r\n\r\nHello from mutt: pump P-101 is back online.\r\n",
    ),
    "utf8_euro_8bit": Case(  # € is not in iso-8859-1: utf-8, sent as it is
        "Grüße aus Köln: das Ersatzteil kostet 12,50 €.\n",
        "Grüße aus Köln: das Ersatzteil kostet 12,50 €.",
        {
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": "inline",
            "Content-Transfer-Encoding": "8bit",
        },
        "Grüße aus Köln: das Ersatzteil kostet 12,50 €.\r\n".encode(),
    ),
    "latin1_umlauts_8bit": Case(  # umlauts only: iso-8859-1 is the first that holds them
        "Grüße aus Köln, bis morgen früh.\n",
        "Grüße aus Köln, bis morgen früh.",
        {
            "Content-Type": "text/plain; charset=iso-8859-1",
            "Content-Disposition": "inline",
            "Content-Transfer-Encoding": "8bit",
        },
        "Grüße aus Köln, bis morgen früh.\r\n".encode("iso-8859-1"),
    ),
    "utf8_euro_quoted_printable": Case(
        "Grüße aus Köln: das Ersatzteil kostet 12,50 €.\n",
        "Grüße aus Köln: das Ersatzteil kostet 12,50 €.",
        {
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": "inline",
            "Content-Transfer-Encoding": "quoted-printable",
        },
        b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln: das Ersatzteil kostet 12,50 =E2=82=AC.\r\n",
        settings="set allow_8bit = no\n",
    ),
    "format_flowed": Case(  # a trailing space: the line goes on in the next one
        "The night shift found the valve on line 4 \nleaking and closed it at 02:10.\n",
        "The night shift found the valve on line 4 leaking and closed it at 02:10.",
        {
            "Content-Type": "text/plain; charset=us-ascii; format=flowed",
            "Content-Disposition": "inline",
        },
        b"on line 4 \r\nleaking and",
        settings="set text_flowed = yes\n",
    ),
    "signature": Case(
        "Pump P-101 pressure high, please check.\n\n-- \nAlice Example\n"
        "Plant Operations, Werk Nord\n+49 30 1234567\n",
        "Pump P-101 pressure high, please check.",
        {"Content-Type": "text/plain; charset=us-ascii", "Content-Disposition": "inline"},
        b"please check.\r\n\r\n-- \r\nAlice Example\r\n",
    ),
    "attachment": Case(  # docs/text.md: attachments are counted, never sent
        "Shift report attached, please read it before 6pm.\n",
        "Shift report attached, please read it before 6pm.",
        {"Content-Type": "text/plain; charset=us-ascii", "Content-Disposition": "inline"},
        b"\r\n\r\nLine 4 stopped at 14:02, restarted at 14:40.\r\n",
        attachment="Line 4 stopped at 14:02, restarted at 14:40.\n",
    ),
    # a body that is only mutt's "-- " signature: the subject is the SMS (docs/text.md)
    "subject_only_latin1": Case(
        "\n-- \nAlice Example\nPlant Operations, Werk Nord\n",
        "Störung an Linie 4",
        {"Content-Type": "text/plain; charset=us-ascii", "Content-Disposition": "inline"},
        b"\r\nSubject: =?iso-8859-1?Q?St=F6rung?= an Linie 4\r\n",
        subject="Störung an Linie 4",
    ),
    "subject_only_utf8_folded": Case(  # encoded words split inside a word and a character
        "\n-- \nAlice Example\nPlant Operations, Werk Nord\n",
        LONG_SUBJECT,
        {"Content-Type": "text/plain; charset=us-ascii", "Content-Disposition": "inline"},
        b"\r\nSubject: =?utf-8?Q?St=C3=B6rung_an_Linie_4=2C_Ersat?= =?utf-8?Q?zteil_12_?=\r\n"
        b" =?utf-8?B?4oKs?= und ein sehr langer Betreff der umgebrochen wird\r\n",
        subject=LONG_SUBJECT,
    ),
}


def _env(home: Path) -> dict[str, str]:
    """Nothing of the machine's user: HOME is the test's, the locale UTF-8."""
    return {"HOME": str(home), "PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8", "TERM": "xterm"}


def _home(tmp_path: Path, port: int, settings: str = "") -> tuple[Path, Path]:
    """mutt's throwaway home: (home, a muttrc sending to `port`)."""
    home = tmp_path / "home"
    for sub in ("cur", "new", "tmp"):
        (home / "Mail" / sub).mkdir(parents=True, exist_ok=True)
    (home / ".signature").write_text(SIGNATURE, encoding="utf-8")
    muttrc = home / f"muttrc-{port}"
    muttrc.write_text(MUTTRC.format(port=port) + settings, encoding="utf-8")
    return home, muttrc


async def _mutt_sends(
    home: Path,
    muttrc: Path,
    to: str,
    body: str,
    attachment: str | None = None,
    subject: str = "Werk Nord",
) -> None:
    """`mutt -n -F muttrc -s … [-a file] -- to < body`: batch mode, never a terminal."""
    draft = home / "body.txt"
    draft.write_text(body, encoding="utf-8")
    args = ["mutt", "-n", "-F", str(muttrc), "-s", subject]
    if attachment is not None:
        report = home / "report.txt"
        report.write_text(attachment, encoding="utf-8")
        args += ["-a", str(report)]
    with draft.open("rb") as stdin:
        mutt = await asyncio.create_subprocess_exec(
            *args,
            "--",
            to,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(home),
        )
        try:
            out, err = await asyncio.wait_for(mutt.communicate(), 30)
        except TimeoutError:
            mutt.kill()
            await mutt.wait()
            raise
    assert mutt.returncode == 0, (out + err).decode(errors="replace")


async def _by_library(port: int, raw: bytes) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        await smtp.sendmail("demo@example.com", [BY_LIBRARY], raw)


def _texts(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute('SELECT recipient, text FROM "order" ORDER BY id').fetchall()
    return {f"{recipient}@eu.rsms.net": text for recipient, text in rows}


def _parts(msg: Message) -> list[Message]:
    """The mail itself, or the parts of a multipart mail."""
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if msg.is_multipart() else [msg]


@pytest.mark.parametrize("name", list(CASES))
async def test_mutt_mail_becomes_the_sms_the_library_gives(tmp_path: Path, name: str) -> None:
    assert shutil.which("mutt"), MISSING
    case = CASES[name]
    async with smtp_sink() as (sink, sink_port):
        home, muttrc = _home(tmp_path, sink_port, case.settings)
        await _mutt_sends(home, muttrc, BY_MUTT, case.body, case.attachment, case.subject)
    [envelope] = sink.envelopes
    raw = envelope.original_content
    assert isinstance(raw, bytes)
    # mutt's habits, as it sent them (compat32: header values exactly as written)
    sent = email.message_from_bytes(raw)
    text_part = _parts(sent)[0]
    assert {k: text_part[k] for k in case.headers} == case.headers
    assert ("Content-Transfer-Encoding" in text_part) == (
        "Content-Transfer-Encoding" in case.headers
    )
    eight_bit = case.headers.get("Content-Transfer-Encoding") == "8bit"
    assert ("BODY=8BITMIME" in envelope.mail_options) == eight_bit
    assert raw.isascii() != eight_bit
    assert case.wire in raw
    assert sent["From"] == "Alice Example <demo@example.com>"
    assert re.fullmatch(r"<[\w+-]{16}@client\.example>", sent["Message-ID"])
    assert sent["User-Agent"] is None
    if case.attachment is not None:
        assert sent.get_content_type() == "multipart/mixed"
        [_, attached] = _parts(sent)
        assert attached["Content-Type"] == "text/plain; charset=us-ascii"
        assert attached["Content-Disposition"] == 'attachment; filename="report.txt"'

    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        _, muttrc = _home(tmp_path, ep.smtp[1], case.settings)
        await _mutt_sends(home, muttrc, BY_MUTT, case.body, case.attachment, case.subject)
        await _by_library(ep.smtp[1], raw)
    texts = _texts(tmp_path / "bridge.db")
    assert texts.get(BY_MUTT) == texts.get(BY_LIBRARY)
    assert texts[BY_MUTT] == case.sms


SMS = "Ja, 15 Uhr passt. Bring 20 € mit."
ANSWER = "Prima, bis morgen um 15 Uhr. Die 20 € bringe ich mit."
# mutt's editor, run on its draft: attribution, "> " quote, blank line, "-- ", signature.
EDITOR = f"""#!{sys.executable}
import sys
from pathlib import Path
draft = Path(sys.argv[-1])
lines = draft.read_text(encoding="utf-8").split("\\n")
at = lines.index("-- ") if sys.argv[1] == "under" else 0
lines[at:at] = [{ANSWER!r}, ""]
draft.write_text("\\n".join(lines), encoding="utf-8")
"""


def _sms2mail(maildir: Path) -> list[Path]:
    """The SMS2Mail mails the bridge delivered (they, unlike status mails, have Reply-To)."""
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return [p for p in files if email.message_from_bytes(p.read_bytes())["Reply-To"]]


def _on_a_terminal(args: list[str], env: dict[str, str], within: float) -> tuple[int, str]:
    """Run `args` on a pseudo-terminal of its own (80x24), drain its screen until it ends,
    kill it after `within` seconds. Nothing is typed: mutt's `push` is its input."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last process has gone
                    break
                if not data:
                    break
                screen += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
    finally:
        os.close(master)
    return proc.wait(10), screen[-3000:].decode(errors="replace")


# mutt's attribution line: its default "On %d, %n wrote:" (`date_format` "!%a, %b %d, %Y
# at %I:%M:%S%p %Z") and a German one, as a German user sets it
ENGLISH = (
    rf"On \w{{3}}, \w{{3}} \d\d, \d{{4}} at \d\d:\d\d:\d\d[AP]M [-+]\d{{4}}, "
    rf"SMS from \{PHONE} wrote:"
)
GERMAN = rf"Am \d\d\.\d\d\.\d{{4}} um \d\d:\d\d schrieb SMS from \{PHONE}:"
# no verb at all: name, address and a bracketed date, as many mutt users set it
BRACKETED = rf"\* SMS from \{PHONE} <[^<>\s]+@[^<>\s]+> \[\d{{4}}-\d\d-\d\d \d\d:\d\d\]:"


@dataclass(frozen=True)
class Reply:
    where: str  # "under" the quote (mutt's custom) or "above" the attribution
    attribution: str  # a pattern of the line mutt writes
    flowed: bool = False  # text_flowed: format=flowed, quoted with ">" and no space
    settings: str = ""


REPLIES = {
    "under_the_quote": Reply("under", ENGLISH),
    "top_posted": Reply("above", ENGLISH),
    "under_the_quote_flowed": Reply("under", ENGLISH, flowed=True),
    "german_attribution": Reply(
        "under",
        GERMAN,
        settings='set attribution = "Am %d schrieb %n:"\nset date_format = "%d.%m.%Y um %H:%M"\n',
    ),
    "top_posted_bracketed_attribution": Reply(
        "above", BRACKETED, settings='set attribution = "* %n <%a> [%(%Y-%m-%d %H:%M)]:"\n'
    ),
}


@pytest.mark.parametrize("name", list(REPLIES))
async def test_mutt_reply_to_an_sms_mail_texts_back_only_the_answer(
    tmp_path: Path, name: str
) -> None:
    assert shutil.which("mutt"), MISSING
    case = REPLIES[name]
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        assert ep.sandbox is not None
        flowed = f"set text_flowed = {'yes' if case.flowed else 'no'}\n"
        editor = f'set editor = "~/editor {case.where}"\n'
        home, muttrc = _home(tmp_path, ep.smtp[1], flowed + editor + case.settings)
        (home / "editor").write_text(EDITOR, encoding="utf-8")
        (home / "editor").chmod(0o755)
        await _mutt_sends(home, muttrc, f"{PHONE}@eu.rsms.net", "Can we meet tomorrow at 3?\n")
        [sms] = await wait_for(lambda: read_inbox(settings.sandbox.inbox, PHONE))
        assert (sms.text, sms.source) == ("Can we meet tomorrow at 3?", NUMBER)
        await send_mo(*ep.sandbox, PHONE, None, SMS, settings.sandbox.inbox)
        [delivered] = await wait_for(lambda: _sms2mail(settings.mailer.maildir), 10)
        shutil.copy(delivered, home / "Mail" / "new")  # the user's mailbox: mutt's spool file

        code, screen = await asyncio.to_thread(
            _on_a_terminal,
            ["mutt", "-n", "-F", str(muttrc), "-e", 'push "<reply><send-message><quit>"'],
            _env(home),
            60,
        )
        assert code == 0, screen
        await wait_for(lambda: len(read_inbox(settings.sandbox.inbox, PHONE)) == 2, 10)
        await asyncio.sleep(0.5)  # and nothing more
        texted = [(m.text, m.source) for m in read_inbox(settings.sandbox.inbox, PHONE)]
    # only the answer (attribution, quote and mutt's signature cut), from the number the
    # phone wrote to
    assert texted == [(sms.text, NUMBER), (ANSWER, NUMBER)]
    assert _texts(tmp_path / "bridge.db")[f"{PHONE}@eu.rsms.net"] == ANSWER

    # mutt's reply, as its copy (fcc) in ~/sent has it
    original, reply = sorted(mailbox.Maildir(home / "sent"), key=lambda m: "In-Reply-To" in m)
    answered = email.message_from_bytes(delivered.read_bytes())
    assert reply["To"] == f"{PHONE}@eu.rsms.net"  # the Reply-To, taken without a question
    assert reply["Subject"] == f"Re: SMS from {PHONE}: Re: Werk Nord"
    assert reply["In-Reply-To"] == answered["Message-ID"]
    assert reply["References"].split() == [original["Message-ID"], answered["Message-ID"]]
    flowed_param = "; format=flowed" if case.flowed else ""
    assert reply["Content-Type"] == f"text/plain; charset=utf-8{flowed_param}"
    assert reply["Content-Transfer-Encoding"] == "8bit"
    payload = reply.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode("utf-8")
    attribution = re.compile(case.attribution + "\n")
    q = ">" if case.flowed else "> "  # format=flowed: no space after the quote mark
    assert f"\n{q}{SMS}\n{q}\n{q}--\n" in body  # every line quoted, an empty one as `q`
    if case.where == "under":
        head, rest = body.split(f"{q}{PHONE} wrote at ", 1)
        assert attribution.fullmatch(head)
        assert rest.endswith(f"\n{q}\n\n{ANSWER}\n\n-- \n{SIGNATURE}")
    else:
        assert body.startswith(f"{ANSWER}\n\n")
        assert attribution.match(body, len(ANSWER) + 2)
        assert body.endswith(f"\n{q}\n\n-- \n{SIGNATURE}")
