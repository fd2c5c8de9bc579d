"""A throwaway OpenLDAP `slapd` for the dirsync tests: own temp dir, free port, stopped by PID.

Debian's slapd with a generated `slapd.conf` (mdb, core/cosine/inetorgperson plus the
AD-like `ad-lite.schema` from tests/data/dirsync), a read-only service account
`cn=svc-dirsync,<suffix>` (password `s3cret`) and AD-like page limits for it. Data is
loaded with `slapadd` before start (fast, for big fixtures) or with ldap3 as rootdn.
Optional TLS: a test CA made with the `openssl` command, an extra `ldaps://` listener.
If slapd is missing the tests FAIL (`make test` installs Debian's slapd).
"""

from __future__ import annotations

import base64
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.peers.net import free_port

if TYPE_CHECKING:
    import ldap3

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "dirsync"
AD_SCHEMA = DATA / "ad-lite.schema"
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SVC_PASSWORD = "s3cret"
ROOT_PASSWORD = "secret"
MISSING = (
    "slapd is not installed: run `make test` (it installs Debian's slapd), or "
    "apt-get install --no-install-recommends slapd ldap-utils"
)


def require_slapd() -> None:
    if not Path(SLAPD).exists() or not Path(SLAPADD).exists():
        raise RuntimeError(MISSING)


def make_test_ca(directory: Path, hostname: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem) for `hostname` (and localhost), signed by a fresh CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "key.pem", "c.csr", "cert.pem")
    )
    ext = directory / "ext.cnf"
    san = f"IP:{hostname}" if hostname.replace(".", "").isdigit() else f"DNS:{hostname}"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=dirsync test CA",
    )
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hostname}")
    run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    key.chmod(0o600)
    return ca, cert, key


@dataclass
class Slapd:
    """One slapd process; `start()` returns self, `stop()` terminates it by PID."""

    directory: Path
    suffix: str = "dc=corp,dc=example"
    ad_schema: bool = True
    limits: str = "size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited"
    tls: bool = False
    tls_name: str = "127.0.0.1"  # the name the test certificate is issued for
    port: int = 0
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    ca_file: Path | None = None

    @property
    def rootdn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def svc_dn(self) -> str:
        return f"cn=svc-dirsync,{self.suffix}"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def conf(self) -> Path:
        return self.directory / "slapd.conf"

    def configure(self) -> Slapd:
        require_slapd()
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        schemas = ["core", "cosine", "inetorgperson"]
        lines = [f"include /etc/ldap/schema/{s}.schema" for s in schemas]
        if self.ad_schema:
            lines.append(f"include {AD_SCHEMA}")
        lines += [
            f"pidfile {self.directory / 'slapd.pid'}",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
        ]
        if self.tls:
            self.ca_file, cert, key = make_test_ca(self.directory / "tls", self.tls_name)
            lines += [
                f"TLSCACertificateFile {self.ca_file}",
                f"TLSCertificateFile {cert}",
                f"TLSCertificateKeyFile {key}",
            ]
        lines += [
            "database mdb",
            "maxsize 4294967296",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.rootdn}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {self.directory / 'db'}",
            "index objectClass eq",
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by users read by * none",
        ]
        if self.limits:
            lines.append(f"limits * {self.limits}")
        self.conf.write_text("\n".join(lines) + "\n")
        return self

    def slapadd(self, ldif: str | Path) -> None:
        """Load LDIF offline (before start); slapadd also creates entryUUID."""
        path = Path(ldif) if isinstance(ldif, Path) else self.directory / "load.ldif"
        if not isinstance(ldif, Path):
            path.write_text(ldif)
        done = subprocess.run(
            [SLAPADD, "-q", "-f", str(self.conf), "-b", self.suffix, "-l", str(path)],
            capture_output=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def start(self, timeout: float = 10.0) -> Slapd:
        if not self.conf.exists():
            self.configure()
        for _attempt in range(3):
            self.port = free_port()
            urls = [self.url + "/"]
            if self.tls:
                self.tls_port = free_port()
                urls.append(self.ldaps_url + "/")
            log = (self.directory / "slapd.log").open("ab")
            self.proc = subprocess.Popen(
                [SLAPD, "-f", str(self.conf), "-h", " ".join(urls), "-d", "0"],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            log.close()
            if self._wait_ready(timeout):
                return self
        raise RuntimeError(f"slapd did not start: {self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken in between: retry with another
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.01)  # polling a condition with a deadline, not a fixed wait
        self.stop()
        raise RuntimeError(f"slapd did not accept connections within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.directory / "slapd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def admin(self) -> ldap3.Connection:
        """An ldap3 connection bound as rootdn (ignores limits) for loading and changing data."""
        from ldap3 import Connection, Server

        return Connection(
            Server("127.0.0.1", port=self.port), self.rootdn, ROOT_PASSWORD,
            auto_bind=True, raise_exceptions=True,
        )  # fmt: skip


@contextmanager
def running(directory: Path, ldif: str = "", **kw: object) -> Iterator[Slapd]:
    """configure → slapadd `ldif` → start → yield → stop (also on errors)."""
    server = Slapd(directory, **kw).configure()  # type: ignore[arg-type]
    if ldif:
        server.slapadd(ldif)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- data ------------------------------------------------------------------------------------


def base_ldif(suffix: str = "dc=corp,dc=example") -> str:
    """The suffix, ou=Staff, ou=Groups and the service account."""
    dc = suffix.split(",")[0].split("=")[1]
    return (
        f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: {dc}\no: {dc}\n\n"
        f"dn: ou=Staff,{suffix}\nobjectClass: organizationalUnit\nou: Staff\n\n"
        f"dn: ou=Groups,{suffix}\nobjectClass: organizationalUnit\nou: Groups\n\n"
        f"dn: cn=svc-dirsync,{suffix}\nobjectClass: person\nobjectClass: simpleSecurityObject\n"
        f"cn: svc-dirsync\nsn: svc\nuserPassword: {SVC_PASSWORD}\n\n"
    )


def guid(i: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"dirsync-test-user-{i}")


def ad_user(
    i: int, suffix: str = "dc=corp,dc=example", *, uac: int = 512, groups: Iterable[str] = ()
) -> str:
    """One AD-like user entry as LDIF (objectGUID little-endian, like AD)."""
    g = base64.b64encode(guid(i).bytes_le).decode()
    lines = [
        f"dn: cn=User {i:06d},ou=Staff,{suffix}",
        "objectClass: user",
        "objectCategory: person",
        f"cn: User {i:06d}",
        f"sn: {i:06d}",
        f"sAMAccountName: u{i:06d}",
        f"displayName: User {i:06d}",
        f"mail: user{i:06d}@corp.example",
        f"proxyAddresses: SMTP:user{i:06d}@corp.example",
        f"proxyAddresses: smtp:u{i:06d}@legacy.example",
        "proxyAddresses: X500:/o=Corp/ou=Exchange/cn=Recipients",
        f"mobile: 0170 {1000000 + i:07d}",
        "extensionAttribute1: CORP",
        f"department: CC-{i % 97:03d}",
        f"userAccountControl: {uac}",
        f"objectGUID:: {g}",
    ]
    lines += [f"memberOf: {grp}" for grp in groups]
    return "\n".join(lines) + "\n\n"


def ad_users_ldif(n: int, suffix: str = "dc=corp,dc=example") -> str:
    return base_ldif(suffix) + "".join(ad_user(i, suffix) for i in range(n))


def write_ad_users_ldif(path: Path, n: int, suffix: str = "dc=corp,dc=example") -> Path:
    """Stream a big LDIF to disk (the 100,000-user benchmark)."""
    with path.open("w") as f:
        f.write(base_ldif(suffix))
        for i in range(n):
            f.write(ad_user(i, suffix))
    return path
