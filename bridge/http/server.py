"""The HTTP listener: uvicorn's server, run as a task on the bridge's own event loop.

The socket is bound here (so a port in use is an `OSError` at start, a port 0 is
real once started) and handed to uvicorn; the bridge keeps its own SIGINT/SIGTERM
handling (uvicorn's is switched off). `stop()` closes the listener and lets running
requests finish for at most `grace` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from bridge.http.door import door_protocol
from bridge.http.settings import HttpSettings
from bridge.intake.tls import CertWatcher, server_context

_ContextFactory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on host:port, as the event loop makes its own:
    its protocol named (IPPROTO_TCP), so that every connection accepted on it gets
    TCP_NODELAY from the loop.

    `socket.create_server` makes one with protocol 0, and the loop sets TCP_NODELAY only
    on sockets whose protocol is IPPROTO_TCP: with Nagle's algorithm left on, an answer
    written in two pieces (uvicorn writes the head, then the body) waits for the
    client's delayed ACK of the first, ~40 ms for every request on a kept connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    made = socket.create_server((host, port), family=family, reuse_port=False)
    # the same socket, known to Python as TCP (an explicit protocol overrides the one
    # read from the descriptor); sockets accepted on it inherit it
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=made.detach())
    sock.setblocking(False)
    return sock


def _tls_factory(settings: HttpSettings, certs: CertWatcher | None) -> _ContextFactory | None:
    """uvicorn's `ssl_context_factory` for the configured certificate; None: plain HTTP.
    With `certs`, the context is renewed in place (uvicorn serves every connection with
    the one context the factory gave)."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        return None
    if certs is not None:
        return lambda _config, _uvicorns: certs.serve("https", cert, key)
    return lambda _config, _uvicorns: server_context(str(cert), str(key))


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the bridge stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(
        self,
        settings: HttpSettings,
        app: ASGIApp,
        *,
        grace: float = 2.0,
        certs: CertWatcher | None = None,
    ) -> None:
        self.settings = settings
        config = uvicorn.Config(
            app,
            http=door_protocol(settings),  # httptools, the door's time, size and connection caps
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # X-Forwarded-For believed only from the configured proxies (uvicorn's
            # ProxyHeadersMiddleware: the rightmost address that is not one of them)
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.proxy_networks() or None,
            # HTTPS: the context is made by `server_context`, as every server-side one of
            # the bridge (TLS 1.2+, AEAD ciphers only, X25519/P-256/P-384). uvicorn's own
            # (`ssl_certfile`, `ssl_ciphers`) has Python's cipher list, CBC suites included,
            # and no way to limit groups; `ssl_context_factory` (uvicorn >= 0.47) hands
            # `Server.serve` our context as `config.ssl` instead. It is called by
            # `config.load()` in the serve task, so unreadable TLS files fail `start()`.
            ssl_context_factory=_tls_factory(settings, certs),
            timeout_graceful_shutdown=max(1, round(grace)),
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Bind, start serving; the address it listens on."""
        s = self.settings
        sock = listening_socket(s.host, s.port)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._task.done():  # the TLS files could not be read, ...
                sock.close()
                self._task.result()
                raise OSError(f"HTTP listener on {s.listen} did not start")
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        self.address = (str(host), int(port))
        return self.address

    async def stop(self) -> None:
        """Stop accepting, let running requests finish (a few seconds at most)."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
