"""Typed settings: read once from TOML (and a few environment variables), validated, frozen.

`load_settings(path)` is the only place that reads the configuration; `app.py` hands
each component its slice. With no file the embedded default applies: SQLite in
`var/`, the sandbox SMSC, notices to `var/maildir/`, and a demo user. An invalid key
or value raises `ConfigError` with one line naming the key and what is expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bridge.errors import ConfigError
from bridge.inbound.keywords import DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS
from bridge.policy import CLEANING_RULES, PolicyError, check_setting

Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
            section["password"] = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}.password_file: cannot read {file}: {exc.strerror}") from exc


class SmtpSettings(_Section):
    """The SMTP listener (intake)."""

    host: str = "127.0.0.1"
    port: Port = 2525
    hostname: str = "mailsms.localdomain"
    domains: tuple[str, ...] = ("eu.rsms.net",)
    data_size_limit: Annotated[int, Field(ge=1024)] = 1_048_576
    max_recipients: Annotated[int, Field(ge=1, le=10_000)] = 100
    parse_in_thread_above: Annotated[int, Field(ge=0)] = 65_536

    @model_validator(mode="after")
    def _domains_lower(self) -> SmtpSettings:
        if not self.domains:
            raise ValueError("domains: expected at least one domain, e.g. ['eu.rsms.net']")
        object.__setattr__(self, "domains", tuple(d.lower().strip() for d in self.domains))
        return self


class SandboxSettings(_Section):
    """The built-in sandbox SMSC (a phone simulator for `make run` and demos)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 2775
    system_id: str = "bridge"
    password: str = "sandbox"
    receipt: Literal["delivered", "failed", "none"] = "delivered"
    receipt_delay: Annotated[float, Field(ge=0)] = 0.2
    inbox: Path = Path("var/sandbox/inbox.jsonl")


class SmscSettings(_Section):
    """One SMPP connection to an SMSC (a transport)."""

    name: str
    host: str = "127.0.0.1"
    port: Port = 2775
    system_id: str
    password: str = ""
    system_type: str = ""
    window: Annotated[int, Field(ge=1, le=1000)] = 10
    enquire_link_interval: Seconds = 30.0
    response_timeout: Seconds = 30.0
    reconnect_max: Seconds = 60.0


class RouteSettings(_Section):
    """Destination prefix → transports in failover order; the last route has prefix ''."""

    prefix: str
    transports: tuple[str, ...]


class DispatchSettings(_Section):
    """The MT worker: concurrency, polling, retry and lifetime."""

    concurrency: Annotated[int, Field(ge=1, le=500)] = 20
    poll_interval: Seconds = 1.0
    lease: Seconds = 120.0
    retry_min: Seconds = 30.0
    retry_max: Seconds = 900.0
    lifetime: Seconds = 172_800.0


class MailerSettings(_Section):
    """Where notices go: a local Maildir (embedded default) or an SMTP relay."""

    mode: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("var/maildir")
    relay_host: str = "127.0.0.1"
    relay_port: Port = 25
    starttls: Literal["off", "opportunistic", "required"] = "opportunistic"
    username: str = ""
    password: str = ""
    from_address: str = "mailsms@localhost"
    from_name: str = "SMS Bridge"
    timeout: Seconds = 30.0
    concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    poll_interval: Seconds = 1.0
    retry_min: Seconds = 60.0
    retry_max: Seconds = 3600.0
    lifetime: Seconds = 432_000.0


class DefaultsSettings(_Section):
    """Values at the bottom of the settings cascade (below customer, profile and user)."""

    sender_id: str = "MailSMS"
    notify: Literal["none", "failures", "all"] = "failures"
    default_country: Annotated[str, Field(min_length=2, max_length=2)] = "DE"
    encoding: Literal["auto", "gsm7", "ucs2"] = "auto"
    replacement: Literal["ucs2", "smart", "simple", "reject"] = "ucs2"
    max_parts: Annotated[int, Field(ge=1, le=255)] = 10
    overflow: Literal["truncate", "reject"] = "reject"
    subject_policy: Literal["body", "subject", "subject_body"] = "body"
    validity: Annotated[float, Field(gt=0)] = 172_800.0
    subject_separator: str = "\n"
    cleaning: tuple[str, ...] = CLEANING_RULES
    end_markers: tuple[str, ...] = ()
    strip_strings: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _valid_policy_values(self) -> DefaultsSettings:
        for name, value in self.model_dump().items():
            try:
                check_setting(name, value)
            except PolicyError as exc:
                raise ValueError(str(exc)) from None
        return self


class InboundSettings(_Section):
    """Inbound services: SMS2Mail reply window, STOP keywords, auto-reply limit, templates."""

    reply_window: Seconds = 604_800.0
    poll_interval: Seconds = 1.0
    postmaster: str = ""
    stop_keywords: tuple[str, ...] = DEFAULT_STOP_KEYWORDS
    start_keywords: tuple[str, ...] = DEFAULT_START_KEYWORDS
    stop_confirmation: str = (
        "You have opted out and will get no more SMS from this service. Reply START to opt in."
    )
    start_confirmation: str = "You have opted in again. Reply STOP to opt out."
    autoreply_interval: Seconds = 600.0
    customer_templates: Path | None = None
    list_check_interval: Seconds = 60.0


class PushSettings(_Section):
    """HTTP push of inbound SMS to customer URLs: timeouts, retries, the SSRF allow-list."""

    timeout: Seconds = 10.0
    concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    poll_interval: Seconds = 1.0
    retry_min: Seconds = 30.0
    retry_max: Seconds = 900.0
    give_up_after: Seconds = 86_400.0
    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    max_response_bytes: Annotated[int, Field(ge=0)] = 65_536


class Settings(_Section):
    """The whole configuration."""

    database_url: str = "sqlite:///var/bridge.db"
    demo: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    smtp: SmtpSettings = SmtpSettings()
    sandbox: SandboxSettings = SandboxSettings()
    smsc: tuple[SmscSettings, ...] = ()
    routes: tuple[RouteSettings, ...] = ()
    dispatch: DispatchSettings = DispatchSettings()
    mailer: MailerSettings = MailerSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    inbound: InboundSettings = InboundSettings()
    push: PushSettings = PushSettings()

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


EMBEDDED_DEFAULT: dict[str, Any] = {"demo": True, "sandbox": {"enabled": True}}


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
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    for i, smsc in enumerate(data.get("smsc", [])):
        if isinstance(smsc, dict):
            _resolve_secret(smsc, f"smsc.{i}", environ)
    if isinstance(data.get("mailer"), dict):
        data["mailer"] = dict(data["mailer"])
        _resolve_secret(data["mailer"], "mailer", environ)
    if "MAILSMS_DATABASE_URL" in environ:
        data["database_url"] = environ["MAILSMS_DATABASE_URL"]
    try:
        return Settings.model_validate(_with_sandbox(data))
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown setting (see `mailsms config example` for the valid keys)"
    got = err.get("input")
    if isinstance(got, dict | list):
        return f"{key}: {msg}"
    return f"{key}: {msg} (got {got!r})"
