"""A customer's Kannel (Debian's `kannel` package, 1.4.5) bound to the bridge's SMPP server.

A throwaway bearerbox + smsbox from a kannel.conf generated in a temp dir: the admin,
smsbox and sendsms ports are free ports on 127.0.0.1 (every interface key set to
127.0.0.1), the logs, access logs and store file in the temp dir, DLRs in Kannel's
`internal` store. One `smsc = smpp` group, `bridge`, points at the bridge's SMPP server
with the account's system-id and password, in transceiver mode or in Kannel's default
two-bind mode (`transceiver-mode = false`: a bind_transmitter on `port` and a
bind_receiver on `receive-port`, the same port here). One `sendsms-user` for the
application and one catch-all `sms-service` that GETs every MO to `mo_url` and sends no
reply (`max-messages = 0`).

Both boxes run as root (they do not refuse it) in sessions of their own and are stopped
by their process groups (SIGTERM: bearerbox unbinds first; SIGKILL after 10 s). If the
package is missing, the tests FAIL saying so (`make test` installs it); the package's own
service never starts (`scripts/test-deps.sh`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.peers.net import HOST, free_port, listening

MISSING = (
    "Kannel's {what} is not installed: run `make test` (scripts/test-deps.sh installs "
    "Debian's kannel package)"
)
ADMIN_PASSWORD = "adminpw"
APP_USER = "app"
APP_PASSWORD = "apppw"
SMSC_ID = "bridge"


def _binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    if found is None:
        raise AssertionError(MISSING.format(what=name))
    return found


@dataclass(frozen=True, slots=True)
class SmscGroup:
    """The customer admin's `group = smsc` for the bridge (the keys Kannel's docs name)."""

    port: int
    system_id: str
    password: str
    transceiver: bool = True
    msg_id_type: int | None = None  # None: the key is left out (Kannel reads ids as C strings)
    more: Mapping[str, str] = field(default_factory=dict)

    def groups(self) -> list[dict[str, str]]:
        """The smsc group's keys (two groups in two-bind mode)."""
        lines = {
            "smsc": "smpp",
            "smsc-id": SMSC_ID,
            "host": HOST,
            "port": str(self.port),
            "smsc-username": self.system_id,
            "smsc-password": self.password,
            "system-type": "VMA",
            "transceiver-mode": "true" if self.transceiver else "false",
            "enquire-link-interval": "2",
            "reconnect-delay": "1",
            "max-pending-submits": "10",
            "wait-ack": "30",
        }
        if self.msg_id_type is not None:
            lines["msg-id-type"] = f"0x{self.msg_id_type:02x}"
        lines.update(self.more)
        if self.transceiver:
            return [lines]
        # Kannel 1.4.5 refuses `port` and `receive-port` in one group ("deprecated"): the
        # two binds are two groups of the same smsc-id, a transmitter and a receiver.
        receiver = {k: v for k, v in lines.items() if k != "port"} | {
            "receive-port": str(self.port)
        }
        return [lines, receiver]


@dataclass
class UrlLog:
    """An HTTP server on 127.0.0.1 recording every GET Kannel makes (DLR and MO URLs):
    the path and its query, decoded as UTF-8 (Kannel's %a/%b are URL-encoded octets)."""

    port: int = 0
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def got(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [query for p, query in self.calls if p == path]


@contextmanager
def url_log() -> Iterator[UrlLog]:
    log = UrlLog()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True, encoding="latin-1")
            with log.lock:
                log.calls.append((url.path, {k: v[0] for k, v in query.items()}))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    log.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass(frozen=True, slots=True)
class Kannel:
    base: Path
    admin_port: int
    sendsms_port: int

    def log(self, name: str = "bearerbox") -> str:
        """`bearerbox`, `smsbox`, `smsc` (the SMPP connection's own log, with the PDU
        dumps) or `access` (bearerbox's access log: each message sent and received)."""
        names = ["smsc0", "smsc1"] if name == "smsc" else [name]
        paths = [self.base / f"{n}.log" for n in names]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def sendsms(self, **params: str) -> tuple[int, str]:
        """GET /cgi-bin/sendsms as the application; (HTTP status, body)."""
        query = urllib.parse.urlencode(
            {"username": APP_USER, "password": APP_PASSWORD, **params}, encoding="utf-8"
        )
        url = f"http://{HOST}:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        try:
            with urllib.request.urlopen(url, timeout=20) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def status(self) -> str:
        """The admin port's /status.txt (bearerbox's view of its SMSC connections)."""
        url = f"http://{HOST}:{self.admin_port}/status.txt?password={ADMIN_PASSWORD}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text: str = resp.read().decode("utf-8", "replace")
            return text

    def smsc_online(self) -> bool:
        """Whether every connection of `bridge` (one, or two in two-bind mode) is online."""
        lines = [
            s for s in map(str.strip, self.status().splitlines()) if s.startswith(f"{SMSC_ID}[")
        ]
        return bool(lines) and all("(online" in line for line in lines)


def _conf(base: Path, smsc: SmscGroup, admin: int, box: int, sendsms: int, mo_url: str) -> str:
    smsc_groups = "".join(
        "group = smsc\n"
        + "".join(f"{k} = {v}\n" for k, v in keys.items())
        + f'log-file = "{base / f"smsc{i}.log"}"\nlog-level = 0\n\n'
        for i, keys in enumerate(smsc.groups())
    )
    return f"""\
group = core
admin-port = {admin}
admin-interface = {HOST}
admin-password = {ADMIN_PASSWORD}
status-password = {ADMIN_PASSWORD}
smsbox-port = {box}
smsbox-interface = {HOST}
box-allow-ip = {HOST}
log-file = "{base / "bearerbox.log"}"
log-level = 0
access-log = "{base / "access.log"}"
store-type = file
store-location = "{base / "store"}"
dlr-storage = internal
sms-resend-retry = -1
sms-resend-freq = 1

{smsc_groups}
group = smsbox
bearerbox-host = {HOST}
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = {HOST}
log-file = "{base / "smsbox.log"}"
log-level = 0
access-log = "{base / "smsbox-access.log"}"

group = sendsms-user
username = {APP_USER}
password = {APP_PASSWORD}
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{mo_url}?from=%p&to=%P&text=%a&coding=%c&udh=%u&smsc=%i&charset=%C"
"""


def _start(binary: str, conf: Path, base: Path, name: str) -> subprocess.Popen[bytes]:
    out = (base / f"{name}.out").open("wb")
    try:
        return subprocess.Popen(
            [binary, str(conf)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _until_listening(process: subprocess.Popen[bytes], port: int, base: Path, name: str) -> None:
    deadline = time.monotonic() + 20
    while not listening(port, timeout=0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            out = (base / f"{name}.out").read_text(errors="replace")
            log = (
                (base / f"{name}.log").read_text(errors="replace")
                if (base / f"{name}.log").exists()
                else ""
            )
            raise AssertionError(
                f"{name} did not listen on {port} ({process.returncode}):\n"
                f"{out[-3000:]}{log[-3000:]}"
            )
        time.sleep(0.05)


@contextmanager
def throwaway_kannel(smsc: SmscGroup, mo_url: str) -> Iterator[Kannel]:
    """bearerbox + smsbox with `smsc` as their only SMSC, MO to `mo_url`; stopped at the end
    (smsbox first, then bearerbox, which unbinds from the bridge)."""
    bearerbox, smsbox = _binary("bearerbox"), _binary("smsbox")
    base = Path(tempfile.mkdtemp(prefix="mailsms-kannel-"))
    try:
        admin, box, sendsms = free_port(), free_port(), free_port()
        conf = base / "kannel.conf"
        conf.write_text(_conf(base, smsc, admin, box, sendsms, mo_url), encoding="utf-8")
        bearer = _start(bearerbox, conf, base, "bearerbox")
        try:
            _until_listening(bearer, box, base, "bearerbox")
            sms = _start(smsbox, conf, base, "smsbox")
            try:
                _until_listening(sms, sendsms, base, "smsbox")
                yield Kannel(base, admin, sendsms)
            finally:
                _stop(sms)
        finally:
            _stop(bearer)
    finally:
        shutil.rmtree(base, ignore_errors=True)
