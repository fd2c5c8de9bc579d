"""A throwaway Active Directory domain controller (Samba's AD DC) for the dirsync tests.

`samba-tool domain provision` makes a domain in a temp dir (realm CORP.EXAMPLE, NetBIOS
domain CORP, no DNS, RFC 2307 attributes) with an smb.conf that keeps every file in that
dir; `samba -i` then serves LDAP only (`server services = ldap`), in its own process
group, stopped by that group. Samba's LDAP ports are fixed (389, 636), so each domain
listens on an address of its own in 127.0.0.0/8 (`interfaces = 127.a.b.c/8`, `bind
interfaces only`): tests never meet each other's servers or anything else on 389.
Samba writes a self-signed CA and a certificate for `DC1.corp.example` (no subject
alternative name) to private/tls/ at its first start. Simple binds need TLS ("ldap server
require strong auth", Samba's default), so the administrator's connection is LDAPS.
If Samba is missing the tests FAIL (`make test` installs Debian's samba-ad-dc).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ldap3

SAMBA = shutil.which("samba") or "/usr/sbin/samba"
SAMBA_TOOL = shutil.which("samba-tool") or "/usr/bin/samba-tool"
PROVISION_DATA = Path("/usr/share/samba/setup/ad-schema")
ADMIN_PASSWORD = "Adm1n-Pass-x7!"
SVC_PASSWORD = "Svc-Pass-4711!"
REALM = "CORP.EXAMPLE"
DOMAIN = "CORP"
HOST_NAME = "DC1"
TLS_NAME = "DC1.corp.example"  # the name in Samba's self-signed certificate
BASE_DN = "DC=corp,DC=example"
MISSING = (
    "Samba's AD DC is not installed: run `make test` (it installs Debian's samba-ad-dc), or "
    "apt-get install --no-install-recommends samba-ad-dc samba samba-common-bin "
    "samba-ad-provision"
)
NOT_ROOT = (
    "Samba's AD DC must run as root (it binds the fixed LDAP ports 389 and 636): run the "
    "Samba tests as root"
)


def require_samba() -> None:
    if not (Path(SAMBA).exists() and Path(SAMBA_TOOL).exists() and PROVISION_DATA.is_dir()):
        raise RuntimeError(MISSING)
    if os.geteuid() != 0:
        raise RuntimeError(NOT_ROOT)


def _free_loopback_address() -> str:
    """An address in 127.0.0.0/8 (not 127.0.0.x) where nothing listens on 389 or 636."""
    rng = random.SystemRandom()
    for _ in range(50):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
        try:
            for port in (389, 636):
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return address
    raise RuntimeError("no free address in 127.0.0.0/8 for Samba's LDAP ports 389/636")


@dataclass
class SambaAD:
    """One provisioned domain; `start()` runs its DC, `stop()` ends its process group."""

    directory: Path
    address: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.directory / "etc" / "smb.conf"

    @property
    def url(self) -> str:
        return f"ldap://{self.address}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.address}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "private" / "tls" / "ca.pem"

    @property
    def svc_dn(self) -> str:
        return f"CN=svc-mailsms,CN=Users,{BASE_DN}"

    def _options(self) -> list[tuple[str, str]]:
        """smb.conf's [global] options beyond the domain's identity: LDAP only, on this
        domain's own address, every file in the temp dir."""
        d = self.directory
        return [
            ("server services", "ldap"),
            ("interfaces", f"{self.address}/8"),  # /8: an address lo answers, not one it has
            ("bind interfaces only", "yes"),
            ("private dir", str(d / "private")),
            ("lock directory", str(d)),
            ("state directory", str(d / "state")),
            ("cache directory", str(d / "cache")),
            ("pid directory", str(d / "run")),
            ("binddns dir", str(d / "bind-dns")),
            ("ncalrpc dir", str(d / "run" / "ncalrpc")),
            ("winbindd socket directory", str(d / "run" / "winbindd")),
            ("ntp signd socket directory", str(d / "run" / "ntp")),
            ("log file", str(d / "log.%m")),
            ("logging", "file"),
        ]

    def _smb_conf(self) -> str:
        identity = [
            ("netbios name", HOST_NAME),
            ("realm", REALM),
            ("workgroup", DOMAIN),
            ("server role", "active directory domain controller"),
            ("idmap_ldb:use rfc2307", "yes"),
        ]
        return "[global]\n" + "".join(f"{k} = {v}\n" for k, v in [*identity, *self._options()])

    def provision(self) -> SambaAD:
        require_samba()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "run").mkdir(exist_ok=True)
        self.address = self.address or _free_loopback_address()
        options = [f"--option={k}={v}" for k, v in self._options()]
        out = subprocess.run(
            [
                SAMBA_TOOL, "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}",
                "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
                f"--host-name={HOST_NAME}", f"--targetdir={self.directory}",
                f"--adminpass={ADMIN_PASSWORD}", *options,
            ],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed: {out.stderr[-2000:]}")
        self.conf.write_text(self._smb_conf())  # everything in the temp dir, nothing in /etc
        return self

    def start(self, timeout: float = 60.0) -> SambaAD:
        log = (self.directory / "samba.out").open("wb")
        self.proc = subprocess.Popen(
            [SAMBA, "-i", "--no-process-group", "-M", "single", "-s", str(self.conf)],
            stdin=subprocess.PIPE,  # `samba -i` ends when its stdin closes
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"samba exited with {self.proc.returncode}: "
                    f"{(self.directory / 'samba.out').read_text(errors='replace')[-2000:]}"
                )
            if self.ca_file.exists() and self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"samba did not answer on {self.ldaps_url} within {timeout:.0f} s")

    def _answers(self) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with (
                socket.create_connection((self.address, 636), timeout=1) as raw,
                context.wrap_socket(raw),
            ):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the process group, then SIGKILL to whatever is left of it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdin is not None:
            proc.stdin.close()

    def tool(self, *args: str) -> str:
        """`samba-tool ARGS -s smb.conf` on this domain's database; its output."""
        out = subprocess.run(
            [SAMBA_TOOL, *args, "-s", str(self.conf)], capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            raise RuntimeError(f"samba-tool {' '.join(args)} failed: {out.stderr[-1000:]}")
        return out.stdout

    def admin(self) -> ldap3.Connection:
        """A bound LDAPS connection as Administrator (by UPN), checking Samba's CA."""
        from ldap3 import Connection, Server, Tls

        tls = Tls(
            validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file), valid_names=[TLS_NAME]
        )
        server = Server(self.address, port=636, use_ssl=True, tls=tls)
        conn = Connection(
            server,
            user=f"Administrator@{REALM.lower()}",
            password=ADMIN_PASSWORD,
            raise_exceptions=True,
            auto_referrals=False,
        )
        conn.bind()
        return conn


@contextmanager
def running(directory: Path) -> Iterator[SambaAD]:
    """A provisioned, started domain with the service account `svc-mailsms` (a plain
    domain user: AD lets every authenticated user read users and groups)."""
    server = SambaAD(directory).provision()
    server.start()
    try:
        server.tool("user", "create", "svc-mailsms", SVC_PASSWORD, "--description=mailsms dirsync")
        yield server
    finally:
        server.stop()
