"""A throwaway Postfix (Debian's postfix package) on 127.0.0.1 that relays some domains,
each to a port of its own: a company's MTA in front of the bridge (and behind its status
mails), as Mail2SMS users have one.

Its own configuration, queue and log in a fresh directory (`postfix -c DIR`), no chroot,
no local delivery, no TLS unless asked (below); `mynetworks` = 127.0.0.0/8 may relay to
the domains, and mail for each goes to `smtp:[127.0.0.1]:PORT` (a `texthash` transport
table); mail for any other domain (e.g. a bounce to the sender) fails at once, never
leaving the machine.
Postfix's master runs as root and its daemons as the `postfix` user, so the tests need
root (as `make test` in CI and in the project's containers; as another user they are
skipped, saying so); stopped with `postfix stop`, then `abort` if still up. If Postfix
is missing the tests FAIL (`make test` installs Debian's postfix).

As a company's MTA it can also speak TLS and SMTP AUTH (keyword options, all off by
default): its SMTP client STARTTLS towards the routes (`client_tls`: a level, the CA it
trusts, the names the certificate must carry) and AUTH there (`client_login`: Cyrus SASL's
client, PLAIN/LOGIN from Debian's libsasl2-modules); its smtpd STARTTLS with a
certificate (`server_tls`, `encrypt`: nothing before STARTTLS but EHLO; with `client_ca`
only for a client that shows a certificate of that CA) and AUTH
(`server_login`: Cyrus SASL with a sasldb in the temp dir written by Debian's sasl2-bin
`saslpasswd2`; then only logged-in clients may relay, and AUTH only inside TLS when
`server_tls` is given). The TLS summary lines (`... TLS connection established ...`) are
logged (`*_tls_loglevel = 1`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.peers.net import free_port, listening

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MISSING = (
    "postfix is not installed: run `make test` (it installs Debian's postfix), or "
    "apt-get install --no-install-recommends postfix"
)
SASLPASSWD = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
# Cyrus SASL's PLAIN/LOGIN mechanisms (client and server): Debian's libsasl2-modules
SASL_PLAIN = "/usr/lib/*/sasl2/libplain.so"  # the multiarch directory
MISSING_SASL = (
    "Postfix's SASL needs Debian's libsasl2-modules (PLAIN/LOGIN) and, for its smtpd, "
    "sasl2-bin (saslpasswd2): run `make test`, or apt-get install --no-install-recommends "
    "libsasl2-modules sasl2-bin"
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
smtpd_relay_restrictions = {relay}
{tls}maillog_file_prefixes = {root}
maillog_file = {root}/maillog
biff = no
"""


NOT_ROOT = "Postfix's master runs as root: run the tests as root to include the Postfix relay"
_RELAY = "permit_mynetworks, reject_unauth_destination"
# the TLS session cache manager, for the TLS options only
_TLSMGR = "tlsmgr unix - - n 1000? 1 tlsmgr\n"
SERVER_REALM = "mta.test"  # smtpd's SASL realm: the sasldb holds LOGIN@mta.test

ClientTlsLevel = Literal["may", "encrypt", "verify", "secure"]


@dataclass(frozen=True)
class ClientTls:
    """STARTTLS of Postfix's SMTP client towards every route (`smtp_tls_*`)."""

    level: ClientTlsLevel = "verify"
    ca_file: Path | None = None  # the CA it trusts (smtp_tls_CAfile); None: none
    # names the certificate must carry at verify/secure; () = Postfix's defaults
    # (verify: the host name, for [127.0.0.1] the address; secure: nexthop, dot-nexthop)
    match: tuple[str, ...] = ()
    # the TLS versions it may use, in Postfix's syntax (">=TLSv1.2, <=TLSv1.2"); "" = its
    # defaults (TLS 1.2 and 1.3 with Debian's OpenSSL)
    protocols: str = ""


@dataclass(frozen=True)
class ServerTls:
    """STARTTLS of Postfix's smtpd (`smtpd_tls_*`)."""

    cert_file: Path  # the chain, server certificate first
    key_file: Path
    level: Literal["may", "encrypt"] = "encrypt"  # encrypt: STARTTLS before MAIL (and AUTH)
    # a client certificate from this CA is required (smtpd_tls_req_ccert): None = not asked
    client_ca: Path | None = None


@dataclass(frozen=True)
class SaslLogin:
    username: str
    password: str


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


def _postfix(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    # errors go to the log, and to stderr only on a terminal: the log is shown on failure
    return subprocess.run(
        [POSTFIX, "-c", str(root / "etc"), *command], capture_output=True, text=True, timeout=60
    )


def require_sasl(*, server: bool) -> None:
    if not glob.glob(SASL_PLAIN) or (server and not Path(SASLPASSWD).exists()):
        raise RuntimeError(MISSING_SASL)


@contextmanager
def throwaway_postfix(
    routes: Mapping[str, int],
    port: int | None = None,
    *,
    client_tls: ClientTls | None = None,
    client_login: SaslLogin | None = None,
    server_tls: ServerTls | None = None,
    server_login: SaslLogin | None = None,
) -> Iterator[Postfix]:
    """Postfix listening on `port` of 127.0.0.1 (a free one by default), relaying each
    domain of `routes` to its port there; with STARTTLS and AUTH as the options say
    (the module's docstring)."""
    require_postfix()
    if client_login is not None or server_login is not None:
        require_sasl(server=server_login is not None)
    # the daemons run as `postfix`: the directory must be reachable by that user
    root = Path(tempfile.mkdtemp(prefix="mailsms-postfix-"))
    root.chmod(0o755)
    port = port or free_port()
    (root / "etc").mkdir()
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix")
    nexthops = [f"[127.0.0.1]:{to}" for to in routes.values()]
    tls = _client_settings(root, nexthops, client_tls, client_login)
    tls += _server_settings(root, server_tls, server_login)
    # with a login on smtpd only logged-in clients may relay, whatever their address
    relay = "permit_sasl_authenticated, reject" if server_login else _RELAY
    (root / "etc" / "main.cf").write_text(
        _MAIN.format(root=root, domains=", ".join(routes), tls=tls, relay=relay), encoding="utf-8"
    )
    (root / "etc" / "transport").write_text(
        "".join(f"{domain} smtp:[127.0.0.1]:{to}\n" for domain, to in routes.items()),
        encoding="utf-8",
    )
    master = _MASTER.format(port=port)
    if client_tls is not None or server_tls is not None:
        master += _TLSMGR
    (root / "etc" / "master.cf").write_text(master, encoding="utf-8")
    try:
        started = _postfix(root, "start")
        deadline = time.monotonic() + 20
        while not listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start ({started.returncode}):\n{_log(root)}")
            time.sleep(0.05)
        yield Postfix(port, root)
    finally:
        _postfix(root, "stop")
        if _master_up(root):
            _postfix(root, "abort")
        shutil.rmtree(root, ignore_errors=True)


def _client_settings(
    root: Path, nexthops: list[str], tls: ClientTls | None, login: SaslLogin | None
) -> str:
    """main.cf lines of the SMTP client: STARTTLS and AUTH towards the routes."""
    if tls is None:
        lines = ["smtp_tls_security_level = none"]
    else:
        lines = [f"smtp_tls_security_level = {tls.level}", "smtp_tls_loglevel = 1"]
        if tls.ca_file is not None:
            lines.append(f"smtp_tls_CAfile = {_copy(tls.ca_file, root / 'etc' / 'client-ca.pem')}")
        if tls.match:
            names = ", ".join(tls.match)
            lines += [
                f"smtp_tls_verify_cert_match = {names}",
                f"smtp_tls_secure_cert_match = {names}",
            ]
        if tls.protocols:  # the mandatory ones count at encrypt and above
            lines += [
                f"smtp_tls_protocols = {tls.protocols}",
                f"smtp_tls_mandatory_protocols = {tls.protocols}",
            ]
    if login is not None:
        # looked up by the nexthop as the transport table writes it: [127.0.0.1]:PORT
        passwords = root / "etc" / "sasl_passwd"
        passwords.write_text(
            "".join(f"{hop} {login.username}:{login.password}\n" for hop in nexthops),
            encoding="utf-8",
        )
        lines += [
            "smtp_sasl_auth_enable = yes",
            f"smtp_sasl_password_maps = texthash:{passwords}",
            "smtp_sasl_security_options = noanonymous",
            "smtp_sasl_tls_security_options = noanonymous",
        ]
    return "".join(f"{line}\n" for line in lines)


def _server_settings(root: Path, tls: ServerTls | None, login: SaslLogin | None) -> str:
    """main.cf lines of smtpd: STARTTLS with a certificate, AUTH against a sasldb."""
    if tls is None:
        lines = ["smtpd_tls_security_level = none"]
    else:
        cert = _copy(tls.cert_file, root / "etc" / "server-cert.pem")
        key = _copy(tls.key_file, root / "etc" / "server-key.pem", mode=0o600)
        lines = [
            f"smtpd_tls_security_level = {tls.level}",
            f"smtpd_tls_cert_file = {cert}",
            f"smtpd_tls_key_file = {key}",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
        ]
        if tls.client_ca is not None:
            ca = _copy(tls.client_ca, root / "etc" / "smtpd-client-ca.pem")
            lines += [
                "smtpd_tls_ask_ccert = yes",
                "smtpd_tls_req_ccert = yes",
                f"smtpd_tls_CAfile = {ca}",
            ]
    if login is not None:
        sasl = root / "etc" / "sasl"
        sasl.mkdir()
        sasldb = sasl / "sasldb2"
        made = subprocess.run(
            [SASLPASSWD, "-f", str(sasldb), "-c", "-p", "-u", SERVER_REALM, login.username],
            input=login.password,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if made.returncode != 0:
            raise RuntimeError(f"saslpasswd2 failed ({made.returncode}): {made.stderr}")
        shutil.chown(sasldb, "postfix")  # smtpd reads it as `postfix`, per AUTH
        sasldb.chmod(0o600)
        (sasl / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {sasldb}\n"
            "mech_list: PLAIN LOGIN\n",
            encoding="utf-8",
        )
        lines += [
            "smtpd_sasl_auth_enable = yes",
            "smtpd_sasl_type = cyrus",
            "smtpd_sasl_path = smtpd",
            f"cyrus_sasl_config_path = {sasl}",
            f"smtpd_sasl_local_domain = {SERVER_REALM}",
            "smtpd_sasl_security_options = noanonymous",
            f"smtpd_tls_auth_only = {'yes' if tls is not None else 'no'}",
        ]
    return "".join(f"{line}\n" for line in lines)


def _copy(source: Path, target: Path, mode: int = 0o644) -> Path:
    """A copy of a test's file inside the instance's directory, readable by Postfix."""
    shutil.copyfile(source, target)
    target.chmod(mode)
    return target


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
