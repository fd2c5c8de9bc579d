"""The SMTP listener: shared session state, AUTH verification, the server socket.

TLS comes from `bridge.intake.tls`; connections and AUTH failures are counted per client
across sessions (`access.ConnectionLimiter`, `authguard`), and across the processes of a
bridge when they share the tables (`shared_counts`); what clients make the listener log,
including aiosmtpd's own lines, goes through one log-rate limiter (`lograte`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from bridge.db.store import Store
from bridge.intake.access import ConnectionLimiter, Networks, limiter_table
from bridge.intake.authguard import AuthGuard, AuthLimits, guard_table
from bridge.intake.counts import CountTable
from bridge.intake.handler import IntakeHandler
from bridge.intake.lograte import LogLimiter
from bridge.intake.server import BridgeSMTP, Shared
from bridge.intake.settings import SmtpSettings
from bridge.intake.tls import CertWatcher, server_context
from bridge.tenants.logins import find_credential, verify_password

log = logging.getLogger("bridge.intake")
AIOSMTPD_LOG = logging.getLogger("mail.log")


def tls_context(settings: SmtpSettings, certs: CertWatcher | None = None) -> ssl.SSLContext | None:
    """The STARTTLS context; with `certs`, one it renews when the files change."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    if certs is not None:
        return certs.serve("smtp", settings.tls_cert, settings.tls_key)
    return server_context(str(settings.tls_cert), str(settings.tls_key))


def make_verifier(store: Store) -> object:
    async def verify(login: str, password: str) -> int | None:
        credential = await store.call(find_credential, login)
        if credential is None or not credential.enabled:
            # Hash anyway, so a wrong login costs as much time as a wrong password.
            await asyncio.to_thread(verify_password, password, "scrypt$16384$8$1$AAAA$AAAA")
            return None
        ok = await asyncio.to_thread(verify_password, password, credential.password_hash)
        return credential.customer_id if ok else None

    return verify


def auth_limits(settings: SmtpSettings) -> AuthLimits:
    """The SMTP door's AUTH limits, from `[smtp]`."""
    return AuthLimits(
        max_failures=settings.auth_max_failures,
        max_failures_per_login=settings.auth_max_failures_per_login,
        window=settings.auth_failure_window,
        lockout=settings.auth_lockout,
        delay=settings.auth_failure_delay,
        delay_max=settings.auth_failure_delay_max,
    )


@dataclass(frozen=True)
class SmtpCounts:
    """The SMTP door's counts: connections per client (`ConnectionLimiter`) and AUTH
    failures (`AuthGuard`). Made by the parent of several processes before the fork
    (`shared_counts`), so every process taking SMTP counts in the same tables and the
    door's limits hold for the bridge, not for each process."""

    connections: CountTable
    auth: CountTable


def shared_counts(settings: SmtpSettings) -> SmtpCounts:
    """The SMTP door's tables, for the processes forked after this call."""
    return SmtpCounts(
        limiter_table(settings.max_connections, shared=True),
        guard_table(auth_limits(settings), shared=True),
    )


async def start_listener(
    settings: SmtpSettings,
    handler: IntakeHandler,
    store: Store,
    *,
    reuse_port: bool = False,
    certs: CertWatcher | None = None,
    counts: SmtpCounts | None = None,
) -> tuple[asyncio.Server, Shared]:
    """Listen for SMTP; `reuse_port`: several processes listen on the same port
    (SO_REUSEPORT, the kernel spreads the connections among them); `certs`: renews the
    STARTTLS certificate (aiosmtpd's `tls_context` is this one context object);
    `counts`: the tables those processes share (`shared_counts`), else this process's."""
    context = tls_context(settings, certs)
    logs = LogLimiter(log)
    shared = Shared(
        limiter=ConnectionLimiter(
            settings.max_connections_per_ip,
            settings.max_connections_per_ip_per_minute,
            settings.max_connections,
            counts.connections if counts else None,
        ),
        plaintext=Networks(settings.plaintext_networks),
        data_size_limit=settings.data_size_limit,
        tls_on=context is not None,
        require_tls=settings.require_tls,
        verify=make_verifier(store),  # type: ignore[arg-type]
        auth=AuthGuard(auth_limits(settings), table=counts.auth if counts else None),
        logs=logs,
        idle_command_limit=settings.idle_command_limit,
        pipelining=settings.pipelining,
        metrics=handler.metrics,
    )
    shared.log_filter = logs.filter_for()
    AIOSMTPD_LOG.addFilter(shared.log_filter)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BridgeSMTP(
            handler,
            shared=shared,
            hostname=settings.hostname,
            ident="mailsms ESMTP",
            data_size_limit=settings.data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=context,
            require_starttls=False,  # enforced per client network at MAIL (530)
            auth_require_tls=True,
            timeout=settings.timeout,
            command_call_limit=settings.command_call_limit,
        ),
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port or None,
    )
    if context is None:
        local = settings.host in ("127.0.0.1", "::1", "localhost")
        (log.info if local else log.warning)(
            "no TLS certificate configured ([smtp] tls_cert): STARTTLS and AUTH are not offered"
        )
    return server, shared


def release_listener(shared: Shared) -> None:
    """Undo what `start_listener` set up outside the server (the log filter)."""
    if shared.log_filter is not None:
        AIOSMTPD_LOG.removeFilter(shared.log_filter)
        shared.log_filter = None
