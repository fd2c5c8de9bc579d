"""The SMTP door's limits per client with `[server] processes`: two processes take SMTP
on one port and the kernel spreads a client's connections over them, so a count kept in
each process's memory gave a client the limit once per process. These run the real
bridge (`mailsms serve`, three processes: two take SMTP) and a real SMTP client."""

from __future__ import annotations

import smtplib
from pathlib import Path

import trustme

from tests.peers.net import free_port
from tests.reliability.processes import HOST, start_bridge, wait_smtp_ready
from tests.security.common import client_context
from tests.security.test_tls_reload import _issue, _write


def _config(tmp_path: Path, ca: trustme.CA, port: int) -> Path:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    _write(_issue(ca, 80), cert_file, key_file)
    config = tmp_path / "bridge.toml"
    config.write_text(
        f"""database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[server]
processes = 3
[smtp]
host = "{HOST}"
port = {port}
tls_cert = "{cert_file}"
tls_key = "{key_file}"
auth_max_failures = 3
auth_failure_delay = 0
max_connections_per_ip_per_minute = 100000
[sandbox]
enabled = true
port = 0
inbox = "{tmp_path / "inbox.jsonl"}"
[mailer]
mode = "maildir"
maildir = "{tmp_path / "maildir"}"
""",
        encoding="utf-8",
    )
    return config


def _auth(port: int, ca: trustme.CA, n: int) -> tuple[int, str]:
    """One AUTH PLAIN with a wrong password, on a connection of its own: the reply."""
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.starttls(context=client_context(ca))
        smtp.ehlo()
        smtp.user, smtp.password = f"guess{n}@example.com", "not-the-password"
        try:
            smtp.auth("PLAIN", smtp.auth_plain)
        except smtplib.SMTPAuthenticationError as exc:
            text = exc.smtp_error
            return exc.smtp_code, text.decode() if isinstance(text, bytes) else text
        except smtplib.SMTPServerDisconnected:
            return 0, "disconnected"
    return 235, "accepted"


def test_auth_failures_lock_the_address_for_every_process(tmp_path: Path, ca: trustme.CA) -> None:
    """Three wrong passwords from one address, whichever processes answered them, lock
    the address: the next attempts get 421 at every process. Counted per process, the
    next attempt went on to a process that had seen fewer than three (all six refused
    with separate counts: a chance of about 1 in 30)."""
    port = free_port()
    bridge = start_bridge(_config(tmp_path, ca, port), tmp_path / "bridge.log")
    try:
        wait_smtp_ready(bridge, port)
        replies = [_auth(port, ca, n) for n in range(6)]
        assert [code for code, _ in replies[:3]] == [535] * 3, replies
        assert [code for code, _ in replies[3:]] == [421] * 3, replies
        assert all("4.7.0" in text for _, text in replies[3:]), replies
        assert bridge.alive(), bridge.log_text()[-2000:]
    finally:
        assert bridge.stop() == 0, bridge.log_text()[-2000:]
