"""A throwaway Exim (Debian's exim4-daemon-light, unpacked, never installed) on 127.0.0.1:
a company's MTA in front of the bridge and behind its status mails, with Exim's own
habits (PIPELINING, SIZE=, callout verification, its bounce format, its retry rules, no
DSN extension offered by default).

Getting it: Debian's exim4 packages conflict with postfix (both provide
mail-transport-agent: installing one removes the other, and other tests need Postfix),
so they are not installed. `scripts/test-deps.sh` (or this module on first use, when
run as root) fetches `exim4-daemon-light`, `exim4-base` and `exim4-config` with
`apt-get download` and unpacks them with `dpkg-deb -x` into the git-ignored
`tests/peers/exim/root`; the binary needs no library beyond those of a Debian base
system (`ldd`). Debian builds the binary with its user fixed as `ref:Debian-exim`, looked
up before any configuration is read, so the system user `Debian-exim` is added
(`useradd --system`, as the package's own postinst does) when missing.

How it runs: started by root (the tests need root, as for Postfix, to add the user and
hand the spool to it; as another user they are skipped, saying so),
`exim4 -C <config> -bdf -q1s -oX <port> -oP <pidfile>`: the daemon in the foreground in
a session of its own (ended by its process group: SIGTERM, then SIGKILL), its queue
runner every second. A `-C` file that is not in the binary's TRUSTED_CONFIG_LIST
(/etc/exim4/trusted_configs) makes Exim give up root at once ("exim user lost privilege
for using -C option" in its log), so the daemon, its queue runners and deliveries all run
as Debian-exim: enough for a port above 1024, the spool, the log and the Maildir, which
belong to that user. The configuration sets `exim_path` to the unpacked binary (it
re-executes itself), `exim_user`/`exim_group` Debian-exim, its spool, log
(`log/mainlog`, `rejectlog`, `paniclog`) and pid file in a fresh temp dir, no TLS
offered (`tls_advertise_hosts =`), no DSN offered (`dsn_advertise_hosts` unset, Exim's
default), host and ident lookups off. Exim offers PIPELINING, SIZE, 8BITMIME, CHUNKING
and SMTPUTF8 to its clients, and uses PIPELINING and SIZE= towards the bridge (which
offers no CHUNKING).

Routing: each domain of `routes` goes by a `manualroute` router to `127.0.0.1::PORT`
(`self = send`, `allow_localhost` on the smtp transport: the next hop is this host);
every domain of `mailboxes` (the senders' domains: bounces and the bridge's notices) is
delivered by an `accept` router and an `appendfile` transport into one Maildir, `mail/`
in the temp dir (Exim adds `Envelope-to`); anything else is refused at RCPT. The RCPT
ACL accepts the routed domains from anyone on 127.0.0.1, optionally after Exim's
verification of the recipient (`verify = recipient/<callout>`, e.g. `callout=10s`,
`callout=10s,use_sender`, `callout=10s,use_postmaster`), as a company's MTA checks a
recipient at the next hop before it takes the mail. The retry rule is short
(`* * F,1h,<retry>`), so a 4xx from the next hop is tried again within seconds;
`ignore_bounce_errors_after` and `timeout_frozen_after` keep nothing frozen.

If the packages cannot be had the tests FAIL, saying how to get them.
"""

from __future__ import annotations

import email
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

from tests.peers.net import free_port, listening

EXIM_DIR = Path(__file__).parent / "exim"
UNPACKED = EXIM_DIR / "root"  # git-ignored: the packages' files, as dpkg-deb -x left them
EXIM = UNPACKED / "usr" / "sbin" / "exim4"
PACKAGES = ("exim4-daemon-light", "exim4-base", "exim4-config")
USER = "Debian-exim"  # compiled into Debian's binary
NOT_ROOT = "Exim's daemon runs as root here: run the tests as root to include the Exim relay"
MISSING = (
    "exim is not unpacked in tests/peers/exim/root: run `make test` (scripts/test-deps.sh "
    "fetches it), or as root: cd tests/peers/exim && apt-get download "
    + " ".join(PACKAGES)
    + " && for d in *.deb; do dpkg-deb -x $d root; done && rm *.deb; "
    "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin Debian-exim"
)

_CONFIG = """\
exim_path = {exim}
exim_user = {user}
exim_group = {user}
never_users = root
keep_environment =
primary_hostname = mta.test
qualify_domain = mta.test
local_interfaces = 127.0.0.1
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
pid_file_path = {root}/exim.pid
log_selector = +smtp_confirmation +received_recipients +smtp_protocol_error \
+smtp_syntax_error +deliver_time +outgoing_port
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
message_size_limit = {size_limit}
ignore_bounce_errors_after = 0s
timeout_frozen_after = 1m
domainlist routed_domains = {routed}
domainlist mailbox_domains = {mailbox_domains}
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl

acl_check_rcpt:
{verify}  accept domains = +routed_domains : +mailbox_domains
  deny message = relay not permitted

acl_check_data:
  accept

begin routers

{routers}
mailbox:
  driver = accept
  domains = +mailbox_domains
  transport = maildir

begin transports

remote_smtp:
  driver = smtp
  allow_localhost
{client_options}
maildir:
  driver = appendfile
  directory = {root}/mail
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = {user}
  group = {user}
  mode = 0644

begin retry

*  *  F,1h,{retry}

begin rewrite
"""

# One router per routed domain: the company admin's snippet in docs/mail.md
_ROUTER = """\
{name}:
  driver = manualroute
  domains = {domain}
  transport = remote_smtp
  route_list = * 127.0.0.1::{port}
  self = send
  no_more
"""


def require_exim() -> None:
    """Fetch and unpack Exim when missing (root only: apt-get and useradd need it)."""
    if not EXIM.exists():
        if os.geteuid() == 0 and shutil.which("apt-get") and shutil.which("dpkg-deb"):
            _unpack()
        if not EXIM.exists():
            raise RuntimeError(MISSING)
    if USER not in {entry.pw_name for entry in pwd.getpwall()}:
        made = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", USER],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if made.returncode != 0:
            raise RuntimeError(f"{MISSING}\n(useradd failed: {made.stderr.strip()})")


def _unpack() -> None:
    with tempfile.TemporaryDirectory(prefix="mailsms-exim-debs-") as debs:
        os.chmod(debs, 0o755)  # apt's _apt user writes the downloads
        got = subprocess.run(
            ["apt-get", "download", *PACKAGES], cwd=debs, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        if got.returncode != 0:
            raise RuntimeError(f"{MISSING}\n(apt-get download failed: {got.stderr.strip()})")
        EXIM_DIR.mkdir(exist_ok=True)
        target = UNPACKED.with_name("root.partial")
        shutil.rmtree(target, ignore_errors=True)
        for deb in sorted(Path(debs).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, timeout=120)
        target.rename(UNPACKED)


@dataclass(frozen=True)
class Exim:
    port: int  # its daemon on 127.0.0.1
    root: Path

    def log(self) -> str:
        """Its main log so far (written by each process as it goes: poll for a line)."""
        return _read(self.root / "log" / "mainlog")

    def reject_log(self) -> str:
        return _read(self.root / "log" / "rejectlog")

    def mailbox(self, address: str) -> list[EmailMessage]:
        """The mails delivered to `address` (of a mailbox domain), oldest first: the one
        Maildir holds them all, each with the `Envelope-to` header Exim adds."""
        new = self.root / "mail" / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        mails = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]
        return [m for m in mails if address.lower() in str(m.get("Envelope-to", "")).lower()]

    def raw_mails(self) -> list[bytes]:
        """Every mail in the Maildir as delivered, oldest first."""
        new = self.root / "mail" / "new"
        if not new.is_dir():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)]

    def queue(self) -> str:
        """`exim -bp`: the messages waiting in its queue, with the recipients still due."""
        return self.command("-bp")

    def command(self, *args: str) -> str:
        done = subprocess.run(
            [str(EXIM), "-C", str(self.root / "exim.conf"), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout + done.stderr


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def throwaway_exim(
    routes: Mapping[str, int],
    mailboxes: Sequence[str] = ("example.com",),
    port: int | None = None,
    *,
    verify: str = "",
    retry: str = "2s",
    size_limit: str = "50M",
    client_options: Sequence[str] = (),
    refuse: Mapping[str, str] | None = None,
    client_ca: Path | None = None,
) -> Iterator[Exim]:
    """Exim listening on `port` of 127.0.0.1 (a free one by default), relaying each domain
    of `routes` to its port there and delivering `mailboxes` into Maildirs; `verify` is
    the recipient verification of its RCPT ACL for the routed domains (`callout=10s`,
    `callout=10s,use_sender`, ...; "" = none); `client_options` are lines of its smtp
    transport (e.g. `hosts_require_tls = *`); `refuse` maps a recipient address to the
    reply its RCPT gets (`550 5.1.1 ...` denied, `452 4.2.2 ...` deferred); with
    `client_ca` its smtp transport verifies the next hop's certificate against that CA
    (not its name: the next hop is 127.0.0.1). The module's docstring says how it runs."""
    require_exim()
    user = pwd.getpwnam(USER)
    root = Path(tempfile.mkdtemp(prefix="mailsms-exim-"))
    root.chmod(0o755)
    port = port or free_port()
    for sub in ("spool", "log", "mail"):
        (root / sub).mkdir()
        os.chown(root / sub, user.pw_uid, user.pw_gid)
    routers = "\n".join(
        _ROUTER.format(name=f"route{n}", domain=domain, port=to)
        for n, (domain, to) in enumerate(routes.items())
    )
    # only the routed domains are verified, at their next hop
    acl = "".join(
        f"  {'deny' if reply.startswith('5') else 'defer'} recipients = {address}\n"
        f"       message = {reply}\n"
        for address, reply in (refuse or {}).items()
    )
    acl += (
        f"  deny domains = +routed_domains\n       !verify = recipient/{verify}\n" if verify else ""
    )
    client = list(client_options)
    if client_ca is not None:
        ca = root / "client-ca.pem"
        shutil.copyfile(client_ca, ca)
        ca.chmod(0o644)
        client += [
            f"tls_verify_certificates = {ca}",
            "tls_verify_hosts = *",
            "tls_verify_cert_hostnames =",
        ]
    config = root / "exim.conf"
    config.write_text(
        _CONFIG.format(
            exim=EXIM,
            user=USER,
            root=root,
            size_limit=size_limit,
            routed=" : ".join(routes) or "!*",
            mailbox_domains=" : ".join(mailboxes) or "!*",
            verify=acl,
            routers=routers,
            client_options="".join(f"  {line}\n" for line in client),
            retry=retry,
        ),
        encoding="utf-8",
    )
    config.chmod(0o644)
    with (root / "daemon.out").open("wb") as out:
        daemon = subprocess.Popen(
            [str(EXIM), "-C", str(config), "-bdf", "-q1s", "-oX", str(port), "-oP",
             str(root / "exim.pid")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"exim did not start ({daemon.returncode}):\n{_read(root / 'daemon.out')}\n"
                    f"{_read(root / 'log' / 'paniclog')}{_read(root / 'log' / 'mainlog')[-3000:]}"
                )
            time.sleep(0.05)
        yield Exim(port, root)
    finally:
        _stop(daemon)
        shutil.rmtree(root, ignore_errors=True)


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon's process group (its queue runners and deliveries), then
    SIGKILL to what is left of the group."""
    with suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=10)
