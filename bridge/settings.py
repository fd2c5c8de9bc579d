"""Typed settings: read once from TOML (and a few environment variables), validated, frozen.

`load_settings(path)` is the only place that reads the configuration; `app.py` hands
each component its slice. With no file the embedded default applies: SQLite in
`var/`, the sandbox SMSC, notices to `var/maildir/`, and a demo user. An invalid key
or value raises `ConfigError` with one line naming the key and what is expected.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.errors import ConfigError
from bridge.inbound.keywords import DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS
from bridge.intake.access import check_cidrs
from bridge.notices.transport_table import (
    MX,
    Entry,
    Hop,
    TlsLevel,
    TransportTable,
    check_domain_pattern,
    parse_next_hop,
)
from bridge.sandbox.rules import check_number
from bridge.tenants.policy import Policy, PolicyError, check_setting

_POLICY = Policy()
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
    domain_customers: dict[str, str] = {}
    # TLS (STARTTLS): a certificate chain and key turn it on.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = True
    plaintext_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Sessions and connections.
    timeout: Seconds = 120.0
    # Junk commands are limited (NOOP keep-alive, probing); an MTA may send many mails
    # over one connection, so MAIL/RCPT/DATA (under "*") have a high limit.
    command_call_limit: dict[str, int] = {
        "NOOP": 20,
        "RSET": 1000,
        "VRFY": 10,
        "EXPN": 10,
        "HELP": 10,
        "*": 100_000,
    }
    # A session that sends this many commands (other than RCPT and DATA) without a mail
    # being accepted is closed with 421 (RSET/NOOP keep-alive, probing).
    idle_command_limit: Annotated[int, Field(ge=1)] = 100
    # AUTH failures, counted per client address and per login across sessions (in this
    # process): the n-th failure within the window is answered after a delay that
    # doubles from auth_failure_delay up to auth_failure_delay_max; at the limit the
    # address or login is locked for auth_lockout seconds (421 4.7.0, logged).
    auth_max_failures: Annotated[int, Field(ge=1)] = 10
    auth_max_failures_per_login: Annotated[int, Field(ge=1)] = 20
    auth_failure_window: Seconds = 600.0
    auth_lockout: Seconds = 900.0
    auth_failure_delay: Annotated[float, Field(ge=0)] = 0.5
    auth_failure_delay_max: Annotated[float, Field(ge=0)] = 8.0
    max_connections: Annotated[int, Field(ge=1)] = 1000
    max_connections_per_ip: Annotated[int, Field(ge=1)] = 50
    max_connections_per_ip_per_minute: Annotated[int, Field(ge=1)] = 600
    # Content hygiene.
    bare_line_endings: Literal["reject", "normalize"] = "reject"
    normalize_networks: tuple[str, ...] = ()
    max_received: Annotated[int, Field(ge=2)] = 30
    dedupe_window: Annotated[float, Field(ge=0)] = 86_400.0
    # Backpressure: 452 4.3.1 at MAIL above these marks.
    queue_high_water: Annotated[int, Field(ge=1)] = 200_000
    min_free_disk_mb: Annotated[int, Field(ge=0)] = 200
    # DSN (RFC 3461/3464).
    dsn_delay_after: Seconds = 14_400.0

    @model_validator(mode="after")
    def _domains_lower(self) -> SmtpSettings:
        if not self.domains:
            raise ValueError("domains: expected at least one domain, e.g. ['eu.rsms.net']")
        object.__setattr__(self, "domains", tuple(d.lower().strip() for d in self.domains))
        object.__setattr__(
            self, "domain_customers", {d.lower(): c for d, c in self.domain_customers.items()}
        )
        unknown = [d for d in self.domain_customers if d not in self.domains]
        if unknown:
            raise ValueError(f"domain_customers: {unknown} are not in domains {list(self.domains)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both (the certificate chain and its key)")
        check_cidrs(self.plaintext_networks)
        check_cidrs(self.normalize_networks)
        return self


class SandboxRuleSettings(_Section):
    """One sandbox rule: fail and/or delay the SMS to a number or prefix (`sandbox_rules`)."""

    number: str
    fail: Literal["undeliverable", "expired", "rejected", "busy", "silent"] | None = None
    delay: Annotated[float, Field(ge=0, le=604_800)] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return check_number(value)


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
    rules: tuple[SandboxRuleSettings, ...] = ()
    rules_file: Path = Path("var/sandbox/rules.json")


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
    # binds and flow control (docs/smpp.md)
    bind_type: Literal["transceiver", "transmitter", "receiver", "pair"] = "transceiver"
    binds: Annotated[int, Field(ge=1, le=32)] = 1
    rate: Annotated[float, Field(ge=0)] = 0.0  # submit_sm/s per bind, 0 = unlimited
    smsc_rate: Annotated[float, Field(ge=0)] = 0.0  # over all binds, 0 = unlimited
    burst: Annotated[float, Field(ge=1)] = 1.0
    throttle_pause_min: Seconds = 1.0
    throttle_pause_max: Seconds = 60.0
    throttle_retries: Annotated[int, Field(ge=0, le=10)] = 2
    bind_failure_min: Seconds = 10.0
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    # encoding and receipts
    service_type: str = ""
    default_alphabet: Literal["gsm7", "latin1", "ascii"] = "gsm7"
    gsm7_packed: bool = False
    concat: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    max_short_message: Annotated[int, Field(ge=20, le=254)] = 254
    submit_id_base: Literal["text", "dec", "hex"] = "text"
    receipt_id_base: Literal["text", "dec", "hex"] = "text"
    text_receipts: bool = False  # plain `id:… stat:…` text (no esm_class 0x04) is a receipt
    validity_format: Literal["relative", "absolute", "none"] = "relative"
    resubmit_marker: Literal["none", "replace_if_present"] = "none"
    source_ton: Annotated[int, Field(ge=0, le=6)] | None = None
    source_npi: Annotated[int, Field(ge=0, le=18)] | None = None
    mo_reassembly_timeout: Seconds = 1800.0
    stats_interval: Annotated[float, Field(ge=0)] = 60.0
    # how incoming numbers are written (docs/smpp.md "Numbers from the SMSC")
    ton0: Literal["auto", "international", "national"] = "auto"
    country: str = ""  # the SMSC's country for national numbers; "" = [defaults] default_country

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        value = value.strip().upper()
        if value and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("expected an ISO 3166 country code such as DE, FR or GB")
        return value

    # receipts: no final report this long after submission ends the order "unconfirmed"
    # (unset: the end of the order's validity plus receipt_grace)
    receipt_timeout: Seconds | None = None
    receipt_grace: Annotated[float, Field(ge=0)] = 3600.0
    # sending rate of each sender id on this SMSC, SMS/s (0 = no limit of its own)
    long_code_rate: Annotated[float, Field(ge=0)] = 1.0
    short_code_rate: Annotated[float, Field(ge=0)] = 0.0
    alphanumeric_rate: Annotated[float, Field(ge=0)] = 0.0
    sender_rates: dict[str, Annotated[float, Field(ge=0)]] = {}


class RouteSettings(_Section):
    """Destination prefix → transports in failover order; the last route has prefix ''."""

    prefix: str
    transports: tuple[str, ...]

    @model_validator(mode="after")
    def _digits(self) -> RouteSettings:
        digits = self.prefix.removeprefix("+")
        if digits and not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"routes: prefix {self.prefix!r} must be digits (a leading + is ok)")
        return self


class DispatchSettings(_Section):
    """The MT worker: concurrency, polling, retry and lifetime."""

    concurrency: Annotated[int, Field(ge=1, le=500)] = 20
    poll_interval: Seconds = 1.0
    lease: Seconds = 120.0
    retry_min: Seconds = 30.0
    retry_max: Seconds = 900.0
    lifetime: Seconds = 172_800.0
    # after a response timeout / lost connection: send again (SMSC duplicate marker where
    # configured) or hold the order for an operator
    on_unknown_outcome: Literal["resubmit", "hold"] = "resubmit"
    # receipts match parts submitted at most this long before them; unmatched receipts
    # are kept as orphans after it (keep it above the longest validity + receipt grace)
    receipt_window: Seconds = 259_200.0


class MailDeliverySettings(_Section):
    """One row of the mailer's transport table: domains → next hop and TLS level."""

    domains: tuple[str, ...]
    next_hop: str = ""  # "": the [mailer] relay; "mx": the domain's MX; "host:port": a relay
    tls: TlsLevel | None = None  # None: the [mailer] tls level
    tls_match: tuple[str, ...] = ()
    tls_ca_file: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> MailDeliverySettings:
        if not self.domains:
            raise ValueError("domains: expected at least one domain, .domain or *")
        for pattern in self.domains:
            check_domain_pattern(pattern)
        if self.next_hop.strip() and self.next_hop.strip().lower() != MX:
            parse_next_hop(self.next_hop)
        return self

    def entry(self) -> Entry:
        return Entry(self.domains, self.next_hop, self.tls, self.tls_match, self.tls_ca_file)


_LEGACY_STARTTLS = {"off": "none", "opportunistic": "may", "required": "verify"}


class MailerSettings(_Section):
    """Where notices go: a local Maildir (embedded default) or over SMTP (relay or MX)."""

    mode: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("var/maildir")
    relay_host: str = "127.0.0.1"
    relay_port: Port = 25
    tls: TlsLevel = TlsLevel.MAY
    tls_match: tuple[str, ...] = ()
    tls_ca_file: Path | None = None
    ehlo_name: str = ""  # "": [smtp] hostname
    mx_port: Port = 25
    dns_servers: tuple[str, ...] = ()  # (): the system's resolver
    delivery: tuple[MailDeliverySettings, ...] = ()
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

    @model_validator(mode="before")
    @classmethod
    def _legacy_starttls(cls, data: Any) -> Any:
        """The older spelling `starttls = off|opportunistic|required` → `tls`."""
        if isinstance(data, dict) and "starttls" in data:
            data = dict(data)
            value = data.pop("starttls")
            if value not in _LEGACY_STARTTLS:
                raise ValueError(
                    f"starttls: expected off, opportunistic or required, got {value!r} "
                    "(or use tls = none, may, encrypt, verify or secure)"
                )
            data.setdefault("tls", _LEGACY_STARTTLS[value])
        return data

    @model_validator(mode="after")
    def _check(self) -> MailerSettings:
        parse_next_hop(f"[{self.relay_host}]" if ":" in self.relay_host else self.relay_host)
        if self.ehlo_name and not _EHLO_NAME.fullmatch(self.ehlo_name):
            raise ValueError(
                f"ehlo_name: expected a fully qualified host name (mail.example.com) or an "
                f"address literal ([192.0.2.1]), got {self.ehlo_name!r}"
            )
        for server in self.dns_servers:
            try:
                ipaddress.ip_address(server.rpartition(":")[0].strip("[]") or server)
            except ValueError:
                raise ValueError(
                    f"dns_servers: expected an IP address with an optional :port, got {server!r}"
                ) from None
        return self

    def transport_table(self) -> TransportTable:
        return TransportTable(
            [d.entry() for d in self.delivery],
            relay=Hop(self.relay_host.lower(), self.relay_port),
            tls=self.tls,
            tls_match=self.tls_match,
            ca_file=self.tls_ca_file,
            mx_port=self.mx_port,
        )


# A host name with at least one dot, or an address literal ([192.0.2.1], [IPv6:…]).
_EHLO_NAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.?|\[[0-9.]+\]|\[IPv6:[0-9A-Fa-f:.]+\]"
)


class DefaultsSettings(_Section):
    """Values at the bottom of the settings cascade (below customer, profile and user).

    The defaults are Policy's own; every value is checked by the same rule that checks
    it at the customer, profile and user levels (`bridge.tenants.policy_values`).
    """

    sender_id: str = _POLICY.sender_id
    notify: str = _POLICY.notify
    default_country: str = _POLICY.default_country
    encoding: str = _POLICY.encoding
    replacement: str = _POLICY.replacement
    max_parts: int = _POLICY.max_parts
    overflow: str = _POLICY.overflow
    subject_policy: str = _POLICY.subject_policy
    validity: float = _POLICY.validity
    subject_separator: str = _POLICY.subject_separator
    cleaning: tuple[str, ...] = _POLICY.cleaning
    end_markers: tuple[str, ...] = _POLICY.end_markers
    strip_strings: tuple[str, ...] = _POLICY.strip_strings
    cost_centre: str = _POLICY.cost_centre
    priority: str = _POLICY.priority
    notify_channel: tuple[str, ...] = _POLICY.notify_channel
    notify_address: str = _POLICY.notify_address
    allowed_countries: tuple[str, ...] = _POLICY.allowed_countries
    denied_countries: tuple[str, ...] = _POLICY.denied_countries
    rate_per_minute: int = _POLICY.rate_per_minute
    rate_per_day: int = _POLICY.rate_per_day
    quiet_hours: str = _POLICY.quiet_hours
    timezone: str = _POLICY.timezone
    flash: bool = _POLICY.flash
    mail_overrides: tuple[str, ...] = _POLICY.mail_overrides

    @model_validator(mode="after")
    def _valid_policy_values(self) -> DefaultsSettings:
        for name, value in self.model_dump().items():
            try:
                check_setting(name, value)
            except PolicyError as exc:
                raise ValueError(str(exc)) from None
        return self


class ReportSettings(_Section):
    """Order reporting: how long orders are kept, and the monthly report archive."""

    retention_days: Annotated[int, Field(ge=1)] = 92
    text_retention_days: Annotated[int, Field(ge=0)] = 0
    monthly: bool = True
    monthly_archive_months: Annotated[int, Field(ge=1)] = 6
    monthly_recipients: tuple[str, ...] = ()
    check_interval: Seconds = 3600.0


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
    # one render of a customer's template (or an inline auto-reply text): time and size
    template_timeout: Annotated[float, Field(gt=0, le=300)] = 5.0
    template_max_chars: Annotated[int, Field(ge=10_000)] = 5_000_000
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
    reports: ReportSettings = ReportSettings()
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
                "long_code_rate": 0.0,  # a simulator: no carrier limits a sender's rate
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
