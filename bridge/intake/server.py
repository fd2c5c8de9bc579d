"""The SMTP server protocol: aiosmtpd's SMTP, fitted to face company MTAs and SAP systems.

On top of aiosmtpd it adds: DSN (RFC 3461) — advertised, and NOTIFY/ORCPT/RET/ENVID
accepted and kept exactly as received; STARTTLS required at MAIL for clients outside
the plaintext networks, whatever they greeted with (HELO or EHLO); per-address
connection caps and rates; SIZE checked at MAIL; AUTH verified off the event loop,
with failures counted per address and per login across sessions (`authguard`);
a graceful stop that answers new sessions and commands with 421; and aiosmtpd's own
replies rewritten into the bridge's reply table, with enhanced status codes.

PIPELINING (RFC 2920) is offered after EHLO (`[smtp] pipelining`): MAIL, RCPT and RSET
(and AUTH PLAIN with its initial response, RFC 4954) may be followed by more commands
before their replies; the replies to MAIL, RCPT and RSET are then held and sent with
the reply to the group's last command (DATA's 354, or whatever reply finds no further
command waiting), as Postfix's smtpd writes them: one send per group, not one per
command.

Every command passes one guard first (`_guard`): input sent before the reply to any
other command (EHLO, HELO, DATA, STARTTLS, AUTH, NOOP, ...), before any reply in a
session without PIPELINING, or a second transaction behind the data, ends the session
with 554 5.5.0; an argument with bytes that are not UTF-8, or with control characters,
gets 501 5.5.2; and a session that sends more than `idle_command_limit` commands without
a mail being accepted (RSET/NOOP keep-alive, probing) is closed with 421. What clients
cause is logged through a rate limiter (`lograte`), as one line, never with a traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import MethodType
from typing import Any, AnyStr

import aiosmtpd
from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, TLSSetupException

from bridge import logcontext
from bridge.errors import StorageUnavailable, reply
from bridge.intake.access import ConnectionLimiter, Networks
from bridge.intake.authguard import AuthGuard, AuthLimits, Lockout
from bridge.intake.dsn_params import (
    DsnParamError,
    MailDsn,
    RcptDsn,
    parse_mail_dsn,
    parse_rcpt_dsn,
    split_params,
)
from bridge.intake.lograte import LogLimiter
from bridge.intake.maildata import DataState, MailData, read_data
from bridge.metrics import Metrics

log = logging.getLogger("bridge.intake")

Verifier = Callable[[str, str], Awaitable[int | None]]  # login, password -> customer id

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDR = re.compile(rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")
# Bytes that are not UTF-8 (decoded by aiosmtpd as lone surrogates) and control characters.
_BAD_CHARS = re.compile(r"[\udc80-\udcff]|[\x00-\x08\x0a-\x1f\x7f]")
# Commands that move a transaction forward; every other one counts as idle.
_PROGRESS = frozenset({"RCPT", "DATA", "QUIT"})
# Commands a pipelining client may send more commands behind (RFC 2920 3.1: EHLO, DATA,
# VRFY, EXPN, TURN, QUIT and NOOP end a group; here STARTTLS and AUTH end one too, but
# for AUTH PLAIN with its initial response: `_continues_group`).
_GROUPED = frozenset({"MAIL", "RCPT", "RSET"})
_MAIL_DSN = frozenset({"RET", "ENVID", "AUTH"})
_RCPT_DSN = frozenset({"NOTIFY", "ORCPT"})
# aiosmtpd's own reply texts -> the bridge's reply table (or an added enhanced code).
_REWRITE: dict[str, str] = {
    "552 Error: Too much mail data": "message_too_big",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "line_too_long",
    "500 Command line too long": "command_too_long",
    "530 Must issue a STARTTLS command first": "tls_required",
    "538 5.7.11 Encryption required for requested authentication mechanism": "auth_requires_tls",
}
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_ENHANCED = {
    "250": "2.0.0",
    "221": "2.0.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "554": "5.7.0",
    "555": "5.5.4",
    "421": "4.4.2",
}
# The aiosmtpd release whose SMTP.__init__ `BridgeSMTP._init_known` and whose DATA
# command `DataInBlocks.smtp_DATA` repeat (any other release runs its own for every session).
AIOSMTPD_KNOWN = "1.4.6"
# seconds a connection we end stays open for the client to read our last reply and close
LINGER = 2.0
_SYNTAX_MARKS = ("__smtp_syntax__", "__smtp_syntax_when__", "__smtp_syntax_extended__")
_KNOWN_OPTIONS = frozenset(
    {
        "data_size_limit",
        "enable_SMTPUTF8",
        "decode_data",
        "hostname",
        "ident",
        "tls_context",
        "require_starttls",
        "auth_require_tls",
        "timeout",
        "command_call_limit",
    }
)


@dataclass(frozen=True)
class Lookups:
    """What aiosmtpd's SMTP.__init__ finds by introspection, found once per handler.

    aiosmtpd looks up, for every connection, its AUTH mechanisms (`inspect.getmembers` of
    the session and of the handler), the handler's hooks (`dir`), the EHLO hook's form
    (`inspect.signature`) and its SMTP commands (`dir`): about 100 µs per connection. The
    names do not change from one session to the next, so they are found once, from the
    first session built by aiosmtpd itself (`of`); the others bind the same names.
    """

    handler: Any  # the one handler (its hooks are bound methods of it)
    auth: tuple[tuple[str, bool, str], ...]  # (mechanism, built in (on the session), attribute)
    auth_line: str  # aiosmtpd's log line naming them
    hooks: tuple[tuple[str, str], ...]  # (command, handler attribute)
    ehlo_hook_ver: str | None
    commands: tuple[tuple[str, str], ...]  # (command, session attribute)

    @classmethod
    def of(cls, session: SMTP, handler: Any) -> Lookups:
        """The names as aiosmtpd's __init__ found them for `session` (built by it)."""
        auth: dict[str, tuple[bool, str]] = {}
        for obj in (session, handler):  # as SMTP.__init__ does, keeping the names
            for name, member in inspect.getmembers(obj):
                if name.startswith("auth_"):
                    default = name.replace("auth_", "").replace("__", "-")
                    key = getattr(member, "__auth_mechanism_name__", default)
                    auth[key] = (obj is session, name)
        commands = tuple((m.replace("smtp_", ""), m) for m in dir(session) if m.startswith("smtp_"))
        return cls(
            handler=handler,
            auth=tuple((key, builtin, name) for key, (builtin, name) in auth.items()),
            auth_line="Available AUTH mechanisms: "
            + " ".join(m + "(builtin)" if b else m for m, (b, _) in sorted(auth.items())),
            hooks=tuple(
                (m.replace("handle_", ""), m) for m in dir(handler) if m.startswith("handle_")
            ),
            ehlo_hook_ver=session._ehlo_hook_ver,
            commands=commands,
        )


@dataclass
class Shared:
    """State all sessions share: limits, TLS rules, the stop flag, AUTH verification."""

    limiter: ConnectionLimiter
    plaintext: Networks
    data_size_limit: int
    tls_on: bool
    require_tls: bool
    verify: Verifier | None = None
    stopping: bool = False
    auth: AuthGuard = field(default_factory=lambda: AuthGuard(AuthLimits()))
    logs: LogLimiter = field(default_factory=lambda: LogLimiter(log))
    idle_command_limit: int = 100
    pipelining: bool = True  # PIPELINING offered after EHLO
    log_filter: logging.Filter | None = None  # on aiosmtpd's logger while listening
    metrics: Metrics = field(default_factory=Metrics.unregistered)
    lookups: Lookups | None = None  # aiosmtpd's introspection, done at the first session
    _replies: dict[tuple[str, str], Any] = field(default_factory=dict)  # label → child counter
    _guards: dict[str, Guard] = field(default_factory=dict)  # command → its guard
    _sessions: dict[str, Any] = field(default_factory=dict)  # result → child counter

    def guard(self, name: str, method: object) -> Guard:
        """The guard of command `name` (made once, with the HELP marks of `method`)."""
        found = self._guards.get(name)
        if found is None:
            found = self._guards[name] = _guard(name, _marks(name, method))
        return found

    def count_reply(self, status: str) -> None:
        """Count one reply by code class and reason (its enhanced code, else its code)."""
        code, enhanced = status[:3], status[4:].split(" ", 1)[0]
        reason = enhanced if _ENHANCED_CODE.fullmatch(enhanced) else code
        child = self._replies.get((code, reason))
        if child is None:  # the few distinct replies, looked up once each
            child = self.metrics.smtp_replies.labels(f"{code[:1]}xx", reason)
            self._replies[(code, reason)] = child
        child.inc()

    def count_session(self, result: str) -> None:
        """Count one connection: "open", or "refused" at connect."""
        child = self._sessions.get(result)
        if child is None:
            child = self._sessions[result] = self.metrics.smtp_sessions.labels(result)
        child.inc()

    def needs_tls(self, ip: str, is_tls: bool) -> bool:
        """Must this client STARTTLS before MAIL (the listener's own rule)?"""
        return self.tls_on and self.require_tls and not is_tls and ip not in self.plaintext


class DataInBlocks(SMTP):
    """aiosmtpd's SMTP with its DATA command reading the data in blocks of whole lines
    (`MailData`), the same result as aiosmtpd's line-by-line loop in less CPU, and its
    session timeout kept by one timer a session (`_reset_timeout`)."""

    _working = ""  # the command whose handler hook runs (the bridge's own work), else ""
    _deadline = 0.0  # the loop's time at which the session times out
    _timer_at: float | None = None  # when the session's timer fires, None: no timer set

    def _reset_timeout(self, duration: float | None = None) -> None:
        """The session times out `duration` (else `timeout`) seconds from now, as in
        aiosmtpd, which calls this at every command and line of data. aiosmtpd cancels its
        timer and sets a new one each time (four a mail, each kept in the event loop's heap
        until its time); here the deadline is noted, and a timer set only when none fires
        by then: the timer that fires before the deadline sets itself again for it
        (`_timer_fired`)."""
        self._deadline = deadline = self.loop.time() + (duration or self._timeout_duration)
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        self._timer_at = deadline
        self._timeout_handle = self.loop.call_at(deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer_at = None
        if self._deadline > self.loop.time():  # the session went on since it was set
            self._timer_at = self._deadline
            self._timeout_handle = self.loop.call_at(self._deadline, self._timer_fired)
            return
        self._timeout_cb()

    @aiosmtpd_smtp.syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        """aiosmtpd's DATA (release `AIOSMTPD_KNOWN`, the bytes kept undecoded, a handler
        with `handle_DATA`: the listener's settings), the data read by `_read_data`:
        every whole line that has arrived at once instead of one line per await."""
        if (
            aiosmtpd.__version__ != AIOSMTPD_KNOWN
            or self._decode_data
            or "DATA" not in self._handle_hooks
        ):
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await self._read_data()
        if not data.ended:  # the connection went before the data's end: nothing to answer
            return
        # as aiosmtpd: a refusal only after the whole data is read (RFC 5321 4.2.5)
        if data.state is DataState.TOO_LONG:
            status: Any = "500 Line too long (see RFC5321 4.5.3.1.6)"
        elif data.state is DataState.TOO_MUCH:
            status = "552 Error: Too much mail data"
        else:
            self.envelope.content = self.envelope.original_content = data.content()
            status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def _timeout_cb(self) -> None:
        """`timeout` seconds without a whole command, or a whole line of the data: say so
        with 421 (as Postfix's smtpd does), then close (aiosmtpd's own only closes).

        The timer also runs while the bridge works on an answer (aiosmtpd resets it when a
        command arrives): a session whose answer is still being worked on when it fires
        (`_working`: a database that does not answer, a bug) is told that the fault is on
        this side, not that nothing came."""
        if self.transport is not None and not self.transport.is_closing():
            seconds = f"{self._timeout_duration:g}"
            if self._working:
                peer = self.session.peer if self.session is not None else None
                log.warning(
                    "client %s: no answer to its %s within %s s (a fault of ours: see the "
                    "lines before); closing the session",
                    peer[0] if isinstance(peer, tuple) else peer,
                    self._working,
                    seconds,
                )
                line = reply("answer_timeout", command=self._working, seconds=seconds)
            else:
                line = reply("timeout", seconds=seconds)
            self._writer.write(f"{line}\r\n".encode("ascii"))  # as aiosmtpd's push writes
            aiosmtpd_smtp.log.info("%r connection timeout", self.session and self.session.peer)
            self._end()
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def _end(self) -> None:
        """Close the connection after the session's last reply (`BridgeSMTP` lingers)."""
        if self.transport is not None:
            self.transport.close()

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        """aiosmtpd's hook call, marked as the bridge's own work (`_working`)."""
        self._working = command
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            self._working = ""

    async def _read_data(self) -> MailData:
        data = MailData(self.line_length_limit, self.data_size_limit)
        try:
            await read_data(self._reader, data, self._reset_timeout)
        except asyncio.CancelledError:  # the connection went during the data
            aiosmtpd_smtp.log.info("Connection lost during DATA")
            self._writer.close()
            raise
        return data


class BridgeSMTP(DataInBlocks):
    def __init__(self, handler: Any, *, shared: Shared, **kwargs: Any) -> None:
        lookups = shared.lookups
        if lookups is not None and lookups.handler is handler and _KNOWN_OPTIONS.issuperset(kwargs):
            self._init_known(handler, lookups, **kwargs)
        else:
            super().__init__(handler, **kwargs)
            if (
                lookups is None
                and aiosmtpd.__version__ == AIOSMTPD_KNOWN
                and type(self) is BridgeSMTP
                and self._ehlo_hook_ver != "old"  # aiosmtpd warns about that one each time
            ):
                shared.lookups = Lookups.of(self, handler)
        self.shared = shared
        self._client_ip: str | None = None
        self._refused = False
        self._idle_commands = 0  # commands since the last accepted mail (or the start)
        self._close_after_reply = False
        self._continued: list[str] = []  # a multi-line reply's lines before its last
        self._answering = ""  # the command whose reply is being given
        self._held: list[str] = []  # replies of a pipelined group, sent with its last one
        self._half_closed = False  # the client ended its side; answer what it sent, then close
        self._lingering: asyncio.TimerHandle | None = None  # ended by us: closes by then
        self._probe = False  # a transaction of MAIL FROM:<>: RCPTs probed, DATA refused
        # aiosmtpd calls `_smtp_methods`: each command's guard, which then calls the command
        self._commands: dict[str, Callable[[str | None], Awaitable[None]]] = self._smtp_methods
        self._smtp_methods = {
            name: MethodType(shared.guard(name, method), self)
            for name, method in self._commands.items()
        }
        # What this session learned, read by the intake handler (it gets `server`):
        self.mail_dsn = MailDsn()  # RET/ENVID of the current MAIL
        self.rcpt_dsn = RcptDsn()  # NOTIFY/ORCPT of the current RCPT
        self.auth_customer_id: int | None = None  # the customer AUTH proved

    def _init_known(
        self,
        handler: Any,
        lookups: Lookups,
        *,
        data_size_limit: int | None = aiosmtpd_smtp.DATA_SIZE_DEFAULT,
        enable_SMTPUTF8: bool = False,
        decode_data: bool = False,
        hostname: str | None = None,
        ident: str | None = None,
        tls_context: Any = None,
        require_starttls: bool = False,
        auth_require_tls: bool = True,
        timeout: float = 300,
        command_call_limit: int | dict[str, int] | None = None,
    ) -> None:
        """aiosmtpd's SMTP.__init__ (release `AIOSMTPD_KNOWN`) for the options the listener
        gives, step by step, with the names it looks up by introspection taken from `lookups`."""
        self.__ident__ = ident or aiosmtpd_smtp.__ident__
        self.loop = aiosmtpd_smtp.make_loop()
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=self.loop,
        )
        self.event_handler = handler
        assert data_size_limit is None or isinstance(data_size_limit, int)
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        self.command_size_limits.clear()
        self.hostname = hostname if hostname else socket.getfqdn()
        self.tls_context = tls_context
        if tls_context:
            if tls_context.verify_mode not in {ssl.CERT_NONE, ssl.CERT_OPTIONAL}:
                aiosmtpd_smtp.log.warning(
                    "tls_context.verify_mode not in {CERT_NONE, "
                    "CERT_OPTIONAL}; this might cause client "
                    "connection problems"
                )
            elif tls_context.check_hostname:
                aiosmtpd_smtp.log.warning(
                    "tls_context.check_hostname == True; "
                    "this might cause client connection problems"
                )
        self.require_starttls = tls_context and require_starttls
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = auth_require_tls
        self._proxy_timeout = None
        self._auth_callback = aiosmtpd_smtp.login_always_fail
        self._authenticator = None
        self._auth_required = False
        self._auth_methods = {
            key: aiosmtpd_smtp._AuthMechAttr(getattr(self if builtin else handler, name), builtin)
            for key, builtin, name in lookups.auth
        }
        aiosmtpd_smtp.log.info(lookups.auth_line)
        self._handle_hooks = {command: getattr(handler, name) for command, name in lookups.hooks}
        self._ehlo_hook_ver = lookups.ehlo_hook_ver
        self._smtp_methods = {command: getattr(self, name) for command, name in lookups.commands}
        if command_call_limit is None:
            self._enforce_call_limit = False
        else:
            self._enforce_call_limit = True
            if isinstance(command_call_limit, int):
                self._call_limit_base = {}
                self._call_limit_default = command_call_limit
            elif isinstance(command_call_limit, dict):
                if not all(map(aiosmtpd_smtp.is_int, command_call_limit.values())):
                    raise TypeError("All command_call_limit values must be int")
                self._call_limit_base = command_call_limit
                self._call_limit_default = command_call_limit.get(
                    "*", aiosmtpd_smtp.CALL_LIMIT_DEFAULT
                )
            else:
                raise TypeError("command_call_limit must be int or Dict[str, int]")

    # -- connections -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and self.transport is None:
            # Every line of this session carries its id (the session's task inherits it).
            logcontext.set_fields(session=secrets.token_hex(4), mail_id=None, customer=None)
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
            refusal = "shutting_down" if self.shared.stopping else None
            detail = ""
            if refusal is None:
                why = self.shared.limiter.admit(ip)
                if why is not None:
                    refusal, detail = "too_many_connections", why.capitalize()
            if refusal is not None:
                log.warning("connection from %s refused: %s", ip, detail or refusal)
                self._refused = True
                self.shared.count_session("refused")
                refused = reply(refusal, detail=detail)
                self.shared.count_reply(refused)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(refused.encode() + b"\r\n")
                transport.close()
                return
            self._client_ip = ip
            self.shared.count_session("open")
        else:
            # STARTTLS done: forget what the plaintext session learned (RFC 3207, 4.2).
            self.auth_customer_id = None
            self.mail_dsn, self.rcpt_dsn = MailDsn(), RcptDsn()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._refused and self._lingering is None:  # lingering: read and dropped
            super().data_received(data)

    def eof_received(self) -> bool | None:
        """The client ended its sending side (a TCP half-close, FIN). aiosmtpd ends the
        session at once, cancelling the command it is answering: a mail whose data had
        arrived whole was queued (or half-way) but never answered, and the client sent it
        again. Exim does exactly that: the data's dot, QUIT behind it, then shutdown(SHUT_WR)
        while it waits for the replies. So the end goes to the reader as its end: every
        command that arrived whole is answered, on a side of the connection still open;
        data cut short is dropped unanswered, as before; the session then closes
        (`_client_gone`). Over TLS the connection cannot stay half-open: aiosmtpd's way."""
        if self._refused or self._lingering is not None:
            return None  # the transport closes: the client has read our end
        if self.session is None or self.session.ssl is not None or self.transport is None:
            result: bool | None = super().eof_received()
            return result
        self._half_closed = True
        self._reader.feed_eof()
        return True  # keep our side open for the replies

    def _client_gone(self) -> None:
        """The reader reached the client's end after its last whole command: close (the
        held replies written first), and end the session's task at its next await."""
        log.debug("client %s ended the connection", self.client_ip)
        self._close()
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._lingering is not None:
            self._lingering.cancel()
        if self._client_ip is not None:
            self.shared.limiter.release(self._client_ip)
            self._client_ip = None
        super().connection_lost(error)

    @property
    def client_ip(self) -> str:
        return self._client_ip or ""

    @property
    def is_tls(self) -> bool:
        return self._tls_protocol is not None

    # -- replies ---------------------------------------------------------------
    async def push(self, status: AnyStr) -> None:
        """One reply line; the lines of a multi-line reply (EHLO's) wait for its last one
        and go out with it in one write (one send, not one per line)."""
        if self._half_closed and (self.transport is None or self.transport.is_closing()):
            await asyncio.sleep(0)  # the session is over: its task ends here (cancelled)
            return
        if self._lingering is not None:
            await self._ended()
        if isinstance(status, str):
            status = _rewrite(status, self.shared.data_size_limit)
            if status.rpartition("\n")[2][3:4] == "-":  # its last line says more follow
                self._continued.append(status)
                return
            if not status.startswith("334"):  # one count per reply
                self.shared.count_reply(status)
            if self._continued:
                status = "\r\n".join((*self._continued, status))
                self._continued.clear()
            if self._may_hold(status):
                self._held.append(status)
                return
            if self._held:
                status = "\r\n".join((*self._held, status))
                self._held.clear()
            await super().push(status)
        else:
            if self._held:
                await super().push("\r\n".join(self._held))
                self._held.clear()
            await super().push(status)
        if self._close_after_reply:
            self._close()

    def pipelining(self) -> bool:
        """Did this session get PIPELINING offered (an EHLO, with `[smtp] pipelining`)?"""
        return self.shared.pipelining and self.session is not None and self.session.extended_smtp

    def _may_hold(self, status: str) -> bool:
        """Hold this reply back for the next one: it answers a command a pipelining client
        may send more behind, and the next command has arrived whole already (so its reply
        follows at once, and the client reads both from one segment)."""
        return (
            self._answering in _GROUPED
            and not self._close_after_reply
            and not status.startswith("421")
            and self.pipelining()
            and self._whole_line_waiting()
        )

    def _event(self, level: int, kind: str, msg: str, *args: object) -> None:
        """One log line about something this client did (rate-limited, no traceback)."""
        self.shared.logs.event(level, kind, self.client_ip, msg, *args)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, asyncio.IncompleteReadError) and self._half_closed:
            self._client_gone()  # not an error: `push` writes nothing more
            return ""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            self._event(
                logging.INFO,
                "tls-handshake",
                "TLS handshake with %s failed: %s",
                self.client_ip,
                f"{type(cause).__name__}: {cause}" if cause else "connection closed",
            )
            return reply("tls_handshake_failed")  # aiosmtpd closes without sending it
        self.shared.logs.event(
            logging.ERROR,
            "exception",
            "",
            "unexpected error in the SMTP session with %s",
            self.client_ip,
            exc_info=error,
        )
        return reply("internal_error")

    # -- the guard every command passes: see `_guard` --------------------------------
    def _pending_input(self) -> bytes:
        """What the client sent after the command being answered (before our reply)."""
        buffer = getattr(self._reader, "_buffer", b"")
        return bytes(buffer) if buffer else b""

    def _whole_line_waiting(self) -> bool:
        """Has the client's next command arrived whole (without copying the buffer)?"""
        return b"\n" in getattr(self._reader, "_buffer", b"")

    async def _out_of_sync(self, name: str) -> None:
        if self.pipelining():
            what = f"commands were sent before the reply to {name}, which ends a pipelined group"
            fix = f"wait for the reply to {name} before sending more (RFC 2920)"
        else:
            what = f"commands were sent before the reply to {name}"
            fix = "PIPELINING is not offered in this session: send one command at a time"
        self._event(
            logging.INFO,
            "out-of-sync",
            "client %s closed: sent input before the reply to %s (%s)",
            self.client_ip,
            name,
            "it ends a pipelined group" if self.pipelining() else "no PIPELINING",
        )
        self._close_after_reply = True
        await self.push(reply("out_of_sync", what=what, fix=fix))

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "DATA":
            pending = self._pending_input()
            if pending and not b"QUIT\r\n".startswith(pending.upper()):
                # A second transaction behind the data: refused with PIPELINING too, as
                # the shape SMTP smuggling takes (only QUIT may follow the dot at once).
                self._event(
                    logging.INFO,
                    "out-of-sync",
                    "client %s closed: sent input before the reply to the mail data",
                    self.client_ip,
                )
                self._close_after_reply = True
                return reply(
                    "out_of_sync",
                    what="a second transaction was sent behind the mail data",
                    fix="wait for the reply to the data's final dot before the next MAIL",
                )
        status = await super()._call_handler_hook(command, *args)
        if command == "DATA" and isinstance(status, str) and status.startswith("250"):
            self._idle_commands = 0
        return status

    def _close(self) -> None:
        if self.transport is not None:
            self._write_held()
            self._end()

    def _end(self) -> None:
        """End the connection after our last reply so that the client reads it: our side
        ends (FIN, after what is written), what the client still sends is read and
        dropped, and the connection closes when the client closes its side, or after
        `LINGER` seconds. Closed at once with input unread, the connection was reset
        (RST): the kernel drops what it has not sent yet, and a client's TCP may drop
        what it has not read (Windows does), so a client still sending (a trickle, a
        pipelined group, a mail's data) saw `connection reset` instead of the reply that
        said why (a 421, a 554). At once: over TLS, or when the client ended its side."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering is not None:
            return
        if (
            self._half_closed
            or self.is_tls
            or not isinstance(transport, asyncio.WriteTransport)
            or not transport.can_write_eof()
        ):
            transport.close()
            return
        transport.write_eof()
        if isinstance(transport, asyncio.ReadTransport):
            transport.resume_reading()  # paused by a full reader: read on, and drop
        self._lingering = self.loop.call_later(LINGER, transport.close)

    async def _ended(self) -> None:
        """The session has ended (lingering): its task waits here for the connection's
        close, which cancels it, and answers nothing more."""
        await self.loop.create_future()

    def _timeout_cb(self) -> None:
        if self._lingering is not None:
            return  # ended already
        if self.transport is not None and not self.transport.is_closing():
            self._write_held()  # a group's replies before the 421
        super()._timeout_cb()

    def _write_held(self) -> None:
        """The held replies of a pipelined group, written now (the session is ending)."""
        if self._held:
            held = "\r\n".join(self._held) + "\r\n"
            self._writer.write(held.encode("utf-8" if self.enable_SMTPUTF8 else "ascii"))
            self._held.clear()

    async def _refuse_if_stopping(self) -> bool:
        if not self.shared.stopping:
            return False
        await self.push(reply("shutting_down"))
        self._close()
        return True

    # -- commands --------------------------------------------------------------
    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self._refuse_if_stopping():
            return
        self.mail_dsn = MailDsn()
        if self.shared.needs_tls(self.client_ip, self.is_tls):  # HELO sessions as well
            await self.push(reply("tls_required"))
            return
        if arg is not None and self.session is not None and self.session.extended_smtp:
            arg, found = split_params(arg, _MAIL_DSN)
            try:
                dsn = parse_mail_dsn(found)
            except DsnParamError as exc:
                await self.push(reply("bad_dsn_param", detail=str(exc)))
                return
            size = _param(arg, "SIZE")
            if size is not None and size.isdigit() and int(size) > self.shared.data_size_limit:
                await self.push(reply("message_too_big", limit=self.shared.data_size_limit))
                return
            self.mail_dsn = dsn
        if arg is not None and arg.upper().replace(" ", "").startswith("FROM:<>"):
            await self._probe_MAIL()
            return
        await super().smtp_MAIL(arg)

    async def _probe_MAIL(self) -> None:
        """`MAIL FROM:<>`: a probe, as MTAs verify a recipient before they take a mail for
        it (Exim's callout, Postfix's address verification): accepted from a client that
        could send a mail (`probe_MAIL`), so that its RCPTs get the answer the recipient
        would get (`probe_RCPT`); its DATA is refused (`null_sender`: no mail without a
        sender becomes an SMS)."""
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        assert self.envelope is not None
        if self.envelope.mail_from or self._probe:
            await self.push("503 Error: nested MAIL command")
            return
        answer = await self.event_handler.probe_MAIL(
            self.client_ip, self.auth_customer_id is not None
        )
        self._probe = answer.startswith("250")
        await self.push(answer)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self._refuse_if_stopping():
            return
        self.rcpt_dsn = RcptDsn()
        if arg is not None and self.session is not None and self.session.extended_smtp:
            arg, found = split_params(arg, _RCPT_DSN)
            try:
                rcpt_dsn = parse_rcpt_dsn(found)
            except DsnParamError as exc:
                await self.push(reply("bad_dsn_param", detail=str(exc)))
                return
            self.rcpt_dsn = rcpt_dsn
        if self._probe:
            await self._probe_RCPT(arg)
            return
        await super().smtp_RCPT(arg)

    async def _probe_RCPT(self, arg: str | None) -> None:
        address = None
        if arg is not None:
            stripped = self._strip_command_keyword("TO:", arg)
            if stripped is not None:
                address, _ = self._getaddr(stripped)
        if not address:
            await self.push("501 Syntax: RCPT TO: <address>")
            return
        await self.push(self.event_handler.probe_RCPT(self.client_ip, address))

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self._refuse_if_stopping():
            return
        if self._probe:  # a null sender's mail: refused before its data
            await self.push(reply("null_sender"))
            return
        await super().smtp_DATA(arg)

    def _set_post_data_state(self) -> None:
        """A new envelope (after the data, RSET, HELO, EHLO): no probe either."""
        self._probe = False
        super()._set_post_data_state()  # type: ignore[no-untyped-call]

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if self.is_tls:  # a second TLS layer inside the first one
            await self.push(reply("already_tls"))
            return
        await super().smtp_STARTTLS(arg)

    # -- addresses: a fast path for the common `<local@domain>` form ------------
    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser, with the plain `<dot-atom@domain>` form done directly.

        aiosmtpd parses MAIL/RCPT arguments with the stdlib's RFC 5322 header parser, a
        third of its CPU per mail; plain addresses give the same result with one regex.
        Anything else (quoted local parts, source routes, comments) goes to aiosmtpd.
        """
        match = _PLAIN_ADDR.match(arg)
        if match is None or len(match.group(1).rpartition("@")[0]) > self.local_part_limit > 0:
            try:
                result: tuple[str | None, str | None] = super()._getaddr(arg)
            except Exception:  # the stdlib parser fails on some malformed input ("a@")
                return None, None  # aiosmtpd answers "malformed address"
            return result
        return match.group(1), arg[match.end(1) + 1 :].lstrip()

    # -- AUTH: verified in a thread, failures counted per client address ------
    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth(await super().auth_LOGIN(_, args))

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # aiosmtpd calls this synchronously; the real check happens in _finish_auth.
        return AuthResult(success=False, handled=False, auth_data=auth_data)

    async def _finish_auth(self, result: AuthResult) -> AuthResult:
        data = result.auth_data
        if result.success or not isinstance(data, LoginPassword) or self.shared.verify is None:
            return result
        ip = self.client_ip
        login = data.login.decode("utf-8", "replace")
        key = login[:256]
        guard = self.shared.auth
        lockout = guard.begin(ip, key, time.monotonic())
        if lockout is not None:
            return await self._locked_out(lockout)
        try:
            customer_id = None
            if _BAD_CHARS.search(login) is None and "\ufffd" not in login and len(login) <= 256:
                password = data.password.decode("utf-8", "replace")
                customer_id = await self.shared.verify(login, password)
        except StorageUnavailable as exc:
            guard.end(ip, key, time.monotonic(), ok=True)  # our fault: not counted
            log.error("AUTH from %s: storage unavailable: %s", ip, exc)
            return AuthResult(success=False, handled=False, message=reply("storage_failure"))
        except BaseException:
            guard.end(ip, key, time.monotonic(), ok=True)
            raise
        delay, started = guard.end(ip, key, time.monotonic(), ok=customer_id is not None)
        if customer_id is None:
            if started is not None:
                self.shared.logs.event(
                    logging.WARNING,
                    "auth-lockout",
                    ip,
                    "AUTH locked for %d s: the %s of client %s (login %r) had %d failed logins",
                    started.seconds,
                    started.subject,
                    ip,
                    login,
                    self._limit(started),
                )
            else:
                self._event(logging.WARNING, "auth-failed", "AUTH as %r from %s failed", login, ip)
            await asyncio.sleep(delay)
            return AuthResult(success=False, handled=False, message=reply("auth_failed"))
        self.auth_customer_id = customer_id
        log.info("AUTH as %r from %s succeeded", login, ip)
        return AuthResult(success=True, auth_data=data)

    def _limit(self, lockout: Lockout) -> int:
        limits = self.shared.auth.limits
        return (
            limits.max_failures if lockout.subject == "address" else limits.max_failures_per_login
        )

    async def _locked_out(self, lockout: Lockout) -> AuthResult:
        if lockout.subject == "busy":  # not counted: refused for now, the session goes on
            self._event(
                logging.WARNING,
                "auth-busy",
                "AUTH from %s refused for now: the counts of failed logins could not be had "
                "(every place of the client's bucket held, or their lock busy)",
                self.client_ip,
            )
            await self.push(reply("auth_busy"))
            return AuthResult(success=False, handled=True)
        self._event(
            logging.INFO,
            "auth-locked",
            "AUTH from %s refused: its %s is locked for %d more seconds",
            self.client_ip,
            lockout.subject,
            lockout.seconds,
        )
        detail = "from this address" if lockout.subject == "address" else "for this login"
        self._close_after_reply = True
        await self.push(
            reply("auth_locked", detail=detail, wait=_minutes(math.ceil(lockout.seconds / 60)))
        )
        return AuthResult(success=False, handled=True)


def _minutes(count: int) -> str:
    """`count` minutes, at least one, in words: "1 minute", "15 minutes"."""
    return "1 minute" if count <= 1 else f"{count} minutes"


Guard = Callable[[BridgeSMTP, str | None], Awaitable[None]]


def _guard(name: str, marks: tuple[tuple[str, Any], ...]) -> Guard:
    """The guard of command `name`, which every session binds (`Shared.guard`)."""

    async def run(self: BridgeSMTP, arg: str | None) -> None:
        if self._lingering is not None:  # a command read before the session ended
            await self._ended()
        self._answering = name
        if (
            name != "QUIT"
            and self._pending_input()
            and not (self.pipelining() and _continues_group(name, arg))
        ):
            await self._out_of_sync(name)
            return
        if name not in _PROGRESS or (self._probe and name == "RCPT"):  # a probe: no mail
            self._idle_commands += 1
            if self._idle_commands > self.shared.idle_command_limit:
                self._event(
                    logging.INFO,
                    "idle-commands",
                    "client %s closed: %d commands without a mail",
                    self.client_ip,
                    self._idle_commands - 1,
                )
                self._close_after_reply = True
                await self.push(reply("too_many_commands", limit=self.shared.idle_command_limit))
                return
        bad = _bad_bytes(arg)
        if bad is not None:
            self._event(
                logging.INFO,
                "bad-bytes",
                "client %s: %s refused, it contains %s",
                self.client_ip,
                name,
                bad,
            )
            await self.push(reply("bad_command_bytes", detail=bad))
            return
        await self._commands[name](arg)

    # HELP reads aiosmtpd's syntax marks from the method (our overrides have none).
    for mark, value in marks:
        setattr(run, mark, value)
    return run


def _continues_group(name: str, arg: str | None) -> bool:
    """May a pipelining client send more commands behind this one? MAIL, RCPT and RSET
    (RFC 2920 3.1), and AUTH PLAIN with its initial response: RFC 4954 4 lets a client
    pipeline behind AUTH when the mechanism completes in one round trip."""
    if name in _GROUPED:
        return True
    if name != "AUTH" or not arg:
        return False
    mechanism, _, initial = arg.strip().partition(" ")
    return mechanism.upper() == "PLAIN" and initial.strip() not in ("", "=")


def _marks(name: str, method: object = None) -> tuple[tuple[str, Any], ...]:
    """aiosmtpd's HELP marks of its command `name` (of `method` where aiosmtpd has none)."""
    original = getattr(SMTP, f"smtp_{name}", method)
    return tuple((m, getattr(original, m)) for m in _SYNTAX_MARKS if hasattr(original, m))


def _bad_bytes(arg: str | None) -> str | None:
    """What makes a command argument unacceptable (not UTF-8, control characters), or None."""
    if not arg or (arg.isascii() and arg.isprintable()):
        return None
    match = _BAD_CHARS.search(arg)
    if match is None:
        return None
    if "\udc80" <= match.group() <= "\udcff":
        return "bytes that are not UTF-8"
    return f"the control character {match.group()!r}"


def _param(arg: str, name: str) -> str | None:
    for token in arg.partition(">")[2].split():
        key, _, value = token.partition("=")
        if key.upper() == name:
            return value
    return None


def _rewrite(status: str, limit: int) -> str:
    kind = _REWRITE.get(status)
    if kind is not None:
        return reply(kind, limit=limit)
    code, _, text = status.partition(" ")
    if code in _ENHANCED and text and not text[:1].isdigit() and status[3:4] == " ":
        if code == "250" and not text.upper().startswith("OK"):
            return status  # EHLO/HELO greeting lines keep their form
        return f"{code} {_ENHANCED[code]} {text}"
    return status
