"""Notice benchmark: what building a notice's MIME message costs, and notices/s end to end.

Two figures, both in this process:

* **build**: µs per message for `Renderer.render_bytes` (Jinja ×3 + the MIME message as
  bytes) of a status mail with plain ASCII headers (the common case), one whose display
  name needs RFC 2047 encoding, an SMS-to-mail notice (and one whose subject is
  longer than a line, one whose subject needs encoding); and for a DSN as bytes.
* **drain**: the whole bridge (SQLite in a temp dir, notices into a Maildir, as `make
  bench` runs it) with `--notices` status mails (or DSNs, `--kind dsn`) queued at once:
  the time until every one is sent (claimed, rendered, written with fsync, recorded), as
  notices/s, and the process's CPU µs per notice from the moment they are queued (their
  queueing is not counted since 2026-12-05 20:50 UTC; before, it was ~25 % of the
  figure). With `--mailer smtp` the notices go
  over SMTP to a relay in its own process (bench/servers.py: an aiosmtpd that answers 250
  and prints how many sessions it had), as a production bridge hands them on.
  `--to-name` gives the status notices a display name (e.g. "Jürgen Müller").

Run it against another commit's code with PYTHONPATH=DIR (e.g. unpacked with `git
archive <commit> bridge templates | tar -x -C DIR`) to compare, in the same run.

  .venv/bin/python bench/notice_bench.py [--notices 2000] [--kind status|dsn] [--reps 3]
                                         [--only build|drain] [--mailer maildir|smtp|smtp-tls]
                                         [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH=DIR comes first

from bridge.app import Bridge
from bridge.db.clock import utcnow
from bridge.notices.mailer import Mailer
from bridge.notices.queue import NoticeWork, queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from bridge.settings import load_settings

STATUS: dict[str, Any] = {
    "order_id": "ABC.1",
    "mail_id": "ABC",
    "status": "delivered",
    "recipient": "+491701234567",
    "sender_id": "ACME",
    "text": "Pump P-101 pressure high, please check",
    "encoding": "gsm7",
    "parts": 1,
    "attempts": 1,
    "error": "",
    "received_at": "2026-11-22 10:00:00 UTC",
    "final_at": "2026-11-22 10:00:05 UTC",
    "subject": "Alarm",
    "in_reply_to": "<orig@client.example>",
    "to_name": "Alice",
    "cost_centre": "4711",
}
SMS2MAIL: dict[str, Any] = {
    "inbound_id": 1,
    "source": "+491701234567",
    "destination": "+4915550000001",
    "text": "On my way",
    "keyword": "",
    "customer": "",
    "received_at": "2026-11-22 10:00:00 UTC",
    "reply_to": "+491701234567@eu.rsms.net",
    "from_name": "SMS from +491701234567",
    "others": [],
    "routed_by": "reply",
    "original_text": "Pump P-101 pressure high",
    "original_subject": "Alarm",
    "order_id": "ABC.1",
    "in_reply_to": "<orig@client.example>",
}
DSN: dict[str, Any] = {
    "event": "FAILURE",
    "final_recipient": "SMS=+491701234567@eu.rsms.net",
    "msisdn": "+491701234567",
    "diagnostic": "X-SMPP; the network could not deliver a part",
    "order_id": "ABC.1",
    "action": "failed",
    "status": "5.0.0",
    "envid": "SAP4711",
    "orcpt": "rfc822;SMS=+491701234567@eu.rsms.net",
    "arrival_date": "Sun, 22 Nov 2026 10:00:00 +0000",
    "last_attempt_date": "Sun, 22 Nov 2026 10:00:05 +0000",
    "in_reply_to": "<orig@client.example>",
    "ret": "HDRS",
    "original": base64.b64encode(
        b"From: sap@corp.example\r\nTo: SMS=+491701234567@eu.rsms.net\r\n"
        b"Subject: PM order 4711\r\nMessage-ID: <orig@client.example>\r\n\r\n"
    ).decode(),
}
RECIPIENT = "alice@corp.example"


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(200, n)):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def build(n: int, reps: int) -> None:
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="sms@bridge.example",
        from_name="SMS Bridge",
        hostname="bridge.example",
    )
    mailer = Mailer(MailerSettings(mode="maildir"), None, renderer)  # type: ignore[arg-type]
    dsn = NoticeWork(1, "dsn", RECIPIENT, DSN, 1, utcnow())

    def dsn_bytes() -> bytes:
        message = mailer._message(dsn)[0]
        return message if isinstance(message, bytes) else message.as_bytes()

    cases: list[tuple[str, Callable[[], object]]] = [
        ("status, ASCII headers", lambda: renderer.render_bytes("status", RECIPIENT, STATUS)),
        (
            "status, encoded name",
            lambda: renderer.render_bytes("status", RECIPIENT, STATUS | {"to_name": "Jürgen"}),
        ),
        ("sms2mail", lambda: renderer.render_bytes("sms2mail", RECIPIENT, SMS2MAIL)),
        (
            "sms2mail, long subject",
            lambda: renderer.render_bytes(
                "sms2mail",
                RECIPIENT,
                SMS2MAIL | {"original_subject": "Maintenance order 4711: pump P-101 pressure drop"},
            ),
        ),
        (
            "sms2mail, subject not ASCII",
            lambda: renderer.render_bytes(
                "sms2mail", RECIPIENT, SMS2MAIL | {"original_subject": "Störung P-101"}
            ),
        ),
        ("dsn (RET=HDRS)", dsn_bytes),
    ]
    for name, fn in cases:
        runs = [_per_call_us(fn, n) for _ in range(reps)]
        print(f"build {name:<28} {statistics.median(runs):8,.0f} µs per message "
              f"(min {min(runs):,.0f}, {reps} reps of {n})")  # fmt: skip


def _settings(
    workdir: Path, relay_port: int | None = None, concurrency: int = 0, tls: str = "none"
) -> Path:
    path = workdir / "bridge.toml"
    mailer = f'mode = "maildir"\nmaildir = "{workdir / "maildir"}"\n'
    if relay_port is not None:
        mailer = f'mode = "smtp"\nrelay_port = {relay_port}\ntls = "{tls}"\n'
    if concurrency:
        mailer += f"concurrency = {concurrency}\n"

    path.write_text(
        f"""database_url = "sqlite:///{workdir / "bridge.db"}"
log_level = "WARNING"
[smtp]
port = 0
[sandbox]
enabled = true
port = 0
receipt = "none"
inbox = "{workdir / "inbox.jsonl"}"
[mailer]
{mailer}poll_interval = 0.05
""",
        encoding="utf-8",
    )
    return path


def _queue(conn: Any, kind: str, count: int, to_name: str = "") -> None:
    now = utcnow()
    base = STATUS | {"to_name": to_name} if kind == "status" else DSN
    for i in range(count):
        context = base | {"order_id": f"B{i:07d}.1", "mail_id": f"B{i:07d}"}
        queue_notice(conn, kind, RECIPIENT, context, now, customer="")


def _sent(conn: Any, kind: str) -> int:
    """The notices of `kind` sent so far: an index count (the clock runs while it polls)."""
    query = "SELECT count(*) FROM notice WHERE status = 'sent' AND kind = :kind"
    return int(conn.execute(text(query), {"kind": kind}).scalar_one())


async def drain(
    kind: str,
    count: int,
    limit: float,
    relay_port: int | None = None,
    concurrency: int = 0,
    tls: str = "none",
    to_name: str = "",
) -> tuple[float, float]:
    """(notices/s, CPU µs per notice) for `count` notices of `kind` queued at once, into
    a Maildir or (`relay_port`) over SMTP to a relay on 127.0.0.1."""
    with tempfile.TemporaryDirectory() as tmp:
        config = _settings(Path(tmp), relay_port, concurrency, tls)
        bridge = Bridge(load_settings(config, environ={}))
        await bridge.start()
        store = bridge.store
        assert store is not None
        try:
            await store.call(_queue, kind, count, to_name)  # not counted: the mailer's work is
            start, cpu = time.perf_counter(), time.process_time()
            sent = 0
            while time.perf_counter() - start < limit:
                sent = await store.call(_sent, kind)
                if sent == count:
                    break
                await asyncio.sleep(0.02)
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu
        finally:
            await bridge.stop(grace=1.0, linger=0.0)
        if sent != count:
            raise SystemExit(f"only {sent} of {count} notices sent in {limit:.0f} s")
        return count / took, cpu / count * 1e6


@contextlib.contextmanager
def _relay(starttls: bool) -> Iterator[int]:
    """A relay that answers 250 to every mail, in its own process; its port."""
    import servers

    with tempfile.TemporaryDirectory() as tmp:
        port = servers.free_port()
        cmd = [sys.executable, str(Path(__file__).with_name("servers.py")), "--port", str(port)]
        cmd += ["--starttls"] if starttls else []
        relay = servers.start("relay", cmd, port, Path(tmp), None)
        try:
            servers.wait_ready(relay)
            yield port
        finally:
            servers.stop(relay)
            print(f"relay: {relay.log_tail(200).strip()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--notices", type=int, default=2000, help="notices queued at once")
    p.add_argument("--kind", choices=("status", "dsn"), default="status", help="what to drain")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--build-n", type=int, default=500, help="messages per build repetition")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--only", choices=("build", "drain"))
    p.add_argument(
        "--mailer",
        choices=("maildir", "smtp", "smtp-tls"),
        default="maildir",
        help="drain into a Maildir, or over SMTP to a relay in its own process (an aiosmtpd"
        " that answers 250, bench/servers.py); smtp-tls: the relay offers STARTTLS and the"
        ' mailer requires it (tls = "encrypt")',
    )
    p.add_argument(
        "--concurrency", type=int, default=0, help="[mailer] concurrency (default: not set)"
    )
    p.add_argument(
        "--to-name",
        default="",
        help='the status notices\' display name (e.g. "Jürgen Müller"; default none)',
    )
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.only != "drain":
        build(a.build_n, a.reps)
    if a.only != "build":
        with contextlib.ExitStack() as stack:
            smtp = a.mailer.startswith("smtp")
            relay_port = stack.enter_context(_relay(a.mailer == "smtp-tls")) if smtp else None
            tls = "encrypt" if a.mailer == "smtp-tls" else "none"
            runs = [
                asyncio.run(
                    drain(a.kind, a.notices, a.timeout, relay_port, a.concurrency, tls, a.to_name)
                )
                for _ in range(a.reps)
            ]
        rates = [r for r, _ in runs]
        cpus = [c for _, c in runs]
        named = f", to {a.to_name!r}" if a.to_name else ""
        print(f"drain {a.notices} {a.kind} notices ({a.mailer}{named}): "
              f"{statistics.median(rates):,.0f} notices/s "
              f"({min(rates):,.0f}..{max(rates):,.0f}), "
              f"{statistics.median(cpus):,.0f} µs CPU per notice ({a.reps} reps)")  # fmt: skip


if __name__ == "__main__":
    main()
