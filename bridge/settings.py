"""Typed settings: read once from TOML (and a few environment variables), validated, frozen.

`load_settings(path)` is the only place that reads the configuration; `app.py` hands
each component its slice. Each domain declares its own table (`bridge/<domain>/settings.py`
on `bridge.sections.Section`); this module composes them into `Settings`, checks what
spans tables (routes name known transports), adds the sandbox as a transport, and
resolves secrets. With no file the embedded default applies: SQLite in `var/`, the
sandbox SMSC, notices to `var/maildir/`, a demo user, and the SMPP server on
127.0.0.1:2776 with the demo account. An invalid key or value raises
`ConfigError` with one line naming the key and what is expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from bridge.errors import ConfigError
from bridge.files import UnreadableFile, read_text, read_toml
from bridge.http.settings import HttpSettings
from bridge.inbound.settings import InboundSettings
from bridge.intake.settings import SmtpSettings
from bridge.mt.settings import DispatchSettings, RouteSettings, lease_problem
from bridge.notices.settings import MailerSettings
from bridge.portal.settings import PortalSettings
from bridge.push.settings import PushSettings
from bridge.reports.settings import ReportSettings
from bridge.sandbox.settings import SandboxSettings
from bridge.sections import Section
from bridge.smpp_server.settings import SmppServerSettings
from bridge.tenants.settings import DefaultsSettings
from bridge.transports.settings import SmscSettings


def _resolve_secret(section: dict[str, Any], where: str, environ: Mapping[str, str]) -> None:
    """Replace `password_env` / `password_file` by the `password` they name (in place)."""
    env = section.pop("password_env", None)
    file = section.pop("password_file", None)
    if env is not None:
        if env not in environ:
            raise ConfigError(f"{where}.password_env: environment variable {env} is not set")
        section["password"] = environ[env]
    elif file is not None:
        try:
            section["password"] = read_text(Path(file)).strip()
        except UnreadableFile as exc:
            raise ConfigError(f"{where}.password_file: {exc}") from None


class ServerSettings(Section):
    """[server]: how many processes serve, and on which event loop (docs/operations.md)."""

    # Processes on one SMTP port (SO_REUSEPORT), all working the notice, push and inbound
    # queues; the first also owns the SMPP binds, the sandbox, the SMPP server, the HTTP
    # listener, dispatch and receipts.
    processes: Annotated[int, Field(ge=1, le=64)] = 1
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Whether the first process accepts SMTP too: "auto" (only when it is the only one).
    first_process_smtp: Literal["auto", "yes", "no"] = "auto"
    # Seconds between checks of the TLS certificate and key files ([smtp], [http],
    # [smpp_server] tls_cert/tls_key): changed files are taken without a restart
    # (bridge/intake/tls.py, CertWatcher). 0: never (a renewal needs SIGHUP or a restart).
    tls_check_interval: Annotated[float, Field(ge=0, le=86400)] = 60.0
    # Flow control at every door (bridge/intake/pacing.py): while a process is busier
    # than in_flow_busy (its share of the CPUs it may use, or its event loop's share of
    # one CPU, smoothed over ~1 s), new work waits before it is taken: a mail before MAIL
    # is answered, an SMPP submit_sm (in the client's window), a REST API send. The wait
    # grows while the load stays above the mark and shrinks below it, never past
    # in_flow_delay seconds. The work already accepted (submits, receipts, status mails)
    # keeps its share; the excess waits at the client. 0 turns it off.
    in_flow_delay: Annotated[float, Field(ge=0, le=60)] = 1.0
    in_flow_busy: Annotated[float, Field(gt=0, lt=1)] = 0.9
    # ... and while its group commits wait (queued to committed) longer than
    # in_flow_busy times this on average: a database that falls behind though the CPU has
    # room (several processes on one SQLite file share its one write lock and disk).
    # Unset: 0.025 s with SQLite; with PostgreSQL, whose commit time depends on the
    # network and on synchronous replicas, 8 times the usual wait this process has seen
    # (its lowest, at least 0.025 s). 0 turns this part off.
    in_flow_commit_wait: float | None = Field(default=None, ge=0, le=60)

    @model_validator(mode="after")
    def _someone_accepts_smtp(self) -> ServerSettings:
        if self.processes == 1 and self.first_process_smtp == "no":
            raise ValueError(
                'first_process_smtp = "no" needs processes >= 2 (else no process accepts '
                'SMTP); set "auto"'
            )
        return self


class Settings(Section):
    """The whole configuration."""

    database_url: str = "sqlite:///var/bridge.db"
    # PostgreSQL: seconds a database call may go without an answer before its connection
    # is cut and the call fails as a lost connection does (bridge/db/deadline.py); the
    # daily purge and the monthly reports get an hour.
    database_timeout: Annotated[float, Field(ge=1, le=3600)] = 60.0
    demo: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    smtp: SmtpSettings = SmtpSettings()
    smpp_server: SmppServerSettings = SmppServerSettings()
    sandbox: SandboxSettings = SandboxSettings()
    smsc: tuple[SmscSettings, ...] = ()
    routes: tuple[RouteSettings, ...] = ()
    dispatch: DispatchSettings = DispatchSettings()
    mailer: MailerSettings = MailerSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    inbound: InboundSettings = InboundSettings()
    push: PushSettings = PushSettings()
    reports: ReportSettings = ReportSettings()
    http: HttpSettings = HttpSettings()
    portal: PortalSettings = PortalSettings()
    server: ServerSettings = ServerSettings()
    # `mailsms dirsync`'s settings, validated by dirsync (dirsync/config.py) when it runs
    # and by `mailsms config check`; the bridge itself does not read them.
    dirsync: dict[str, Any] | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("sqlite", "postgresql"):
            raise ValueError("expected sqlite:///path/bridge.db or postgresql://user@host/db")
        return value

    @model_validator(mode="after")
    def _ehlo_name(self) -> Settings:
        """The mailer greets relays with [smtp] hostname unless it has its own ehlo_name."""
        if not self.mailer.ehlo_name:
            mailer = self.mailer.model_copy(update={"ehlo_name": self.smtp.hostname})
            object.__setattr__(self, "mailer", mailer)
        return self

    @model_validator(mode="after")
    def _check_routes(self) -> Settings:
        names = [s.name for s in self.smsc]
        if len(set(names)) != len(names):
            raise ValueError("smsc: every [[smsc]] needs a unique name")
        if not self.smsc:
            raise ValueError("smsc: expected at least one [[smsc]] (or [sandbox] enabled = true)")
        if not self.routes or self.routes[-1].prefix != "":
            raise ValueError(
                'routes: the last [[routes]] must have prefix = "" (the default route)'
            )
        for route in self.routes:
            unknown = [t for t in route.transports if t not in names]
            if unknown or not route.transports:
                raise ValueError(
                    f"routes: route {route.prefix!r} names unknown transports {unknown}; "
                    f"known: {names}"
                )
        return self

    @model_validator(mode="after")
    def _check_lease(self) -> Settings:
        """An order's claim holds the whole submit (`bridge.mt.settings.shortest_lease`)."""
        timeouts = {s.name: s.response_timeout for s in self.smsc}
        problem = lease_problem(self.dispatch.lease, timeouts)
        if problem is not None:
            raise ValueError(problem)
        return self


EMBEDDED_DEFAULT: dict[str, Any] = {
    "demo": True,
    "sandbox": {"enabled": True},
    "smpp_server": {"enabled": True},
    "http": {"enabled": True},  # health, readiness and metrics on 127.0.0.1:8025
}


def _with_sandbox(data: dict[str, Any]) -> dict[str, Any]:
    """Add the sandbox as transport "sandbox" (and the default route) when enabled."""
    sandbox = SandboxSettings.model_validate(data.get("sandbox", {}))
    if not sandbox.enabled:
        return data
    data = dict(data)
    smsc = list(data.get("smsc", []))
    if not any(s.get("name") == "sandbox" for s in smsc):
        smsc.append(
            {
                "name": "sandbox",
                "host": sandbox.host,
                "port": sandbox.port,
                "system_id": sandbox.system_id,
                "password": sandbox.password,
                "long_code_rate": 0.0,  # a simulator: no carrier limits a sender's rate
                # it answers at once (in this process): a short lease suits it too
                "response_timeout": 5.0,
                "gsm7_packed": sandbox.gsm7_packed,
            }
        )
    data["smsc"] = smsc
    data.setdefault("routes", [{"prefix": "", "transports": ["sandbox"]}])
    return data


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, complete and validate the settings; `path=None` means the embedded default."""
    environ = os.environ if environ is None else environ
    if path is None:
        data: dict[str, Any] = dict(EMBEDDED_DEFAULT)
        where = "embedded default"
    else:
        where = str(path)
        try:
            data = read_toml(path)
        except UnreadableFile as exc:
            raise ConfigError(str(exc)) from None
    for i, smsc in enumerate(data.get("smsc", [])):
        if isinstance(smsc, dict):
            _resolve_secret(smsc, f"smsc.{i}", environ)
    if isinstance(data.get("mailer"), dict):
        data["mailer"] = dict(data["mailer"])
        _resolve_secret(data["mailer"], "mailer", environ)
    if "MAILSMS_DATABASE_URL" in environ:
        data["database_url"] = environ["MAILSMS_DATABASE_URL"]
    try:
        data = _with_sandbox(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_error(exc, ('sandbox',))}") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError, within: tuple[str, ...] = ()) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in (*within, *err["loc"])) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown setting (see `mailsms config example` for the valid keys)"
    got = err.get("input")
    if isinstance(got, dict | list):
        return f"{key}: {msg}"
    return f"{key}: {msg} (got {got!r})"
