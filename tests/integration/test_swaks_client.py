"""A peer we did not write, swaks (Debian's package), as the client of our SMTP listener,
with the habits of a tool admins reach for to try a gateway:

* `--protocol SMTP` greets with HELO, not EHLO: such a client still gets its SMS, and the
  access rules (STARTTLS required by the listener, as on the SAP path with `SMS=`
  recipients, or by the customer; AUTH for a customer without client networks) refuse it
  at MAIL with the very line an EHLO client without TLS gets;
* `--pipeline` pipelines when the server offers PIPELINING, as we do after EHLO: swaks
  sends MAIL, every RCPT and DATA in one go and reads the replies after; of several
  recipients each invalid one gets its own 5xx with an enhanced code, in its place among
  the replies, while the valid ones get an order each, after one DATA;
* `--tls` (STARTTLS, through Perl's Net::SSLeay) with `--auth PLAIN` / `--auth LOGIN`:
  AUTH is offered only inside TLS, a wrong password gets 535 5.7.8, and `--auth` without
  TLS finds no AUTH offered, so the password never crosses in plaintext;
* the body: swaks doubles leading dots and sends 8-bit UTF-8 as it is (it has no
  `--8bitmime`, so no BODY=8BITMIME, and `--body` declares no charset); the same bytes
  sent by aiosmtplib give the same SMS text, or the same refusal of a line too long;
* `--quit-after` / `--drop-after` / `--drop-after-send` leave mid-transaction: no order,
  and the listener goes on serving;
* its default mail (Date, `Message-Id: <time.pid@host>`, `X-Mailer: swaks`, "Subject: test
  <date>", "This is a test mailing"), `--add-header`, `--header`, `--attach` (a
  multipart/mixed mail whose attachment is not texted), a `\\n` in `--body` (swaks makes
  it a line break) and its default sender `$LOGNAME@<host>` (an unknown sender: 550 5.7.1).

Numbers are written `0049…` (swaks reads an argument starting with `+` oddly). swaks'
transcript marks what it sent (` -> `, ` ~> ` inside TLS) and received (`<- `, `<~ `;
`<**`, `<~*` for a reply it did not expect), and it exits non-zero on a refusal (23 at
MAIL, 28 at AUTH, 26 after the data)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import trustme

from bridge.app import Bridge
from bridge.db.store import run_sync
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.logins import add_credential
from tests.conftest import make_settings
from tests.helpers import running_bridge

MISSING = "swaks is missing: scripts/test-deps.sh installs it"
NO_TLS = "swaks' STARTTLS needs Perl's Net::SSLeay: scripts/test-deps.sh installs it"
DOMAIN = "eu.rsms.net"
DEMO = "demo@example.com"  # the demo customer: client networks 127.0.0.0/8, no login
ACME = "ops@acme.example"  # a customer without client networks: AUTH only
LOGIN, PASSWORD = "acme-mta", "long-secret-1"
PLANT = "ops@plant.example"  # client networks, but STARTTLS required
STARTTLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
MUST_AUTH = (
    f"530 5.7.0 Sender <{ACME}> must authenticate (STARTTLS, then AUTH with a login of its "
    "account) or send from one of its account's client networks; ask your administrator"
)
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid; check user and password"
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as (\w+)")
ENHANCED_REFUSAL = re.compile(r"5\d\d 5\.\d{1,3}\.\d{1,3} .{30,}")  # code, status, a sentence
_SENT = (" -> ", " ~> ", "**> ", "*~> ")
_RECEIVED = ("<-  ", "<~  ", "<** ", "<~* ")


def _number(n: int) -> str:
    """A German mobile number as swaks is given it (0049…), and as the bridge stores it."""
    return f"004917012300{n:02d}@{DOMAIN}"


def _stored(n: int) -> str:
    return f"+4917012300{n:02d}"


@dataclass(frozen=True)
class Transcript:
    """What one swaks run printed and how it ended."""

    args: tuple[str, ...]
    status: int
    lines: list[str]

    def __str__(self) -> str:  # for assertion messages
        return f"swaks {' '.join(self.args)} -> exit {self.status}\n" + "\n".join(self.lines)

    def sent(self) -> list[str]:
        return [line[4:] for line in self.lines if line.startswith(_SENT)]

    def received(self) -> list[str]:
        return [line[4:] for line in self.lines if line.startswith(_RECEIVED)]

    def exchanges(self) -> list[tuple[str, list[str]]]:
        """(line sent, the reply lines read after it), in order; the greeting under ""."""
        out: list[tuple[str, list[str]]] = [("", [])]
        for line in self.lines:
            if line.startswith(_SENT):
                out.append((line[4:], []))
            elif line.startswith(_RECEIVED):
                out[-1][1].append(line[4:])
        return out

    def reply(self, command: str) -> str:
        """The final reply line to the one command sent exactly as `command`."""
        found = [reply for sent, reply in self.exchanges() if sent == command]
        assert len(found) == 1 and found[0], f"{command!r} sent {len(found)} times\n{self}"
        return found[0][-1]

    def marker(self, reply: str) -> str:
        """The transcript's prefix of a received line (`<- `, `<**`, `<~ `, `<~*`)."""
        [prefix] = [line[:3] for line in self.lines if line[4:] == reply]
        return prefix


async def swaks(port: int, *args: str, local: str = "") -> Transcript:
    """Run swaks against our listener on 127.0.0.1 (30 s at most), its transcript parsed."""
    assert shutil.which("swaks"), MISSING
    where = ("--local-interface", local) if local else ()
    argv = ("--server", f"127.0.0.1:{port}", "--timeout", "20", *where, *args)
    process = await asyncio.create_subprocess_exec(
        "swaks",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    lines = out.decode("utf-8", errors="replace").splitlines()
    assert "requires Net::SSLeay" not in "\n".join(lines), NO_TLS
    return Transcript(argv, process.returncode, lines)


def _orders(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    """(mail id, recipient, rcpt_address, text) of every order."""
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(
            'SELECT mail_id, recipient, rcpt_address, text FROM "order" ORDER BY id'
        ).fetchall()


def _texts(tmp_path: Path) -> dict[str, str]:
    return {recipient: text for _, recipient, _, text in _orders(tmp_path)}


def _mail(tmp_path: Path, mail_id: str) -> dict[str, Any]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT m.helo, m.client_addr, m.message_id, m.subject, m.raw, c.name AS customer "
            'FROM mail m JOIN "user" u ON u.id = m.user_id '
            "JOIN customer c ON c.id = u.customer_id WHERE m.id = ?",
            (mail_id,),
        ).fetchone()
    assert row is not None, mail_id
    return dict(row)


def _policy(tmp_path: Path, recipient: str) -> dict[str, Any]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        (policy,) = conn.execute(
            'SELECT policy FROM "order" WHERE recipient = ?', (recipient,)
        ).fetchone()
    result: dict[str, Any] = json.loads(policy)
    return result


def _queued(run: Transcript) -> str:
    """The mail id of the one `250 … queued as` reply (to swaks' final dot)."""
    matches = [m for line in run.received() if (m := QUEUED.fullmatch(line))]
    assert len(matches) == 1 and run.reply(".") == matches[0][0], run
    return matches[0][1]


def _tls_settings(tmp_path: Path, plaintext: Sequence[str]) -> Settings:
    """The test settings with STARTTLS (a trustme certificate), plaintext MAIL only from
    `plaintext`; everyone else gets 530 at MAIL until STARTTLS, whatever the greeting."""
    ca = trustme.CA()
    cert = ca.issue_cert("mailsms.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    settings = make_settings(tmp_path)
    smtp = settings.smtp.model_copy(
        update={
            "tls_cert": cert_file,
            "tls_key": key_file,
            "require_tls": True,
            "plaintext_networks": tuple(plaintext),
        }
    )
    return settings.model_copy(update={"smtp": smtp})


def _add_customers(bridge: Bridge) -> None:
    """acme: no client networks, one login (as `customer add` + `login add` make it);
    plant: client networks (loopback) with STARTTLS required (`customer access
    --require-tls`)."""
    assert bridge.store is not None
    engine = bridge.store.engine
    run_sync(engine, add_customer, "acme", {})
    run_sync(engine, add_user, ACME, "acme")
    run_sync(engine, add_credential, LOGIN, "acme", PASSWORD)
    access = {"networks": ["127.0.0.0/8"], "require_tls": True}
    run_sync(engine, add_customer, "plant", {"access": access})
    run_sync(engine, add_user, PLANT, "plant")


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- 1. HELO (--protocol SMTP) ------------------------------------------------------------


async def test_a_helo_client_gets_its_sms(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--protocol", "SMTP", "--helo", "legacy.plant.example",
            "--from", DEMO, "--to", _number(1),
        )  # fmt: skip
    assert run.status == 0, run
    assert [s for s in run.sent() if s[:5] in ("HELO ", "EHLO ")] == [
        "HELO legacy.plant.example"
    ], run
    assert run.reply("HELO legacy.plant.example") == "250 mailsms.localdomain", run
    assert run.reply(f"MAIL FROM:<{DEMO}>") == "250 2.1.0 Sender ok", run
    assert run.reply(f"RCPT TO:<{_number(1)}>") == "250 2.1.5 Recipient ok", run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [(mail_id, _stored(1), _number(1), "This is a test mailing")]
    mail = _mail(tmp_path, mail_id)
    assert (mail["helo"], mail["client_addr"], mail["customer"]) == (
        "legacy.plant.example", "127.0.0.1", "demo",
    )  # fmt: skip


@pytest.mark.parametrize("protocol", ["SMTP", "ESMTP"], ids=["HELO", "EHLO"])
@pytest.mark.parametrize(
    ("sender", "rcpt", "local", "refusal"),
    [
        # the SAP path: plaintext only from 127.0.0.1, the client on 127.0.0.2
        (DEMO, f"SMS={_number(3)}", "127.0.0.2", STARTTLS_FIRST),
        (PLANT, _number(4), "127.0.0.1", STARTTLS_FIRST),  # the customer requires TLS
        (ACME, _number(5), "127.0.0.1", MUST_AUTH),  # no client networks: AUTH only
    ],
    ids=["listener-requires-starttls-sap", "customer-requires-tls", "customer-requires-auth"],
)
async def test_access_rules_refuse_a_helo_client_as_an_ehlo_one(
    tmp_path: Path, protocol: str, sender: str, rcpt: str, local: str, refusal: str
) -> None:
    """The same line for HELO and for EHLO (without STARTTLS): each parameter set asserts
    the one expected reply for both greetings."""
    async with running_bridge(_tls_settings(tmp_path, ["127.0.0.1/32"])) as (bridge, ep):
        _add_customers(bridge)
        run = await swaks(
            ep.smtp[1], "--protocol", protocol, "--from", sender, "--to", rcpt, local=local
        )
    greeting = "HELO" if protocol == "SMTP" else "EHLO"
    assert run.sent()[0].split()[0] == greeting, run
    if greeting == "EHLO":  # offered, but this client goes on without it
        assert "250-STARTTLS" in run.exchanges()[1][1], run
    assert run.reply(f"MAIL FROM:<{sender}>") == refusal, run
    assert run.marker(refusal) == "<**", run
    assert run.status == 23, run  # swaks: MAIL refused
    assert not any(s.startswith(("RCPT", "DATA")) for s in run.sent()), run
    assert run.sent()[-1] == "QUIT" and run.received()[-1] == "221 2.0.0 Bye", run
    assert _orders(tmp_path) == []


# -- 2. --pipeline -------------------------------------------------------------------------


async def test_pipeline_with_invalid_recipients_among_valid_ones(tmp_path: Path) -> None:
    refused = {
        f"hello@{DOMAIN}": (
            f"550 5.1.3 <hello@{DOMAIN}> is not a mobile number; write the number in "
            f"international form, e.g. +491701234567@{DOMAIN}"
        ),
        f"004930123456@{DOMAIN}": (
            f"550 5.1.3 <004930123456@{DOMAIN}> is a landline number (+49 30 123456), not a "
            "mobile number; SMS reach mobile phones only: write the recipient's mobile number"
        ),
        "00491701230009@other.example": (
            "550 5.1.2 The domain of <00491701230009@other.example> is not a domain this "
            f"bridge serves; write <number>@{DOMAIN}"
        ),
    }
    rcpts = [_number(1), *refused, _number(2), _number(3)]
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(ep.smtp[1], "--pipeline", "--from", DEMO, "--to", ",".join(rcpts))
    assert run.status == 0, run  # some recipients accepted: swaks goes on and succeeds
    ehlo = run.exchanges()[1]
    assert ehlo[0].startswith("EHLO ") and "250-PIPELINING" in ehlo[1], run
    # PIPELINING offered: swaks sends MAIL, the RCPTs and DATA before reading a reply, then
    # reads one reply per command, in the commands' order.
    group = [f"MAIL FROM:<{DEMO}>", *(f"RCPT TO:<{r}>" for r in rcpts), "DATA"]
    sent = run.sent()
    at = sent.index(group[0])
    assert sent[at : at + len(group)] == group, run
    [replies] = [r for s, r in run.exchanges() if s == "DATA"]
    assert [s for s, r in run.exchanges() if s in group[:-1] and r] == [], run  # none between
    assert len(replies) == len(group), run
    assert replies[0] == "250 2.1.0 Sender ok", run
    for rcpt, answer in zip(rcpts, replies[1:-1], strict=True):
        if rcpt in refused:
            assert answer == refused[rcpt], run
            assert ENHANCED_REFUSAL.fullmatch(answer), answer
            assert run.marker(answer) == "<**", run
        else:
            assert answer == "250 2.1.5 Recipient ok", run
    assert replies[-1] == "354 End data with <CR><LF>.<CR><LF>", run
    assert sum(line.startswith("354 ") for line in run.received()) == 1, run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [
        (mail_id, _stored(n), _number(n), "This is a test mailing") for n in (1, 2, 3)
    ]


# -- 3. STARTTLS and AUTH ------------------------------------------------------------------


@pytest.mark.both_loops  # STARTTLS also on uvloop ([server] event_loop)
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_and_auth_on_the_sap_path(tmp_path: Path, mechanism: str) -> None:
    """No plaintext network at all (the SAP guide's `require_tls`): swaks `--tls --auth`
    sends to an `SMS=` recipient for acme, a customer without client networks."""
    rcpt = f"SMS={_number(6)}"
    async with running_bridge(_tls_settings(tmp_path, [])) as (bridge, ep):
        _add_customers(bridge)
        run = await swaks(
            ep.smtp[1], "--tls", "--auth", mechanism, "--auth-user", LOGIN,
            "--auth-password", PASSWORD, "--from", ACME, "--to", rcpt,
        )  # fmt: skip
    assert run.status == 0, run
    before, after = [replies for sent, replies in run.exchanges() if sent.startswith("EHLO ")]
    assert "250-STARTTLS" in before and not any("AUTH" in r for r in before), run
    assert "250-AUTH LOGIN PLAIN" in after and "250-STARTTLS" not in after, run
    assert run.reply("STARTTLS") == "220 Ready to start TLS", run
    assert any(line.startswith("=== TLS started with cipher TLSv1.") for line in run.lines), run
    # the login goes inside TLS only (swaks marks what it sends encrypted with "~>")
    [auth] = [line for line in run.lines if line[4:].startswith("AUTH ")]
    if mechanism == "PLAIN":  # the login and password in the command itself
        assert auth.startswith(" ~> AUTH PLAIN "), run
    else:  # the login and password each in its own line, after our 334
        assert auth == " ~> AUTH LOGIN", run
    assert "235 2.7.0 Authentication successful" in run.received(), run
    assert run.reply(f"MAIL FROM:<{ACME}>") == "250 2.1.0 Sender ok", run
    assert run.reply(f"RCPT TO:<{rcpt}>") == "250 2.1.5 Recipient ok", run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [(mail_id, _stored(6), rcpt, "This is a test mailing")]
    assert _mail(tmp_path, mail_id)["customer"] == "acme"


@pytest.mark.both_loops  # STARTTLS also on uvloop ([server] event_loop)
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_a_wrong_password_gets_535(tmp_path: Path, mechanism: str) -> None:
    async with running_bridge(_tls_settings(tmp_path, [])) as (bridge, ep):
        _add_customers(bridge)
        run = await swaks(
            ep.smtp[1], "--tls", "--auth", mechanism, "--auth-user", LOGIN,
            "--auth-password", "not-the-password", "--from", ACME, "--to", _number(7),
        )  # fmt: skip
    assert run.status == 28, run  # swaks: authentication failed
    assert AUTH_FAILED in run.received(), run
    assert run.marker(AUTH_FAILED) == "<~*", run  # refused, inside TLS
    assert "*** No authentication type succeeded" in run.lines, run
    assert not any(s.startswith("MAIL") for s in run.sent()), run
    assert _orders(tmp_path) == []


@pytest.mark.both_loops  # STARTTLS also on uvloop ([server] event_loop)
async def test_without_starttls_no_auth_and_no_mail(tmp_path: Path) -> None:
    """AUTH is not offered in plaintext, so swaks `--auth` gives up before sending the
    password; without `--tls` MAIL gets our 530, with `--tls` but no login the 530 that
    asks for AUTH."""
    async with running_bridge(_tls_settings(tmp_path, [])) as (bridge, ep):
        _add_customers(bridge)
        login = ("--auth-user", LOGIN, "--auth-password", PASSWORD, "--from", ACME)
        no_tls = await swaks(ep.smtp[1], "--auth", "PLAIN", *login, "--to", _number(8))
        plain = await swaks(ep.smtp[1], "--from", ACME, "--to", _number(8))
        no_auth = await swaks(ep.smtp[1], "--tls", "--from", ACME, "--to", _number(8))
    assert no_tls.status == 28, no_tls
    assert "*** Host did not advertise authentication" in no_tls.lines, no_tls
    assert not any(s.startswith(("AUTH", "MAIL")) for s in no_tls.sent()), no_tls
    assert plain.status == 23 and plain.reply(f"MAIL FROM:<{ACME}>") == STARTTLS_FIRST, plain
    assert no_auth.status == 23, no_auth
    assert no_auth.reply(f"MAIL FROM:<{ACME}>") == MUST_AUTH, no_auth
    assert no_auth.marker(MUST_AUTH) == "<~*", no_auth
    assert _orders(tmp_path) == []


# -- 4. the body: dots, 8-bit UTF-8, long lines ---------------------------------------------

BODY_LINES = [
    "Pump P-101 pressure high.",
    ".leading dot",
    ".",  # a line of only a dot, inside the body (swaks drops one at the very end)
    "..two dots",
    "Grüße aus Köln: 20 € fällig",
]


def _body(long_line: int) -> str:
    return "\n".join([*BODY_LINES, "x" * long_line, "end"]) + "\n"


@pytest.mark.parametrize("long_line", [998, 1000], ids=["998-chars", "1000-chars"])
async def test_body_gives_what_the_library_gives(tmp_path: Path, long_line: int) -> None:
    """The same file, as `swaks --data @file` and through aiosmtplib to another number:
    the same reply and the same SMS text (RFC 5321 allows 998 characters a line; like
    aiosmtpd, the listener takes one more before it refuses)."""
    raw = (
        f"From: {DEMO}\nSubject: Pumpe\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + _body(long_line)
    ).encode()
    (tmp_path / "mail.eml").write_bytes(raw)
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--from", DEMO, "--to", _number(1), "--data", f"@{tmp_path / 'mail.eml'}"
        )
        try:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=ep.smtp[1]) as smtp:
                _, message = await smtp.sendmail(DEMO, [_number(2)], raw)
            by_library = f"250 {message}"
        except aiosmtplib.SMTPResponseException as exc:
            by_library = f"{exc.code} {exc.message}"
    by_swaks = run.reply(".")
    # swaks doubled the leading dots on the wire (its transcript shows what it sent)
    assert [s for s in run.sent() if s.startswith(".")] == [
        "..leading dot",
        "..",
        "...two dots",
        ".",
    ]
    assert by_swaks.split(" queued as ")[0] == by_library.split(" queued as ")[0], run
    texts = _texts(tmp_path)
    assert texts.get(_stored(1)) == texts.get(_stored(2))
    if long_line == 998:
        assert run.status == 0 and QUEUED.fullmatch(by_swaks), run
        assert texts[_stored(1)] == "\n".join([*BODY_LINES, "x" * long_line, "end"])
    else:
        line_too_long = (
            "500 5.5.2 Line too long (RFC 5321 allows 998 characters a line); wrap the text "
            "or use quoted-printable"
        )
        assert by_swaks == line_too_long and run.marker(by_swaks) == "<**", run
        assert run.status == 26, run  # swaks: the data refused
        assert texts == {}


async def test_undeclared_8bit_body_is_read_as_utf8(tmp_path: Path) -> None:
    """`--body @file`: swaks' own headers, no MIME-Version, no charset, 8-bit UTF-8 bytes
    and no BODY=8BITMIME (swaks 20201014 has no such option)."""
    (tmp_path / "body.txt").write_text(_body(200), encoding="utf-8")
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--from", DEMO, "--to", _number(1), "--body", f"@{tmp_path / 'body.txt'}"
        )
    assert run.status == 0, run
    assert run.sent()[run.sent().index("DATA") - 1] == f"RCPT TO:<{_number(1)}>", run
    assert not any("Content-Type" in s or "BODY=8BITMIME" in s for s in run.sent()), run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [
        (mail_id, _stored(1), _number(1), "\n".join([*BODY_LINES, "x" * 200, "end"]))
    ]


# -- 5. leaving mid-transaction -------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "point", "last_reply"),
    [
        ("--quit-after", "MAIL", "221 2.0.0 Bye"),
        ("--quit-after", "RCPT", "221 2.0.0 Bye"),
        ("--drop-after", "RCPT", "250 2.1.5 Recipient ok"),
        ("--drop-after", "DATA", "354 End data with <CR><LF>.<CR><LF>"),
        ("--drop-after-send", "DATA", "250 2.1.5 Recipient ok"),
    ],
)
async def test_a_client_that_leaves_mid_transaction_leaves_no_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, option: str, point: str, last_reply: str
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(make_settings(tmp_path)) as (_, ep):
            left = await swaks(ep.smtp[1], option, point, "--from", DEMO, "--to", _number(1))
            assert _orders(tmp_path) == []
            # the listener goes on serving: the next mail is queued
            full = await swaks(ep.smtp[1], "--from", DEMO, "--to", _number(2))
    assert left.status == 0, left  # swaks stopped where it was told to
    assert left.received()[-1] == last_reply, left
    if option == "--quit-after":
        assert left.sent()[-1] == "QUIT", left
    else:
        assert "=== Dropping connection" in left.lines and "QUIT" not in left.sent(), left
    assert f"RCPT TO:<{_number(1)}>" in left.sent() or point == "MAIL", left
    assert full.status == 0, full
    mail_id = _queued(full)
    assert _orders(tmp_path) == [(mail_id, _stored(2), _number(2), "This is a test mailing")]
    assert _errors(caplog) == []  # a client leaving is no fault of ours: nothing logged as one


# -- 6. swaks' own mail, headers, attachments, sender -------------------------------------


async def test_swaks_default_mail_and_added_headers(tmp_path: Path) -> None:
    """swaks' default mail, its Subject replaced (`--header`) and an X-SMS-* header added
    (`--add-header`): the text is the body, the override applies, the headers are kept."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--from", DEMO, "--to", _number(1), "--helo", "tester.example",
            "--header", "Subject: Pumpe P-101", "--add-header", "X-SMS-Cost-Centre: 4711",
        )  # fmt: skip
    assert run.status == 0, run
    sent = run.sent()
    [message_id] = [s.split(": ", 1)[1] for s in sent if s.startswith("Message-Id: ")]
    assert re.fullmatch(r"<\d{14}\.\d+@\S+>", message_id), message_id  # <time.pid@host>
    assert any(s.startswith("Date: ") for s in sent), run
    assert any(s.startswith("X-Mailer: swaks v") for s in sent), run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [(mail_id, _stored(1), _number(1), "This is a test mailing")]
    mail = _mail(tmp_path, mail_id)
    assert (mail["message_id"], mail["subject"], mail["helo"]) == (
        message_id, "Pumpe P-101", "tester.example",
    )  # fmt: skip
    assert b"\r\nX-Mailer: swaks v" in mail["raw"] and b"\r\nX-SMS-Cost-Centre: 4711" in mail["raw"]
    assert _policy(tmp_path, _stored(1))["cost_centre"] == "4711"


@pytest.mark.parametrize("attach_type", ["application/octet-stream", "text/plain"])
async def test_an_attachment_is_not_texted(tmp_path: Path, attach_type: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Attached shift notes, not for the SMS\n", encoding="utf-8")
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--from", DEMO, "--to", _number(1), "--body", "Valve V-7 open",
            "--attach-type", attach_type, "--attach", f"@{notes}",
        )  # fmt: skip
    assert run.status == 0, run
    sent = run.sent()
    assert any(s.startswith('Content-Type: multipart/mixed; boundary="') for s in sent), run
    assert f'Content-Type: {attach_type}; name="notes.txt"' in sent, run
    assert 'Content-Disposition: attachment; filename="notes.txt"' in sent, run
    mail_id = _queued(run)
    assert _orders(tmp_path) == [(mail_id, _stored(1), _number(1), "Valve V-7 open")]


async def test_a_backslash_n_in_body_is_a_line_break_by_swaks(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(
            ep.smtp[1], "--from", DEMO, "--to", _number(1), "--body", r"Ventil\nV-7 offen"
        )
    assert run.status == 0, run
    assert "Ventil" in run.sent() and "V-7 offen" in run.sent(), run  # two lines on the wire
    assert _texts(tmp_path) == {_stored(1): "Ventil\nV-7 offen"}


async def test_swaks_default_sender_is_refused_with_a_sentence(tmp_path: Path) -> None:
    """Without `--from` swaks sends as $LOGNAME@<this host>: not a user of the bridge."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        run = await swaks(ep.smtp[1], "--to", _number(1))
    [mail] = [s for s in run.sent() if s.startswith("MAIL FROM:<")]
    sender = mail[len("MAIL FROM:<") : -1]
    assert sender and sender != DEMO, run
    assert run.reply(mail) == (
        f"550 5.7.1 Sender <{sender}> is not allowed to send SMS through this bridge; "
        "ask your administrator to add you as a user"
    ), run
    assert run.status == 23, run
    assert _orders(tmp_path) == []
