"""SIGHUP makes a running `mailsms serve` take renewed certificate files at once
(`systemctl reload`, a certbot deploy hook): with one process and with several (the
parent passes it on to every child), even with the periodic check off
(`[server] tls_check_interval = 0`). Before, SIGHUP ended the bridge (Python's default
for it), dropping its sessions."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
import trustme

from tests.peers.net import free_port
from tests.reliability.processes import HOST, start_bridge, wait_smtp_ready
from tests.security.common import client_context
from tests.security.test_tls_reload import _der, _issue, _write


def _served(port: int, ca: trustme.CA) -> bytes:
    """The certificate the SMTP door shows after STARTTLS on a new session (DER)."""
    with socket.create_connection((HOST, port), timeout=10) as raw:
        stream = raw.makefile("rwb")
        stream.readline()  # 220
        stream.write(b"EHLO probe\r\n")
        stream.flush()
        while stream.readline()[3:4] != b" ":
            pass
        stream.write(b"STARTTLS\r\n")
        stream.flush()
        assert stream.readline().startswith(b"220")
        with client_context(ca).wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


@pytest.mark.parametrize("processes", [1, 3])  # 3: two children take SMTP
def test_sighup_takes_a_renewed_certificate_at_once(
    tmp_path: Path, ca: trustme.CA, processes: int
) -> None:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    _write(_issue(ca, 80), cert_file, key_file)
    port = free_port()
    config = tmp_path / "bridge.toml"
    config.write_text(
        f"""database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[server]
processes = {processes}
tls_check_interval = 0
in_flow_delay = 0
[smtp]
host = "{HOST}"
port = {port}
tls_cert = "{cert_file}"
tls_key = "{key_file}"
plaintext_networks = ["127.0.0.1/32"]
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
    bridge = start_bridge(config, tmp_path / "bridge.log")
    try:
        wait_smtp_ready(bridge, port)
        old = _served(port, ca)
        renewed = _issue(ca, 85)
        _write(renewed, cert_file, key_file)
        time.sleep(1.0)  # no periodic check: still the old one
        assert _served(port, ca) == old
        bridge.popen.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        # with several processes each takes new sessions: every one must show the new one
        seen = {_served(port, ca) for _ in range(8)}
        while seen != {_der(renewed)} and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = {_served(port, ca) for _ in range(8)}
        assert seen == {_der(renewed)}, bridge.log_text()[-2000:]
        assert bridge.alive(), bridge.log_text()[-2000:]
        assert "SIGHUP: checking the TLS certificate files now" in bridge.log_text()
    finally:
        assert bridge.stop() == 0, bridge.log_text()[-2000:]
