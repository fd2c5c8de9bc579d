"""The bridge's server-side TLS context: TLS 1.2+, forward-secret AEAD ciphers, modern
key-exchange groups (the Mozilla "intermediate" profile).

Every listener that speaks TLS takes its context from `server_context`, so the rules live
here only: the SMTP listener's STARTTLS (intake/listener.py), the HTTPS door (http/server.py,
through uvicorn's `ssl_context_factory`) and the SMPP server's TLS port (smpp_server/
server.py). Python's defaults, which `ssl.create_default_context` and uvicorn would use,
also accept CBC suites (ECDHE-RSA-AES128-SHA256, ...) and the groups X448 and P-521.

Finite-field DHE (TLS 1.2 clients without ECDHE, such as older SAP crypto libraries)
uses RFC 7919's 2048-bit group, shipped as `intake/ffdhe2048.pem`, as the Mozilla
profile does: without parameters OpenSSL never picks a DHE suite of the list.

One configured certificate chain (no SNI dependence: SAP may send none). Python 3.11's
`ssl` module can set a single key-exchange group only (`set_ecdh_curve`), and its
default list includes X448 and P-521, which the Mozilla "intermediate" profile does
not; `limit_groups` sets the list through OpenSSL's `SSL_CTX_ctrl` on the context's
own `SSL_CTX`, after checking that the pointer it found really is that context
(its options must read back equal). If that is not possible, P-256 alone is used.

A renewed certificate is taken without a restart: `CertWatcher` (one per process, started
and stopped by `bridge/app.py`) owns every door's context. Every `[server]
tls_check_interval` seconds it compares the certificate and key files' (mtime, size,
inode) with what it loaded; when they changed, it copies both into a private directory,
loads the copy into a fresh context first (a half-written file or a key that does not
belong to the certificate fails there: the door keeps its chain, a warning names the
files and the error, the next check tries again), then into the door's own context
(`load_cert_chain` on a live context applies to new handshakes; sessions already open
keep theirs). It also sets the gauge `mailsms_tls_certificate_expiry_timestamp_seconds`
and warns, at start and once a day, of a certificate that expires within 21 days (an
error once it has expired).
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import ctypes
import logging
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bridge.certs import CertInfo, Expiry, FileStamp, cert_info, expiry
from bridge.metrics import Metrics
from bridge.packaged import DH_PARAMS

log = logging.getLogger("bridge.intake")

CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"
GROUPS = "X25519:P-256:P-384"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's ssl.h: SSL_CTX_set1_groups_list is this ctrl


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side context with the certificate chain `cert` and its private key `key`
    (PEM files); `OSError`/`ssl.SSLError` when they cannot be read or do not match."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_dh_params(str(DH_PARAMS))  # the DHE suites of CIPHERS need a group
    if not limit_groups(context, GROUPS):
        log.info("TLS key-exchange groups: cannot set %s here; using P-256 only", GROUPS)
        context.set_ecdh_curve("prime256v1")
    context.load_cert_chain(cert, key)
    return context


def limit_groups(context: ssl.SSLContext, groups: str) -> bool:
    """Allow only `groups` (OpenSSL names, ':'-separated) for key exchange; False if impossible."""
    try:
        lib = ctypes.CDLL(_ssl.__file__)  # reaches libssl's symbols through the module
        ctrl = lib.SSL_CTX_ctrl
        get_options = lib.SSL_CTX_get_options
    except (OSError, AttributeError):
        return False
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctrl.restype = ctypes.c_long
    get_options.argtypes = [ctypes.c_void_p]
    get_options.restype = ctypes.c_uint64
    # PySSLContext starts with PyObject_HEAD followed by its SSL_CTX pointer.
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or get_options(pointer) != int(context.options):
        return False
    return bool(ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode("ascii")) == 1)


DAY = 86400.0  # how often an expiring certificate is warned about again (seconds)


@dataclass(slots=True)
class _Watched:
    """One certificate the watcher follows: its files, the contexts that hold it."""

    use: str  # "smtp", "https", "smpp", "mailer": the gauge's label
    cert: Path
    key: Path | None
    contexts: list[ssl.SSLContext]  # reloaded in place; none: only its expiry is watched
    stamps: tuple[FileStamp | None, FileStamp | None]
    info: CertInfo | None
    failed: tuple[tuple[FileStamp | None, FileStamp | None], str] | None = None
    warned_at: float | None = None  # time.monotonic() of the last expiry warning

    @property
    def files(self) -> str:
        return f"{self.cert} and {self.key}" if self.key else str(self.cert)


def _stamps(cert: Path, key: Path | None) -> tuple[FileStamp | None, FileStamp | None]:
    return (FileStamp.of(cert), FileStamp.of(key) if key is not None else None)


def _no_passphrase() -> str:  # else OpenSSL would prompt on the terminal
    return ""


@dataclass(slots=True)
class CertWatcher:
    """The certificates of this process's doors (and the mailer's): renewed in place,
    their expiry exported and warned about. `interval`: seconds between checks."""

    metrics: Metrics
    interval: float = 60.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _watched: list[_Watched] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def serve(self, use: str, cert: Path, key: Path) -> ssl.SSLContext:
        """The server context of door `use` (`server_context`), renewed when the files
        change; `OSError`/`ssl.SSLError` when they cannot be used at start."""
        stamps = _stamps(cert, key)
        context = server_context(str(cert), str(key))
        self._add(_Watched(use, cert, key, [context], stamps, _info(cert)))
        return context

    def watch(
        self,
        use: str,
        cert: Path,
        key: Path | None = None,
        contexts: Sequence[ssl.SSLContext] = (),
    ) -> None:
        """Watch the certificate in `cert` (and `key`, None: in `cert`) that `contexts`
        hold, already loaded: renewed in them as a door's is; with no contexts only its
        expiry is watched."""
        stamps = _stamps(cert, key)
        self._add(_Watched(use, cert, key, list(contexts), stamps, _info(cert)))

    def _add(self, watched: _Watched) -> None:
        self._watched.append(watched)
        log.info("TLS certificate for %s (%s): %s", watched.use, watched.cert, watched.info)
        self._publish()
        self._remind(watched)

    def start(self) -> None:
        """Check every `interval` seconds (0: only the daily expiry warning)."""
        if self._task is None and self._watched:
            self._task = asyncio.create_task(self._run(), name="tls-certificates")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval or DAY)
            try:
                self.check(reload=self.interval > 0)
            except Exception:  # a check never stops the watcher
                log.exception("TLS certificates: the check failed")

    def check(self, *, reload: bool = True) -> None:
        """Take renewed certificates; warn of expiring ones (once a day each)."""
        for watched in self._watched:
            if reload and watched.contexts:
                self._reload(watched)
            self._remind(watched)
        self._publish()

    def _reload(self, watched: _Watched) -> None:
        stamps = _stamps(watched.cert, watched.key)
        if stamps == watched.stamps:
            return
        try:
            info = _load(watched, stamps)
        except (OSError, ValueError, ssl.SSLError) as exc:
            error = str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)
            if watched.failed != (stamps, error):
                log.warning(
                    "TLS certificate for %s: %s changed but cannot be used (%s); still serving "
                    "the previous certificate, trying again every %g s",
                    watched.use,
                    watched.files,
                    error,
                    self.interval,
                )
            watched.failed = (stamps, error)
            return
        watched.stamps, watched.info, watched.failed, watched.warned_at = stamps, info, None, None
        log.info("TLS certificate for %s renewed (%s): %s", watched.use, watched.cert, info)

    def _remind(self, watched: _Watched) -> None:
        info = watched.info
        if info is None:
            return
        state = expiry(info.not_after, self.now())
        if state in (Expiry.VALID, Expiry.UNKNOWN):
            return
        now = time.monotonic()
        if watched.warned_at is not None and now - watched.warned_at < DAY:
            return
        watched.warned_at = now
        if state is Expiry.EXPIRED:
            log.error(
                "TLS certificate for %s (%s) has expired: %s; clients that check it refuse "
                "the connection: install a renewed certificate",
                watched.use,
                watched.cert,
                info,
            )
        else:
            log.warning(
                "TLS certificate for %s (%s) expires soon: %s; renew it (the bridge takes "
                "the renewed files without a restart)",
                watched.use,
                watched.cert,
                info,
            )

    def _publish(self) -> None:
        ends: dict[str, float] = {}
        for watched in self._watched:
            if watched.info is not None and watched.info.not_after is not None:
                end = watched.info.not_after.timestamp()
                ends[watched.use] = min(end, ends.get(watched.use, end))
        for use, end in ends.items():
            self.metrics.tls_certificate_expiry.labels(use=use).set(end)


def _info(cert: Path) -> CertInfo | None:
    try:
        return cert_info(cert)
    except (OSError, ValueError) as exc:
        log.warning("TLS certificate %s: cannot be read: %s", cert, exc)
        return None


def _load(watched: _Watched, stamps: tuple[FileStamp | None, FileStamp | None]) -> CertInfo | None:
    """Load the changed pair into the watched contexts, from one copy of the files: tried
    on a fresh context first, so a bad pair leaves the live ones untouched."""
    if None in stamps:
        raise OSError(f"{watched.files}: missing")
    with tempfile.TemporaryDirectory(prefix="mailsms-tls-") as private:  # mode 0700
        cert = Path(private) / "cert.pem"
        cert.write_bytes(watched.cert.read_bytes())
        key = None
        if watched.key is not None:
            key = Path(private) / "key.pem"
            key.touch(mode=0o600)
            key.write_bytes(watched.key.read_bytes())
        info = cert_info(cert)
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        probe.load_cert_chain(str(cert), str(key) if key else None, password=_no_passphrase)
        for context in watched.contexts:
            context.load_cert_chain(str(cert), str(key) if key else None, password=_no_passphrase)
    return info
