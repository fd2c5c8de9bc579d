"""The SMTP listener: TLS context, shared session state, AUTH verification, the server socket.

TLS is TLS 1.2 or newer with forward-secret AEAD ciphers only, from one configured
certificate chain (no SNI dependence: SAP may send none).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from bridge.intake.access import ConnectionLimiter, Networks
from bridge.intake.handler import IntakeHandler
from bridge.intake.server import BridgeSMTP, Shared
from bridge.settings import SmtpSettings
from bridge.store.credentials import find_credential, verify_password
from bridge.store.store import Store

log = logging.getLogger("bridge.intake")

CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


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


async def start_listener(
    settings: SmtpSettings, handler: IntakeHandler, store: Store
) -> tuple[asyncio.Server, Shared]:
    context = tls_context(settings)
    shared = Shared(
        limiter=ConnectionLimiter(
            settings.max_connections_per_ip,
            settings.max_connections_per_ip_per_minute,
            settings.max_connections,
        ),
        plaintext=Networks(settings.plaintext_networks),
        data_size_limit=settings.data_size_limit,
        tls_on=context is not None,
        require_tls=settings.require_tls,
        verify=make_verifier(store),  # type: ignore[arg-type]
    )
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
    )
    if context is None:
        local = settings.host in ("127.0.0.1", "::1", "localhost")
        (log.info if local else log.warning)(
            "no TLS certificate configured ([smtp] tls_cert): STARTTLS and AUTH are not offered"
        )
    return server, shared
