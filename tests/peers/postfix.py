"""A throwaway Postfix (Debian's postfix package) on 127.0.0.1 that relays some domains,
each to a port of its own: a company's MTA in front of the bridge (and behind its status
mails), as Mail2SMS users have one.

Its own configuration, queue and log in a fresh directory (`postfix -c DIR`), no chroot,
no local delivery, no TLS; `mynetworks` = 127.0.0.0/8 may relay to the domains, and mail
for each goes to `smtp:[127.0.0.1]:PORT` (a `texthash` transport table); mail for any
other domain (e.g. a bounce to the sender) fails at once, never leaving the machine.
Postfix's master runs as root and its daemons as the `postfix` user, so the tests need
root (as `make test` in CI and in the project's containers; as another user they are
skipped, saying so); stopped with `postfix stop`, then `abort` if still up. If Postfix
is missing the tests FAIL (`make test` installs Debian's postfix).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MISSING = (
    "postfix is not installed: run `make test` (it installs Debian's postfix), or "
    "apt-get install --no-install-recommends postfix"
)
# every service without chroot (the jail would need copies of /etc files)
_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
_MAIN = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mta.test
mydomain = mta.test
myorigin = mta.test
mydestination =
local_transport = error:no local delivery here
default_transport = error:no delivery outside the test
alias_maps =
alias_database =
local_recipient_maps =
relay_domains = {domains}
transport_maps = texthash:{root}/etc/transport
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
biff = no
"""


NOT_ROOT = "Postfix's master runs as root: run the tests as root to include the Postfix relay"


def require_postfix() -> None:
    if not Path(POSTFIX).exists():
        raise RuntimeError(MISSING)


@dataclass(frozen=True)
class Postfix:
    port: int  # its smtpd on 127.0.0.1
    root: Path

    def log(self) -> str:
        """Its mail log so far (every daemon's lines). Written by postlogd from datagrams,
        after the fact: a line about a delivery may come after the peer has seen it, so a
        test polls for the line it expects (`wait_for`) rather than reading once."""
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postfix(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    # errors go to the log, and to stderr only on a terminal: the log is shown on failure
    return subprocess.run(
        [POSTFIX, "-c", str(root / "etc"), *command], capture_output=True, text=True, timeout=60
    )


@contextmanager
def throwaway_postfix(routes: Mapping[str, int], port: int | None = None) -> Iterator[Postfix]:
    """Postfix listening on `port` of 127.0.0.1 (a free one by default), relaying each
    domain of `routes` to its port there."""
    require_postfix()
    # the daemons run as `postfix`: the directory must be reachable by that user
    root = Path(tempfile.mkdtemp(prefix="mailsms-postfix-"))
    root.chmod(0o755)
    port = port or free_port()
    (root / "etc").mkdir()
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix")
    (root / "etc" / "main.cf").write_text(
        _MAIN.format(root=root, domains=", ".join(routes)), encoding="utf-8"
    )
    (root / "etc" / "transport").write_text(
        "".join(f"{domain} smtp:[127.0.0.1]:{to}\n" for domain, to in routes.items()),
        encoding="utf-8",
    )
    (root / "etc" / "master.cf").write_text(_MASTER.format(port=port), encoding="utf-8")
    try:
        started = _postfix(root, "start")
        deadline = time.monotonic() + 20
        while not _listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start ({started.returncode}):\n{_log(root)}")
            time.sleep(0.05)
        yield Postfix(port, root)
    finally:
        _postfix(root, "stop")
        if _master_up(root):
            _postfix(root, "abort")
        shutil.rmtree(root, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _master_up(root: Path) -> bool:
    pid_file = root / "queue" / "pid" / "master.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _log(root: Path) -> str:
    path = root / "maillog"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
